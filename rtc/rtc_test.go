package rtc

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/rtc/rtctest"
)

// Frames of warm-up (ICE, DTLS, jitter buffers, VAD) before measuring, and
// frames measured.
const (
	warmup  = 25
	measure = 100
)

// TestThreeTones: three WHIP clients in one room send 440, 660 and 880 Hz;
// each hears the other two and not itself.
func TestThreeTones(t *testing.T) {
	e := newEnv(t, nil)
	tones := []float64{440, 660, 880}
	var clients []*client
	for _, f := range tones {
		clients = append(clients, e.join("tones", clientOpts{tone: f}))
	}
	start := make([]int, len(clients))
	for i, c := range clients {
		c.waitFrames(warmup)
		start[i] = c.received()
	}
	for i, c := range clients {
		c.waitFrames(start[i] + measure)
	}
	for i, c := range clients {
		w := c.window(start[i], start[i]+measure)
		own := toneDB(w, tones[i])
		for j, f := range tones {
			if j == i {
				continue
			}
			other := toneDB(w, f)
			t.Logf("client %.0f Hz hears %.0f Hz at %.1f dB, itself at %.1f dB", tones[i], f, other, own)
			require.Greater(t, other, -25.0, "client %.0f Hz: %.0f Hz too quiet", tones[i], f)
			require.GreaterOrEqual(t, other-own, 20.0, "client %.0f Hz hears itself", tones[i])
		}
	}
	rm, err := e.mgr.Get("tones")
	require.NoError(t, err)
	require.Equal(t, 3, rm.Len())
	for _, st := range rm.Participants() {
		require.Equal(t, room.KindWebRTC, st.Kind)
	}
}

// TestOpusSettings: the room encodes WebRTC participants' mixes with the
// server's Settings.Opus: at its complexity, with FEC (which the clients
// take) in VoIP, without it in CELT-only low delay; the clients hear each
// other either way, and settings libopus does not have are refused when
// the server or a link is made.
func TestOpusSettings(t *testing.T) {
	for _, c := range []struct {
		set OpusSettings
		fec bool
	}{
		{OpusSettings{Application: media.OpusVoIP, Complexity: 7}, true},
		{OpusSettings{Application: media.OpusRestrictedLowDelay, Complexity: 1}, false},
	} {
		t.Run(c.set.Application.String(), func(t *testing.T) {
			e := newEnv(t, nil, WithSettings(Settings{LoopbackOnly: true, Opus: c.set}))
			a := e.join("opus", clientOpts{tone: 440})
			e.join("opus", clientOpts{tone: 660})
			a.waitFrames(warmup)
			start := a.received()
			a.waitFrames(start + measure)
			w := a.window(start, start+measure)
			heard, own := toneDB(w, 660), toneDB(w, 440)
			t.Logf("440 Hz client hears 660 Hz at %.1f dB, itself at %.1f dB", heard, own)
			require.Greater(t, heard, -25.0)
			require.GreaterOrEqual(t, heard-own, 20.0)
			rm, err := e.mgr.Get("opus")
			require.NoError(t, err)
			require.Len(t, rm.Participants(), 2)
			for _, st := range rm.Participants() {
				require.Equal(t, room.CodecOpus, st.Format.Codec, "%s", st.ID)
				require.Equal(t, c.set.Application, st.Format.Opus.Application, "%s", st.ID)
				require.Equal(t, c.set.Complexity, st.Format.Opus.Complexity, "%s", st.ID)
				require.Equal(t, c.fec, st.Format.Opus.FEC, "%s", st.ID)
			}
		})
	}

	mgr := room.NewManager()
	t.Cleanup(func() { _ = mgr.Close(context.Background()) })
	for bad, want := range map[OpusSettings]string{
		{Complexity: -1}:                "opus complexity -1, want 0..10",
		{Complexity: 11}:                "opus complexity 11, want 0..10",
		{Application: 7, Complexity: 1}: "opus application 7",
	} {
		_, err := NewServer(mgr, WithSettings(Settings{LoopbackOnly: true, Opus: bad}))
		require.ErrorIs(t, err, media.ErrCodecConfig, "%+v", bad)
		require.ErrorContains(t, err, "rtc: ", "%+v", bad)
		require.ErrorContains(t, err, want, "%+v", bad)
		_, err = newLink(LinkOptions{ParticipantID: "l", Opus: bad})
		require.ErrorIs(t, err, media.ErrCodecConfig, "%+v", bad)
		require.ErrorContains(t, err, "rtc: link: ", "%+v", bad)
		require.ErrorContains(t, err, want, "%+v", bad)
	}
}

