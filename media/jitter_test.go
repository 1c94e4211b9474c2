package media

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// jbT0 is the start of every simulated call; the jitter buffer only ever sees
// times derived from it.
var jbT0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

// jbArrival is one packet and when it reaches the buffer, relative to jbT0.
type jbArrival struct {
	p  Packet
	at time.Duration
}

// jbPayload makes a 160-byte payload whose first 4 bytes are the frame
// index, so a test can tell which frame came out.
func jbPayload(i int) []byte {
	b := make([]byte, 160)
	binary.BigEndian.PutUint32(b, uint32(i))
	return b
}

func jbFrameIndex(b []byte) int {
	if len(b) < 4 {
		return -1
	}
	return int(binary.BigEndian.Uint32(b))
}

// jbStream returns n packets of 20 ms each, sent and arriving every 20 ms.
func jbStream(n int, seq0 uint16, ts0, frameTS, ssrc uint32) []jbArrival {
	out := make([]jbArrival, n)
	for i := range out {
		out[i] = jbArrival{
			p: Packet{
				Seq:       seq0 + uint16(i),
				Timestamp: ts0 + uint32(i)*frameTS,
				SSRC:      ssrc,
				Payload:   jbPayload(i),
			},
			at: time.Duration(i) * FrameDuration,
		}
	}
	return out
}

// jbPop is what one Pop produced, with payloads reduced to frame indices.
type jbPop struct {
	kind  PopKind
	seq   uint16
	frame int // index in the payload, -1 if none
	next  int // index in PopResult.Next, -1 if none
	epoch uint32
	at    time.Duration
}

// runJitter feeds arrivals (in order of arrival time) to jb and pops every
// 20 ms starting at phase, for pops ticks; packets arriving at or before a
// tick are pushed before it. each, when not nil, sees the buffer after
// every pop.
func runJitter(t testing.TB, jb *JitterBuffer, arrivals []jbArrival, pops int, phase time.Duration,
	each func(k int, r jbPop)) []jbPop {
	t.Helper()
	return runJitterTick(t, jb, arrivals, pops, phase, FrameDuration, each)
}

// runJitterTick is runJitter with a mixer clock ticking every tick.
func runJitterTick(t testing.TB, jb *JitterBuffer, arrivals []jbArrival, pops int, phase, tick time.Duration,
	each func(k int, r jbPop)) []jbPop {
	t.Helper()
	arr := slices.Clone(arrivals)
	slices.SortStableFunc(arr, func(a, b jbArrival) int { return int(a.at - b.at) })
	var recs []jbPop
	next := 0
	for k := range pops {
		now := phase + time.Duration(k)*tick
		for next < len(arr) && arr[next].at <= now {
			require.NoError(t, jb.Push(arr[next].p, jbT0.Add(arr[next].at)))
			next++
		}
		r := jb.Pop(jbT0.Add(now))
		rec := jbPop{kind: r.Kind, seq: r.Seq, frame: -1, next: jbFrameIndex(r.Next), epoch: r.Epoch, at: now}
		if r.Kind == PopFrame {
			rec.frame = jbFrameIndex(r.Payload)
		}
		recs = append(recs, rec)
		if each != nil {
			each(k, rec)
		}
	}
	return recs
}

// jbFrames returns the frame indices of all PopFrame results in order.
func jbFrames(recs []jbPop) []int {
	var out []int
	for _, r := range recs {
		if r.kind == PopFrame {
			out = append(out, r.frame)
		}
	}
	return out
}

func jbCountKind(recs []jbPop, k PopKind) int {
	n := 0
	for _, r := range recs {
		if r.kind == k {
			n++
		}
	}
	return n
}

