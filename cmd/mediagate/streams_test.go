package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/api"
	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/stream"
)

// TestStreamOptions: the stream section's defaults are package stream's,
// and stream.ca_file is read (a file without certificates is an error
// naming the key).
func TestStreamOptions(t *testing.T) {
	o, err := streamOptions(configs.Default().Stream)
	require.NoError(t, err)
	require.Equal(t, stream.Options{
		AudioBitrate: stream.DefaultAudioBitrate, AudioChannels: stream.DefaultAudioChannels,
		Timeout: stream.DefaultTimeout, BackoffMin: stream.DefaultBackoffMin, BackoffMax: stream.DefaultBackoffMax,
	}, o)

	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	good := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(good, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	o, err = streamOptions(configs.Stream{CAFile: good})
	require.NoError(t, err)
	require.Len(t, o.ExtraRootCAs, 1)
	require.Equal(t, "test ca", o.ExtraRootCAs[0].Subject.CommonName)

	bad := filepath.Join(dir, "empty.pem")
	require.NoError(t, os.WriteFile(bad, []byte("not pem\n"), 0o600))
	_, err = streamOptions(configs.Stream{CAFile: bad})
	require.ErrorContains(t, err, "stream.ca_file: ")
	require.ErrorContains(t, err, "no PEM certificate")
	_, err = streamOptions(configs.Stream{CAFile: filepath.Join(dir, "missing.pem")})
	require.ErrorContains(t, err, "stream.ca_file: ")
}

// TestRoomStreams: an egress of an open room dials its destination, is
// listed, refuses a second start; a closed room's egress ends with the
// room; rooms that are not open do not stream; close stops what runs.
// The stream key is in no log line.
func TestRoomStreams(t *testing.T) {
	const key = "sk-wiring-0123456789"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()

	var logs bytes.Buffer
	mgr := room.NewManager()
	t.Cleanup(func() { require.NoError(t, mgr.Close(context.Background())) })
	for _, id := range []room.ID{"board", "annex"} {
		_, err := mgr.Create(id, room.WithEmptyTimeout(-1))
		require.NoError(t, err)
	}
	g := newRoomStreams(slog.New(slog.NewTextHandler(&logs, nil)), stream.Options{AllowPrivate: true, Timeout: time.Minute}, nil, 0)
	g.rooms = mgr
	closed := false
	t.Cleanup(func() {
		if !closed {
			require.NoError(t, g.close(context.Background()))
		}
	})

	url := "rtmp://" + ln.Addr().String() + "/live"
	ctx := context.Background()
	st, err := g.StartStream(ctx, "board", []stream.Destination{{ID: "local", Name: "nginx", URL: url, Key: key}})
	require.NoError(t, err)
	require.Equal(t, room.ID("board"), st.Room)
	require.Len(t, st.Destinations, 1)
	require.Equal(t, url, st.Destinations[0].URL)
	select {
	case c := <-accepted:
		t.Cleanup(func() { _ = c.Close() })
	case <-time.After(10 * time.Second):
		t.Fatal("the egress never dialed its destination")
	}
	_, err = g.StartStream(ctx, "board", []stream.Destination{{URL: url, Key: key}})
	require.ErrorIs(t, err, api.ErrAlreadyStreaming)
	_, err = g.StartStream(ctx, "nowhere", []stream.Destination{{URL: url, Key: key}})
	require.ErrorIs(t, err, room.ErrNotFound)
	_, err = g.StartStream(ctx, "annex", []stream.Destination{{URL: "srt://example.com/live", Key: key}})
	require.ErrorIs(t, err, stream.ErrUnsupportedScheme)
	_, err = g.StreamStatus("annex")
	require.ErrorIs(t, err, api.ErrNotStreaming, "a failed start leaves nothing running")

	ds, err := g.AddDestination(ctx, "board", stream.Destination{ID: "second", URL: url, Key: key + "-2"})
	require.NoError(t, err)
	require.Equal(t, stream.DestinationID("second"), ds.ID)
	require.NoError(t, g.RemoveDestination("board", "second"))
	require.ErrorIs(t, g.RemoveDestination("board", "second"), stream.ErrNotFound)
	all := g.Streams()
	require.Len(t, all, 1)
	require.Len(t, all[0].Destinations, 1)

	// The room closes: its egress ends with its mix.
	g.mu.Lock()
	e := g.active["board"]
	g.mu.Unlock()
	require.NoError(t, mgr.CloseRoom(ctx, "board"))
	select {
	case <-e.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the egress outlived its room")
	}
	_, err = g.StreamStatus("board")
	require.ErrorIs(t, err, api.ErrNotStreaming)
	require.ErrorIs(t, g.StopStream("board"), api.ErrNotStreaming)

	// An API stop, then close with one running.
	_, err = g.StartStream(ctx, "annex", []stream.Destination{{URL: url, Key: key}})
	require.NoError(t, err)
	require.NoError(t, g.StopStream("annex"))
	_, err = g.StreamStatus("annex")
	require.ErrorIs(t, err, api.ErrNotStreaming)
	_, err = g.StartStream(ctx, "annex", []stream.Destination{{URL: url, Key: key}})
	require.NoError(t, err, "a stopped room streams again")
	require.NoError(t, g.close(ctx))
	closed = true
	_, err = g.StartStream(ctx, "annex", []stream.Destination{{URL: url, Key: key}})
	require.ErrorIs(t, err, stream.ErrClosed)

	require.Contains(t, logs.String(), "room stream started")
	require.Contains(t, logs.String(), "room stream ended")
	require.Contains(t, logs.String(), "destination=local")
	require.NotContains(t, logs.String(), key)
}

// acceptAll accepts connections on a loopback listener into a channel
// until the test ends.
func acceptAll(t *testing.T) (addr string, conns <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ch := make(chan net.Conn, 8)
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		for {
			select {
			case c := <-ch:
				_ = c.Close()
			default:
				return
			}
		}
	})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ch <- c
		}
	}()
	return ln.Addr().String(), ch
}

