package media

import "time"

// PlayoutStatus says where the samples of a frame from Playout came from.
type PlayoutStatus uint8

const (
	// PlayoutDecoded means the frame was decoded from received packets.
	PlayoutDecoded PlayoutStatus = iota
	// PlayoutConcealed means (part of) the frame stands in for a lost
	// packet: Opus FEC from the next packet, or the codec's PLC.
	PlayoutConcealed
	// PlayoutSilence means (part of) the frame is silence: the buffer had
	// nothing to play (start, underrun, DTX), or the sender marked the
	// packet silent (Packet.Silent).
	PlayoutSilence
)

// String names the status for logs and test failures.
func (s PlayoutStatus) String() string {
	switch s {
	case PlayoutConcealed:
		return "concealed"
	case PlayoutSilence:
		return "silence"
	default:
		return "decoded"
	}
}

// maxPopsPerFrame bounds the packets one frame may take (2.5 ms Opus
// packets need 8), so a misbehaving decoder cannot spin the mixer tick.
const maxPopsPerFrame = 8

// Playout turns a JitterBuffer's packets into PCM frames with a Decoder:
// it decodes what arrived, conceals what was lost (handing the codec the
// next packet for FEC when there is one) and plays silence when there is
// nothing. Packets longer than a frame are decoded once and played over
// several frames; shorter ones are gathered until a frame is full.
//
// Packets marked Silent are played as silence without the decoder, which
// is most of a silent participant's cost. The decoder's state is then
// behind the stream: the next packet decoded resets it first (when the
// Decoder is a Resetter), and a packet lost meanwhile is silence, not
// concealment extrapolated from the last sound decoded. Like its Decoder
// it is used by one goroutine, the mixer's.
type Playout struct {
	jb      *JitterBuffer
	dec     Decoder
	frame   int     // samples per 20 ms at dec.Rate()
	buf     []int16 // decoder output, room for the longest packet
	rem     []int16 // decoded samples not played yet, within buf
	frameTS int64
	behind  bool // silent packets were skipped since the last decode
}

// Resetter is a Decoder that can forget its state, as after the packets
// Playout skipped.
type Resetter interface {
	Reset() error
}

// NewPlayout returns a playout that pulls from jb and decodes with dec.
// It does not own either; the caller closes dec.
func NewPlayout(jb *JitterBuffer, dec Decoder) *Playout {
	frame := SamplesPerFrame(dec.Rate())
	return &Playout{
		jb:      jb,
		dec:     dec,
		frame:   frame,
		buf:     make([]int16, maxFrameSpan*frame),
		frameTS: jb.frameTS,
	}
}

// NextFrame fills pcm with the next 20 ms at the decoder's rate (or as
// much of it as pcm holds) and returns the number of samples written and
// where they came from. It is called once per mixer tick with the tick's
// time and allocates nothing.
func (p *Playout) NextFrame(now time.Time, pcm []int16) (int, PlayoutStatus) {
	n := min(len(pcm), p.frame)
	filled := copy(pcm[:n], p.rem)
	p.rem = p.rem[filled:]
	status := PlayoutDecoded
	var concealed, decodeErrors, undecoded uint64
pull:
	for pops := 0; filled < n && pops < maxPopsPerFrame; pops++ {
		r := p.jb.Pop(now)
		var k int
		switch {
		case r.Kind == PopEmpty:
			break pull
		case r.Kind == PopFrame && r.Silent:
			k = p.silence(r.Duration)
			undecoded++
			status = max(status, PlayoutSilence)
		case r.Kind == PopFrame:
			p.catchUp()
			var err error
			k, err = p.dec.Decode(r.Payload, p.buf)
			if err != nil || k <= 0 || k > len(p.buf) {
				decodeErrors++
				k = p.conceal(nil, r.Duration)
				concealed++
				status = max(status, PlayoutConcealed)
			}
		case r.Kind == PopLost && p.behind:
			// Concealing would extrapolate from before the silence.
			k = p.silence(r.Duration)
			concealed++
			status = max(status, PlayoutConcealed)
		case r.Kind == PopLost:
			// FEC when the next packet is here (Opus), PLC otherwise.
			k = p.conceal(r.Next, r.Duration)
			concealed++
			status = max(status, PlayoutConcealed)
		}
		took := copy(pcm[filled:n], p.buf[:k])
		filled += took
		p.rem = p.buf[took:k]
	}
	if filled < n {
		clear(pcm[filled:n])
		status = PlayoutSilence
	}
	if concealed > 0 || decodeErrors > 0 || undecoded > 0 {
		p.jb.countPlayout(concealed, decodeErrors, undecoded)
	}
	return n, status
}

// samples is how many samples dur timestamp units are at the decoder's
// rate (a frame when dur is 0), within p.buf.
func (p *Playout) samples(dur uint32) int {
	want := p.frame
	if dur > 0 {
		want = int(int64(dur) * int64(p.frame) / p.frameTS)
	}
	return min(max(want, 1), len(p.buf))
}

// silence writes dur's worth of silence to p.buf for a packet not
// decoded, and notes that the decoder is behind.
func (p *Playout) silence(dur uint32) int {
	k := p.samples(dur)
	clear(p.buf[:k])
	p.behind = true
	return k
}

// catchUp resets a decoder that skipped packets before it decodes again.
func (p *Playout) catchUp() {
	if !p.behind {
		return
	}
	p.behind = false
	if r, ok := p.dec.(Resetter); ok {
		_ = r.Reset() // a decoder that cannot reset decodes on from where it was
	}
}

// conceal asks the decoder for the dur timestamp units of a lost packet
// and returns the samples written to p.buf; silence if it cannot.
func (p *Playout) conceal(next []byte, dur uint32) int {
	want := p.samples(dur)
	k, err := p.dec.Conceal(next, p.buf[:want])
	if err != nil || k <= 0 || k > want {
		clear(p.buf[:want])
		k = want
	}
	return k
}