func jbRange(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func newJB(t testing.TB, frameTS uint32, opts ...JitterOption) *JitterBuffer {
	t.Helper()
	jb, err := NewJitterBuffer(frameTS, opts...)
	require.NoError(t, err)
	return jb
}

func requireCountersConsistent(t testing.TB, s JitterStats) {
	t.Helper()
	require.Equal(t, s.Received, s.Duplicates+s.Late+s.Delivered+s.Discarded+uint64(s.Depth), "%+v", s)
}

// jbExact starts the buffer at the smallest delay, so that on a network
// without jitter it has nothing to drop and every frame must come out.
var jbExact = WithJitterDelay(20*time.Millisecond, 20*time.Millisecond, 200*time.Millisecond)

func TestJitterSteadyStream(t *testing.T) {
	for _, frameTS := range []uint32{160, 320, 960} {
		jb := newJB(t, frameTS)
		recs := runJitter(t, jb, jbStream(200, 1000, 5000, frameTS, 1), 205, 5*time.Millisecond, nil)
		frames := jbFrames(recs)
		// It starts at the initial 40 ms (45 ms with the tick phase); without
		// jitter the target falls to 20 ms, so after a quiet second it drops
		// one frame to get there.
		require.Len(t, frames, 199)
		gap := slices.IndexFunc(jbRange(0, len(frames)), func(i int) bool { return frames[i] != i })
		require.Greater(t, gap, quietPops-3, "not before a quiet period")
		require.Equal(t, append(jbRange(0, gap), jbRange(gap+1, 200)...), frames)
		s := jb.Stats()
		require.Equal(t, uint64(1), s.Discarded)
		require.Zero(t, s.Lost)
		require.Zero(t, s.Late)
		require.Equal(t, FrameDuration, s.TargetDelay)
		require.Equal(t, 25*time.Millisecond, s.Delay)
		require.LessOrEqual(t, jbCountKind(recs[:190], PopEmpty), 3, "only the initial buffering")
		requireCountersConsistent(t, s)
	}
}

func TestJitterRandomLoss(t *testing.T) {
	const n = 1000
	rng := rand.New(rand.NewPCG(1, 2))
	all := jbStream(n, 40000, 1, 160, 7)
	var sent []jbArrival
	lost := map[int]bool{}
	burst, maxBurst := 0, 0
	for i, a := range all {
		if i > 10 && i < n-10 && rng.Float64() < 0.10 {
			lost[i] = true
			burst++
			maxBurst = max(maxBurst, burst)
			continue
		}
		burst = 0
		sent = append(sent, a)
	}
	require.InDelta(t, 100, len(lost), 30)
	// An 80 ms floor keeps the next packet in the buffer through a burst
	// of up to 3 losses, so each loss shows as PopLost, not an underrun.
	require.LessOrEqual(t, maxBurst, 3, "seed gives short bursts")
	jb := newJB(t, 160, WithJitterDelay(80*time.Millisecond, 80*time.Millisecond, 200*time.Millisecond))
	recs := runJitter(t, jb, sent, n+5, 5*time.Millisecond, nil)

	var want, gotLost []int
	for i := range n {
		if !lost[i] {
			want = append(want, i)
		}
	}
	for _, r := range recs {
		if r.kind == PopLost {
			gotLost = append(gotLost, int(r.seq-40000))
		}
	}
	require.Equal(t, want, jbFrames(recs), "every frame that was sent, once, in order")
	wantLost := make([]int, 0, len(lost))
	for i := range lost {
		wantLost = append(wantLost, i)
	}
	slices.Sort(wantLost)
	require.Equal(t, wantLost, gotLost, "each lost frame reported at its turn")
	s := jb.Stats()
	require.Equal(t, uint64(len(lost)), s.Lost)
	require.Zero(t, s.Discarded)
	require.Zero(t, s.Resyncs)
	requireCountersConsistent(t, s)
}

func TestJitterReorder(t *testing.T) {
	arr := jbStream(300, 10, 0, 160, 3)
	for i := 0; i+1 < len(arr); i += 2 {
		arr[i].at, arr[i+1].at = arr[i+1].at, arr[i].at // i arrives 20 ms late
	}
	jb := newJB(t, 160, jbExact)
	recs := runJitter(t, jb, arr, 305, 5*time.Millisecond, nil)
	require.Equal(t, jbRange(0, 300), jbFrames(recs))
	s := jb.Stats()
	require.Zero(t, s.Lost)
	require.Zero(t, s.Late)
	require.Equal(t, uint64(150), s.Reordered)
	requireCountersConsistent(t, s)
}

func TestJitterDuplicates(t *testing.T) {
	base := jbStream(100, 65000, 0, 160, 3)
	arr := slices.Clone(base)
	for i, a := range base {
		a.at += 5 * time.Millisecond // a copy right behind
		arr = append(arr, a)
		if i%10 == 0 {
			a.at += 300 * time.Millisecond // and one long after it played
			arr = append(arr, a)
		}
	}
	jb := newJB(t, 160, jbExact)
	recs := runJitter(t, jb, arr, 120, 5*time.Millisecond, nil)
	require.Equal(t, jbRange(0, 100), jbFrames(recs))
	s := jb.Stats()
	require.Equal(t, uint64(110), s.Duplicates)
	require.Zero(t, s.Late, "a copy of a played packet is a duplicate, not late")
	require.Zero(t, s.Lost)
	requireCountersConsistent(t, s)
}

func TestJitterWrap(t *testing.T) {
	tests := []struct {
		name    string
		seq0    uint16
		ts0     uint32
		frameTS uint32
	}{
		{"seq and ts wrap, PCMU", 65400, 1<<32 - 100*160, 160},
		{"seq wraps, Opus", 65500, 12345, 960},
		{"ts wraps, Opus", 100, 1<<32 - 960*150 + 17, 960},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			arr := jbStream(300, tc.seq0, tc.ts0, tc.frameTS, 9)
			for i := 0; i+1 < len(arr); i += 7 {
				arr[i].at, arr[i+1].at = arr[i+1].at, arr[i].at // reorder across the wrap too
			}
			jb := newJB(t, tc.frameTS, jbExact)
			recs := runJitter(t, jb, arr, 305, 5*time.Millisecond, nil)
			require.Equal(t, jbRange(0, 300), jbFrames(recs))
			s := jb.Stats()
			require.Zero(t, s.Lost)
			require.Zero(t, s.Late)
			require.Zero(t, s.Resyncs)
			require.LessOrEqual(t, s.TargetDelay, 60*time.Millisecond, "a wrap is no jitter")
		})
	}
}

