package media

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakePlayoutDecoder is a Decoder built from function fields, so each test says
// exactly what decoding and concealing do.
type fakePlayoutDecoder struct {
	rate    int
	decode  func(payload []byte, pcm []int16) (int, error)
	conceal func(next []byte, pcm []int16) (int, error)
}

var _ Decoder = (*fakePlayoutDecoder)(nil)

func (f *fakePlayoutDecoder) Rate() int { return f.rate }
func (f *fakePlayoutDecoder) Decode(payload []byte, pcm []int16) (int, error) {
	return f.decode(payload, pcm)
}
func (f *fakePlayoutDecoder) Conceal(next []byte, pcm []int16) (int, error) {
	return f.conceal(next, pcm)
}
func (f *fakePlayoutDecoder) Close() error { return nil }

// concealMark is what the fake decoder writes for a concealed frame: the
// negative of 1000 + the frame index found in next, or -1 without next.
func concealMark(next int) int16 {
	if next < 0 {
		return -1
	}
	return int16(-1000 - next)
}

// frameDecoder decodes a payload into one frame filled with its frame
// index and conceals with concealMark, recording what Conceal was given.
func frameDecoder(rate int, concealNext *[]int) *fakePlayoutDecoder {
	return &fakePlayoutDecoder{
		rate: rate,
		decode: func(payload []byte, pcm []int16) (int, error) {
			i := jbFrameIndex(payload)
			if i < 0 {
				return 0, errors.New("fake: short payload")
			}
			n := SamplesPerFrame(rate)
			for k := range pcm[:n] {
				pcm[k] = int16(i)
			}
			return n, nil
		},
		conceal: func(next []byte, pcm []int16) (int, error) {
			i := jbFrameIndex(next)
			*concealNext = append(*concealNext, i)
			for k := range pcm {
				pcm[k] = concealMark(i)
			}
			return len(pcm), nil
		},
	}
}

// playFrames runs a playout over arrivals for ticks ticks and returns the
// first sample and the status of every frame.
func playFrames(t *testing.T, po *Playout, jb *JitterBuffer, arrivals []jbArrival, ticks int) ([]int16, []PlayoutStatus) {
	t.Helper()
	pcm := make([]int16, po.frame)
	var first []int16
	var status []PlayoutStatus
	next := 0
	for k := range ticks {
		now := 5*time.Millisecond + time.Duration(k)*FrameDuration
		for next < len(arrivals) && arrivals[next].at <= now {
			require.NoError(t, jb.Push(arrivals[next].p, jbT0.Add(arrivals[next].at)))
			next++
		}
		n, st := po.NextFrame(jbT0.Add(now), pcm)
		require.Equal(t, po.frame, n)
		for _, s := range pcm[1:n] {
			require.Equal(t, pcm[0], s, "frame %d is not one piece", k)
		}
		first = append(first, pcm[0])
		status = append(status, st)
	}
	return first, status
}

func TestPlayoutConcealsWithNextPayload(t *testing.T) {
	arr := jbStream(100, 500, 0, 160, 1)
	// 30 lost alone (31 is there for FEC); 50 and 51 lost together (when 50
	// is due 51 is missing too; when 51 is due 52 is there).
	arr = append(append(arr[:30:30], arr[31:50]...), arr[52:]...)
	jb := newJB(t, 160, WithJitterDelay(60*time.Millisecond, 60*time.Millisecond, 200*time.Millisecond))
	var concealNext []int
	po := NewPlayout(jb, frameDecoder(Rate8k, &concealNext))

	got, status := playFrames(t, po, jb, arr, 100)
	start := 0
	for status[start] == PlayoutSilence {
		require.Equal(t, int16(0), got[start], "silence while buffering")
		start++
	}
	require.LessOrEqual(t, start, 4)
	var want []int16
	for i := range int16(100 - start) {
		switch i {
		case 30:
			want = append(want, concealMark(31))
		case 50:
			want = append(want, concealMark(-1))
		case 51:
			want = append(want, concealMark(52))
		default:
			want = append(want, i)
		}
	}
	require.Equal(t, want, got[start:])
	require.Equal(t, []int{31, -1, 52}, concealNext, "Conceal gets the next payload when it is there")
	for i, st := range status[start:] {
		if i == 30 || i == 50 || i == 51 {
			require.Equal(t, PlayoutConcealed, st)
		} else {
			require.Equal(t, PlayoutDecoded, st, "frame %d", i)
		}
	}
	s := jb.Stats()
	require.Equal(t, uint64(3), s.Concealed)
	require.Equal(t, uint64(3), s.Lost)
	require.Zero(t, s.DecodeErrors)
}

// resettingDecoder is frameDecoder that counts its decodes and resets.
type resettingDecoder struct {
	*fakePlayoutDecoder
	decodes, resets int
}

func (d *resettingDecoder) Decode(payload []byte, pcm []int16) (int, error) {
	d.decodes++
	return d.fakePlayoutDecoder.Decode(payload, pcm)
}

func (d *resettingDecoder) Reset() error { d.resets++; return nil }

