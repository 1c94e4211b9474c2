package rtc

import (
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/srtp/v3"
	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/room"
)

// benchParticipant is a WHIP participant without a PeerConnection, on a
// clock the benchmark moves.
func benchParticipant(b *testing.B, clock *time.Time) *participant {
	b.Helper()
	s := &Server{log: slog.New(slog.DiscardHandler)}
	p, err := s.newParticipant("bench", Grant{Publish: true}, offerInfo{fec: true, recvAudio: true, sendAudio: true}, false)
	require.NoError(b, err)
	p.now = func() time.Time { return *clock }
	return p
}

// opusPackets encodes n frames of a tone.
func opusPackets(b *testing.B, n int) [][]byte {
	b.Helper()
	enc, err := media.NewOpusEncoder()
	require.NoError(b, err)
	defer enc.Close()
	src := mediatest.Tone{Freq: 440, Amp: 0.25, Rate: media.Rate48k}
	var pcm media.Frame
	out := make([][]byte, n)
	for i := range out {
		src.Fill(pcm[:])
		buf := make([]byte, media.MaxOpusPayload)
		k, err := enc.Encode(pcm[:], buf)
		require.NoError(b, err)
		out[i] = buf[:k]
	}
	return out
}

// BenchmarkReceive is one tick of a participant's inbound audio: an RTP
// packet into the jitter buffer (as readAudio does) and the mixer's
// ReadFrame (jitter buffer, Opus decode). It must not allocate.
func BenchmarkReceive(b *testing.B) {
	clock := time.Unix(0, 0)
	p := benchParticipant(b, &clock)
	pkts := opusPackets(b, 50)
	var frame media.Frame
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		clock = clock.Add(media.FrameDuration)
		err := p.jb.Push(media.Packet{Seq: uint16(i), Timestamp: uint32(i) * opusFrameTS, SSRC: 1,
			Payload: pkts[i%len(pkts)]}, clock)
		if err != nil {
			b.Fatal(err)
		}
		p.started.Store(true)
		p.ReadFrame(&frame)
	}
}

// BenchmarkSend is one tick of a participant's outbound audio: WriteMix
// numbers the room's payload and writes it to the track (unbound here, so
// without SRTP and the socket).
func BenchmarkSend(b *testing.B) {
	clock := time.Unix(0, 0)
	p := benchParticipant(b, &clock)
	p.startSending()
	payload := opusPackets(b, 1)[0]
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if !p.WriteMix(room.Packet{Payload: payload, Tick: uint64(i)}) {
			b.Fatal("write refused")
		}
	}
}

// BenchmarkSendDirect is one tick of a listener's mix sent around pion
// (directSender): WriteMix numbers the room's payload, encrypts it with
// the session's SRTP context (AES-128-GCM, what browsers negotiate first)
// and queues it on the server's batch writer, whose sendmmsg runs on its
// own goroutine (the kernel's share is not in the figure). It must not
// allocate.
func BenchmarkSendDirect(b *testing.B) {
	in := loopbackFilter(b)
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(b, err)
	b.Cleanup(func() { _ = sink.Close() })
	ctx, err := srtp.CreateContext(make([]byte, 16), make([]byte, 12), srtp.ProtectionProfileAeadAes128Gcm)
	require.NoError(b, err)
	clock := time.Unix(0, 0)
	p := benchParticipant(b, &clock)
	p.direct = newDirect(in, 1, opusPT, func([]rtcp.Packet) error { return nil })
	p.direct.srtp, p.direct.now = ctx, func() time.Time { return clock }
	to := sink.LocalAddr().(*net.UDPAddr).AddrPort()
	p.direct.to.Store(&to)
	p.startSending()
	payload := opusPackets(b, 1)[0]
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		clock = clock.Add(media.FrameDuration)
		if !p.WriteMix(room.Packet{Payload: payload, Tick: uint64(i)}) {
			b.Fatal("write refused")
		}
	}
}
