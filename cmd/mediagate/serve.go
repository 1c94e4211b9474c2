package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/internal/anon"
)

// stopGrace bounds the teardown after the node stops taking work: open
// requests finish and sessions say goodbye to their peers. SIGINT goes
// straight to it, as an operator who presses Ctrl-C wants the node gone,
// not drained.
const stopGrace = 3 * time.Second

// serve loads the configuration, runs the node until a signal arrives and
// returns the exit code. SIGTERM drains: /readyz turns 503 at once, open work
// gets node.drain_timeout to finish. SIGINT stops within stopGrace. SIGHUP
// reloads the configuration from the same file and environment
// (reload.go) and the node runs on.
func serve(ctx context.Context, configPath string, environ []string, stderr io.Writer, sigs <-chan os.Signal) int {
	cfg, err := configs.Load(configPath, environ)
	if err != nil {
		fmt.Fprintf(stderr, "mediagate: configuration: %v\n", err)
		return exitUsage
	}
	log, level, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "mediagate: %v\n", err)
		return exitUsage
	}
	if cfg.Node.ID, err = nodeID(cfg); err != nil {
		log.Error("cannot start", "err", err)
		return exitFailed
	}
	log = log.With("node", cfg.Node.ID)
	if anon.SetEnabled(cfg.Log.AnonymizeIPs); !cfg.Log.AnonymizeIPs {
		log.Warn("IP addresses are logged whole (log.anonymize_ips: false)")
	}

	// The HTTP listener comes first: its address is the node's public URL
	// in the cluster (redirects, node-to-node links).
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		log.Error("cannot listen for HTTP", "listen", cfg.HTTP.Listen, "err", err)
		return exitFailed
	}
	tlsCfg, err := httpsConfig(cfg.HTTP, cfg.Storage.Dir, ln.Addr(), log)
	if err != nil {
		_ = ln.Close()
		log.Error("cannot start HTTPS", "err", err)
		return exitFailed
	}
	scheme := "http"
	if tlsCfg != nil {
		// h2 first: http.Server.Serve speaks HTTP/2 on a TLS listener
		// that offers it, and answers plain HTTP with 400.
		tlsCfg.NextProtos = []string{"h2", "http/1.1"}
		ln, scheme = tls.NewListener(ln, tlsCfg), "https"
	}
	n, err := newNode(cfg, log, ln.Addr())
	if err != nil {
		_ = ln.Close()
		log.Error("cannot start", "err", err)
		return exitFailed
	}
	n.live.level = level
	srv := n.http
	if cfg.HTTP.PprofListen != "" {
		stopPprof, err := startPprof(cfg.HTTP.PprofListen, log)
		if err != nil {
			_ = ln.Close()
			_ = n.close(context.Background())
			log.Error("cannot listen for the profiler", "listen", cfg.HTTP.PprofListen, "err", err)
			return exitFailed
		}
		defer func() { _ = stopPprof(context.Background()) }()
	}

	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()

	source := "built-in defaults"
	if configPath != "" {
		source = configPath
	}
	log.Info("mediagate ready",
		"version", version,
		"config", source,
		"http", scheme+"://"+reachable(ln.Addr()),
		"addr", ln.Addr().String(),
		"https", tlsCfg != nil,
		"webrtc_udp", n.rtc.Addr().String(),
		"sip_port", n.sip.Port(),
		"sip_tls_port", n.sip.TLSPort(),
		"rooms", len(cfg.Rooms),
		"public_url", n.publicURL,
		"join", "/r/{room}", "health", "/healthz", "metrics", "/metrics")

	draining := false
wait:
	for {
		select {
		case err := <-done:
			log.Error("http server failed", "err", err)
			_ = n.close(context.Background())
			return exitFailed
		case <-ctx.Done():
			break wait
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				log.Info("reloading the configuration", "config", source)
				reloadConfig(n, configPath, environ, log)
				continue
			case syscall.SIGINT:
				log.Info("interrupted; stopping", "grace", stopGrace)
			default:
				log.Info("terminating; draining", "drain_timeout", cfg.Node.DrainTimeout)
				draining = true
			}
			break wait
		}
	}
	if draining {
		// Open sessions get the drain timeout to end; a second signal
		// (not SIGHUP) means "now".
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Node.DrainTimeout)
		go func() {
			for {
				select {
				case sig := <-sigs:
					if sig == syscall.SIGHUP {
						log.Info("not reloading while draining")
						continue
					}
					log.Warn("second signal; stopping without waiting")
					cancel()
				case <-dctx.Done():
				}
				return
			}
		}()
		n.drain(dctx)
		cancel()
	}
	// Teardown outlives cancellation: it gets its own deadline.
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopGrace)
	defer cancel()
	shutErr := errors.Join(srv.Shutdown(tctx), n.close(tctx))
	if err := <-done; err != nil {
		shutErr = errors.Join(shutErr, err)
	}
	if shutErr != nil {
		log.Error("shutdown incomplete", "err", shutErr)
		return exitFailed
	}
	log.Info("stopped cleanly")
	return exitOK
}

// reachable turns a listener address such as [::]:8080 into one a person can
// paste into a browser on this machine.
func reachable(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	if tcp.IP == nil || tcp.IP.IsUnspecified() {
		return fmt.Sprintf("localhost:%d", tcp.Port)
	}
	return tcp.String()
}

// newLogger builds the node's slog logger from the log section, with its
// level in a LevelVar that a reload sets (log.level).
func newLogger(c configs.Log, w io.Writer) (*slog.Logger, *slog.LevelVar, error) {
	level := new(slog.LevelVar)
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, nil, fmt.Errorf("log.level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.Format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), level, nil
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), level, nil
	default:
		return nil, nil, fmt.Errorf("log.format: unknown format %q", c.Format)
	}
}
