package main

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/rtc/rtctest"
)

// sipp runs scenario (a file in testdata) against g as one call to
// service, with extra sipp arguments; it returns the command, not yet
// started.
func sipp(ctx context.Context, t *testing.T, g *gateway, scenario, service string, extra ...string) *exec.Cmd {
	t.Helper()
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Fatal("sipp not installed: run scripts/bootstrap")
	}
	port := regexp.MustCompile(`sip_port=(\d+)`).FindStringSubmatch(g.ready)
	require.NotNil(t, port, "ready line without sip_port: %s", g.ready)
	abs, err := filepath.Abs(filepath.Join("testdata", scenario))
	require.NoError(t, err)
	args := append([]string{"127.0.0.1:" + port[1], "-sf", abs, "-s", service, "-m", "1",
		"-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", "0", "-mp", "0",
		"-timeout", "30s", "-timeout_error", "-nostdin", "-trace_err", "-max_recv_loops", "1000"}, extra...)
	cmd := exec.CommandContext(ctx, "sipp", args...)
	cmd.Dir = t.TempDir()
	return cmd
}

// rtpSink is the RTP port of a sipp caller that only signals: it decodes
// the PCMU the gateway sends, in arrival order.
type rtpSink struct {
	conn *net.UDPConn
	wg   sync.WaitGroup

	mu  sync.Mutex
	pcm []int16
}

func newRTPSink(t *testing.T) *rtpSink {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	s := &rtpSink{conn: conn}
	s.wg.Add(1)
	go s.receive()
	t.Cleanup(func() {
		_ = conn.Close()
		s.wg.Wait()
	})
	return s
}

func (s *rtpSink) port() int { return s.conn.LocalAddr().(*net.UDPAddr).Port }

func (s *rtpSink) receive() {
	defer s.wg.Done()
	buf := make([]byte, 1500)
	pcm := make([]int16, 1500)
	var pkt rtp.Packet
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			return
		}
		if pkt.Unmarshal(buf[:n]) != nil || pkt.PayloadType != 0 {
			continue
		}
		k := media.DecodeULaw(pcm, pkt.Payload)
		s.mu.Lock()
		s.pcm = append(s.pcm, pcm[:k]...)
		s.mu.Unlock()
	}
}

// last returns up to the last n samples received.
func (s *rtpSink) last(n int) []int16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int16(nil), s.pcm[max(len(s.pcm)-n, 0):]...)
}

// TestDialInFixedRoom: a dispatch rule leads calls to 2000 straight into
// room board (dialin.numbers, from MEDIAGATE_DIALIN_NUMBERS): sipp gets
// 180 then 200 without keying anything, and the caller hears the room,
// where a pion client sends 660 Hz, over its RTP.
func TestDialInFixedRoom(t *testing.T) {
	g := startGateway(t, nil,
		`MEDIAGATE_ROOMS={"board": {"open": true}}`,
		`MEDIAGATE_DIALIN_NUMBERS={"2000": {"room": "board"}}`)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	_, err := rtctest.Join(ctx, t, g.base, "board", "", rtctest.Options{Tone: toneHz})
	require.NoError(t, err)

	phone := newRTPSink(t)
	cmd := sipp(ctx, t, g, "dialin_fixed.xml", "2000", "-key", "rtp_port", strconv.Itoa(phone.port()))
	out := make(chan []byte, 1)
	var runErr error
	go func() {
		b, err := cmd.CombinedOutput()
		runErr = err
		out <- b
	}()

	// The joining prompt comes first (about 2 s), then the room alone.
	const window = media.Rate8k / 2
	var heard []int16
	require.Eventually(t, func() bool {
		heard = phone.last(window)
		return len(heard) == window && mediatest.ToneDB(heard, toneHz, media.Rate8k) > -20 &&
			mediatest.ToneDB(heard, toneHz, media.Rate8k)-mediatest.ToneDB(heard, 1000, media.Rate8k) >= 20
	}, 8*time.Second, 50*time.Millisecond, "the caller hears the room's %d Hz", toneHz)
	t.Logf("caller hears %d Hz at %.1f dB", toneHz, mediatest.ToneDB(heard, toneHz, media.Rate8k))

	select {
	case b := <-out:
		require.NoError(t, runErr, "sipp: %s", lastLines(string(b), 30))
	case <-ctx.Done():
		t.Fatal("sipp did not finish")
	}
}

// TestDialInRefused: with dispatch rules, a number no rule takes is
// refused with 404 Not Found, and a fixed room that is full with 486 Busy
// Here, both before anything rings or is answered.
func TestDialInRefused(t *testing.T) {
	g := startGateway(t, nil,
		`MEDIAGATE_ROOMS={"board": {"open": true, "max_participants": 1}}`,
		`MEDIAGATE_DIALIN_NUMBERS={"2000": {"room": "board", "language": "de"}}`)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	_, err := rtctest.Join(ctx, t, g.base, "board", "", rtctest.Options{Tone: toneHz})
	require.NoError(t, err)

	for _, tc := range []struct{ name, scenario, number string }{
		{"unknown number", "dialin_404.xml", "3000"},
		{"full room", "dialin_486.xml", "2000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := sipp(ctx, t, g, tc.scenario, tc.number).CombinedOutput()
			require.NoError(t, err, "sipp: %s", lastLines(string(out), 30))
		})
	}
}
