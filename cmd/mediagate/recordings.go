package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/mediagate/mediagate/recorder"
)

// recordingsUsage is the usage of `mediagate recordings`.
const recordingsUsage = `usage:
  mediagate recordings ls [--room R] [--state S] [--json]
                                        list recordings, oldest first (every page);
                                        S: recording, complete, interrupted, deleted
  mediagate recordings get ID           one recording's manifest (JSON)
  mediagate recordings download ID [-o FILE]
                                        the audio into FILE (default ID.opus/.m4a); resumes a
                                        partial FILE, checks the SHA-256 of the manifest
  mediagate recordings extend ID --until 2031-05-01T00:00:00Z
                                        keep a recording longer
  mediagate recordings hold ID --reason R
                                        put it on legal hold: kept past its expiry
  mediagate recordings hold ID --off    lift the legal hold
  mediagate recordings rm ID --reason admin|erasure-request
                                        delete the audio; its manifest and a signed
                                        deletion receipt stay
The commands take --server URL (default $MEDIAGATE_SERVER, else
http://127.0.0.1:8080) and the caller's key from MEDIAGATE_API_KEY.
`

// listPageSize is how many manifests recordings ls asks for per page: the
// API's largest page.
const listPageSize = 500

// recordingsCommand runs `mediagate recordings ...`: the recordings of a
// node through its admin API, as the admin page shows them.
func recordingsCommand(args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, recordingsUsage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "ls", "list":
		err = recordingsList(args[1:], environ, stdout, stderr)
	case "get":
		err = recordingsGet(args[1:], environ, stdout, stderr)
	case "download":
		err = recordingsDownload(args[1:], environ, stdout, stderr)
	case "extend":
		err = recordingsExtend(args[1:], environ, stdout, stderr)
	case "hold":
		err = recordingsHold(args[1:], environ, stdout, stderr)
	case "rm", "delete":
		err = recordingsRemove(args[1:], environ, stdout, stderr)
	default:
		err = fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
	return exitCode("recordings", args[0], recordingsUsage, err, stderr)
}

// recordingArg checks that rest is one recording ID and returns it. IDs
// are checked here as the server checks them, since download names its
// file after one.
func recordingArg(cmd string, rest []string) (recorder.ID, error) {
	if len(rest) != 1 {
		return "", fmt.Errorf("%w: recordings %s takes one recording ID", errUsage, cmd)
	}
	id, err := recorder.ParseID(rest[0])
	if err != nil {
		return "", fmt.Errorf("%w: %q is not a recording ID (22 characters of base64url)", errUsage, truncateArg(rest[0]))
	}
	return id, nil
}

// truncateArg shortens an argument for an error message.
func truncateArg(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// recordingPath is the admin API path of recording id, with rest after it.
func recordingPath(id recorder.ID, rest string) string {
	return "/api/v1/recordings/" + url.PathEscape(string(id)) + rest
}

func recordingsList(args, environ []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ls", stderr)
	roomID := fs.String("room", "", "only this room's recordings")
	state := fs.String("state", "", "only recordings in this state: recording, complete, interrupted or deleted")
	asJSON := fs.Bool("json", false, "print the manifests as a JSON array")
	rest, err := parseInterspersed(fs.FlagSet, args)
	switch {
	case err != nil:
		return flagErr(err)
	case len(rest) > 0:
		return fmt.Errorf("%w: unexpected argument %q", errUsage, truncateArg(rest[0]))
	}
	switch recorder.State(*state) {
	case "", recorder.StateRecording, recorder.StateComplete, recorder.StateInterrupted, recorder.StateDeleted:
	default:
		return fmt.Errorf("%w: --state must be recording, complete, interrupted or deleted", errUsage)
	}
	c, err := newAdminClient(*fs.server, environ)
	if err != nil {
		return err
	}
	q := url.Values{"limit": {fmt.Sprint(listPageSize)}}
	if *roomID != "" {
		q.Set("room", *roomID)
	}
	if *state != "" {
		q.Set("state", *state)
	}
	all, err := listRecordings(context.Background(), c, q)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, all)
	}
	return printRecordings(stdout, all, time.Now())
}

// listRecordings follows the list's next_cursor to its end.
func listRecordings(ctx context.Context, c *adminClient, q url.Values) ([]recorder.Manifest, error) {
	all := []recorder.Manifest{}
	seen := map[string]bool{}
	for {
		var page struct {
			Recordings []recorder.Manifest `json:"recordings"`
			NextCursor string              `json:"next_cursor"`
		}
		if err := c.call(ctx, "GET", "/api/v1/recordings", q, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Recordings...)
		if page.NextCursor == "" {
			return all, nil
		}
		if seen[page.NextCursor] {
			return nil, errors.New("the server answered the same page twice")
		}
		seen[page.NextCursor] = true
		q.Set("cursor", page.NextCursor)
	}
}

// printRecordings writes the recordings as a table; LEFT is the time to
// expiry at now, marked "(soon)" under 7 days as the admin page marks it.
func printRecordings(w io.Writer, ms []recorder.Manifest, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tROOM\tTENANT\tSTARTED\tDURATION\tSTATE\tSIZE\tEXPIRES\tLEFT\tHOLD")
	for _, m := range ms {
		expires, left := m.ExpiresAt.UTC().Format(time.RFC3339), timeLeft(m, now)
		hold := "-"
		if m.LegalHold != nil {
			hold = "yes"
		}
		if m.State == recorder.StateDeleted {
			expires = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.Room, m.Tenant,
			m.StartedAt.UTC().Format(time.RFC3339), time.Duration(m.Duration*float64(time.Second)).Round(time.Second),
			m.State, formatBytes(m.Bytes), expires, left, hold)
	}
	return tw.Flush()
}

