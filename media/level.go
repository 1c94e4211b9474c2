package media

import (
	"math"
	"time"
)

// SilenceDBFS is the level reported for digital silence. It is the bottom of
// the RFC 6464 audio-level range (-127 dBov), well under the -90 dBFS a
// single 16-bit LSB gives, so silence sorts below any sound.
const SilenceDBFS = -127.0

// Level is the loudness of one frame of audio.
type Level struct {
	// RMS is the root-mean-square level in dBFS, where 0 dBFS is a
	// full-scale square wave (so a full-scale sine is -3 dBFS). This is the
	// dBov of ITU-T G.100.1 that RFC 6464 audio levels use.
	RMS float64
	// Peak is the largest absolute sample in dBFS.
	Peak float64
}

// MeasureLevel returns the RMS and peak level of pcm at any sample rate.
// It does not allocate.
func MeasureLevel(pcm []int16) Level {
	if len(pcm) == 0 {
		return Level{RMS: SilenceDBFS, Peak: SilenceDBFS}
	}
	var sum int64
	var peak int32
	for _, s := range pcm {
		v := int32(s)
		sum += int64(v * v)
		if v < 0 {
			v = -v
		}
		peak = max(peak, v)
	}
	return Level{
		RMS:  toDBFS(10 * math.Log10(float64(sum)/(float64(len(pcm))*32768*32768))),
		Peak: toDBFS(20 * math.Log10(float64(peak)/32768)),
	}
}

// toDBFS clamps a level to [SilenceDBFS, 0]; log10(0) is -Inf.
func toDBFS(db float64) float64 { return math.Max(SilenceDBFS, math.Min(0, db)) }

// AudioLevel returns the level as an RFC 6464 §3 audio level: 0–127 meaning
// 0 to -127 dBov, 127 for silence, ready for the RTP header extension and
// for telling the loudest speakers apart.
func (l Level) AudioLevel() uint8 {
	return uint8(math.Round(-toDBFS(l.RMS)))
}

// LevelMeter follows a stream's loudness for display: the smoothed level
// rises at once with a louder frame and falls by at most 20 dB per second,
// as a peak programme meter does, so a level bar does not flicker between
// syllables. It does not allocate and is not safe for concurrent use.
type LevelMeter struct {
	rate   int
	level  float64 // smoothed RMS level, dBFS
	last   Level
	primed bool
}

// levelMeterFallDBPerSecond is how fast the smoothed level may fall.
const levelMeterFallDBPerSecond = 20

// levelMeterRangeDB is the range Normalized maps onto 0..1: quieter than
// -60 dBFS shows as an empty bar.
const levelMeterRangeDB = 60

// NewLevelMeter returns a meter for PCM at rate Hz.
func NewLevelMeter(rate int) *LevelMeter {
	return &LevelMeter{rate: max(rate, 1), level: SilenceDBFS}
}

// Update measures one frame, moves the smoothed level and returns the
// frame's own level.
func (m *LevelMeter) Update(pcm []int16) Level {
	l := MeasureLevel(pcm)
	fall := levelMeterFallDBPerSecond * float64(len(pcm)) / float64(m.rate)
	if !m.primed || l.RMS >= m.level {
		m.level = l.RMS
	} else {
		m.level = math.Max(l.RMS, m.level-fall)
	}
	m.primed, m.last = true, l
	return l
}

// Last returns the level of the last frame measured.
func (m *LevelMeter) Last() Level { return m.last }

// DBFS returns the smoothed RMS level in dBFS.
func (m *LevelMeter) DBFS() float64 { return m.level }

// Normalized returns the smoothed level on a 0..1 scale (0 at -60 dBFS or
// below, 1 at full scale), for a level bar.
func (m *LevelMeter) Normalized() float64 {
	return math.Max(0, 1+m.level/levelMeterRangeDB)
}

// VAD defaults. Voice must stand vadStartMarginDB above the noise floor (and
// above vadMinSpeechDBFS) to start counting as speech, and vadHoldMarginDB to
// keep counting while the speaker is active, so a talker fading at the end of
// a sentence is not cut in mid-word.
const (
	vadDefaultAttack   = 40 * time.Millisecond
	vadDefaultHangover = 300 * time.Millisecond
	vadStartMarginDB   = 10
	vadHoldMarginDB    = 6
	vadMinSpeechDBFS   = -50
	// The noise floor is the quietest frame of the last vadFloorWindows
	// windows of vadFloorWindow each (minimum statistics): between words
	// and sentences a talker always pauses within about two seconds,
	// while steady noise (a fan, hiss, a hum) never drops below itself.
	vadFloorWindow  = 400 * time.Millisecond
	vadFloorWindows = 5
	// vadInitialFloorDBFS is the floor assumed before any audio: a quiet
	// line, so a participant who starts talking at once is heard.
	vadInitialFloorDBFS = -70
)

