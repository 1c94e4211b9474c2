package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"text/tabwriter"
	"time"

	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/recorder"
)

// receiptsUsage is the usage of `mediagate receipts`.
const receiptsUsage = `usage:
  mediagate receipts ls [--tenant T] [--from TIME] [--to TIME] [--json]
                                        deletion receipts through the admin API (deleted_at
                                        from <= t < to, RFC 3339 times)
  mediagate receipts export --format json|csv [-o FILE] [--tenant T] [--from TIME] [--to TIME]
                                        the same as the API's export file (stdout without -o)
  mediagate receipts verify [--config FILE] [--file FILE]
                                        offline: check the receipts log's signatures and
                                        chain; prints OK and the count or the first bad line
ls and export take --server URL (default $MEDIAGATE_SERVER, else
http://127.0.0.1:8080) and the caller's key from MEDIAGATE_API_KEY.
`

// receiptsCommand runs `mediagate receipts ...`: ls and export through a
// node's admin API, verify offline.
func receiptsCommand(args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, receiptsUsage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "verify":
		return receiptsVerify(args[1:], environ, stdout, stderr)
	case "ls", "list":
		err = receiptsList(args[1:], environ, stdout, stderr)
	case "export":
		err = receiptsExport(args[1:], environ, stdout, stderr)
	default:
		err = fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
	return exitCode("receipts", args[0], receiptsUsage, err, stderr)
}

// receiptFlags are the filters of receipts ls and export.
type receiptFlags struct {
	flagSet
	tenant, from, to *string
}

func newReceiptFlags(name string, stderr io.Writer) receiptFlags {
	fs := commandFlags("receipts", name, stderr)
	return receiptFlags{
		flagSet: flagSet{fs, serverFlag(fs)},
		tenant:  fs.String("tenant", "", "only this tenant's receipts"),
		from:    fs.String("from", "", "only deletions at or after this RFC 3339 time"),
		to:      fs.String("to", "", "only deletions before this RFC 3339 time"),
	}
}

// parse parses args, which must hold nothing but flags, and returns the
// query of the filters and a client.
func (f receiptFlags) parse(args, environ []string) (url.Values, *adminClient, error) {
	rest, err := parseInterspersed(f.FlagSet, args)
	switch {
	case err != nil:
		return nil, nil, flagErr(err)
	case len(rest) > 0:
		return nil, nil, fmt.Errorf("%w: unexpected argument %q", errUsage, truncateArg(rest[0]))
	}
	q := url.Values{}
	if *f.tenant != "" {
		q.Set("tenant", *f.tenant)
	}
	for name, v := range map[string]string{"from": *f.from, "to": *f.to} {
		if v == "" {
			continue
		}
		if _, err := time.Parse(time.RFC3339, v); err != nil {
			return nil, nil, fmt.Errorf("%w: --%s must be an RFC 3339 time such as 2031-03-14T00:00:00Z", errUsage, name)
		}
		q.Set(name, v)
	}
	c, err := newAdminClient(*f.server, environ)
	return q, c, err
}

func receiptsList(args, environ []string, stdout, stderr io.Writer) error {
	fs := newReceiptFlags("ls", stderr)
	asJSON := fs.Bool("json", false, "print the receipts as a JSON array")
	q, c, err := fs.parse(args, environ)
	if err != nil {
		return err
	}
	var page struct {
		Receipts []recorder.Receipt `json:"receipts"`
	}
	if err := c.call(context.Background(), "GET", "/api/v1/receipts", q, nil, &page); err != nil {
		return err
	}
	if page.Receipts == nil {
		page.Receipts = []recorder.Receipt{}
	}
	if *asJSON {
		return printJSON(stdout, page.Receipts)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DELETED\tRECORDING\tROOM\tTENANT\tREASON\tACTOR\tRECEIPT")
	for _, r := range page.Receipts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.DeletedAt.UTC().Format(time.RFC3339), r.Recording,
			r.Room, r.Tenant, r.Reason, r.Actor, r.ID)
	}
	return tw.Flush()
}

func receiptsExport(args, environ []string, stdout, stderr io.Writer) (err error) {
	fs := newReceiptFlags("export", stderr)
	format := fs.String("format", "json", "json or csv")
	out := fs.String("o", "", "the file to write (default stdout)")
	q, c, err := fs.parse(args, environ)
	if err != nil {
		return err
	}
	if f := recorder.ExportFormat(*format); f != recorder.ExportJSON && f != recorder.ExportCSV {
		return fmt.Errorf("%w: --format must be json or csv", errUsage)
	}
	q.Set("format", *format)
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	req, err := c.request(ctx, "GET", "/api/v1/receipts/export", q, nil)
	if err != nil {
		return err
	}
	resp, err := c.send(downloadClient, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if *out == "" {
		_, err = io.Copy(stdout, resp.Body)
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(*out) // never half an export that looks whole
		return fmt.Errorf("writing %s: %w", *out, err)
	}
	fmt.Fprintf(stderr, "wrote %s (%d bytes)\n", *out, n)
	return nil
}

// receiptsVerify runs `mediagate receipts verify [--config FILE] [--file
// FILE]`: offline, from the configuration alone (no running node), it
// checks every line of the deletion receipts log against the receipt key
// (signature) and the line before it (hash chain). It prints OK and the
// number of receipts, or the first bad line; exit code 1 when the log does
// not verify or cannot be read.
func receiptsVerify(args, environ []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mediagate receipts verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (YAML); default $MEDIAGATE_CONFIG, else built-in defaults")
	file := fs.String("file", "", "receipts log; default deletion-receipts.jsonl in the recordings store")
	if err := fs.Parse(args); err != nil {
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
