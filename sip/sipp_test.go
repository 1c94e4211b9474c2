package sip

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
)

// readFrames reads the call's audio every 20 ms until it ends and returns
// it, like the mixer would.
func readFrames(c *Call) []int16 {
	var out []int16
	pcm := make([]int16, media.SamplesPerFrame(c.Codec().SampleRate))
	everyFrame(c.Done(), func() bool {
		n, _ := c.ReadFrame(pcm)
		out = append(out, pcm[:n]...)
		return true
	})
	return out
}

// TestSippBasicCall: a caller sends 7 s of A-law speech from sipp's pcap
// and hangs up. The scenario asserts 100, 180 and a 200 whose answer picks
// PCMA and telephone-event; the test asserts that what ReadFrame decoded is
// the pcap's speech (envelope and waveform correlation) and that the call
// ended by the caller's BYE with its port released.
//
// It runs with the shared port too: sipp sends its pcap from the port its
// SDP names.
func TestSippBasicCall(t *testing.T) {
	for _, mode := range rtpModes {
		t.Run(mode.name, func(t *testing.T) { testSippBasicCall(t, mode.opts) })
	}
}

func testSippBasicCall(t *testing.T, opts []Option) {
	rec := newRecorder(t)
	var got []int16
	rec.answer = func(ctx context.Context, in *IncomingCall) (*Call, error) {
		require.NoError(t, in.Ring())
		return in.Answer()
	}
	rec.after = func(ctx context.Context, c *Call) {
		// The mixer's other half: send a 1 kHz tone back as PCMA.
		go sendTone(c, 1000)
		got = readFrames(c)
	}
	u := startUA(t, rec, opts...)
	pcap := sippPcap(t, "g711a.pcap")
	require.NoError(t, runSipp(t, u, sippRun{scenario: "basic_call.xml", keys: map[string]string{"PCAP": pcap}}))
	rec.wait(t)
	c, err := rec.first()
	require.NoError(t, err)
	require.ErrorIs(t, c.Err(), ErrRemoteHangup)
	require.Equal(t, CodecPCMA, c.Codec().Name)
	require.Equal(t, "1000", c.Info().Dialed.Digits())
	require.Equal(t, "+4930123456", c.Info().Caller.Digits())
	require.Equal(t, "*********56", c.Info().Caller.String())

	want := pcapALaw(t, pcap)
	st := c.Stats()
	require.GreaterOrEqual(t, st.Received, uint64(230), "pcap has 236 packets")
	require.Zero(t, st.Malformed)
	require.Greater(t, st.Sent, uint64(300), "the tone went out")

	// Align got with the pcap's audio on one piece of speech at 1 s.
	lag0, c0 := mediatest.BestLag(want[media.Rate8k:media.Rate8k+2000], got[media.Rate8k:], 4000)
	require.Greater(t, c0, 0.9, "the pcap's speech is in the decoded audio")
	// Speech where the pcap has speech: in each half second the 20 ms
	// level envelopes match. Each piece finds its own alignment, since the
	// jitter buffer drops a frame now and then while its delay comes down
	// to its target (about once a second at the start of the call); a
	// piece with a drop in it matches less well, and with pieces of a
	// second three of five had one in a loaded run.
	envW, envG := envelope(want), envelope(got[max(lag0-5*160, 0):])
	corrs := pieceCorrelations(envW, envG, 0, 25, 10)
	t.Logf("envelope correlations %.2f", corrs)
	require.Greater(t, median(corrs), 0.9, "envelope correlations %.2f", corrs)
	// And the waveform itself, sample for sample, in 250 ms pieces.
	corrs = pieceCorrelations(want, got, lag0, 2000, 800)
	require.Greater(t, median(corrs), 0.9, "waveform correlations %.2f", corrs)
}

// pieceCorrelations cuts want into pieces of n samples, skipping the first
// and last piece, and returns each one's best correlation with got within
// ±slack of lag.
func pieceCorrelations(want, got []int16, lag, n, slack int) []float64 {
	var out []float64
	for from := n; from+2*n <= len(want); from += n {
		start := max(from+lag-slack, 0)
		if start >= len(got) {
			break
		}
		_, c := mediatest.BestLag(want[from:from+n], got[start:], 2*slack)
		out = append(out, c)
	}
	return out
}

func median(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	s := slices.Clone(x)
	slices.Sort(s)
	return s[len(s)/2]
}

// sendTone sends a tone at freq Hz in the call's codec, one frame per
// 20 ms, until the call ends.
func sendTone(c *Call, freq float64) {
	enc, err := newTestEncoder(c.Codec())
	if err != nil {
		return
	}
	defer enc.Close()
	tone := mediatest.Tone{Freq: freq, Amp: 0.3, Rate: c.Codec().SampleRate}
	pcm := make([]int16, media.SamplesPerFrame(tone.Rate))
	buf := make([]byte, 1500)
	t := time.NewTicker(media.FrameDuration)
	defer t.Stop()
	for frame := uint64(0); ; frame++ {
		select {
		case <-c.Done():
			return
		case <-t.C:
		}
		tone.Fill(pcm)
		if n, err := enc.Encode(pcm, buf); err == nil {
			c.WriteAudio(buf[:n], frame)
		}
	}
}

// newTestEncoder returns media's encoder for a codec.
func newTestEncoder(c Codec) (media.Encoder, error) {
	switch c.Name {
	case CodecPCMU:
		return media.NewPCMUEncoder(), nil
	case CodecPCMA:
		return media.NewPCMAEncoder(), nil
	case CodecG722:
		return media.NewG722Encoder(), nil
	}
	return media.NewOpusEncoder()
}

