package stream

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/room"
)

// benchEgress is an Egress with just its pipelines' state, for driving
// them from a benchmark or test: no goroutines, one queue drained by the
// caller.
func benchEgress(b testing.TB) (*Egress, *queue) {
	b.Helper()
	slate, err := loadSlate()
	require.NoError(b, err)
	e := &Egress{fan: newFanout(), zero: time.Now(), opts: Options{Now: time.Now},
		log: slog.New(slog.DiscardHandler)}
	e.audio, err = newAudioPipe(e, DefaultAudioBitrate, 1)
	require.NoError(b, err)
	b.Cleanup(e.audio.close)
	e.video = newVideoPipe(e, newVideoFeed(), slate)
	q := newQueue(DefaultQueue)
	e.fan.attach(q, nil, nil)
	return e, q
}

// BenchmarkAudioFrame: one 20 ms mix frame through the audio pipeline
// (AAC-LC 48 kHz mono, 128 kbit/s, and the tag fan-out), per frame.
func BenchmarkAudioFrame(b *testing.B) {
	e, q := benchEgress(b)
	pcm := mediatest.Speech(b, media.Rate48k, 2)
	frames := make([]room.MixFrame, len(pcm)/media.FrameSamples)
	for i := range frames {
		copy(frames[i].PCM[:], pcm[i*media.FrameSamples:])
	}
	start := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		f := &frames[i%len(frames)]
		f.Time = start.Add(time.Duration(i) * media.FrameDuration)
		if err := e.audio.push(f); err != nil {
			b.Fatal(err)
		}
		q.drain()
	}
}

// clipPackets is a presenter clip as RTP packets, looped: sequence
// numbers and timestamps run on across the loops.
type clipPackets struct {
	pkts [][]byte
	fps  int
}

func packetize(clip *h264Clip, loops int) clipPackets {
	pk := packetizer{ssrc: 1}
	cp := clipPackets{fps: clip.fps}
	for l := range loops {
		for i, au := range clip.aus {
			n := l*len(clip.aus) + i
			cp.pkts = append(cp.pkts, pk.packets(au, uint32(n*90000/clip.fps))...)
		}
	}
	return cp
}

// BenchmarkVideoFrame: one presenter access unit of 1280x720 at 30 fps,
// about 2 Mbit/s, from RTP packets (pion's depacketizer) to an FLV tag,
// per frame. pion's H264Packet allocates for every NAL unit it returns.
func BenchmarkVideoFrame(b *testing.B) {
	e, q := benchEgress(b)
	cp := packetize(makeClip(b, "testsrc2", "", "1280x720", 30, 2), 1)
	feed := e.video.src.(*videoFeed)
	var seq uint16
	var ts uint32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.video.runPresenter(ctx)
	}()
	b.ReportAllocs()
	b.ResetTimer()
	sent := 0
	for i := 0; b.Loop(); i++ {
		// One access unit's packets, then wait for its tag.
		// The packets of the previous unit were read: renumber in place so
		// that the loop over the clip looks like one stream.
		for {
			p := cp.pkts[sent]
			binary.BigEndian.PutUint16(p[2:], seq)
			binary.BigEndian.PutUint32(p[4:], ts)
			feed.pkts <- p
			seq++
			sent = (sent + 1) % len(cp.pkts)
			if p[1]&0x80 != 0 { // marker: the unit is complete
				ts += 90000 / uint32(cp.fps)
				break
			}
		}
		for {
			<-q.ready
			if t, _ := q.pop(); t != nil {
				t.release()
				q.drain()
				break
			}
		}
	}
	b.StopTimer()
	cancel()
	<-done
}

// BenchmarkWriteTag: one audio tag written as RTMP chunks, per tag.
func BenchmarkWriteTag(b *testing.B) {
	c := &conn{bw: bufio.NewWriterSize(io.Discard, 64<<10), streamID: 1}
	c.cw = chunkWriter{w: c.bw, size: outChunkSize}
	data := make([]byte, 2+400)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for i := 0; b.Loop(); i++ {
		if err := c.writeTag(typeAudio, uint32(i*21), data); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuTime is the process's user plus system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEgressCPU: five egresses at once, each streaming a room's mix
// (AAC) and a 1280x720 presenter (passthrough, ~2 Mbit/s) to nginx-rtmp in
// real time; one op is one second of the five streams. It reports the
// process's CPU per second of one stream (µs-cpu/stream-s; the target is
// at most 20 000, 2 % of a core), feeding included.
func BenchmarkEgressCPU(b *testing.B) {
	const streams = 5
	ng := startNginx(b, nginxOpts{})
	cp := packetize(makeClip(b, "testsrc2", "", "1280x720", 30, 2), 15)
	pcm := mediatest.Speech(b, media.Rate48k, 4)
	type egress struct {
		eg    *Egress
		mix   *mixFeed
		video *videoFeed
	}
	var egs []egress
	for i := range streams {
		ev := newEvents()
		x := egress{mix: newMixFeed(), video: newVideoFeed()}
		opts := testOptions(ev)
		var err error
		x.eg, err = New(x.mix, x.video, opts)
		require.NoError(b, err)
		defer x.eg.Close()
		id, err := x.eg.Add(context.Background(), Destination{URL: ng.url(fmt.Sprintf("bench%d", i))})
		require.NoError(b, err)
		ev.await(b, id, StateLive, 5*time.Second)
		egs = append(egs, x)
	}
	tick := time.NewTicker(media.FrameDuration)
	defer tick.Stop()
	start := time.Now()
	cpu0 := cpuTime(b)
	b.ResetTimer()
	frame, au, pkt := 0, 0, 0 // 30 s of packets: no wrap before b.N = 30
	for range b.N {
		for end := start.Add(time.Duration(frame+50) * media.FrameDuration); time.Now().Before(end); {
			<-tick.C
			for ; time.Duration(frame)*media.FrameDuration <= time.Since(start); frame++ {
				var mf room.MixFrame
				mf.Time = start.Add(time.Duration(frame) * media.FrameDuration)
				copy(mf.PCM[:], pcm[(frame*media.FrameSamples)%(len(pcm)-media.FrameSamples):])
				for _, x := range egs {
					x.mix.frames <- mf
				}
			}
			for ; time.Duration(au)*time.Second/time.Duration(cp.fps) <= time.Since(start); au++ {
				for {
					p := cp.pkts[pkt%len(cp.pkts)]
					for _, x := range egs {
						x.video.pkts <- p
					}
					pkt++
					if p[1]&0x80 != 0 {
						break
					}
				}
			}
		}
	}
	b.StopTimer()
	cpu := cpuTime(b) - cpu0
	secs := time.Since(start).Seconds()
	perStream := float64(cpu.Microseconds()) / (secs * streams)
	b.ReportMetric(perStream, "µs-cpu/stream-s")
	b.ReportMetric(perStream/1e4, "%core/stream")
	for _, x := range egs {
		s := x.eg.Status().Destinations[0]
		require.Equal(b, StateLive, s.State)
		require.Zero(b, s.Dropped)
	}
}
