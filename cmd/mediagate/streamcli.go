package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mediagate/mediagate/api"
)

// streamsUsage is the usage of `mediagate streams`.
const streamsUsage = `usage:
  mediagate streams ls [ROOM] [--json]  the rooms' live streams and their destinations:
                                        state, bitrate, bytes, reconnects, last error
  mediagate streams start ROOM --url URL (--key-env VAR | --key-stdin) [--name N] [--id ID]
                                        stream the room to URL (rtmp:// or rtmps://
                                        host/application) with the stream key read from
                                        the environment variable VAR or the first line of
                                        stdin; a room that streams already gets another
                                        destination
  mediagate streams stop ROOM [--destination ID]
                                        stop the room's stream, or one destination of it
A stream key is never taken from the command line: arguments are visible
to every user of the machine (ps, /proc) and stay in shell histories, and
whoever holds the key can broadcast on the channel. For the same reason the
URL must not end in the key.
The commands take --server URL (default $MEDIAGATE_SERVER, else
http://127.0.0.1:8080) and the caller's key from MEDIAGATE_API_KEY.
`

// maxStreamKey bounds a stream key read from stdin; real ones are under
// 100 bytes.
const maxStreamKey = 1024

// streamsCommand runs `mediagate streams ...`: the live streams of a
// node's rooms through its admin API.
func streamsCommand(args, environ []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, streamsUsage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "ls", "list":
		err = streamsList(args[1:], environ, stdout, stderr)
	case "start":
		err = streamsStart(args[1:], environ, stdin, stdout, stderr)
	case "stop":
		err = streamsStop(args[1:], environ, stdout, stderr)
	default:
		err = fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
	return exitCode("streams", args[0], streamsUsage, err, stderr)
}

// newStreamsFlags returns the flags of `mediagate streams name` with
// --server.
func newStreamsFlags(name string, stderr io.Writer) flagSet {
	fs := commandFlags("streams", name, stderr)
	return flagSet{fs, serverFlag(fs)}
}

// egressPath is the admin API path of room's egress, with rest after it.
func egressPath(room, rest string) string {
	return "/api/v1/rooms/" + url.PathEscape(room) + "/egresses" + rest
}

// cliEgress and cliDestination are what the admin API answers.
type cliEgress struct {
	Room         string           `json:"room"`
	Tenant       string           `json:"tenant"`
	StartedAt    time.Time        `json:"started_at"`
	Video        string           `json:"video"`
	Destinations []cliDestination `json:"destinations"`
}

type cliDestination struct {
	ID         string `json:"id"`
	Name       string `json:"name,omitempty"`
	URL        string `json:"url"`
	State      string `json:"state"`
	Bytes      uint64 `json:"bytes"`
	Bitrate    int64  `json:"bitrate"`
	Reconnects int    `json:"reconnects"`
	Dropped    uint64 `json:"dropped"`
	LastError  string `json:"last_error,omitempty"`
}

func streamsList(args, environ []string, stdout, stderr io.Writer) error {
	fs := newStreamsFlags("ls", stderr)
	asJSON := fs.Bool("json", false, "print the streams as a JSON array")
	rest, err := parseInterspersed(fs.FlagSet, args)
	switch {
	case err != nil:
		return flagErr(err)
	case len(rest) > 1:
		return fmt.Errorf("%w: streams ls takes at most one room", errUsage)
	}
	c, err := newAdminClient(*fs.server, environ)
	if err != nil {
		return err
	}
	var all []cliEgress
	if len(rest) == 1 {
		var one cliEgress
		if err := c.do(context.Background(), "GET", egressPath(rest[0], ""), nil, &one); err != nil {
			return err
		}
		all = []cliEgress{one}
	} else if err := c.do(context.Background(), "GET", "/api/v1/egresses", nil, &all); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, all)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROOM\tVIDEO\tDESTINATION\tNAME\tURL\tSTATE\tBITRATE\tSENT\tRECONNECTS\tLAST ERROR")
	for _, e := range all {
		for _, d := range e.Destinations {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", e.Room, e.Video, d.ID, dash(d.Name), d.URL, d.State,
				formatBitrate(d.Bitrate), formatBytes(int64(d.Bytes)), d.Reconnects, dash(d.LastError))
		}
	}
	return tw.Flush()
}

