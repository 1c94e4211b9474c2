package sip

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestEarlyMedia: Progress sends 183 with the answer and starts media, so
// a prompt reaches the caller before the call is answered; Answer then
// returns the same Call. The caller's DTMF works during early media too.
func TestEarlyMedia(t *testing.T) {
	release := make(chan struct{})
	calls := make(chan *Call, 2)
	h := HandlerFunc(func(ctx context.Context, in *IncomingCall) {
		early, err := in.Progress()
		if err != nil {
			return
		}
		calls <- early
		go sendTone(early, 1000)
		select {
		case <-release:
		case <-ctx.Done():
			return
		}
		c, err := in.Answer()
		if err != nil {
			return
		}
		calls <- c
	})
	u := startUA(t, h)
	sp := newSIPPeer(t)
	rp := newRTPPeer(t, CodecPCMA, 8)
	answered := make(chan []byte, 1)
	go func() {
		d, err := sp.dial(u, "2000", peerOffer(1, rp.port(), CodecPCMA, "sendrecv"))
		if err != nil {
			answered <- nil
			return
		}
		answered <- d.InviteResponse.Body() // d stays open: it takes our BYE
	}()
	var early *Call
	select {
	case early = <-calls:
	case <-time.After(5 * time.Second):
		t.Fatal("no early media call")
	}
	eventually(t, 3*time.Second, func() bool {
		n, got := rp.received()
		return n >= 10 && toneAbove(got[len(got)-800:], 1000, 8000) >= 20
	}, "the tone arrives before the answer")
	select {
	case <-answered:
		t.Fatal("answered before Answer was called")
	default:
	}
	close(release)
	answer := <-answered
	require.NotNil(t, answer, "the call was answered")
	to, dir := answerAddr(t, answer)
	require.Equal(t, "sendrecv", dir)
	require.Equal(t, early, <-calls, "Answer returns the early-media call")
	require.Equal(t, early.media.port, int(to.Port()))
	require.NoError(t, early.Hangup(context.Background()))
	select {
	case <-sp.byes:
	case <-time.After(5 * time.Second):
		t.Fatal("no BYE")
	}
}
