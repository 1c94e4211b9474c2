package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mediagate/mediagate/recorder"
)

// The admin subcommands (mediagate keys ..., later recordings, receipts,
// rooms, streams) talk to a node's admin API like any other client: the
// server from --server or MEDIAGATE_SERVER, the API key from
// MEDIAGATE_API_KEY, never from a flag, so it stays out of shell history
// and process listings.

// defaultServer is the admin API the subcommands talk to unless told
// otherwise: a node on this machine with the default http.listen.
const defaultServer = "http://127.0.0.1:8080"

// clientTimeout bounds one admin API request.
const clientTimeout = 30 * time.Second

// errUsage marks errors of the command line (exit code 2, with the
// usage), errSetup those of the environment (exit code 2), as opposed to
// failures of the request (exit code 1). Their own text is not shown.
var (
	errUsage = errors.New("usage")
	errSetup = errors.New("setup")
)

// adminClient sends requests to the admin API with an API key.
type adminClient struct {
	base *url.URL
	key  string
	http *http.Client
}

// serverFlag adds --server to fs.
func serverFlag(fs *flag.FlagSet) *string {
	return fs.String("server", "", "admin API URL (default $MEDIAGATE_SERVER, else "+defaultServer+")")
}

// newAdminClient returns a client for server (the --server flag; empty
// means MEDIAGATE_SERVER, else defaultServer) with the key of
// MEDIAGATE_API_KEY.
func newAdminClient(server string, environ []string) (*adminClient, error) {
	if server == "" {
		server = lookupEnv(environ, "MEDIAGATE_SERVER")
	}
	if server == "" {
		server = defaultServer
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: server %q is not an http:// or https:// URL", errSetup, server)
	}
	key := lookupEnv(environ, "MEDIAGATE_API_KEY")
	if key == "" {
		return nil, fmt.Errorf("%w: MEDIAGATE_API_KEY is not set: export an API key of the node (made by `mediagate keys new` or `mediagate keys create`)", errSetup)
	}
	return &adminClient{base: u, key: key, http: &http.Client{Timeout: clientTimeout}}, nil
}

// do sends method path with body (JSON; nil for none) and decodes a
// successful answer into out (nil to ignore it). Error answers become
// errors that say the status and the problem's detail.
func (c *adminClient) do(ctx context.Context, method, path string, body, out any) error {
	return c.call(ctx, method, path, nil, body, out)
}

// call is do with a query.
func (c *adminClient) call(ctx context.Context, method, path string, q url.Values, body, out any) error {
	req, err := c.request(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	resp, err := c.send(c.http, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: unexpected answer: %w", method, path, err)
	}
	return nil
}

// request makes a request for path (and query q) of the admin API with the
// key as its bearer token and body, when not nil, as JSON.
func (c *adminClient) request(ctx context.Context, method, path string, q url.Values, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	u := c.base.JoinPath(path)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// send sends req with hc and returns the answer when it is a success; an
// error answer is read and closed, and becomes the error.
func (c *adminClient) send(hc *http.Client, req *http.Request) (*http.Response, error) {
	resp, err := hc.Do(req)
	if err != nil {
		// The URL error repeats the URL; the key is in a header, not in it.
		return nil, fmt.Errorf("cannot reach the admin API at %s: %w", c.base, errors.Unwrap(err))
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10)) // what came of it
		return nil, problemError(resp.StatusCode, b)
	}
	return resp, nil
}

// apiError is an error answer of the admin API: its status and problem
// type (RFC 9457), and the message for people.
type apiError struct {
	status int
	typ    string
	msg    string
}

// Error is "403 forbidden: a viewer key only reads" and a hint.
func (e *apiError) Error() string { return e.msg }

// problemError turns an error answer into an error: "403 forbidden: a
// viewer key only reads", from the problem+json body when there is one.
// errors.As finds the *apiError with the status and problem type.
func problemError(status int, body []byte) error {
	var p struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Detail string `json:"detail"`
	}
	_ = json.Unmarshal(body, &p) // not problem+json: the status alone
	msg := p.Detail
	if msg == "" {
		msg = p.Title
	}
	if msg == "" {
		msg = strings.ToLower(http.StatusText(status))
	}
	hint := ""
	switch status {
	case http.StatusUnauthorized:
		hint = " (check MEDIAGATE_API_KEY)"
	case http.StatusForbidden:
		hint = " (the key's role or tenant does not allow this)"
	}
	return &apiError{status: status, typ: p.Type, msg: fmt.Sprintf("%d %s%s", status, msg, hint)}
}

// parseInterspersed parses fs's flags wherever they stand among args and
// returns the other arguments, so that `keys revoke ID --server URL` works
// as well as `keys revoke --server URL ID`. A recording or receipt ID may
// begin with '-' (it is random base64url): an argument that is not one of
// fs's flags but has the form of an ID is an argument, not an unknown
// flag. Everything after "--" is an argument.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case a == "--":
			rest = append(rest, args[i+1:]...)
			i = len(args)
		case len(a) < 2 || a[0] != '-' || (isID(a) && fs.Lookup(name) == nil):
			rest = append(rest, a)
		default:
			flags = append(flags, a)
			if f := fs.Lookup(name); f != nil && !hasValue && !isBoolFlag(f) && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		}
	}
	if err := fs.Parse(flags); err != nil {
		return nil, err
	}
	return rest, nil
}

// isBoolFlag reports whether f takes no value (-flag alone means true).
func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// isID reports whether s has the form of a recording or receipt ID.
func isID(s string) bool { return recorder.ID(s).Valid() }

// commandFlags returns a flag set for `mediagate group name` that reports
// to stderr and never exits; its usage is the subcommand's flags.
func commandFlags(group, name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("mediagate "+group+" "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage of mediagate %s %s (mediagate %s: all commands):\n", group, name, group)
		fs.PrintDefaults()
	}
	return fs
}

// exitCode reports the outcome err of `mediagate group sub` on stderr and
// returns the exit code: 0 for success (and -h), 2 for a bad command line
// (with usage) or environment, 1 when the request or the work failed.
func exitCode(group, sub, usage string, err error, stderr io.Writer) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errReported):
		return exitUsage
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "mediagate %s: %s\n%s", group, strings.TrimPrefix(err.Error(), "usage: "), usage)
		return exitUsage
	case errors.Is(err, errSetup):
		fmt.Fprintf(stderr, "mediagate %s %s: %s\n", group, sub, strings.TrimPrefix(err.Error(), "setup: "))
		return exitUsage
	default:
		fmt.Fprintf(stderr, "mediagate %s %s: %v\n", group, sub, err)
		return exitFailed
	}
}

// errReported is a command line error the flag package has printed
// already, with the usage.
var errReported = errors.New("reported")

// flagErr marks a flag parsing error as reported, except for -h.
func flagErr(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return errReported
}