// soon is how close to its expiry a recording is marked.
const soon = 7 * 24 * time.Hour

// timeLeft is how long m has until it expires: "29d23h", "5h12m",
// "expired", "-" once deleted; "(soon)" follows under 7 days.
func timeLeft(m recorder.Manifest, now time.Time) string {
	if m.State == recorder.StateDeleted {
		return "-"
	}
	d := m.ExpiresAt.Sub(now)
	if d <= 0 {
		return "expired"
	}
	var s string
	switch {
	case d >= 24*time.Hour:
		s = fmt.Sprintf("%dd%dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
	case d >= time.Hour:
		s = fmt.Sprintf("%dh%dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		s = fmt.Sprintf("%dm%ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	}
	if d < soon {
		s += " (soon)"
	}
	return s
}

// formatBytes writes a size in decimal units: 812 B, 19.5 kB, 10.1 MB.
func formatBytes(n int64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	v, units := float64(n), []string{"kB", "MB", "GB", "TB"}
	u := -1
	for v >= 1000 && u < len(units)-1 {
		v /= 1000
		u++
	}
	return fmt.Sprintf("%.1f %s", v, units[u])
}

// oneRecording parses the flags of a command on one recording and returns
// the recording and a client.
func oneRecording(fs flagSet, cmd string, args, environ []string) (recorder.ID, *adminClient, error) {
	rest, err := parseInterspersed(fs.FlagSet, args)
	if err != nil {
		return "", nil, flagErr(err)
	}
	id, err := recordingArg(cmd, rest)
	if err != nil {
		return "", nil, err
	}
	c, err := newAdminClient(*fs.server, environ)
	return id, c, err
}

func recordingsGet(args, environ []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("get", stderr)
	id, c, err := oneRecording(fs, "get", args, environ)
	if err != nil {
		return err
	}
	var m recorder.Manifest
	if err := c.do(context.Background(), "GET", recordingPath(id, ""), nil, &m); err != nil {
		return err
	}
	return printJSON(stdout, m)
}

func recordingsExtend(args, environ []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("extend", stderr)
	until := fs.String("until", "", "the new expiry, RFC 3339, e.g. 2031-05-01T00:00:00Z (required)")
	id, c, err := oneRecording(fs, "extend", args, environ)
	if err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339, *until)
	if err != nil {
		return fmt.Errorf("%w: --until must be an RFC 3339 time such as 2031-05-01T00:00:00Z", errUsage)
	}
	var m recorder.Manifest
	if err := c.do(context.Background(), "POST", recordingPath(id, "/extend"), map[string]time.Time{"until": t}, &m); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "recording %s now expires at %s\n", m.ID, m.ExpiresAt.UTC().Format(time.RFC3339))
	return nil
}

func recordingsHold(args, environ []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("hold", stderr)
	reason := fs.String("reason", "", "why it is held, e.g. \"case 2031-17\" (required unless --off)")
	off := fs.Bool("off", false, "lift the legal hold")
	id, c, err := oneRecording(fs, "hold", args, environ)
	switch {
	case err != nil:
		return err
	case *off == (*reason != ""):
		return fmt.Errorf("%w: recordings hold takes either --reason R or --off", errUsage)
	}
	var m recorder.Manifest
	if *off {
		if err := c.do(context.Background(), "DELETE", recordingPath(id, "/hold"), nil, &m); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "recording %s: legal hold lifted; it expires at %s\n", m.ID, m.ExpiresAt.UTC().Format(time.RFC3339))
		return nil
	}
	if err := c.do(context.Background(), "POST", recordingPath(id, "/hold"), map[string]string{"reason": *reason}, &m); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "recording %s is on legal hold: %s\n", m.ID, m.LegalHold.Reason)
	return nil
}

func recordingsRemove(args, environ []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rm", stderr)
	reason := fs.String("reason", "", "admin (an administrator's decision) or erasure-request (someone asked for it) (required)")
	id, c, err := oneRecording(fs, "rm", args, environ)
	switch {
	case err != nil:
		return err
	case *reason == "":
		return fmt.Errorf("%w: recordings rm needs --reason admin or --reason erasure-request", errUsage)
	}
	var m recorder.Manifest
	if err := c.do(context.Background(), "DELETE", recordingPath(id, ""), map[string]string{"reason": *reason}, &m); err != nil {
		return err
	}
	receipt := "pending"
	if m.Deletion != nil && m.Deletion.Receipt != "" {
		receipt = string(m.Deletion.Receipt)
	}
	fmt.Fprintf(stdout, "deleted the audio of recording %s (receipt %s)\n", m.ID, receipt)
	return nil
}

// flagSet is a recordings subcommand's flags with --server.
type flagSet struct {
	*flag.FlagSet
	server *string
}

// newFlagSet returns the flags of `mediagate recordings name` with
// --server.
func newFlagSet(name string, stderr io.Writer) flagSet {
	fs := commandFlags("recordings", name, stderr)
	return flagSet{fs, serverFlag(fs)}
}
