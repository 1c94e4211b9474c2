package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/recorder"
)

// receiptKey returns the key that signs deletion receipts (and, derived,
// download links): recording.receipt_key when set, else the one kept in
// storage.dir/receipt.key. With create, a missing key file is generated
// once (0600, written and fsynced before use), so receipts stay
// verifiable across restarts; the offline verifier passes false and never
// makes a key. log (nil: none) hears of a key file others may read.
func receiptKey(cfg configs.Config, log *slog.Logger, create bool) ([]byte, error) {
	if cfg.Recording.ReceiptKey != "" {
		return []byte(cfg.Recording.ReceiptKey), nil
	}
	path := filepath.Join(cfg.Storage.Dir, configs.ReceiptKeyFile)
	key, err := readKeyFile(path, log)
	if !errors.Is(err, fs.ErrNotExist) || !create {
		return key, err
	}
	if err := os.MkdirAll(cfg.Storage.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("receipt key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // another process made it a moment ago
		return readKeyFile(path, log)
	}
	if err != nil {
		return nil, fmt.Errorf("receipt key: %w", err)
	}
	// 2 × 26 base32 characters: 260 random bits, printable, so the file's
	// content can also serve as recording.receipt_key.
	key = []byte(rand.Text() + rand.Text())
	_, err = f.Write(append(key, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("receipt key: %w", err)
	}
	if d, err := os.Open(cfg.Storage.Dir); err == nil { // the new name survives a power cut
		_ = d.Sync()
		_ = d.Close()
	}
	if log != nil {
		log.Info("generated the receipt key; back it up with the recordings", "file", path)
	}
	return key, nil
}

// readKeyFile reads a receipt key file.
func readKeyFile(path string, log *slog.Logger) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("receipt key: %w", err)
	}
	key := bytes.TrimSpace(b)
	if len(key) < recorder.MinReceiptKeyLen {
		return nil, fmt.Errorf("receipt key: %s holds %d bytes, want at least %d", path, len(key), recorder.MinReceiptKeyLen)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 && log != nil {
		log.Warn("receipt key file is readable by others; chmod 600 it", "file", path, "mode", st.Mode().Perm().String())
	}
	return key, nil
}

// recorderOptions turns the recording section into the recorder's options.
func recorderOptions(cfg configs.Config, key []byte, log *slog.Logger) recorder.Options {
	return recorder.Options{
		Dir:            cfg.RecordingDir(),
		Node:           cfg.NodeID(),
		Policies:       retentionPolicies(cfg.Recording),
		ReceiptKey:     key,
		EncryptionKey:  cfg.Recording.EncryptionKeyBytes(),
		Format:         recordingFormat(cfg.Recording.Format),
		ExpiryWarnings: cfg.Recording.ExpiryWarnings,
		Logger:         log,
		OnEvent:        func(ev recorder.Event) { logRecordingEvent(log, ev) },
	}
}

// retentionPolicies turns recording.policies into the recorder's, in name
// order.
func retentionPolicies(r configs.Recording) []recorder.Policy {
	var policies []recorder.Policy
	for _, name := range slices.Sorted(maps.Keys(r.Policies)) {
		p := r.Policies[name]
		policies = append(policies, recorder.Policy{Name: name, Duration: p.Duration, Min: p.Min, Max: p.Max})
	}
	return policies
}

// recordingFormat maps recording.format to the recorder's format; Validate
// has refused any other value.
func recordingFormat(f string) string {
	if f == configs.RecordingFormatM4A {
		return recorder.FormatM4A
	}
	return recorder.FormatOpus
}

// logRecordingEvent writes a recorder event as an "event" log line named
// recording.<type> (recording.expiring at the expiry lead times,
// recording.interrupted, ...), for operators who follow the log (the
// webhooks get the events from the recorder directly, webhooks.go). It
// carries IDs and times only.
func logRecordingEvent(log *slog.Logger, ev recorder.Event) {
	attrs := []slog.Attr{
		slog.String("event", "recording."+ev.Type.String()),
		slog.String("recording", string(ev.ID)),
		slog.String("tenant", string(ev.Tenant)),
	}
	level := slog.LevelInfo
	if ev.Type == recorder.EventExpiring {
		attrs = append(attrs, slog.Time("expires_at", ev.ExpiresAt), slog.Duration("lead", ev.Lead))
	}
	if ev.Err != nil {
		level = slog.LevelWarn
		attrs = append(attrs, slog.String("err", ev.Err.Error()))
	}
	log.LogAttrs(context.Background(), level, "event", attrs...)
}

// receiptsFile is the receipts log of the recordings store.
func receiptsFile(cfg configs.Config) string {
	return filepath.Join(cfg.RecordingDir(), recorder.ReceiptsFileName)
}
