package rtc

import (
	"context"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"
)

// sliceNumber returns the frame number a fakeFrame non-IDR slice carries,
// if pkt is one (single NAL unit packet, RFC 6184 §5.6).
func sliceNumber(pkt *rtp.Packet) (uint32, bool) {
	if len(pkt.Payload) != 5 || pkt.Payload[0]&0x1f != 1 {
		return 0, false
	}
	return binary.BigEndian.Uint32(pkt.Payload[1:]), true
}

// TestPresenterVideo: a WHIP publisher's H.264 reaches a WHEP viewer and
// an egress subscription unchanged and in order; the viewer's PLI reaches
// the presenter.
func TestPresenterVideo(t *testing.T) {
	e := newEnv(t, nil)
	egress := e.srv.SubscribeVideo("video", 64)
	defer egress.Close()
	require.False(t, e.srv.HasPresenter("video"))
	p := e.join("video", clientOpts{tone: 440, video: true})

	// The egress sees the presenter's packets.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	buf := make([]byte, 1500)
	var got rtp.Packet
	for seen := 0; seen < 20; {
		n, err := egress.Read(ctx, buf)
		require.NoError(t, err)
		require.NoError(t, got.Unmarshal(buf[:n]))
		if _, ok := sliceNumber(&got); ok {
			seen++
		}
	}
	require.True(t, e.srv.HasPresenter("video"))

	// A viewer gets the same slices, in order, and audio too.
	v := e.join("video", clientOpts{listen: true, video: true})
	var last uint32
	var lastSeq uint16
	for seen := 0; seen < 30; {
		select {
		case pkt := <-v.video:
			if seen > 0 {
				require.Equal(t, lastSeq+1, pkt.SequenceNumber, "gap in the viewer's sequence numbers")
			}
			lastSeq = pkt.SequenceNumber
			num, ok := sliceNumber(pkt)
			if !ok {
				seen++ // the keyframe's STAP-A or IDR
				continue
			}
			require.Greater(t, num, last)
			last, seen = num, seen+1
		case <-ctx.Done():
			t.Fatalf("viewer got %d video packets", seen)
		}
	}
	v.waitFrames(warmup)
	from := v.received()
	v.waitFrames(from + warmup)
	require.Greater(t, toneDB(v.window(from, from+warmup), 440), -25.0)

	// The viewer's keyframe request reaches the presenter.
	for len(p.plis) > 0 {
		<-p.plis
	}
	var ssrc uint32
	for _, tr := range v.pc.GetTransceivers() {
		if r := tr.Receiver(); r != nil && r.Track() != nil && r.Track().Kind().String() == "video" {
			ssrc = uint32(r.Track().SSRC())
		}
	}
	require.NotZero(t, ssrc)
	require.NoError(t, v.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}))
	select {
	case <-p.plis:
	case <-time.After(5 * time.Second):
		t.Fatal("the presenter got no PLI")
	}
}

// TestVideoSubRing: a full ring drops and counts new packets, never blocks,
// and keeps the order of what it holds; Close ends Read with io.EOF.
func TestVideoSubRing(t *testing.T) {
	sub := &VideoSub{feed: &videoFeed{}, ring: make([]videoSlot, 16), ready: make(chan struct{}, 1)}
	sub.feed.subs = []*VideoSub{sub}
	for i := range 20 {
		sub.put(1, []byte{byte(i)})
	}
	require.Equal(t, uint64(4), sub.Dropped())
	buf := make([]byte, 1500)
	for i := range 16 {
		n, err := sub.Read(t.Context(), buf)
		require.NoError(t, err)
		require.Equal(t, []byte{byte(i)}, buf[:n])
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := sub.Read(ctx, buf)
	require.ErrorIs(t, err, context.Canceled)
	sub.Close()
	_, err = sub.Read(t.Context(), buf)
	require.ErrorIs(t, err, io.EOF)
	require.Empty(t, sub.feed.subs)
}
