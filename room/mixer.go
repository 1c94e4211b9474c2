package room

import (
	"sync/atomic"
	"time"

	"github.com/mediagate/mediagate/media"
)

// member is a participant as the room holds it.
type member struct {
	// Fixed at Join.
	p      Participant
	info   Info
	joined time.Time
	shared *stream // the stream it hears while it is a listener
	// ann is the participant as an Announcer, nil if it is none; annFrame
	// holds its announcement of the tick (the mixer's own).
	ann      Announcer
	annFrame *media.Frame
	// native is the participant as a NativeReader, nil if it is none.
	native NativeReader

	// Read by the participant list; written by the mixer or the controls.
	muted    atomic.Bool
	speaking atomic.Bool   // as last published in an event (written under Room.mu)
	level    atomic.Uint32 // RFC 6464 -dBov of the last frame
	dropped  atomic.Uint64

	// Guarded by Room.mu.
	gone      bool
	detachErr error

	// The mixer's own; touched only under Room.tickMu.
	in        media.Frame // this tick's audio (ramped down when fading)
	pending   bool        // native: the tick's frame is read but not yet in in
	nativePCM []int16     // native: the tick's frame as ReadNative returned it, while pending
	// narrowIn is this tick's audio in a narrow tick (mixer.narrow).
	narrowIn   media.NarrowFrame
	native8    bool   // native: its frames come at 8 kHz (learnt from the first one)
	announcing bool   // its Announcer gave a frame this tick (in annFrame)
	annTick    uint64 // last narrow tick it announced in
	vad        vad
	voiced     bool   // speaking (voice active and not muted) this tick
	told       bool   // speaking state last handed to commit
	inMix      bool   // voice selected for the mix this tick
	wasInMix   bool   // inMix last tick
	contrib    bool   // adds to the mix this tick (inMix, or fading out)
	slot       int    // index of its voice in mixer.mix.Voices while contrib
	ownUntil   uint64 // last tick of its own-encoder hangover
	onOwn      bool   // got its own stream last tick
	own        *ownStream
}

// closeOwn releases the member's own encoder; mixer side only.
func (m *member) closeOwn() {
	if m.own != nil {
		m.own.close()
		m.own = nil
	}
}

// mixer is the per-tick state of a room, guarded by Room.tickMu.
type mixer struct {
	closed  bool
	tick    uint64
	gen     uint64
	members []*member
	streams []*stream
	rates   []*rateMix
	leaving []*member
	retired []*stream
	oldRate []*rateMix
	cands   []*member // speaking this tick, before the MaxSpeakers cut
	changes []*member // speaking state changed this tick

	// This tick's contributions (Voices, in slot order), the full mix
	// (mix.Full) and each contributor's mix-minus (mix.Minus[slot]).
	mix    media.Mix
	hist   [primeFrames]media.Frame // the full mixes of the last ticks, by tick % primeFrames
	upTick uint64                   // tick of up's last frame

	// narrow is set for a tick in which every member speaks and listens at
	// 8 kHz (G.711 telephones, each a NativeReader): the tick mixes at 8
	// kHz (mix8), and no voice or mix is resampled, except the full mix up
	// to 48 kHz, once, while the mix has consumers (up), and an
	// announcement down to 8 kHz. wasNarrow is the last tick's; a change
	// resets the resamplers that skipped ticks.
	narrow, wasNarrow bool
	mix8              media.NarrowMix
	up                *media.Resampler
}

// primeFrames is how many past ticks of the full mix an encoder is fed
// (output thrown away) before it takes over a participant's stream after
// being idle. Measured with Opus on a 440 Hz tone: without priming, the
// first frame of a fresh encoder comes out 7 dB low (its look-ahead is
// still empty; TestEncoderSwitch catches that); when a never-used encoder
// takes over, one frame of priming leaves a residual 21 dB below the tone,
// four frames 26 dB, more frames no better; between two warm encoders the
// switch shows about -29 dB against the codec's steady -35 dB. Four encodes
// per switch are little next to what a second of speech costs.
const primeFrames = 4

// history returns the full mix of tick t, for t from tick-primeFrames to
// tick-1 (the slot of tick is rewritten at the end of tick).
func (mx *mixer) history(t uint64) *media.Frame { return &mx.hist[t%primeFrames] }

