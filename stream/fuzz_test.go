package stream

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// fakeNetConn is a net.Conn reading from a buffer and discarding writes,
// for driving conn's reader with fuzz input.
type fakeNetConn struct {
	net.Conn
	r io.Reader
}

func (f fakeNetConn) Read(b []byte) (int, error)       { return f.r.Read(b) }
func (f fakeNetConn) Write(b []byte) (int, error)      { return len(b), nil }
func (f fakeNetConn) SetReadDeadline(time.Time) error  { return nil }
func (f fakeNetConn) SetWriteDeadline(time.Time) error { return nil }
func (f fakeNetConn) SetDeadline(time.Time) error      { return nil }
func (f fakeNetConn) Close() error                     { return nil }

// FuzzServerMessages feeds arbitrary bytes to the reader of what a server
// sends after the handshake (chunks, protocol control, commands), as
// readLoop does: it must end with an error, never panic, never hold more
// than maxInStreams partial messages of at most maxInMessage bytes, and
// write its acknowledgements and pings without failing. Seeds: what
// nginx-rtmp sends for a publish (testdata), a message split in chunks
// with an extended timestamp, and lies about lengths.
func FuzzServerMessages(f *testing.F) {
	// A command split into chunks of 128 bytes with an extended timestamp.
	var split bytes.Buffer
	cw := chunkWriter{w: bufio.NewWriter(&split), size: defaultChunkSize}
	var body bytes.Buffer
	_ = encodeAMF(&body, "onStatus", 0, nil, map[string]any{"level": "status", "code": "x", "description": string(bytes.Repeat([]byte("d"), 300))})
	_ = cw.write(csidCommand, typeCommandAMF0, 1, 0x1000000, body.Bytes())
	_ = cw.w.Flush()
	f.Add(split.Bytes())
	f.Add([]byte{0x03, 0, 0, 0, 0xff, 0xff, 0xff, 20, 0, 0, 0, 0})   // 16 MiB message announced
	f.Add([]byte{0x43, 0, 0, 0, 0, 0, 1, 20})                        // format 1 first
	f.Add([]byte{0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0}) // chunk size 0
	f.Fuzz(func(t *testing.T, data []byte) {
		nc := fakeNetConn{r: bytes.NewReader(data)}
		c := &conn{nc: nc, br: bufio.NewReader(nc), bw: bufio.NewWriter(io.Discard), t: &target{key: "k"}}
		c.cw = chunkWriter{w: c.bw, size: outChunkSize}
		c.cr = newChunkReader(c.br)
		err := c.readLoop()
		if err == nil {
			t.Fatal("readLoop ended without an error")
		}
		if len(c.cr.streams) > maxInStreams {
			t.Fatalf("%d chunk streams", len(c.cr.streams))
		}
		for _, st := range c.cr.streams {
			if cap(st.buf) > maxInMessage {
				t.Fatalf("buffer of %d bytes", cap(st.buf))
			}
		}
		if err := c.writeControlDue(); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzCommand decodes arbitrary AMF0 command bodies: no panic, no
// allocation beyond the input's size, and a decoded command's information
// strings come back. Seeds: nginx-rtmp's answers (testdata) and a strict
// array that claims four billion elements.
func FuzzCommand(f *testing.F) {
	f.Add([]byte{amfString, 0, 1, 'x', amfNumber, 0, 0, 0, 0, 0, 0, 0, 0, amfStrictArray, 0xff, 0xff, 0xff, 0xff})
	f.Add(bytes.Repeat([]byte{amfObject, 0, 1, 'a'}, 40))
	f.Fuzz(func(t *testing.T, data []byte) {
		cmd, err := parseCommand(data)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error not ErrProtocol: %v", err)
			}
			return
		}
		_ = describe(&cmd)
		_ = cmd.infoString("code")
	})
}

// FuzzAccessUnit hands arbitrary bytes to the presenter path as one access
// unit, then again as a keyframe request would follow: no panic, and every
// video tag it makes is a well-formed VIDEODATA body.
func FuzzAccessUnit(f *testing.F) {
	slate, err := loadSlate()
	if err != nil {
		f.Fatal(err)
	}
	for _, au := range splitAUs(slateH264)[:2] {
		f.Add(au)
	}
	f.Add([]byte{0, 0, 1, 0x67, 0x42, 0, 0, 0, 0, 1, 0x68, 0xce, 0, 0, 1, 0x65, 0x88})
	f.Add([]byte{0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, au []byte) {
		e := &Egress{fan: newFanout(), zero: time.Now(), opts: Options{Now: time.Now},
			log: slog.New(slog.DiscardHandler)}
		q := newQueue(64)
		e.fan.attach(q, nil, nil)
		v := newVideoPipe(e, newVideoFeed(), slate)
		e.video = v
		v.frame(au, 1000)
		v.frame(au, 4000)
		for tg, _ := q.pop(); tg != nil; tg, _ = q.pop() {
			if len(tg.data) < 5 || tg.data[0]&0x0f != 7 {
				t.Fatalf("bad VIDEODATA % x", tg.data[:min(len(tg.data), 8)])
			}
			if tg.data[1] == flvRaw {
				checkAVCC(t, tg.data[5:])
			}
			tg.release()
		}
	})
}

// checkAVCC checks that b is a sequence of 4-byte-length NAL units.
func checkAVCC(t *testing.T, b []byte) {
	t.Helper()
	for len(b) > 0 {
		if len(b) < 4 {
			t.Fatalf("truncated AVCC length")
		}
		n := int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3])
		if n == 0 || n > len(b)-4 {
			t.Fatalf("AVCC NAL of %d bytes with %d left", n, len(b)-4)
		}
		b = b[4+n:]
	}
}