// TestJitterDelayComesDown: a client whose first 120 ms of audio arrive
// at once starts with that much in the server's jitter buffer; on a
// steady loopback the buffer sheds it down to its target. The client marks
// every packet, as pion's packetizer does (the last packet of each
// sample): the buffer took those for talkspurt starts, each Pop
// re-anchored and the backlog stayed for the whole call, 60 ms where 22 ms
// would do in the load suite's mixed rooms.
func TestJitterDelayComesDown(t *testing.T) {
	e := newEnv(t, nil)
	c := e.join("backlog", clientOpts{tone: 440, backlog: 6, markEvery: true})
	p := e.session(c)
	var st media.JitterStats
	require.Eventually(t, func() bool {
		st = p.jb.Stats()
		return st.Discarded > 0 && st.Delay <= st.TargetDelay+media.FrameDuration
	}, 15*time.Second, 50*time.Millisecond, "the backlog stays: %+v", &st)
	t.Logf("delay %v, target %v, discarded %d, lost %d", st.Delay, st.TargetDelay, st.Discarded, st.Lost)
}

// TestSilentPacketsNotDecoded: packets whose RFC 6464 audio level says
// silence are not decoded. A silent client costs no decodes; a talker
// alternating a second of silence and a second of 440 Hz is decoded only
// while it sounds, and a listener hears its tone at full level from the
// start of each burst (the decoder is reset, not left a second behind)
// and nothing in between. A client that does not send the extension is
// decoded throughout.
func TestSilentPacketsNotDecoded(t *testing.T) {
	e := newEnv(t, nil)
	var pcm []int16
	pcm = append(pcm, make([]int16, media.Rate48k)...)
	pcm = append(pcm, mediatest.Sine(440, rtctest.DefaultAmp, media.Rate48k, media.Rate48k)...)
	talker := e.join("quiet", clientOpts{pcm: pcm})
	listener := e.join("quiet", clientOpts{})
	me := &webrtc.MediaEngine{}
	require.NoError(t, me.RegisterDefaultCodecs())
	plain := e.join("quiet", clientOpts{api: clientAPIWith(t, me)})

	start := listener.received() + warmup
	listener.waitFrames(start + 200)
	got := listener.window(start, start+200)
	// Blocks of 100 ms: the tone's (about -12.6 dB), silent ones, and at
	// most one straddling each of the 8 onsets and ends.
	loud, edges := 0, 0
	for i := 0; i+toneBlock <= len(got); i += toneBlock {
		db := toneDB(got[i:i+toneBlock], 440)
		switch {
		case db > -15:
			loud++
		case db > -50:
			edges++
			t.Logf("block %d: 440 Hz at %.1f dB", i/toneBlock, db)
		}
	}
	require.InDelta(t, 20, loud, 2, "of 40 blocks of 100 ms, half hear the tone")
	require.LessOrEqual(t, edges, 8)

	ts, ls, ps := e.session(talker).jb.Stats(), e.session(listener).jb.Stats(), e.session(plain).jb.Stats()
	t.Logf("undecoded of delivered: talker %d/%d, listener %d/%d, no extension %d/%d",
		ts.Undecoded, ts.Delivered, ls.Undecoded, ls.Delivered, ps.Undecoded, ps.Delivered)
	require.InDelta(t, 0.5, float64(ts.Undecoded)/float64(ts.Delivered), 0.1)
	require.InDelta(t, 1, float64(ls.Undecoded)/float64(ls.Delivered), 0.02)
	require.Zero(t, ps.Undecoded)
}

// TestStalledClient: a client that stops reading its socket does not delay
// or distort the others. The same room is run twice, with the third
// client reading and with it stalled; the others' levels stay within 1 dB
// and their packets keep coming every 20 ms.
func TestStalledClient(t *testing.T) {
	type result struct {
		levels [4]float64 // A hears 660, 880; B hears 440, 880
		timing [2]arrivals
	}
	run := func(t *testing.T, stall bool) result {
		e := newEnv(t, nil)
		a := e.join("stall", clientOpts{tone: 440})
		b := e.join("stall", clientOpts{tone: 660})
		c := e.join("stall", clientOpts{tone: 880, stallable: true})
		for _, cl := range []*client{a, b, c} {
			cl.waitFrames(warmup)
		}
		if stall {
			c.sock.stall()
		}
		stalledAt := c.received()
		// Let the stall take hold (the kernel buffer fills), then measure.
		a0, b0 := a.received()+warmup, b.received()+warmup
		a.waitFrames(a0 + measure)
		b.waitFrames(b0 + measure)
		if stall {
			require.LessOrEqual(t, c.received(), stalledAt+5, "the stalled client kept reading")
		}
		wa, wb := a.window(a0, a0+measure), b.window(b0, b0+measure)
		var r result
		r.levels = [4]float64{toneDB(wa, 660), toneDB(wa, 880), toneDB(wb, 440), toneDB(wb, 880)}
		r.timing = [2]arrivals{spacing(wa), spacing(wb)}
		t.Logf("stalled=%t levels %.2f dB, arrivals A mean %v max %v, B mean %v max %v", stall, r.levels,
			r.timing[0].mean, r.timing[0].max, r.timing[1].mean, r.timing[1].max)
		return r
	}
	load := startCanary(t)
	var base, stalled result
	t.Run("reading", func(t *testing.T) { base = run(t, false) })
	t.Run("stalled", func(t *testing.T) { stalled = run(t, true) })
	for i := range base.levels {
		require.Greater(t, base.levels[i], -25.0)
		require.InDelta(t, base.levels[i], stalled.levels[i], 1.0, "level %d %s", i, load)
	}
	for _, a := range stalled.timing {
		require.InDelta(t, float64(media.FrameDuration), float64(a.mean), float64(time.Millisecond),
			"mean inter-arrival %v %s", a.mean, load)
		require.Less(t, a.max, 5*media.FrameDuration, "largest gap %v %s", a.max, load)
	}
}

