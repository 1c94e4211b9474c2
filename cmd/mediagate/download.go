package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mediagate/mediagate/recorder"
)

// stallTimeout aborts a download that has received nothing for this long;
// the partial file stays for the next attempt.
const stallTimeout = 60 * time.Second

// errStalled is why a stalled download was aborted.
var errStalled = fmt.Errorf("nothing received for %v", stallTimeout)

// downloadClient fetches recordings: no overall time limit (a day-long
// recording takes a while on a slow link), but a bound on the wait for the
// answer's header, and no transparent compression, which would make byte
// ranges of something else than the file.
var downloadClient = &http.Client{Transport: func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = clientTimeout
	t.DisableCompression = true
	return t
}()}

func recordingsDownload(args, environ []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("download", stderr)
	out := fs.String("o", "", "the file to write (default ID.opus or ID.m4a here, as the recording's format); a partial one is resumed")
	id, c, err := oneRecording(fs, "download", args, environ)
	if err != nil {
		return err
	}
	ctx := context.Background()
	var m recorder.Manifest
	if err := c.do(ctx, "GET", recordingPath(id, ""), nil, &m); err != nil {
		return err
	}
	if *out == "" {
		*out = string(id) + recorder.Extension(m.Format)
	}
	if m.SHA256 == "" {
		return fmt.Errorf("recording %s is %s: it has no final file to download yet", id, m.State)
	}
	d := &downloader{c: c, m: m, path: *out, stderr: stderr, tty: isTerminal(stderr)}
	if err := d.run(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d bytes, SHA-256 %s as in the manifest\n", *out, m.Bytes, m.SHA256)
	return nil
}

// downloader fetches one recording's audio into a file, resuming what an
// earlier attempt left there, and checks it against the manifest.
type downloader struct {
	c      *adminClient
	m      recorder.Manifest
	path   string
	stderr io.Writer
	tty    bool // progress as a bar redrawn in place
}

// run downloads into d.path. A partial file is continued with a range
// request conditional on the manifest's SHA-256 (If-Range with the ETag),
// so the server sends the rest only when its file is the one whose start
// we have, the whole file otherwise. A complete file is only checked. When
// a resumed file does not match the manifest's SHA-256 (the partial file
// was something else), it is fetched once more from the start; a fresh
// download that does not match is removed and reported.
func (d *downloader) run(ctx context.Context) (err error) {
	f, err := os.OpenFile(d.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if have == d.m.Bytes && have > 0 {
		sum, err := fileSHA256(f)
		if err != nil {
			return err
		}
		if sum == d.m.SHA256 {
			fmt.Fprintf(d.stderr, "%s: complete already\n", d.path)
			return nil
		}
	}
	if have >= d.m.Bytes {
		have = 0 // longer than the recording, or complete but different
	}
	for attempt := 0; ; attempt++ {
		if err := d.fetch(ctx, f, have); err != nil {
			return err
		}
		sum, err := fileSHA256(f)
		if err != nil {
			return err
		}
		if sum == d.m.SHA256 {
			return f.Sync()
		}
		if have == 0 || attempt > 0 {
			_ = os.Remove(d.path)
			return fmt.Errorf("%s: SHA-256 %s is not the manifest's %s; the file is removed", d.path, sum, d.m.SHA256)
		}
		fmt.Fprintf(d.stderr, "%s: the resumed file does not match the manifest's SHA-256; downloading it again from the start\n", d.path)
		have = 0
	}
}

// fetch writes the recording from byte have on into f (the whole file
// when the server does not send the range).
func (d *downloader) fetch(ctx context.Context, f *os.File, have int64) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := d.c.request(ctx, "GET", recordingPath(d.m.ID, "/download"), nil, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", recorder.ContentType(d.m.Format))
	etag := `"` + d.m.SHA256 + `"`
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
		req.Header.Set("If-Range", etag) // RFC 9110 §13.1.5: the rest of this file, or all of the new one
	}
	resp, err := d.c.send(downloadClient, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if got := resp.Header.Get("ETag"); got != etag {
		return fmt.Errorf("the server's file (ETag %.70s) is not the one of the manifest (%s)", got, etag)
	}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != have {
			return fmt.Errorf("asked for the file from byte %d, got Content-Range %.70q", have, resp.Header.Get("Content-Range"))
		}
		fmt.Fprintf(d.stderr, "%s: resuming at byte %d of %d\n", d.path, have, d.m.Bytes)
	case http.StatusOK:
		if have > 0 {
			fmt.Fprintf(d.stderr, "%s: the server sent the whole file; starting over\n", d.path)
		}
		have = 0
	default:
		return fmt.Errorf("unexpected answer %s", resp.Status)
	}
	if err := f.Truncate(have); err != nil {
		return err
	}
	if _, err := f.Seek(have, io.SeekStart); err != nil {
		return err
	}
	p := newProgress(d.stderr, d.tty, filepath.Base(d.path), have, d.m.Bytes)
	stall := time.AfterFunc(stallTimeout, func() { cancel(errStalled) })
	defer stall.Stop()
	_, err = io.Copy(f, io.TeeReader(&watchdog{r: resp.Body, t: stall}, p))
	p.finish()
	if err != nil {
		if errors.Is(context.Cause(ctx), errStalled) {
			err = errStalled
		}
		return fmt.Errorf("download interrupted after %d of %d bytes; the same command resumes it: %w", p.done, d.m.Bytes, err)
	}
	return nil
}

// rangeStart reads the first byte position of a Content-Range (RFC 9110
// §14.4): "bytes 1000-1999/2000".
func rangeStart(cr string) (int64, bool) {
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return 0, false
	}
	first, _, ok := strings.Cut(rest, "-")
	n, err := strconv.ParseInt(first, 10, 64)
	return n, ok && err == nil
}

// watchdog restarts t on every read that returns something.
type watchdog struct {
	r io.Reader
	t *time.Timer
}

func (w *watchdog) Read(b []byte) (int, error) {
	n, err := w.r.Read(b)
	if n > 0 {
		w.t.Reset(stallTimeout)
	}
	return n, err
}

// fileSHA256 returns the hex SHA-256 of f's content, read from its start.
func fileSHA256(f *os.File) (string, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading %s: %w", f.Name(), err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