// TestPlayoutSkipsSilentPackets: packets the sender marked silent are
// played as silence without a decode; a packet lost among them is silence
// too (no concealment from the sound before), and the decoder is reset
// once before the next packet with sound.
func TestPlayoutSkipsSilentPackets(t *testing.T) {
	arr := jbStream(60, 0, 0, 160, 1)
	for i := 20; i < 40; i++ {
		arr[i].p.Silent = true
	}
	arr = append(arr[:30:30], arr[31:]...) // 30 is lost
	jb := newJB(t, 160, WithJitterDelay(60*time.Millisecond, 60*time.Millisecond, 200*time.Millisecond))
	var concealNext []int
	dec := &resettingDecoder{fakePlayoutDecoder: frameDecoder(Rate8k, &concealNext)}
	po := NewPlayout(jb, dec)

	got, status := playFrames(t, po, jb, arr, 60)
	start := 0
	for status[start] == PlayoutSilence {
		start++
	}
	require.LessOrEqual(t, start, 4)
	for i, v := range got[start:] {
		switch {
		case i >= 20 && i < 40:
			require.Zero(t, v, "frame %d is silence", i)
			require.Equal(t, map[bool]PlayoutStatus{true: PlayoutConcealed, false: PlayoutSilence}[i == 30], status[start+i], "frame %d", i)
		default:
			require.Equal(t, int16(i), v, "frame %d", i)
			require.Equal(t, PlayoutDecoded, status[start+i], "frame %d", i)
		}
	}
	require.Empty(t, concealNext, "no concealment from before the silence")
	require.Equal(t, len(got)-start-20, dec.decodes, "every frame played but the 20 silent ones decoded")
	require.Equal(t, 1, dec.resets)
	s := jb.Stats()
	require.Equal(t, uint64(19), s.Undecoded)
	require.Equal(t, uint64(1), s.Concealed)
}

func TestPlayoutDecodeErrorConceals(t *testing.T) {
	arr := jbStream(40, 0, 0, 160, 1)
	arr[20].p.Payload = []byte{1} // the fake decoder refuses it
	jb := newJB(t, 160, jbExact)
	var concealNext []int
	po := NewPlayout(jb, frameDecoder(Rate8k, &concealNext))
	got, status := playFrames(t, po, jb, arr, 40)
	i := jbIndexOf(got, concealMark(-1))
	require.GreaterOrEqual(t, i, 0)
	require.Equal(t, int16(19), got[i-1])
	require.Equal(t, int16(21), got[i+1])
	require.Equal(t, PlayoutConcealed, status[i])
	s := jb.Stats()
	require.Equal(t, uint64(1), s.DecodeErrors)
	require.Equal(t, uint64(1), s.Concealed)
}

func jbIndexOf(s []int16, v int16) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// spanPayload makes a payload holding a packet index and a sample count.
func spanPayload(i, samples int) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint32(b, uint32(i))
	binary.BigEndian.PutUint32(b[4:], uint32(samples))
	return b
}

// TestPlayoutPacketDurations feeds packets of 10 and 40 ms (ptime 10 and
// 40) to a buffer configured for 20 ms frames: the playout gathers two
// short packets per frame and spreads a long one over two, so the audio
// comes out complete, in order and without gaps.
func TestPlayoutPacketDurations(t *testing.T) {
	for _, ms := range []int{10, 40} {
		t.Run(time.Duration(ms*int(time.Millisecond)).String(), func(t *testing.T) {
			const seconds = 4
			samples := Rate8k * ms / 1000
			n := seconds * 1000 / ms
			arr := make([]jbArrival, n)
			for i := range arr {
				arr[i] = jbArrival{
					p: Packet{Seq: uint16(i), Timestamp: uint32(i * samples), SSRC: 1,
						Payload: spanPayload(i, samples)},
					at: time.Duration(i*ms) * time.Millisecond,
				}
			}
			jb := newJB(t, 160, jbExact)
			dec := &fakePlayoutDecoder{
				rate: Rate8k,
				decode: func(payload []byte, pcm []int16) (int, error) {
					k := int(binary.BigEndian.Uint32(payload[4:]))
					for j := range pcm[:k] {
						pcm[j] = int16(jbFrameIndex(payload)*samples + j) // one continuous ramp
					}
					return k, nil
				},
				conceal: func([]byte, []int16) (int, error) { return 0, errors.New("no loss expected") },
			}
			po := NewPlayout(jb, dec)
			pcm := make([]int16, 160)
			var out []int16
			var status []PlayoutStatus
			next := 0
			for k := range seconds*50 - 5 {
				now := 5*time.Millisecond + time.Duration(k)*FrameDuration
				for next < len(arr) && arr[next].at <= now {
					require.NoError(t, jb.Push(arr[next].p, jbT0.Add(arr[next].at)))
					next++
				}
				_, st := po.NextFrame(jbT0.Add(now), pcm)
				if st != PlayoutSilence || len(out) > 0 {
					out = append(out, pcm...)
					status = append(status, st)
				}
			}
			for i, st := range status {
				require.Equal(t, PlayoutDecoded, st, "frame %d", i)
			}
			for i := range out {
				require.Equal(t, int16(i), out[i], "sample %d: the ramp must be unbroken", i)
			}
			require.Greater(t, len(out), (seconds-1)*Rate8k)
			s := jb.Stats()
			require.Zero(t, s.Lost)
			require.Zero(t, s.Concealed)
			require.Zero(t, s.Resyncs)
		})
	}
}

func TestPlayoutAllocatesNothing(t *testing.T) {
	jb := newJB(t, 960)
	var concealNext []int
	po := NewPlayout(jb, frameDecoder(Rate48k, &concealNext))
	pcm := make([]int16, SamplesPerFrame(Rate48k))
	payload := jbPayload(7)
	now := jbT0
	seq, ts := uint16(0), uint32(0)
	step := func() {
		if err := jb.Push(Packet{Seq: seq, Timestamp: ts, SSRC: 1, Payload: payload}, now); err != nil {
			t.Fatal(err)
		}
		po.NextFrame(now.Add(5*time.Millisecond), pcm)
		seq++
		ts += 960
		now = now.Add(FrameDuration)
	}
	for range 100 {
		step()
	}
	require.Zero(t, testing.AllocsPerRun(500, step))
	require.Equal(t, int16(7), pcm[0])
}