func TestJitterSSRCChange(t *testing.T) {
	a := jbStream(100, 100, 1000, 160, 0xaaaa)
	b := jbStream(100, 50000, 3_000_000_000, 160, 0xbbbb)
	for i := range b {
		b[i].at += 100*FrameDuration + 3*time.Millisecond
		b[i].p.Payload = jbPayload(1000 + i)
	}
	straggler := a[99]
	straggler.at = b[1].at + time.Millisecond // reordered behind the switch
	jb := newJB(t, 160, jbExact)
	recs := runJitter(t, jb, append(append(a, b...), straggler), 210, 5*time.Millisecond, nil)
	frames := jbFrames(recs)
	require.Equal(t, jbRange(1000, 1100), frames[len(frames)-100:], "all of the new stream, in order")
	firstB := slices.Index(frames, 1000)
	require.Equal(t, jbRange(0, firstB), frames[:firstB], "the old stream in order until the switch")
	s := jb.Stats()
	require.Equal(t, uint64(1), s.Resyncs)
	require.Equal(t, uint32(0xbbbb), s.SSRC)
	require.Equal(t, uint64(100-firstB), s.Discarded, "what was left of the old stream")
	require.Zero(t, s.Lost)
	require.Equal(t, uint64(1), s.Late, "the old stream's straggler, which must not switch back")
	require.NotEqual(t, recs[0].epoch, recs[len(recs)-1].epoch)
	requireCountersConsistent(t, s)
}

