package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/rtc/rtctest"
	"github.com/mediagate/mediagate/sip/siptest"
)

// The scan and flood tests' numbers: dialin.numbers has rules for
// ruleNumbers (room demo), so the 50 "existing" numbers a scanner tries
// are the conference number and 49 of them; the 50 "missing" ones are
// 1002 and 2050..2098.
const ruleNumbers = 49

// trunkYAML is the dial-in section of the scan and flood tests: the rule
// numbers 2000..2048 lead into room demo.
func trunkYAML() string {
	var b strings.Builder
	b.WriteString("dialin:\n  numbers:\n")
	for i := range ruleNumbers {
		fmt.Fprintf(&b, "    \"%d\":\n      room: %s\n", 2000+i, demoRoom)
	}
	return b.String()
}

// scanNumbers are the 100 numbers a scanner tries, existing and missing
// alternately (so that a loaded machine slows both alike), with whether
// each exists.
func scanNumbers() (numbers []string, exists []bool) {
	for i := range ruleNumbers + 1 {
		e, m := "1001", "1002"
		if i > 0 {
			e, m = fmt.Sprint(2000+i-1), fmt.Sprint(2050+i-1)
		}
		numbers, exists = append(numbers, e, m), append(exists, true, false)
	}
	return numbers, exists
}

// controlCall is a caller on the allowlisted trunk (a siptest phone from
// 127.0.0.1) in room demo with a pion participant: each sends a tone the
// other hears.
type controlCall struct {
	phone *siptest.Call
	pion  *rtctest.Client
}

// connectControlCall joins the pion tone bot to room demo and dials rule
// number 2000 from the trunk with the PIN, and waits until each hears the
// other's tone.
func connectControlCall(ctx context.Context, t *testing.T, g *dialInNode) *controlCall {
	t.Helper()
	pion, _ := joinToneBot(ctx, t, g)
	call, err := siptest.NewPhone(t).Dial(ctx, g.sip,
		siptest.Options{Codec: siptest.PCMU, TelephoneEvent: true, User: "2000"})
	require.NoError(t, err)
	call.PlayTone(phoneToneHz, 0.3)
	require.NoError(t, call.Press(ctx, demoPIN+"#", siptest.RFC4733))
	g.logs.await(t, 10*time.Second, "session: joined", "room="+demoRoom)
	hearsTone(ctx, t, pion, phoneToneHz)
	phoneHearsTone(ctx, t, call, toneHz)
	return &controlCall{phone: call, pion: pion}
}

// controlMark is where a control call's two receivers stood.
type controlMark struct{ pionFrames, phoneSamples, phonePackets int }

func (c *controlCall) mark() controlMark {
	return controlMark{c.pion.Received(), c.phone.Received(), c.phone.Packets()}
}

// controlReport is how the control call fared between two marks, in each
// direction: packets lost (sequence gaps the receiver concealed) of those
// due, and the tone's margin over the other bands.
type controlReport struct {
	pionLost, pionFrames     int
	phoneLost, phoneFrames   int
	pionMargin, phoneMargin  float64
	pionLevel, phoneLevel    float64
	pionWorstHz, phoneWorstH float64
}

func (r controlReport) String() string {
	return fmt.Sprintf("phone→room→pion: %d of %d frames lost (%.2f%%), %.0f Hz at %.1f dB, %.1f dB above %.0f Hz; "+
		"pion→room→phone: %d of %d lost (%.2f%%), %.0f Hz at %.1f dB, %.1f dB above %.0f Hz",
		r.pionLost, r.pionFrames, lossPercent(r.pionLost, r.pionFrames), float64(phoneToneHz), r.pionLevel, r.pionMargin, r.pionWorstHz,
		r.phoneLost, r.phoneFrames, lossPercent(r.phoneLost, r.phoneFrames), float64(toneHz), r.phoneLevel, r.phoneMargin, r.phoneWorstH)
}

func lossPercent(lost, of int) float64 { return 100 * float64(lost) / float64(max(of, 1)) }

// since reports on the control call from m to now.
func (c *controlCall) since(m controlMark) controlReport {
	var r controlReport
	to := c.pion.Received()
	for _, f := range c.pion.Frames(m.pionFrames, to) {
		r.pionFrames++
		if f.Lost {
			r.pionLost++
		}
	}
	r.pionLevel, r.pionMargin, r.pionWorstHz = toneMargin(c.pion.PCM(m.pionFrames, to), phoneToneHz, media.Rate48k)
	samples := c.phone.Received()
	spf := media.SamplesPerFrame(c.phone.Rate())
	r.phoneFrames = (samples - m.phoneSamples) / spf
	r.phoneLost = max(r.phoneFrames-(c.phone.Packets()-m.phonePackets), 0)
	r.phoneLevel, r.phoneMargin, r.phoneWorstH = toneMargin(c.phone.PCM(m.phoneSamples, samples), toneHz, c.phone.Rate())
	return r
}

// check requires clean audio both ways: the tones toneMarginDB above the
// other bands, and fewer than maxLossPercent of the packets lost.
func (r controlReport) check(t *testing.T, maxLossPercent float64) {
	t.Helper()
	require.Positive(t, r.pionFrames, "the pion participant received nothing")
	require.Positive(t, r.phoneFrames, "the phone received nothing")
	require.GreaterOrEqual(t, r.pionMargin, float64(toneMarginDB), r.String())
	require.GreaterOrEqual(t, r.phoneMargin, float64(toneMarginDB), r.String())
	require.Less(t, lossPercent(r.pionLost, r.pionFrames), maxLossPercent, r.String())
	require.Less(t, lossPercent(r.phoneLost, r.phoneFrames), maxLossPercent, r.String())
}
