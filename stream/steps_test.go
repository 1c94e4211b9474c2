package stream

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/yutopp/go-rtmp/handshake"
)

// fakeServer is an RTMP server in the test that answers the publishing
// commands up to a point, then falls silent or refuses: the misbehaving
// platforms nginx cannot play.
type fakeServer struct {
	l  net.Listener
	wg sync.WaitGroup
	// silentAt is the command left unanswered ("connect",
	// "createStream", "publish"); "" answers everything.
	silentAt string
	// publishStatus, when set, is the onStatus sent for publish instead
	// of NetStream.Publish.Start: level error, this code and description.
	publishCode, publishDesc string
}

func newFakeServer(t *testing.T, silentAt, code, desc string) *fakeServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &fakeServer{l: l, silentAt: silentAt, publishCode: code, publishDesc: desc}
	var mu sync.Mutex
	var conns []net.Conn
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		s.wg.Wait()
	})
	return s
}

// serve answers one connection until it closes.
func (s *fakeServer) serve(c net.Conn) {
	defer c.Close()
	if handshake.HandshakeWithClient(c, c, &handshake.Config{}) != nil {
		return
	}
	cr := newChunkReader(bufio.NewReader(c))
	cw := chunkWriter{w: bufio.NewWriter(c), size: defaultChunkSize}
	reply := func(streamID uint32, values ...any) {
		var b bytes.Buffer
		_ = encodeAMF(&b, values...)
		_ = cw.write(csidCommand, typeCommandAMF0, streamID, 0, b.Bytes())
		_ = cw.w.Flush()
	}
	type info struct {
		Level       string `amf0:"level"`
		Code        string `amf0:"code"`
		Description string `amf0:"description"`
	}
	for {
		m, err := cr.read()
		if err != nil {
			return
		}
		if m.typ == typeSetChunkSize && len(m.body) == 4 {
			_ = cr.setChunkSize(uint32(m.body[0])<<24 | uint32(m.body[1])<<16 | uint32(m.body[2])<<8 | uint32(m.body[3]))
		}
		if m.typ != typeCommandAMF0 {
			continue
		}
		cmd, err := parseCommand(m.body)
		if err != nil || cmd.name == s.silentAt {
			continue
		}
		switch cmd.name {
		case "connect":
			reply(0, "_result", cmd.txn, nil, info{"status", "NetConnection.Connect.Success", "ok"})
		case "createStream":
			reply(0, "_result", cmd.txn, nil, 1)
		case "publish":
			if s.publishCode != "" {
				reply(m.streamID, "onStatus", 0, nil, info{"error", s.publishCode, s.publishDesc})
			} else {
				reply(m.streamID, "onStatus", 0, nil, info{"status", "NetStream.Publish.Start", "go"})
			}
		}
	}
}

// TestSteps: a server that stops answering at any step is timed out at
// that step and retried; one that refuses the key by status is rejected;
// "already publishing" (the server still holds our last connection) is
// retried; a server that answers everything gets a stream.
func TestSteps(t *testing.T) {
	t.Parallel()
	const key = "k-9f8e7d"
	for _, tc := range []struct {
		name, silentAt, code, desc string
		state                      State
		want                       error
		step                       string
	}{
		{"connect", "connect", "", "", StateBackoff, ErrTimeout, "connect:"},
		{"createStream", "createStream", "", "", StateBackoff, ErrTimeout, "createStream:"},
		{"publish", "publish", "", "", StateBackoff, ErrTimeout, "publish:"},
		{"badname", "", "NetStream.Publish.BadName", "invalid stream key " + key, StateRejected, ErrRejected, "BadName"},
		{"already", "", "NetStream.Publish.BadName", "Already publishing", StateBackoff, ErrDisconnected, "Already"},
		{"ok", "", "", "", StateLive, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newFakeServer(t, tc.silentAt, tc.code, tc.desc)
			ev := newEvents()
			opts := testOptions(ev)
			opts.Timeout = 300 * time.Millisecond
			eg, err := New(newMixFeed(), nil, opts)
			require.NoError(t, err)
			defer eg.Close()
			id, err := eg.Add(context.Background(), Destination{URL: fmt.Sprintf("rtmp://%s/live/%s", srv.l.Addr(), key)})
			require.NoError(t, err)
			start := time.Now()
			e := ev.await(t, id, tc.state, 3*time.Second)
			if tc.want == nil {
				return
			}
			require.ErrorIs(t, e.Err, tc.want)
			require.Contains(t, e.Err.Error(), tc.step)
			require.NotContains(t, e.Err.Error(), key)
			if tc.want == ErrTimeout {
				require.Less(t, time.Since(start), 5*opts.Timeout, "timed out late")
			}
			require.False(t, strings.Contains(eg.Status().Destinations[0].LastError, key))
		})
	}
}
