package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"
)

// startLogged starts cmd with its standard output and error copied line by
// line to logPath, and waits up to 30 s for a line containing ready. It
// returns a channel closed when the process has exited, and that line.
func startLogged(ctx context.Context, cmd *exec.Cmd, logPath, ready string) (chan struct{}, string, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		_ = logFile.Close()
		return nil, "", err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, "", err
	}
	done := make(chan struct{})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			_, _ = fmt.Fprintln(logFile, line)
			if strings.Contains(line, ready) {
				select {
				case found <- line:
				default:
				}
			}
		}
		_ = cmd.Wait()
		_ = logFile.Close()
		close(done)
	}()
	select {
	case line := <-found:
		return done, line, nil
	case <-done:
		return nil, "", fmt.Errorf("%s exited before %q (log: %s)", cmd.Path, ready, logPath)
	case <-ctx.Done():
		stopProcess(cmd, done)
		return nil, "", ctx.Err()
	case <-time.After(30 * time.Second):
		stopProcess(cmd, done)
		return nil, "", fmt.Errorf("%s: no %q after 30 s (log: %s)", cmd.Path, ready, logPath)
	}
}

// field is the value of key=value in a slog text line, unquoted.
func field(line, key string) string {
	for f := range strings.FieldsSeq(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// fetchProfile takes a CPU profile of d from the gateway's profiler at
// base (http://127.0.0.1:port) and writes it to path.
func fetchProfile(ctx context.Context, base string, d time.Duration, path string) error {
	secs := max(int(d.Round(time.Second)/time.Second), 1)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", req.URL, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