func TestJitterTimestampJump(t *testing.T) {
	const n, at = 200, 100
	tests := []struct {
		name   string
		mutate func(arr []jbArrival)
	}{
		{"sender jumps 10 s ahead", func(arr []jbArrival) {
			for i := at; i < n; i++ {
				arr[i].p.Timestamp += 80000
			}
		}},
		{"sender jumps 5 s back", func(arr []jbArrival) {
			for i := at; i < n; i++ {
				arr[i].p.Timestamp -= 40000
			}
		}},
		{"DTX: 1 s silence, seq continuous", func(arr []jbArrival) {
			for i := at; i < n; i++ {
				arr[i].p.Timestamp += 8000
				arr[i].at += time.Second
			}
		}},
		{"sender jumps 125 ms back", func(arr []jbArrival) {
			for i := at; i < n; i++ {
				arr[i].p.Timestamp -= 1000
			}
		}},
		{"timestamps wrap during a jump", func(arr []jbArrival) {
			for i := at; i < n; i++ {
				arr[i].p.Timestamp += 1<<32 - 1000
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			arr := jbStream(n, 7, 1<<31, 160, 5)
			tc.mutate(arr)
			jb := newJB(t, 160, jbExact)
			recs := runJitter(t, jb, arr, n+60, 5*time.Millisecond, nil)
			require.Equal(t, jbRange(0, n), jbFrames(recs))
			s := jb.Stats()
			require.Zero(t, s.Lost, "a jump is not loss")
			require.Zero(t, jbCountKind(recs, PopLost))
			require.Zero(t, s.Late)
			require.Less(t, s.TargetDelay, 60*time.Millisecond, "a jump is not jitter")
			require.LessOrEqual(t, s.Delay, s.TargetDelay+FrameDuration, "re-anchored at the target")
			// Empty only while buffering at the start, re-anchoring at the
			// jump and (DTX) during the silence.
			silence := 0
			if arr[at].at-arr[at-1].at > FrameDuration {
				silence = 50
			}
			require.LessOrEqual(t, jbCountKind(recs, PopEmpty)-60, 6+silence)
		})
	}
}

func TestJitterLatePacket(t *testing.T) {
	arr := jbStream(150, 300, 0, 160, 5)
	arr[80].at += 300 * time.Millisecond
	jb := newJB(t, 160, jbExact)
	recs := runJitter(t, jb, arr, 160, 5*time.Millisecond, nil)
	want := append(jbRange(0, 80), jbRange(81, 150)...)
	require.Equal(t, want, jbFrames(recs))
	i := slices.IndexFunc(recs, func(r jbPop) bool { return r.kind == PopLost })
	require.GreaterOrEqual(t, i, 0)
	require.Equal(t, uint16(380), recs[i].seq)
	require.Equal(t, 81, recs[i].next, "the packet after the lost one is offered for FEC")
	s := jb.Stats()
	require.Equal(t, uint64(1), s.Late)
	require.Equal(t, uint64(1), s.Lost)
	requireCountersConsistent(t, s)
}

func TestJitterLostRunBounded(t *testing.T) {
	arr := jbStream(150, 0, 0, 160, 5)
	arr = append(arr[:50], arr[58:]...) // 8 packets lost in a row
	jb := newJB(t, 160, WithJitterDelay(200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond),
		WithMaxLostRun(3))
	recs := runJitter(t, jb, arr, 175, 5*time.Millisecond, nil)
	require.Equal(t, append(jbRange(0, 50), jbRange(58, 150)...), jbFrames(recs))
	require.Equal(t, 3, jbCountKind(recs, PopLost), "concealment stops after 3")
	s := jb.Stats()
	require.Equal(t, uint64(8), s.Lost)
	require.Equal(t, uint64(1), s.Resyncs)
	// The skip keeps the timing: after it the buffer waits so that packet
	// 58 plays at the same delay as before instead of 5 frames early.
	k58 := slices.IndexFunc(recs, func(r jbPop) bool { return r.frame == 58 })
	k49 := slices.IndexFunc(recs, func(r jbPop) bool { return r.frame == 49 })
	require.Equal(t, 9, k58-k49)
}

func TestJitterAdaptiveDelay(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const low, high, calm = 500, 500, 1000 // packets (20 ms each) per phase
	arr := jbStream(low+high+calm, 0, 0, 160, 5)
	for i := range arr {
		j := 2 * time.Millisecond
		if i >= low && i < low+high {
			j = 60 * time.Millisecond
		}
		arr[i].at += time.Duration((rng.Float64()*2 - 1) * float64(j))
		arr[i].at = max(arr[i].at, 0)
	}
	jb := newJB(t, 160)
	stats := make([]JitterStats, 0, len(arr))
	runJitter(t, jb, arr, len(arr), 5*time.Millisecond, func(int, jbPop) {
		stats = append(stats, jb.Stats())
	})
	// Sampled a little before each phase ends: the next phase's early
	// packets arrive up to 60 ms ahead of their time.
	afterLow, midHigh, afterHigh := stats[low-5], stats[low+high/2], stats[low+high-5]
	calmStart, end := stats[low+high+25], stats[len(stats)-1]

	require.GreaterOrEqual(t, afterLow.TargetDelay, 20*time.Millisecond)
	require.LessOrEqual(t, afterLow.TargetDelay, 40*time.Millisecond)
	require.Zero(t, afterLow.Lost)

	require.GreaterOrEqual(t, afterHigh.TargetDelay, 80*time.Millisecond, "±60 ms jitter")
	require.LessOrEqual(t, afterHigh.TargetDelay, 200*time.Millisecond)
	require.GreaterOrEqual(t, afterHigh.Delay, 80*time.Millisecond, "the delay followed the target")
	require.Greater(t, afterHigh.Jitter, 20*time.Millisecond, "RFC 3550 jitter sees it too")
	require.LessOrEqual(t, afterHigh.Late-midHigh.Late, uint64(high/2/50), "once adapted, under 2% arrive late")

	require.GreaterOrEqual(t, calmStart.Delay, 80*time.Millisecond, "the delay comes down slowly")
	require.LessOrEqual(t, end.TargetDelay, 40*time.Millisecond, "calm again")
	require.LessOrEqual(t, end.Delay, end.TargetDelay+FrameDuration, "and the delay followed")
	require.Greater(t, end.Discarded, afterHigh.Discarded, "by dropping frames")
	require.Equal(t, afterHigh.Lost, end.Lost, "without losing any")
	requireCountersConsistent(t, end)
}

// TestJitterClockDrift runs the mixer 0.05% fast and slow against the
// sender for a minute: the buffer must neither grow nor starve, and
// compensate with the odd dropped or held frame, never a loss.
func TestJitterClockDrift(t *testing.T) {
	const n = 3000
	for _, tc := range []struct {
		name string
		tick time.Duration
	}{
		{"mixer slow", FrameDuration + 10*time.Microsecond},
		{"mixer fast", FrameDuration - 10*time.Microsecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jb := newJB(t, 160)
			var maxDelay time.Duration
			recs := runJitterTick(t, jb, jbStream(n, 0, 0, 160, 1), n-10, 5*time.Millisecond, tc.tick,
				func(k int, _ jbPop) {
					if k > 100 {
						maxDelay = max(maxDelay, jb.Stats().Delay)
					}
				})
			s := jb.Stats()
			require.Zero(t, s.Lost)
			require.Zero(t, s.Late)
			require.LessOrEqual(t, maxDelay, s.TargetDelay+2*FrameDuration, "no creeping latency")
			require.LessOrEqual(t, s.Discarded+s.Underruns, uint64(5), "30 ms of drift costs a frame or two")
			frames := jbFrames(recs)
			for i := 1; i < len(frames); i++ {
				require.Greater(t, frames[i], frames[i-1])
			}
		})
	}
}