// Tick runs one 20 ms mixing round at time now: pick up joins and leaves,
// read one frame from each participant, mix, encode, deliver, feed the mix
// consumers, and publish speaking changes. The room's ticker goroutine calls
// it; with WithManualTick the owner does (tests, benchmarks). Steady-state
// ticks allocate nothing. It does nothing once the room is closed, and
// closes the room itself when it has been empty for the grace period.
func (r *Room) Tick(now time.Time) {
	r.tickMu.Lock()
	defer r.tickMu.Unlock()
	mx := &r.mx
	if mx.closed {
		return
	}
	if expired, grace := r.sync(now); expired {
		r.log.Info("room empty past grace period", "grace", grace)
		r.shutdown(ErrRoomClosed)
		return
	}
	mx.tick++
	r.ticks.Add(1)
	if t := r.cfg.totals; t != nil {
		t.ticks.Add(1)
	}
	r.pull()
	r.switchRate()
	r.selectVoices()
	r.mix()
	r.encodeOwn(now)
	r.encodeShared(now)
	if mx.narrow {
		r.widenFull()
	}
	r.fan.push(mx.tick, now, &mx.mix.Full)
	r.commit(now)
	mx.hist[mx.tick%primeFrames] = mx.mix.Full
}

// sync takes over membership changes from the controls and reports whether
// the room has been empty for its grace period, and that period.
func (r *Room) sync(now time.Time) (expired bool, grace time.Duration) {
	mx := &r.mx
	r.mu.Lock()
	if mx.gen != r.gen {
		mx.gen = r.gen
		mx.members = append(mx.members[:0], r.order...)
		mx.leaving = append(mx.leaving[:0], r.departed...)
		clear(r.departed)
		r.departed = r.departed[:0]
		r.pruneLocked()
		mx.streams = append(mx.streams[:0], r.streamList...)
		mx.rates = append(mx.rates[:0], r.rates...)
		if cap(mx.cands) < len(mx.members) {
			mx.cands = make([]*member, 0, len(mx.members))
			mx.changes = make([]*member, 0, len(mx.members))
		}
	}
	if len(r.order) == 0 {
		if r.emptySince.IsZero() {
			r.emptySince = now
		}
		expired = r.cfg.emptyTimeout >= 0 && now.Sub(r.emptySince) >= r.cfg.emptyTimeout
	} else {
		r.emptySince = time.Time{}
	}
	grace = r.cfg.emptyTimeout
	r.mu.Unlock()
	r.release()
	return expired, grace
}

// release detaches members that left and closes streams nobody uses; it
// runs outside Room.mu so Detached may call back into the room.
func (r *Room) release() {
	mx := &r.mx
	for i, m := range mx.leaving {
		m.closeOwn()
		m.p.Detached(m.detachErr)
		mx.leaving[i] = nil
	}
	mx.leaving = mx.leaving[:0]
	for i, st := range mx.retired {
		_ = st.enc.Close()
		mx.retired[i] = nil
	}
	mx.retired = mx.retired[:0]
	for i, rm := range mx.oldRate {
		_ = rm.res.Close()
		mx.oldRate[i] = nil
	}
	mx.oldRate = mx.oldRate[:0]
}

// pull reads one frame from every participant, and its announcement if
// it has one, runs voice activity, and decides whether the tick is narrow.
func (r *Room) pull() {
	mx := &r.mx
	mx.changes = mx.changes[:0]
	narrow := len(mx.members) > 0
	for _, m := range mx.members {
		level := uint8(silentLevel)
		switch {
		case m.native != nil:
			// in is filled by selectVoices if the voice is mixed.
			var pcm []int16
			pcm, m.pending = m.native.ReadNative()
			m.nativePCM = nil
			if m.pending {
				level = frameLevel(pcm)
				m.nativePCM = pcm
				m.native8 = len(pcm) == media.NarrowSamples
			}
		case m.p.ReadFrame(&m.in):
			level = frameLevel(m.in[:])
		default:
			clear(m.in[:])
		}
		m.announcing = m.ann != nil && m.ann.Announcement(m.annFrame)
		narrow = narrow && m.native8 && m.shared.rm != nil && m.shared.rm.rate == media.Rate8k
		m.level.Store(uint32(level))
		m.voiced = m.vad.update(level) && !m.muted.Load()
		if m.voiced != m.told {
			m.told = m.voiced
			mx.changes = append(mx.changes, m)
		}
	}
	mx.wasNarrow, mx.narrow = mx.narrow, narrow
}

// switchRate resets the 48 to 8 kHz resamplers when a narrow stretch
// ends: they skipped its ticks, and their filters must not continue from
// a frame long past.
func (r *Room) switchRate() {
	mx := &r.mx
	if !mx.wasNarrow || mx.narrow {
		return
	}
	for _, rm := range mx.rates {
		rm.res.Reset()
	}
	for _, m := range mx.members {
		if m.own != nil && m.own.res != nil {
			m.own.res.Reset()
		}
	}
}

