package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/recorder"
)

// receiptsCommand runs `mediagate receipts verify [--config FILE] [--file
// FILE]`: offline, from the configuration alone (no running node), it
// checks every line of the deletion receipts log against the receipt key
// (signature) and the line before it (hash chain). It prints OK and the
// number of receipts, or the first bad line; exit code 1 when the log does
// not verify or cannot be read.
func receiptsCommand(args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprintln(stderr, "usage: mediagate receipts verify [--config FILE] [--file FILE]")
		return exitUsage
	}
	fs := flag.NewFlagSet("mediagate receipts verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (YAML); default $MEDIAGATE_CONFIG, else built-in defaults")
	file := fs.String("file", "", "receipts log; default deletion-receipts.jsonl in the recordings store")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mediagate: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if *configPath == "" {
		*configPath = lookupEnv(environ, configs.EnvConfig)
	}
	cfg, err := configs.Load(*configPath, environ)
	if err != nil {
		fmt.Fprintf(stderr, "mediagate: configuration: %v\n", err)
		return exitUsage
	}
	if *file == "" {
		*file = receiptsFile(cfg)
	}
	key, err := receiptKey(cfg, nil, false)
	if err != nil {
		fmt.Fprintf(stderr, "FAIL: %v\n", err)
		return exitFailed
	}
	f, err := os.Open(*file)
	if err != nil {
		fmt.Fprintf(stderr, "FAIL: %v\n", err)
		return exitFailed
	}
	defer f.Close()
	n, err := recorder.Verify(f, key)
	if err != nil {
		fmt.Fprintf(stderr, "FAIL: %s: %v (%d receipts before it verified)\n", *file, err, n)
		return exitFailed
	}
	fmt.Fprintf(stdout, "OK: %d receipts verified in %s\n", n, *file)
	return exitOK
}