func TestJitterErrors(t *testing.T) {
	_, err := NewJitterBuffer(0)
	require.ErrorIs(t, err, ErrJitterConfig)
	_, err = NewJitterBuffer(160, WithJitterDelay(10*time.Millisecond, 40*time.Millisecond, 200*time.Millisecond))
	require.ErrorIs(t, err, ErrJitterConfig)
	_, err = NewJitterBuffer(160, WithJitterDelay(20*time.Millisecond, 40*time.Millisecond, 2*time.Second))
	require.ErrorIs(t, err, ErrJitterConfig)
	_, err = NewJitterBuffer(160, WithMaxLostRun(0))
	require.ErrorIs(t, err, ErrJitterConfig)

	jb := newJB(t, 160)
	require.Equal(t, PopEmpty, jb.Pop(jbT0).Kind, "nothing pushed yet")
	err = jb.Push(Packet{Payload: make([]byte, MaxJitterPayload+1)}, jbT0)
	require.ErrorIs(t, err, ErrJitterPayloadTooBig)
	require.Zero(t, jb.Stats().Received)
}

// TestJitterConcurrentUse pushes from one goroutine while popping from
// another, as the network reader and the mixer do; -race checks it.
func TestJitterConcurrentUse(t *testing.T) {
	jb := newJB(t, 160)
	arr := jbStream(500, 0, 0, 160, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		for _, a := range arr {
			require.NoError(t, jb.Push(a.p, jbT0.Add(a.at)))
		}
	})
	delivered := 0
	for k := range 600 {
		r := jb.Pop(jbT0.Add(time.Duration(k) * FrameDuration))
		if r.Kind == PopFrame {
			delivered++
			require.Len(t, r.Payload, 160)
		}
	}
	wg.Wait()
	s := jb.Stats()
	requireCountersConsistent(t, s)
	require.Equal(t, uint64(delivered), s.Delivered)
}

func TestJitterSteadyStateAllocatesNothing(t *testing.T) {
	jb := newJB(t, 160)
	payload := jbPayload(0)
	now := jbT0
	seq, ts := uint16(0), uint32(0)
	step := func() {
		if err := jb.Push(Packet{Seq: seq, Timestamp: ts, SSRC: 1, Payload: payload}, now); err != nil {
			t.Fatal(err)
		}
		jb.Pop(now.Add(5 * time.Millisecond))
		seq++
		ts += 160
		now = now.Add(FrameDuration)
	}
	for range 200 {
		step()
	}
	require.Zero(t, testing.AllocsPerRun(1000, step))
	require.Zero(t, jb.Stats().Lost)
}

func BenchmarkJitterPushPop(b *testing.B) {
	jb, err := NewJitterBuffer(960)
	if err != nil {
		b.Fatal(err)
	}
	payload := jbPayload(0)
	now := jbT0
	seq, ts := uint16(0), uint32(0)
	b.ReportAllocs()
	for b.Loop() {
		if err := jb.Push(Packet{Seq: seq, Timestamp: ts, SSRC: 1, Payload: payload}, now); err != nil {
			b.Fatal(err)
		}
		jb.Pop(now.Add(5 * time.Millisecond))
		seq++
		ts += 960
		now = now.Add(FrameDuration)
	}
}
