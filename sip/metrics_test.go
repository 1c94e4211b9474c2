package sip

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCallStats: an answered PCMU call counts as active and answered with
// one setup time; its RTP counters reach the totals (160 payload octets a
// packet each way) and stay there after the BYE, when the call is no
// longer active.
func TestCallStats(t *testing.T) {
	h := newAnsweringHandler()
	u := startUA(t, h)
	sp := newSIPPeer(t)
	rp := newRTPPeer(t, CodecPCMU, 0)
	d, answer := sp.invite(t, u, "2000", peerOffer(1, rp.port(), CodecPCMU, "sendrecv"))
	to, _ := answerAddr(t, answer)
	c := h.call(t)
	rp.sendTone(to, 660)

	eventually(t, 5*time.Second, func() bool {
		m := u.CallStats().Media
		return m.PacketsIn >= 25 && m.PacketsOut >= 25
	}, "RTP counted both ways")
	st := u.CallStats()
	require.Equal(t, 1, st.Active)
	require.Equal(t, uint64(1), st.Outcomes[OutcomeAnswered])
	require.Equal(t, uint64(1), st.SetupSeconds.Count)
	require.Greater(t, st.SetupSeconds.Sum, 0.0)
	require.Less(t, st.SetupSeconds.Sum, 5.0)
	require.Equal(t, 160*st.Media.PacketsIn, st.Media.BytesIn, "G.711: 160 payload octets a packet")
	require.Equal(t, 160*st.Media.PacketsOut, st.Media.BytesOut)

	rp.stopSending()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, d.Bye(ctx))
	waitDone(t, c)
	end := u.CallStats()
	require.Zero(t, end.Active)
	require.GreaterOrEqual(t, end.Media.PacketsIn, st.Media.PacketsIn, "an ended call's counters stay in the totals")
	require.GreaterOrEqual(t, end.Media.PacketsOut, st.Media.PacketsOut)
	require.Equal(t, uint64(1), end.Outcomes[OutcomeAnswered])
}

// rejecting refuses every call with 486 Busy Here.
type rejecting struct{}

func (rejecting) HandleCall(_ context.Context, in *IncomingCall) {
	_ = in.Reject(&StatusError{Code: 486})
}

// TestCallStatsRejected: a call the handler rejects counts once as
// rejected, never as answered or active.
func TestCallStatsRejected(t *testing.T) {
	u := startUA(t, rejecting{})
	sp := newSIPPeer(t)
	rp := newRTPPeer(t, CodecPCMU, 0)
	_, err := sp.dial(u, "2000", peerOffer(1, rp.port(), CodecPCMU, "sendrecv"))
	require.Error(t, err)
	eventually(t, 5*time.Second, func() bool { return u.CallStats().Outcomes[OutcomeRejected] == 1 }, "rejected counted")
	st := u.CallStats()
	require.Zero(t, st.Outcomes[OutcomeAnswered])
	require.Zero(t, st.Active)
	require.Zero(t, st.SetupSeconds.Count)
}

// TestDTMFCountedByMethod: presses are counted by the method that
// reported them first; a duplicate by a second method is not counted.
func TestDTMFCountedByMethod(t *testing.T) {
	var m callMeters
	q := newDTMFQueue(m.countDTMF)
	now := time.Now()
	q.push(DTMF{Digit: '1', Source: DTMFRFC4733, At: now})
	q.push(DTMF{Digit: '1', Source: DTMFInfo, At: now.Add(10 * time.Millisecond)}) // the same press
	q.push(DTMF{Digit: '2', Source: DTMFInfo, At: now.Add(time.Second)})
	q.push(DTMF{Digit: '3', Source: DTMFInBand, At: now.Add(2 * time.Second)})
	require.Equal(t, []uint64{1, 1, 1}, []uint64{m.dtmf[0].Load(), m.dtmf[1].Load(), m.dtmf[2].Load()})
}