// TestMute: muting a participant through the room removes its tone from
// the others' mix within 100 ms, measured on the received audio: the first
// frame after Mute whose 440 Hz level is 20 dB below the level before, and
// stays there.
func TestMute(t *testing.T) {
	load := startCanary(t)
	e := newEnv(t, nil)
	a := e.join("mute", clientOpts{tone: 440})
	b := e.join("mute", clientOpts{tone: 660})
	c := e.join("mute", clientOpts{tone: 880})
	for _, cl := range []*client{a, b, c} {
		cl.waitFrames(warmup + 10)
	}
	rm, err := e.mgr.Get("mute")
	require.NoError(t, err)
	before := map[*client]int{b: b.received(), c: c.received()}
	muted := time.Now()
	require.NoError(t, rm.Mute(a.pid, true))
	for _, cl := range []*client{b, c} {
		cl.waitFrames(before[cl] + 25)
		frames := cl.window(0, before[cl]+25)
		var ref float64
		for i := before[cl] - 10; i < before[cl]; i++ {
			ref += frameToneDB(&frames[i], 440) / 10
		}
		first := -1
		for i := before[cl] - 10; i < len(frames); i++ {
			if frameToneDB(&frames[i], 440) > ref-20 {
				first = -1
				continue
			}
			if first < 0 {
				first = i
			}
		}
		require.GreaterOrEqual(t, first, 0, "440 Hz never dropped by 20 dB")
		require.Less(t, len(frames)-first, 25, "440 Hz still there after mute")
		latency := frames[first].Arrival.Sub(muted)
		t.Logf("client %.0f Hz: 440 Hz at %.1f dB before, %.1f dB after; gone %v after Mute",
			cl.tone, ref, frameToneDB(&frames[first], 440), latency)
		require.Less(t, latency, 100*time.Millisecond, load)
		require.Greater(t, toneDB(frames[first:], 880+660-cl.tone), -25.0, "the other tone went too")
	}
}

// TestWHEPListener: a WHEP client hears the full mix of two WHIP clients,
// and is a room participant that contributes nothing, counted as a
// listener by SessionCounts.
func TestWHEPListener(t *testing.T) {
	e := newEnv(t, nil)
	e.join("listen", clientOpts{tone: 440})
	e.join("listen", clientOpts{tone: 660})
	l := e.join("listen", clientOpts{listen: true})
	l.waitFrames(warmup)
	from := l.received()
	l.waitFrames(from + measure)
	w := l.window(from, from+measure)
	l440, l660, l1000 := toneDB(w, 440), toneDB(w, 660), toneDB(w, 1000)
	t.Logf("listener hears 440 Hz at %.1f dB, 660 Hz at %.1f dB, 1000 Hz at %.1f dB", l440, l660, l1000)
	require.Greater(t, l440, -25.0)
	require.Greater(t, l660, -25.0)
	require.InDelta(t, l440, l660, 3.0)
	require.GreaterOrEqual(t, min(l440, l660)-l1000, 20.0)
	rm, err := e.mgr.Get("listen")
	require.NoError(t, err)
	require.Equal(t, 3, rm.Len())
	pub, lis := e.srv.SessionCounts()
	require.Equal(t, []int{2, 1}, []int{pub, lis}, "two publishers, one listener (the metrics' kinds)")
	for _, st := range rm.Participants() {
		if st.ID == l.pid {
			require.False(t, st.Speaking)
			require.Equal(t, uint8(127), st.Level, "a listener contributes silence")
		}
	}
}

// TestDelete: DELETE on the session URL takes the participant out of the
// room at once, closes its PeerConnection and removes its voice from the
// others' mix; a second DELETE is 404.
func TestDelete(t *testing.T) {
	e := newEnv(t, nil)
	a := e.join("del", clientOpts{tone: 440})
	b := e.join("del", clientOpts{tone: 660})
	a.waitFrames(5)
	b.waitFrames(warmup)
	rm, err := e.mgr.Get("del")
	require.NoError(t, err)
	require.Equal(t, 2, rm.Len())
	require.Equal(t, 2, e.srv.Sessions())

	resp, body := e.do(http.MethodDelete, a.location, "", "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Equal(t, 1, rm.Len())
	require.Equal(t, 1, e.srv.Sessions())
	select {
	case <-a.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the deleted client's PeerConnection stayed up")
	}
	from := b.received() + 10
	b.waitFrames(from + 25)
	require.Less(t, toneDB(b.window(from, from+25), 440), -45.0, "b still hears a")

	resp, body = e.do(http.MethodDelete, a.location, "", "", nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Equal(t, ProblemTypeBase+"session-not-found", problem(t, resp, body).Type)
}
