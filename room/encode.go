package room

import (
	"fmt"
	"time"

	"github.com/mediagate/mediagate/media"
)

// maxPayload is the largest payload one 20 ms frame may need: 16-bit linear
// PCM at 48 kHz (1920 bytes) is more than Opus's 1275 (RFC 6716 §3.2.1) or
// G.711's and G.722's 160.
const maxPayload = 2 * media.FrameSamples

// stream is the shared full-mix stream of one Format: one encoder whose
// payload every listener of that Format gets each tick.
type stream struct {
	format Format
	enc    media.Encoder
	rm     *rateMix // nil when the encoder takes 48 kHz
	refs   int      // members whose Format it is; Room.mu

	// Mixer side.
	listeners int    // listeners this tick
	last      uint64 // tick of the last encode, to notice a resume
	payload   []byte // this tick's payload, nil when encoding failed
	buf       []byte
	warned    bool
}

// rateMix is the full mix resampled to one codec rate, once per tick for
// every stream at that rate (PCMU and PCMA share the 8 kHz one).
type rateMix struct {
	rate int
	res  *media.Resampler
	refs int // streams at this rate; Room.mu

	// Mixer side.
	pcm  []int16              // this tick's full mix at rate
	hist [primeFrames][]int16 // the last ticks', by tick % primeFrames
}

// ownStream is a participant's own encoder for its mix-minus.
type ownStream struct {
	enc media.Encoder
	res *media.Resampler // nil when the encoder takes 48 kHz
	pcm []int16          // the mix-minus at the encoder's rate, when res != nil
	buf []byte
}

func (o *ownStream) close() {
	_ = o.enc.Close()
	if o.res != nil {
		_ = o.res.Close()
	}
}

// streamLocked returns the shared stream of f, creating its encoder (and the
// full-mix resampler for its rate) on first use. Room.mu is held.
func (r *Room) streamLocked(f Format) (*stream, error) {
	if st := r.streams[f]; st != nil {
		return st, nil
	}
	enc, err := r.cfg.factory(f)
	if err != nil {
		return nil, err
	}
	st := &stream{format: f, enc: enc, buf: make([]byte, maxPayload)}
	if rate := enc.Rate(); rate != media.Rate48k {
		if st.rm, err = r.rateLocked(rate); err != nil {
			_ = enc.Close()
			return nil, err
		}
		st.rm.refs++
	}
	r.streams[f] = st
	r.streamList = append(r.streamList, st)
	r.gen++
	return st, nil
}

// rateLocked returns the full-mix resampler to rate, creating it on first
// use. Room.mu is held.
func (r *Room) rateLocked(rate int) (*rateMix, error) {
	for _, rm := range r.rates {
		if rm.rate == rate {
			return rm, nil
		}
	}
	res, err := media.NewResampler(media.Rate48k, rate)
	if err != nil {
		return nil, err
	}
	n := media.SamplesPerFrame(rate)
	rm := &rateMix{rate: rate, res: res, pcm: make([]int16, n)}
	for i := range rm.hist {
		rm.hist[i] = make([]int16, n)
	}
	r.rates = append(r.rates, rm)
	return rm, nil
}

// pruneLocked retires the streams and resamplers nobody uses any more; the
// mixer closes them outside the lock. Room.mu is held.
func (r *Room) pruneLocked() {
	mx := &r.mx
	kept := r.streamList[:0]
	for _, st := range r.streamList {
		if st.refs > 0 {
			kept = append(kept, st)
			continue
		}
		delete(r.streams, st.format)
		mx.retired = append(mx.retired, st)
		if st.rm != nil {
			st.rm.refs--
		}
	}
	clear(r.streamList[len(kept):])
	r.streamList = kept
	keptRates := r.rates[:0]
	for _, rm := range r.rates {
		if rm.refs > 0 {
			keptRates = append(keptRates, rm)
		} else {
			mx.oldRate = append(mx.oldRate, rm)
		}
	}
	clear(r.rates[len(keptRates):])
	r.rates = keptRates
}

// newOwnStream builds m's own encoder (and resampler) for its mix-minus.
func (r *Room) newOwnStream(f Format) (*ownStream, error) {
	enc, err := r.cfg.factory(f)
	if err != nil {
		return nil, err
	}
	o := &ownStream{enc: enc, buf: make([]byte, maxPayload)}
	if rate := enc.Rate(); rate != media.Rate48k {
		if o.res, err = media.NewResampler(media.Rate48k, rate); err != nil {
			_ = enc.Close()
			return nil, err
		}
		o.pcm = make([]int16, media.SamplesPerFrame(rate))
	}
	return o, nil
}

