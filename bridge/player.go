package bridge

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mediagate/mediagate/media"
)

// fadeSamples is the length of the fade-out when a prompt is stopped: 4 ms
// at 48 kHz. Cutting speech mid-sample leaves a step the ear hears as a
// click; 4 ms of raised cosine removes it and still ends the prompt at
// once to a caller who typed a digit (well inside the 5 ms the tests allow).
const fadeSamples = 4 * media.Rate48k / 1000

// fadeGain is the fade-out curve in Q15: a raised cosine from just below 1
// to just above 0, computed once.
var fadeGain = func() (g [fadeSamples]int32) {
	for k := range g {
		g[k] = int32(math.Round(32768 * 0.5 * (1 + math.Cos(math.Pi*float64(k+1)/float64(fadeSamples+1)))))
	}
	return g
}()

// DefaultPromptGap is the silence a Player adds after each prompt: prompts
// are trimmed to the speech, and two of them back to back (welcome, then
// the question) would run into each other without a breath between.
const DefaultPromptGap = 300 * time.Millisecond

// Player plays prompts and tones into a call as 20 ms frames at 48 kHz.
// The call's IVR goroutine starts and stops it (ActPlay, ActTone,
// ActStopPrompt) while its media goroutine pulls a frame every 20 ms with
// Next, so the Player is safe for concurrent use; Next allocates nothing.
type Player struct {
	mu  sync.Mutex
	gap int // samples of silence after each prompt

	// busy is active || fadeLeft > 0, kept under mu and read without it:
	// a room asks every caller's player for a frame every tick, and most
	// of them are idle for the whole call.
	busy atomic.Bool

	// The source playing: samples, position, Seq, and how much of the
	// trailing gap is left.
	cur    []int16
	pos    int
	seq    uint64
	tail   int
	active bool

	// A stopped source still fading out: its samples from fadePos on,
	// and how many fade samples are left.
	old      []int16
	oldPos   int
	fadeLeft int

	ended    bool // cur played to its end; Ended has not reported it yet
	endedSeq uint64
	endedC   chan struct{} // a token when ended is set (EndedC)
}

// NewPlayer returns an idle player that adds gap of silence after each
// prompt (DefaultPromptGap is a good choice; 0 for none).
func NewPlayer(gap time.Duration) *Player {
	return &Player{gap: int(gap * media.Rate48k / time.Second), endedC: make(chan struct{}, 1)}
}

// Start plays pcm (48 kHz, e.g. Prompts.Get48k or ConfirmTone) under the
// IVR's Seq seq. A prompt still playing is stopped with the fade of Stop,
// and the new one follows it in the same frame. pcm is only read, never
// kept past the prompt's end.
func (p *Player) Start(pcm []int16, seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopLocked()
	p.cur, p.pos, p.seq, p.tail, p.active = pcm, 0, seq, p.gap, true
	p.busy.Store(true)
}

// Stop ends the prompt playing now with a 4 ms fade-out and without an
// Ended report: the IVR stopped it (ActStopPrompt) and does not wait for
// it. Stopping an idle player does nothing.
func (p *Player) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopLocked()
}

func (p *Player) stopLocked() {
	if !p.active {
		return
	}
	p.active = false
	if p.pos < len(p.cur) {
		p.old, p.oldPos, p.fadeLeft = p.cur, p.pos, fadeSamples
	}
	p.cur = nil
	p.busy.Store(p.fadeLeft > 0)
}

// Next writes the next 20 ms into dst and reports true while the player
// has something to play (prompt, its gap, or a fade); then the call sends
// the room's mix or silence instead. The last frame of a prompt is padded
// with silence. It allocates nothing.
func (p *Player) Next(dst *media.Frame) bool {
	if !p.busy.Load() {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	defer func() { p.busy.Store(p.active || p.fadeLeft > 0) }()
	if !p.active && p.fadeLeft == 0 {
		return false
	}
	i := 0
	for ; i < len(dst) && p.fadeLeft > 0; i++ {
		var s int16
		if p.oldPos < len(p.old) {
			s = p.old[p.oldPos]
			p.oldPos++
		}
		dst[i] = int16(int32(s) * fadeGain[fadeSamples-p.fadeLeft] >> 15)
		p.fadeLeft--
	}
	if p.fadeLeft == 0 {
		p.old = nil
	}
	if p.active {
		n := copy(dst[i:], p.cur[p.pos:])
		p.pos += n
		i += n
		if p.pos == len(p.cur) {
			g := min(len(dst)-i, p.tail)
			clear(dst[i : i+g])
			i += g
			p.tail -= g
			if p.tail == 0 {
				p.active, p.cur = false, nil
				p.ended, p.endedSeq = true, p.seq
				select {
				case p.endedC <- struct{}{}:
				default:
				}
			}
		}
	}
	clear(dst[i:])
	return true
}

// Ended reports, once, the Seq of a prompt that played to its end (gap
// included), for IVR.PromptDone. A stopped prompt is never reported.
func (p *Player) Ended() (seq uint64, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.ended {
		return 0, false
	}
	p.ended = false
	return p.endedSeq, true
}

// EndedC receives when a prompt played to its end, for a caller that
// waits instead of asking Ended at each tick; Ended says which. A token
// can outlive the report it announced (Ended was asked first).
func (p *Player) EndedC() <-chan struct{} { return p.endedC }

// Playing reports whether Next would write prompt audio now.
func (p *Player) Playing() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.active || p.fadeLeft > 0
}

// The mute confirmation tones: two 100 ms beeps 80 ms apart, falling
// (660 → 440 Hz) for muted and rising (440 → 660 Hz) for unmuted, so the
// caller tells them apart without words. Single tones, so no DTMF detector
// mistakes them for a key (a key is two tones at once, ITU-T Q.23); 0.18
// of full scale puts them at about -18 dBFS RMS, the level of the prompts.
const (
	toneLow     = 440
	toneHigh    = 660
	toneAmp     = 0.18
	toneBeep    = 100 * media.Rate48k / 1000
	toneGap     = 80 * media.Rate48k / 1000
	toneRamp    = 5 * media.Rate48k / 1000
	toneSamples = 2*toneBeep + toneGap
)

var (
	toneMuted   = makeTone(toneHigh, toneLow)
	toneUnmuted = makeTone(toneLow, toneHigh)
)

// ConfirmTone returns the mute confirmation tone at 48 kHz, for
// Player.Start on ActTone: falling beeps when muted, rising when unmuted.
// The slice is shared and must not be modified.
func ConfirmTone(muted bool) []int16 {
	if muted {
		return toneMuted[:]
	}
	return toneUnmuted[:]
}

// makeTone renders two beeps with 5 ms raised-cosine ramps, so they start
// and end without clicks.
func makeTone(f1, f2 float64) *[toneSamples]int16 {
	var t [toneSamples]int16
	beep := func(off int, f float64) {
		for i := range toneBeep {
			g := 1.0
			if i < toneRamp {
				g = 0.5 * (1 - math.Cos(math.Pi*float64(i)/toneRamp))
			} else if j := toneBeep - 1 - i; j < toneRamp {
				g = 0.5 * (1 - math.Cos(math.Pi*float64(j)/toneRamp))
			}
			v := toneAmp * 32767 * g * math.Sin(2*math.Pi*f*float64(i)/media.Rate48k)
			t[off+i] = int16(math.Round(v))
		}
	}
	beep(0, f1)
	beep(toneBeep+toneGap, f2)
	return &t
}