// widenFull brings a narrow tick's full mix up to 48 kHz for the mix's
// consumers (recorders, egress), or leaves silence when there are none.
func (r *Room) widenFull() {
	mx := &r.mx
	if r.fan.empty() {
		clear(mx.mix.Full[:])
		return
	}
	if mx.up == nil {
		up, err := media.NewResampler(media.Rate8k, media.Rate48k)
		if err != nil {
			r.log.Warn("narrow mix: no resampler", "err", err)
			clear(mx.mix.Full[:])
			return
		}
		mx.up = up
	} else if mx.upTick+1 != mx.tick {
		mx.up.Reset()
	}
	mx.upTick = mx.tick
	if _, err := mx.up.Process(mx.mix8.Full[:], mx.mix.Full[:]); err != nil {
		clear(mx.mix.Full[:])
	}
}

// selectVoices decides whose voice is in the mix: every speaking participant,
// or the loudest MaxSpeakers of them, plus any that left the mix this tick,
// whose last frame fades out so it ends without a click. A media.Mix adds
// up at most media.MaxMixVoices voices, so that is the cap when
// MaxSpeakers is 0 or larger, and voices leaving the mix fade out only
// while there is room beside those in it (otherwise they stop at once);
// with MaxSpeakers up to half of media.MaxMixVoices (the default is 4) both
// always fit.
func (r *Room) selectVoices() {
	mx := &r.mx
	mx.cands = mx.cands[:0]
	for _, m := range mx.members {
		m.inMix = false
		if m.voiced {
			mx.cands = append(mx.cands, m)
		}
	}
	n := len(mx.cands)
	limit := r.cfg.maxSpeakers
	if limit == 0 || limit > media.MaxMixVoices {
		limit = media.MaxMixVoices
	}
	if n > limit {
		// Partial selection sort: the loudest (lowest -dBov) first. n is
		// small and this runs only while too many people talk at once.
		for i := range limit {
			best := i
			for j := i + 1; j < n; j++ {
				if mx.cands[j].level.Load() < mx.cands[best].level.Load() {
					best = j
				}
			}
			mx.cands[i], mx.cands[best] = mx.cands[best], mx.cands[i]
		}
		n = limit
	}
	for _, m := range mx.cands[:n] {
		m.inMix = true
	}
	fading := media.MaxMixVoices - n // slots left for voices fading out
	for _, m := range mx.members {
		m.contrib = m.inMix
		leaving := m.wasInMix && !m.inMix && fading > 0
		if leaving {
			m.contrib = true
			fading--
		}
		switch {
		case !m.contrib:
		case mx.narrow: // every member is native
			if m.pending {
				copy(m.narrowIn[:], m.nativePCM)
			} else {
				clear(m.narrowIn[:])
			}
			if leaving {
				fadeOut(m.narrowIn[:])
			}
		default:
			if m.native != nil {
				if m.pending {
					m.native.To48k(&m.in)
				} else {
					clear(m.in[:])
				}
			}
			if leaving {
				fadeOut(m.in[:])
			}
		}
		m.pending = false
		m.wasInMix = m.inMix
	}
}

// fadeOut ramps f linearly from full level down to silence.
func fadeOut(f []int16) {
	for i := range f {
		f[i] = int16(int32(f[i]) * int32(len(f)-i) / int32(len(f)))
	}
}

// mix hands the contributions to mx.mix, each member's in its slot, and
// runs it once: the full mix and every contributor's mix-minus,
// soft-clipped, in one call. selectVoices keeps the contributors within
// media.MaxMixVoices.
func (r *Room) mix() {
	mx := &r.mx
	n := 0
	for _, m := range mx.members {
		if !m.contrib {
			continue
		}
		m.slot = n
		if mx.narrow {
			mx.mix8.Voices[n] = m.narrowIn
		} else {
			mx.mix.Voices[n] = m.in
		}
		n++
	}
	if mx.narrow {
		mx.mix8.Run(n)
	} else {
		mx.mix.Run(n)
	}
}

// commit publishes this tick's speaking changes, under Room.mu so they fall
// in order with joins, leaves and mutes; a member that left meanwhile
// publishes nothing more.
func (r *Room) commit(now time.Time) {
	mx := &r.mx
	if len(mx.changes) == 0 {
		return
	}
	r.mu.Lock()
	for i, m := range mx.changes {
		mx.changes[i] = nil
		if m.gone || m.speaking.Load() == m.told {
			continue
		}
		m.speaking.Store(m.told)
		t := EventSpeakingStopped
		if m.told {
			t = EventSpeakingStarted
		}
		r.events.publish(t, m.info.ID, now)
	}
	r.mu.Unlock()
	mx.changes = mx.changes[:0]
}

// deliver hands pkt to m without waiting and counts a refusal.
func (r *Room) deliver(m *member, pkt Packet) {
	if !m.p.WriteMix(pkt) {
		m.dropped.Add(1)
		r.dropped.Add(1)
	}
}