// pcapALaw decodes the A-law RTP payloads of a pcap (Ethernet, IPv4, UDP).
func pcapALaw(t *testing.T, path string) []int16 {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []int16
	for off := 24; off+16 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[off+8:]))
		pkt := b[off+16 : off+16+n]
		off += 16 + n
		payload := pkt[14+20+8+12:]
		pcm := make([]int16, len(payload))
		media.DecodeALaw(pcm, payload)
		out = append(out, pcm...)
	}
	return out
}

// envelope returns the level of each 20 ms frame at 8 kHz in centibels
// around its mean, so that correlating two envelopes compares where the
// speech is loud and where it pauses.
func envelope(pcm []int16) []int16 {
	var db []float64
	var mean float64
	for i := 0; i+160 <= len(pcm); i += 160 {
		l := max(mediatest.RMSDBFS(pcm[i:i+160]), -90)
		db = append(db, l)
		mean += l
	}
	mean /= float64(max(len(db), 1))
	env := make([]int16, len(db))
	for i, l := range db {
		env[i] = int16(math.Round((l - mean) * 10))
	}
	return env
}

// TestSippScenarios runs the sipp scenarios in testdata against a UA whose
// handler plays the part each needs; sipp asserts the exact responses, the
// test what the handler and the Call saw.
func TestSippScenarios(t *testing.T) {
	tests := []struct {
		scenario string
		keys     func(t *testing.T) map[string]string
		answer   func(ctx context.Context, in *IncomingCall) (*Call, error)
		after    func(ctx context.Context, c *Call)
		check    func(t *testing.T, r *callRecorder)
	}{
		{
			scenario: "bye_from_gateway.xml",
			answer:   func(_ context.Context, in *IncomingCall) (*Call, error) { return in.Answer() },
			after: func(ctx context.Context, c *Call) {
				select {
				case <-time.After(time.Second):
				case <-c.Done():
					return
				}
				if err := c.Hangup(ctx); err != nil {
					panic(err)
				}
			},
			check: func(t *testing.T, r *callRecorder) {
				c, err := r.first()
				require.NoError(t, err)
				waitDone(t, c)
				require.ErrorIs(t, c.Err(), ErrLocalHangup)
				require.Equal(t, CodecPCMU, c.Codec().Name)
			},
		},
		{
			scenario: "cancel.xml",
			answer: func(ctx context.Context, in *IncomingCall) (*Call, error) {
				if err := in.Ring(); err != nil {
					return nil, err
				}
				<-ctx.Done() // the caller cancels
				return in.Answer()
			},
			check: func(t *testing.T, r *callRecorder) {
				c, err := r.first()
				require.Nil(t, c)
				require.ErrorIs(t, err, ErrCanceled)
			},
		},
		{
			scenario: "offerless.xml",
			answer:   func(_ context.Context, in *IncomingCall) (*Call, error) { return in.Answer() },
			after:    func(_ context.Context, c *Call) { <-c.Done() },
			check: func(t *testing.T, r *callRecorder) {
				c, err := r.first()
				require.NoError(t, err)
				require.Equal(t, CodecPCMA, c.Codec().Name, "the codec the ACK's answer chose")
				require.ErrorIs(t, c.Err(), ErrRemoteHangup)
			},
		},
		{
			scenario: "no_codec.xml",
			answer:   func(_ context.Context, in *IncomingCall) (*Call, error) { return in.Answer() },
			check: func(t *testing.T, r *callRecorder) {
				r.mu.Lock()
				defer r.mu.Unlock()
				require.Empty(t, r.infos, "the handler never sees a call it cannot carry")
			},
		},
		{
			scenario: "hold.xml",
			answer:   func(_ context.Context, in *IncomingCall) (*Call, error) { return in.Answer() },
			after: func(_ context.Context, c *Call) {
				// Watch the hold state as the mixer would, once per frame.
				held := false
				tick := time.NewTicker(media.FrameDuration)
				defer tick.Stop()
				for {
					select {
					case <-c.Done():
						if !held || c.Held() {
							panic("hold not seen, or not resumed")
						}
						return
					case <-tick.C:
						held = held || c.Held()
					}
				}
			},
			check: func(t *testing.T, r *callRecorder) {
				c, err := r.first()
				require.NoError(t, err)
				require.ErrorIs(t, c.Err(), ErrRemoteHangup)
				require.False(t, c.Held())
			},
		},
		{
			scenario: "info_dtmf.xml",
			keys: func(t *testing.T) map[string]string {
				return map[string]string{"DTMF5": sippPcap(t, "dtmf_2833_5.pcap")}
			},
			answer: func(_ context.Context, in *IncomingCall) (*Call, error) { return in.Answer() },
			after:  func(_ context.Context, c *Call) { <-c.Done() },
			check: func(t *testing.T, r *callRecorder) {
				c, err := r.first()
				require.NoError(t, err)
				var keys []media.Digit
				for len(c.DTMF()) > 0 {
					keys = append(keys, (<-c.DTMF()).Digit)
				}
				require.Equal(t, []media.Digit{media.Digit5, media.DigitPound}, keys,
					"5 came by RFC 4733 and INFO and counts once")
			},
		},
		{
			scenario: "options.xml",
			check: func(t *testing.T, r *callRecorder) {
				r.mu.Lock()
				defer r.mu.Unlock()
				require.Empty(t, r.infos)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			rec := newRecorder(t)
			rec.answer, rec.after = tt.answer, tt.after
			u := startUA(t, rec)
			run := sippRun{scenario: tt.scenario}
			if tt.keys != nil {
				run.keys = tt.keys(t)
			}
			require.NoError(t, runSipp(t, u, run))
			if tt.answer != nil && tt.scenario != "no_codec.xml" {
				rec.wait(t)
			}
			tt.check(t, rec)
		})
	}
}