// VAD is an energy-based voice activity detector for one participant, so the
// mixer can tell who is speaking. A frame is voice when its RMS level stands
// clearly above an adaptive noise floor; the participant becomes active after
// the attack time of voice in a row (a click or a cough-length spike does not
// count) and stays active until the hangover time without voice (so pauses
// between words do not toggle it). Frames may have any length and rate, but
// 20 ms frames give the intended time resolution. It does not allocate and is
// not safe for concurrent use.
type VAD struct {
	rate     int
	attack   int // samples of voice needed to become active
	hangover int // samples without voice before becoming inactive
	subLen   int // samples per noise-floor window

	mins   [vadFloorWindows]float64 // quietest frame of each past window
	next   int                      // index in mins of the oldest window
	subMin float64                  // quietest frame of the current window
	subN   int                      // samples in the current window
	floor  float64

	voiced int // samples of voice in a row
	quiet  int // samples without voice in a row
	active bool
	level  Level
}

// VADOption changes a VAD default.
type VADOption func(*VAD)

// WithVADAttack sets how long voice must last before the participant counts
// as speaking (default 40 ms).
func WithVADAttack(d time.Duration) VADOption {
	return func(v *VAD) { v.attack = durationSamples(d, v.rate) }
}

// WithVADHangover sets how long a speaking participant stays active after
// the voice stops (default 300 ms).
func WithVADHangover(d time.Duration) VADOption {
	return func(v *VAD) { v.hangover = durationSamples(d, v.rate) }
}

// durationSamples converts a duration to a sample count at rate.
func durationSamples(d time.Duration, rate int) int {
	return int(int64(d) * int64(rate) / int64(time.Second))
}

// NewVAD returns a detector for PCM at rate Hz (Rate48k for media.Frame).
func NewVAD(rate int, opts ...VADOption) *VAD {
	v := &VAD{rate: max(rate, 1)}
	v.attack = durationSamples(vadDefaultAttack, v.rate)
	v.hangover = durationSamples(vadDefaultHangover, v.rate)
	for _, o := range opts {
		o(v)
	}
	v.subLen = max(durationSamples(vadFloorWindow, v.rate), 1)
	v.Reset()
	return v
}

// Reset forgets the noise floor and the activity, for a new call.
func (v *VAD) Reset() {
	for i := range v.mins {
		v.mins[i] = vadInitialFloorDBFS
	}
	v.next, v.subMin, v.subN = 0, 0, 0
	v.floor = vadInitialFloorDBFS
	v.voiced, v.quiet, v.active = 0, 0, false
	v.level = Level{RMS: SilenceDBFS, Peak: SilenceDBFS}
}

// Process takes the next frame and returns whether the participant is
// speaking after it.
func (v *VAD) Process(pcm []int16) bool {
	if len(pcm) == 0 {
		return v.active
	}
	v.level = MeasureLevel(pcm)
	v.trackFloor(v.level.RMS, len(pcm))
	margin := float64(vadStartMarginDB)
	if v.active {
		margin = vadHoldMarginDB
	}
	if v.level.RMS >= math.Max(v.floor+margin, vadMinSpeechDBFS) {
		v.voiced += len(pcm)
		v.quiet = 0
		if v.voiced >= v.attack {
			v.active = true
		}
	} else {
		v.voiced = 0
		v.quiet += len(pcm)
		if v.quiet >= v.hangover {
			v.active = false
		}
	}
	return v.active
}

// trackFloor adds a frame's level to the minimum statistics and updates the
// noise floor.
func (v *VAD) trackFloor(db float64, n int) {
	if v.subN == 0 || db < v.subMin {
		v.subMin = db
	}
	v.subN += n
	if v.subN >= v.subLen {
		v.mins[v.next] = v.subMin
		v.next = (v.next + 1) % len(v.mins)
		v.subN = 0
	}
	floor := v.subMin
	if v.subN == 0 {
		floor = 0 // the window just closed is already in mins
	}
	for _, m := range v.mins {
		floor = math.Min(floor, m)
	}
	v.floor = floor
}

// Active reports whether the participant is speaking.
func (v *VAD) Active() bool { return v.active }

// Level returns the level of the last frame, so the mixer can rank active
// speakers by loudness.
func (v *VAD) Level() Level { return v.level }

// NoiseFloor returns the current noise-floor estimate in dBFS.
func (v *VAD) NoiseFloor() float64 { return v.floor }