// encodeOwn gives every participant on its own stream its mix-minus, and
// counts the listeners of each shared stream. A participant is on its own
// stream while its voice is in the mix or it announces (see Announcer),
// and for the encoder hangover after.
func (r *Room) encodeOwn(now time.Time) {
	mx := &r.mx
	for _, m := range mx.members {
		announcing := m.announcing
		if m.contrib || announcing {
			m.ownUntil = mx.tick + uint64(r.cfg.encoderHangover)
		}
		if !r.cfg.perListener && mx.tick > m.ownUntil {
			m.onOwn = false
			m.shared.listeners++
			continue
		}
		if m.own == nil {
			own, err := r.newOwnStream(m.info.Format)
			if err != nil {
				r.fail(m, fmt.Errorf("own encoder for %s: %w", m.info.Format, err))
				continue
			}
			m.own = own
		}
		if !m.onOwn && !mx.narrow {
			r.primeOwn(m.own)
		}
		m.onOwn = true
		var n int
		var err error
		if mx.narrow {
			src := mx.mix8.Full[:]
			if m.contrib {
				src = mx.mix8.Minus[m.slot][:]
			}
			if announcing {
				src = r.narrowAnnouncement(m, src)
			}
			r.countEncode(false)
			n, err = m.own.enc.Encode(src, m.own.buf)
		} else {
			src := &mx.mix.Full
			if m.contrib {
				src = &mx.mix.Minus[m.slot]
			}
			if announcing {
				overlay(m.annFrame[:], src[:])
				src = m.annFrame
			}
			n, err = r.encodeOwnFrame(m.own, src)
		}
		if err != nil {
			r.fail(m, fmt.Errorf("encode mix-minus as %s: %w", m.info.Format, err))
			continue
		}
		r.deliver(m, Packet{Payload: m.own.buf[:n], Tick: mx.tick, Time: now})
	}
}

// narrowAnnouncement brings m's announcement of a narrow tick down to 8
// kHz with its own stream's resampler, continuous over the announcement's
// ticks, and lays mix under it, in o.pcm, which it returns.
func (r *Room) narrowAnnouncement(m *member, mix []int16) []int16 {
	o := m.own
	if o.res == nil || len(o.pcm) != len(mix) {
		return mix // not an 8 kHz stream: cannot happen in a narrow tick
	}
	if m.annTick+1 != r.mx.tick {
		o.res.Reset()
	}
	m.annTick = r.mx.tick
	if _, err := o.res.Process(m.annFrame[:], o.pcm); err != nil {
		return mix
	}
	overlay(o.pcm, mix)
	return o.pcm
}

// primeOwn gets an own stream that was idle ready to take over: it is fed
// what the participant heard over the last ticks (its voice was not in the
// mix then, so the full mix was its mix-minus), and the payloads are thrown
// away, so its look-ahead, filter and resampler state continue the stream
// the participant's decoder has been playing.
func (r *Room) primeOwn(o *ownStream) {
	mx := &r.mx
	if o.res != nil {
		o.res.Reset()
	}
	for k := uint64(primeFrames); k >= 1; k-- {
		if mx.tick > k {
			_, _ = r.encodeOwnFrame(o, mx.history(mx.tick-k))
		}
	}
}

// encodeOwnFrame resamples (if needed) and encodes src with o's encoder.
func (r *Room) encodeOwnFrame(o *ownStream, src *media.Frame) (int, error) {
	pcm := src[:]
	if o.res != nil {
		if _, err := o.res.Process(pcm, o.pcm); err != nil {
			return 0, err
		}
		pcm = o.pcm
	}
	r.countEncode(false)
	return o.enc.Encode(pcm, o.buf)
}

// encodeShared resamples the full mix once per rate, encodes it once per
// Format that has listeners this tick, and hands each listener its
// Format's payload.
func (r *Room) encodeShared(now time.Time) {
	mx := &r.mx
	for _, rm := range mx.rates {
		if mx.narrow && rm.rate == media.Rate8k {
			copy(rm.pcm, mx.mix8.Full[:])
			continue
		}
		// Every tick, listened to or not, so the filter history stays
		// continuous and priming has the past frames at hand.
		if _, err := rm.res.Process(mx.mix.Full[:], rm.pcm); err != nil {
			clear(rm.pcm)
		}
	}
	for _, st := range mx.streams {
		st.payload = nil
		if st.listeners == 0 {
			continue
		}
		if st.last+1 != mx.tick {
			r.primeShared(st)
		}
		pcm := mx.mix.Full[:]
		if st.rm != nil {
			pcm = st.rm.pcm
		}
		st.last = mx.tick
		r.countEncode(true)
		n, err := st.enc.Encode(pcm, st.buf)
		if err != nil {
			if !st.warned {
				st.warned = true
				r.log.Warn("shared encode failed", "format", st.format.String(), "err", err)
			}
			continue
		}
		st.payload = st.buf[:n]
	}
	for _, m := range mx.members {
		if m.onOwn || m.shared.payload == nil {
			continue
		}
		r.deliver(m, Packet{Payload: m.shared.payload, Tick: mx.tick, Time: now, Shared: true})
	}
	for _, st := range mx.streams {
		st.listeners = 0
	}
	for _, rm := range mx.rates {
		copy(rm.hist[mx.tick%primeFrames], rm.pcm)
	}
}

// primeShared gets a shared stream nobody listened to last tick ready, as
// primeOwn does for own streams; its resampler ran all along.
func (r *Room) primeShared(st *stream) {
	mx := &r.mx
	for k := uint64(primeFrames); k >= 1; k-- {
		if mx.tick <= k {
			continue
		}
		t := mx.tick - k
		pcm := mx.history(t)[:]
		if st.rm != nil {
			pcm = st.rm.hist[t%primeFrames]
		}
		r.countEncode(true)
		_, _ = st.enc.Encode(pcm, st.buf)
	}
}

// fail removes a participant whose own encoder broke; it is detached with
// err at the next tick.
func (r *Room) fail(m *member, err error) {
	m.onOwn = false
	r.log.Warn("participant removed", "participant", string(m.info.ID), "err", err)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !m.gone && !r.closed {
		r.removeLocked(m, err)
	}
}
