// Command mediagate is the gateway: `mediagate serve` (the default) runs a
// node; `mediagate receipts verify` checks the deletion receipts offline;
// the admin subcommands talk to a node's admin API.
//
//	mediagate [serve] [--config FILE]
//	mediagate keys new | create | ls | revoke
//	mediagate recordings ls | get | download | extend | hold | rm
//	mediagate streams ls | start | stop
//	mediagate receipts ls | export
//	mediagate receipts verify [--config FILE] [--file FILE]
//	mediagate --version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// version is set at build time: go build -ldflags "-X main.version=...".
var version = "dev"

// Exit codes: 0 after a clean stop, 1 when the node fails while running, 2
// for a bad command line or configuration.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// run is main without the process: it parses args, runs the command and
// returns the exit code, so tests can drive it.
func run(args, environ []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serveCommand(args, environ, stdout, stderr)
	case "keys":
		return keysCommand(args, environ, stdout, stderr)
	case "recordings":
		return recordingsCommand(args, environ, stdout, stderr)
	case "streams":
		return streamsCommand(args, environ, os.Stdin, stdout, stderr)
	case "receipts":
		return receiptsCommand(args, environ, stdout, stderr)
	case "rooms":
		return roomsCommand(args, environ, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "mediagate", version)
		return exitOK
	case "help":
		usage(stdout)
		return exitOK
	default:
		fmt.Fprintf(stderr, "mediagate: unknown command %q\n", cmd)
		usage(stderr)
		return exitUsage
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  mediagate [serve] [--config FILE]   run a gateway node (default: embedded configuration)
  mediagate keys new                  make a bootstrap API key and its auth.admin_keys line
  mediagate keys create|ls|revoke     manage API keys through the admin API
                                      (mediagate keys, for the details)
  mediagate recordings ls|get|download|extend|hold|rm
                                      recordings through the admin API: list, manifest,
                                      resumable verified download, retention, legal hold,
                                      deletion (mediagate recordings, for the details)
  mediagate rooms ls|get|lock|unlock|mute|unmute|invite
                                      rooms through the admin API: list, participants,
                                      lock, mute, invitation links (mediagate rooms, for
                                      the details)
  mediagate streams ls|start|stop     live streams of rooms to YouTube, Twitch, Facebook...
                                      (RTMP/RTMPS) through the admin API
                                      (mediagate streams, for the details)
  mediagate receipts ls|export        deletion receipts through the admin API
  mediagate receipts verify [--config FILE] [--file FILE]
                                      check the deletion receipts log offline (signatures,
                                      chain); prints OK and the count or the first bad line
  mediagate version                   print the version
  mediagate --version                 the same

Every configuration key can be overridden from the environment as
MEDIAGATE_<SECTION>_<KEY>, e.g. MEDIAGATE_HTTP_LISTEN=:9090.
The reference is configs/mediagate.yaml.
Admin commands read the API key from MEDIAGATE_API_KEY and the node's URL
from --server or MEDIAGATE_SERVER (default http://127.0.0.1:8080).
`)
}

func serveCommand(args, environ []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mediagate serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { usage(stderr) }
	configPath := fs.String("config", "", "configuration file (YAML); default $MEDIAGATE_CONFIG, else built-in defaults")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *showVersion {
		fmt.Fprintln(stdout, "mediagate", version)
		return exitOK
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mediagate: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}

	if *configPath == "" {
		*configPath = lookupEnv(environ, "MEDIAGATE_CONFIG")
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	return serve(ctx, *configPath, environ, stderr, sigs)
}

// lookupEnv returns the value of key in environ ("KEY=value" entries), or "".
func lookupEnv(environ []string, key string) string {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}
