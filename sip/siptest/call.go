package siptest

import (
	"context"
	"fmt"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
)

// Rate is the sample rate of the PCM the call plays and records: 8000 for
// G.711, 16000 for G.722, 48000 for Opus.
func (c *Call) Rate() int { return c.media.codec.rate }

// Play sends pcm (mono, at Rate) from the next 20 ms frame on, in place of
// what was sent before; loop repeats it, otherwise silence follows.
func (c *Call) Play(pcm []int16, loop bool) {
	m := c.media
	m.mu.Lock()
	defer m.mu.Unlock()
	m.source, m.loop, m.pos, m.tone = pcm, loop, 0, nil
}

// PlayTone sends a sine of freq Hz with peak amp (0..1 of full scale) from
// the next frame on, until Play replaces it.
func (c *Call) PlayTone(freq, amp float64) {
	m := c.media
	m.mu.Lock()
	defer m.mu.Unlock()
	m.source, m.tone = nil, &mediatest.Tone{Freq: freq, Amp: amp, Rate: m.codec.rate}
}

// Press keys keys (0-9, *, #, A-D) one after the other, each held for
// KeyDuration and followed by KeyGap, sent the ways how names: with
// RFC4733|INFO each press goes both as telephone events and as an INFO
// request, as some phones do. It returns when the last key's gap is over,
// or with ctx's error. RFC4733 needs a call whose answer accepted
// telephone-event.
func (c *Call) Press(ctx context.Context, keys string, how Method) error {
	if how&RFC4733 != 0 && !c.te {
		return fmt.Errorf("siptest: press %q: the answer has no telephone-event", keys)
	}
	c.pressMu.Lock()
	defer c.pressMu.Unlock()
	for _, k := range keys {
		d, err := media.ParseDigit(k)
		if err != nil {
			return fmt.Errorf("siptest: press: %w", err)
		}
		job := keyJob{digit: d, how: how, done: make(chan struct{})}
		select {
		case c.media.keys <- job:
		case <-c.media.stop:
			return fmt.Errorf("siptest: press %q: call closed", keys)
		case <-ctx.Done():
			return fmt.Errorf("siptest: press %q: %w", keys, ctx.Err())
		}
		if how&INFO != 0 {
			if err := c.SendInfo(ctx, k, KeyDuration); err != nil {
				return err
			}
		}
		select {
		case <-job.done:
		case <-c.media.stop:
			return fmt.Errorf("siptest: press %q: call closed", keys)
		case <-ctx.Done():
			return fmt.Errorf("siptest: press %q: %w", keys, ctx.Err())
		}
	}
	return nil
}

// Received is how many samples (at Rate) the call has received so far,
// concealed ones included.
func (c *Call) Received() int {
	m := c.media
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.got)
}

// Packets is how many audio packets the call has received.
func (c *Call) Packets() int {
	m := c.media
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.packets
}

// WaitSamples waits until the call has received n samples, or ctx ends.
func (c *Call) WaitSamples(ctx context.Context, n int) error {
	m := c.media
	for {
		m.mu.Lock()
		have, changed := len(m.got), m.changed
		m.mu.Unlock()
		if have >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("siptest: %d of %d samples: %w", have, n, ctx.Err())
		}
	}
}

// PCM returns a copy of the received samples [from, to).
func (c *Call) PCM(from, to int) []int16 {
	m := c.media
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]int16(nil), m.got[from:to]...)
}

// Last returns a copy of up to the last n samples received.
func (c *Call) Last(n int) []int16 {
	m := c.media
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]int16(nil), m.got[max(len(m.got)-n, 0):]...)
}

// Err is the first failure of the call's media (an encoder that could not
// be made, say), nil while all is well.
func (c *Call) Err() error {
	m := c.media
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}