// dash stands in for an empty cell.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// formatBitrate writes bit/s as kbit/s.
func formatBitrate(b int64) string { return fmt.Sprintf("%d kbit/s", (b+500)/1000) }

func streamsStart(args, environ []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newStreamsFlags("start", stderr)
	dest := fs.String("url", "", "rtmp:// or rtmps:// URL of the ingest, without the stream key (required)")
	keyEnv := fs.String("key-env", "", "read the stream key from this environment variable")
	keyStdin := fs.Bool("key-stdin", false, "read the stream key from the first line of stdin")
	name := fs.String("name", "", "a label for the destination, e.g. YouTube")
	id := fs.String("id", "", "the destination's ID (letters, digits, . _ -); default d1, d2...")
	rest, err := parseInterspersed(fs.FlagSet, args)
	switch {
	case err != nil:
		return flagErr(err)
	case len(rest) != 1:
		return fmt.Errorf("%w: streams start takes one room", errUsage)
	case *dest == "":
		return fmt.Errorf("%w: streams start needs --url", errUsage)
	case (*keyEnv == "") == !*keyStdin:
		return fmt.Errorf("%w: streams start takes the stream key from --key-env VAR or --key-stdin, never from the command line", errUsage)
	}
	key, err := streamKey(*keyEnv, environ, stdin)
	if err != nil {
		return err
	}
	c, err := newAdminClient(*fs.server, environ)
	if err != nil {
		return err
	}
	d := map[string]string{"url": *dest, "key": key}
	if *name != "" {
		d["name"] = *name
	}
	if *id != "" {
		d["id"] = *id
	}
	ctx := context.Background()
	var e cliEgress
	err = c.do(ctx, "POST", egressPath(rest[0], ""), map[string]any{"destinations": []map[string]string{d}}, &e)
	var ae *apiError
	if errors.As(err, &ae) && ae.typ == api.ProblemTypeBase+"already-streaming" {
		var one cliDestination
		if err := c.do(ctx, "POST", egressPath(rest[0], "/destinations"), d, &one); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "room %s also streams to %s (%s): %s\n", rest[0], one.ID, one.URL, one.State)
		return nil
	}
	if err != nil {
		return err
	}
	for _, one := range e.Destinations {
		fmt.Fprintf(stdout, "room %s streams to %s (%s): %s\n", e.Room, one.ID, one.URL, one.State)
	}
	return nil
}

// streamKey reads the stream key from the variable name of environ, or
// (name empty) from the first line of stdin.
func streamKey(name string, environ []string, stdin io.Reader) (string, error) {
	if name != "" {
		key := lookupEnv(environ, name)
		if key == "" {
			return "", fmt.Errorf("%w: the environment variable %s (--key-env) is not set or empty", errSetup, name)
		}
		return key, nil
	}
	line, err := bufio.NewReaderSize(io.LimitReader(stdin, maxStreamKey+2), maxStreamKey+2).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("%w: reading the stream key from stdin: %w", errSetup, err)
	}
	key := strings.TrimRight(line, "\r\n")
	switch {
	case key == "":
		return "", fmt.Errorf("%w: no stream key on stdin (--key-stdin)", errSetup)
	case len(key) > maxStreamKey:
		return "", fmt.Errorf("%w: the stream key on stdin is longer than %d bytes", errSetup, maxStreamKey)
	}
	return key, nil
}

func streamsStop(args, environ []string, stdout, stderr io.Writer) error {
	fs := newStreamsFlags("stop", stderr)
	dest := fs.String("destination", "", "stop only this destination (its ID, from streams ls)")
	rest, err := parseInterspersed(fs.FlagSet, args)
	switch {
	case err != nil:
		return flagErr(err)
	case len(rest) != 1:
		return fmt.Errorf("%w: streams stop takes one room", errUsage)
	}
	c, err := newAdminClient(*fs.server, environ)
	if err != nil {
		return err
	}
	if *dest != "" {
		if err := c.do(context.Background(), "DELETE", egressPath(rest[0], "/destinations/"+url.PathEscape(*dest)), nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "room %s no longer streams to %s\n", rest[0], *dest)
		return nil
	}
	if err := c.do(context.Background(), "DELETE", egressPath(rest[0], ""), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "room %s stopped streaming\n", rest[0])
	return nil
}