// awaitConn returns the next accepted connection.
func awaitConn(t *testing.T, conns <-chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c := <-conns:
		t.Cleanup(func() { _ = c.Close() })
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no connection from the egress within 10 s")
		return nil
	}
}

// awaitClosed waits until the peer closed c (the egress unpublished).
func awaitClosed(t *testing.T, c net.Conn) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the egress kept its connection open")
			}
			return
		}
	}
}

// TestAutoStream: a room with auto_stream destinations streams while
// somebody is in it: not while empty, from the first join, stopping when
// the last one left (grace 0 here), and again on the next join.
func TestAutoStream(t *testing.T) {
	const key = "sk-auto-0123456789"
	addr, conns := acceptAll(t)
	var logs bytes.Buffer
	auto := autoStreamed(map[string]configs.Room{"board": {AutoStream: []configs.StreamDestination{
		{Name: "local", URL: "rtmp://" + addr + "/live", Key: key},
	}}, "lobby": {}})
	require.Len(t, auto, 1)
	g := newRoomStreams(slog.New(slog.NewTextHandler(&logs, nil)), stream.Options{AllowPrivate: true}, auto, 0)
	mgr := room.NewManager(room.WithOnOpen(g.opened))
	g.rooms = mgr
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, g.close(ctx))
		require.NoError(t, mgr.Close(ctx))
	})
	rm, err := mgr.Create("board", room.WithEmptyTimeout(-1))
	require.NoError(t, err)
	_, err = g.StreamStatus("board")
	require.ErrorIs(t, err, api.ErrNotStreaming, "an empty room does not stream")

	for round := range 2 {
		require.NoError(t, rm.Join(&member{"a", "Ada"}))
		c := awaitConn(t, conns)
		e, err := g.egress("board")
		require.NoError(t, err, "round %d", round)
		st := e.Status()
		require.Len(t, st.Destinations, 1)
		require.Equal(t, "local", st.Destinations[0].Name)
		require.NoError(t, rm.Leave("a"))
		awaitClosed(t, c)
		select {
		case <-e.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the auto-stream outlived the last participant")
		}
		_, err = g.StreamStatus("board")
		require.ErrorIs(t, err, api.ErrNotStreaming)
	}
	require.NoError(t, g.close(context.Background()))
	require.NotContains(t, logs.String(), key)
}
