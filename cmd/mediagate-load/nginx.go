package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// The RTMP platform stand-in for the egress scenario: nginx with the rtmp
// module (../shared/TESTING.md), accepting live streams and dropping them
// (no recording on its side: its disk is not what is measured).

const nginxRTMPConf = `load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off; master_process off; worker_processes 1;
pid %[1]s/nginx.pid; error_log %[1]s/error.log warn;
events { worker_connections 256; }
rtmp { server { listen 127.0.0.1:%[2]d; chunk_size 4096;
  application live { live on; record off; } } }
`

// startNginx starts nginx in dir on a free port and waits up to 5 s until
// the port accepts connections (nginx has no readiness signal). stop ends
// it.
func startNginx(ctx context.Context, dir string) (port int, stop func(), err error) {
	if port, err = freePort(); err != nil {
		return 0, nil, err
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxRTMPConf, dir, port), 0o644); err != nil {
		return 0, nil, err
	}
	cmd := exec.Command("nginx", "-c", conf, "-p", dir+"/")
	logFile, err := os.Create(filepath.Join(dir, "nginx.stderr"))
	if err != nil {
		return 0, nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return 0, nil, fmt.Errorf("nginx: %w (scripts/bootstrap installs it)", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logFile.Close(); close(done) }()
	stop = func() { stopProcess(cmd, done) }
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for range 250 {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return port, stop, nil
		}
		select {
		case <-done:
			return 0, nil, fmt.Errorf("nginx exited at start (log in %s)", dir)
		case <-ctx.Done():
			stop()
			return 0, nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	stop()
	return 0, nil, fmt.Errorf("nginx not listening on %s after 5 s", addr)
}
