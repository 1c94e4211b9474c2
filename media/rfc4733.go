package media

import (
	"fmt"
	"time"
)

// TelephoneEvent is one RFC 4733 §2.3 telephone-event payload: which event,
// whether it has ended, how loud and how long it has lasted so far.
type TelephoneEvent struct {
	// Event is the event code; 0–15 are the DTMF digits (§3.2).
	Event uint8
	// End is the E bit: this packet reports the end of the event (§2.3.2).
	End bool
	// Volume is the tone's power in -dBm0, 0–63 (§2.3.4); larger is quieter.
	Volume uint8
	// Duration is how long the event has lasted, in RTP timestamp units,
	// counted from the packet's RTP timestamp (§2.3.5).
	Duration uint16
}

// TelephoneEventSize is the length of one telephone-event payload (§2.3).
const TelephoneEventSize = 4

// ParseTelephoneEvent decodes the first event of a telephone-event payload.
// Bytes after the first four are ignored: they only occur with RFC 2198
// redundancy, which is unwrapped before this point. A payload shorter than
// four bytes is an error, never a panic, because it comes off the wire.
func ParseTelephoneEvent(payload []byte) (TelephoneEvent, error) {
	if len(payload) < TelephoneEventSize {
		return TelephoneEvent{}, fmt.Errorf("%w: got %d", ErrShortTelephoneEvent, len(payload))
	}
	return TelephoneEvent{
		Event:    payload[0],
		End:      payload[1]&0x80 != 0,
		Volume:   payload[1] & 0x3f, // §2.3.3: the R bit is ignored
		Duration: uint16(payload[2])<<8 | uint16(payload[3]),
	}, nil
}

// Marshal returns the 4-byte wire form of e (§2.3). The R bit is sent as zero
// and Volume is cut to its 6 bits.
func (e TelephoneEvent) Marshal() [TelephoneEventSize]byte {
	b1 := e.Volume & 0x3f
	if e.End {
		b1 |= 0x80
	}
	return [TelephoneEventSize]byte{e.Event, b1, byte(e.Duration >> 8), byte(e.Duration)}
}

// DTMFEvent is what TelephoneEventDecoder reports about one key press.
type DTMFEvent struct {
	// Digit is the key.
	Digit Digit
	// Press is set exactly once per key press, on the first packet seen of
	// it: count presses by this flag.
	Press bool
	// End is set exactly once per key press, when its end is first seen
	// (§2.3.2); Duration is then final. It may come together with Press
	// when every packet before the end was lost.
	End bool
	// LostStart is set with Press when the packet that reported it was not
	// the marked first packet of the event (§2.5.1.2), for loss statistics.
	LostStart bool
	// Timestamp is the RTP timestamp of the event (of its first segment
	// seen, for long events).
	Timestamp uint32
	// Duration is how long the key has been held so far, over all segments.
	Duration time.Duration
	// Volume is the tone's power in -dBm0 from the last packet.
	Volume uint8
	// Arrival is the arrival time of the packet that produced this report.
	Arrival time.Time
}

// TelephoneEventDecoder turns a stream of RFC 4733 telephone-event packets
// into key presses, each reported once however many packets describe it.
// The zero value is not usable; create one with NewTelephoneEventDecoder.
// It does not allocate and is not safe for concurrent use.
//
// A press is reported on the first packet seen of a new event, so an IVR
// reacts after one packet instead of waiting for the key to be released; its
// length follows in a second report when the end arrives. Events are told
// apart by RTP timestamp alone (§2.5.1.2: every packet of an event carries the
// event's timestamp); the marker bit is only used for statistics, because the
// marked start packet is the one a lossy path drops without a retransmission.
type TelephoneEventDecoder struct {
	clockRate  int
	lateWindow uint32

	seen    bool   // an event has been seen since the last Reset
	ts      uint32 // RTP timestamp of the current event's current segment
	firstTS uint32 // RTP timestamp of the current event's first segment seen
	digit   Digit
	ended   bool   // an end packet of the current event was seen
	segDur  uint16 // longest duration seen in the current segment
	earlier uint32 // ticks of the event's earlier segments
	volume  uint8
}

// NewTelephoneEventDecoder returns a decoder for a telephone-event stream
// whose RTP clock runs at clockRate Hz (8000 for most SIP peers, 48000 next
// to Opus in WebRTC); the rate only converts durations to time.
func NewTelephoneEventDecoder(clockRate int) *TelephoneEventDecoder {
	if clockRate <= 0 {
		clockRate = Rate8k
	}
	return &TelephoneEventDecoder{
		clockRate: clockRate,
		// A packet up to 10 s older than the current event is a late
		// packet of an earlier one; a bigger step back means the sender
		// restarted its timestamps, and it starts a new event.
		lateWindow: uint32(10 * clockRate),
	}
}

// Reset forgets the current event, for a new SSRC or a re-negotiated stream.
func (d *TelephoneEventDecoder) Reset() {
	*d = TelephoneEventDecoder{clockRate: d.clockRate, lateWindow: d.lateWindow}
}

// Decode takes one packet of the telephone-event payload type: its RTP
// timestamp and marker bit, its payload and when it arrived. ok is true when
// ev reports something: a new press (ev.Press), the end of a press (ev.End),
// or both. Event codes above 15 are not keys and are ignored without error; a
// payload shorter than four bytes returns ErrShortTelephoneEvent.
func (d *TelephoneEventDecoder) Decode(ts uint32, marker bool, payload []byte, arrival time.Time) (ev DTMFEvent, ok bool, err error) {
	te, err := ParseTelephoneEvent(payload)
	if err != nil {
		return DTMFEvent{}, false, err
	}
	if te.Event >= NumDigits {
		return DTMFEvent{}, false, nil
	}
	digit := Digit(te.Event)
	if d.seen {
		step := ts - d.ts
		switch {
		case step == 0:
			if digit != d.digit {
				return DTMFEvent{}, false, nil // not the event this timestamp names
			}
			return d.update(te, arrival)
		case -step <= d.lateWindow:
			// A late or reordered packet of an event already handled
			// (or of an earlier segment of this one).
			return DTMFEvent{}, false, nil
		case d.continues(digit, step):
			// §2.5.1.3, §2.5.2.3: a long event goes on in a new segment whose
			// timestamp is the old one plus the old segment's duration.
			d.earlier += step
			d.ts, d.segDur = ts, 0
			return d.update(te, arrival)
		}
	}
	*d = TelephoneEventDecoder{
		clockRate: d.clockRate, lateWindow: d.lateWindow,
		seen: true, ts: ts, firstTS: ts, digit: digit,
		segDur: te.Duration, volume: te.Volume, ended: te.End,
	}
	ev = d.event(arrival)
	ev.Press, ev.End, ev.LostStart = true, te.End, !marker
	return ev, true, nil
}

// continues reports whether a packet step timestamp units after the current
// segment is the next segment of the same long event rather than a new press:
// same key, no end seen, and the timestamp right where the current segment
// stopped — at the last duration seen, or at the 0xFFFF limit when the
// segment's final updates were lost.
func (d *TelephoneEventDecoder) continues(digit Digit, step uint32) bool {
	if digit != d.digit || d.ended || d.segDur == 0 {
		return false
	}
	return step == uint32(d.segDur) || step == 0xFFFF
}

// update applies a packet of the current event: durations only grow (a
// reordered update must not shorten the press), and the first end packet
// reports the end; its retransmissions (§2.5.1.4: sent three times) do not.
func (d *TelephoneEventDecoder) update(te TelephoneEvent, arrival time.Time) (DTMFEvent, bool, error) {
	if d.ended {
		return DTMFEvent{}, false, nil
	}
	d.segDur = max(d.segDur, te.Duration)
	d.volume = te.Volume
	if !te.End {
		return DTMFEvent{}, false, nil
	}
	d.ended = true
	ev := d.event(arrival)
	ev.End = true
	return ev, true, nil
}

// event fills the fields every report of the current event shares.
func (d *TelephoneEventDecoder) event(arrival time.Time) DTMFEvent {
	ticks := uint64(d.earlier) + uint64(d.segDur)
	return DTMFEvent{
		Digit:     d.digit,
		Timestamp: d.firstTS,
		Duration:  time.Duration(ticks * uint64(time.Second) / uint64(d.clockRate)),
		Volume:    d.volume,
		Arrival:   arrival,
	}
}

// TelephoneEventPacket is one RTP packet of an outgoing telephone event, as
// TelephoneEventPackets plans it; the caller adds the RTP header.
type TelephoneEventPacket struct {
	// Timestamp is the RTP timestamp: the event's (or segment's) start.
	Timestamp uint32
	// Marker is the RTP marker bit, set on the first packet of the event.
	Marker bool
	// SendAt is when the packet is due, in RTP timestamp units after the
	// first packet.
	SendAt uint32
	// Payload is the telephone-event payload.
	Payload [TelephoneEventSize]byte
}

// TelephoneEventPackets appends to dst the packets that send key d for
// duration timestamp units starting at RTP timestamp ts, one every interval
// units (the audio packetisation, 160 at 8 kHz): a marked start packet,
// updates with growing durations, then the final packet three times with the
// E bit (RFC 4733 §2.5.1.4), spaced by interval so one burst loss cannot take
// all three. An event longer than 0xFFFF units is split into segments
// (§2.5.1.3): a segment's last update carries 0xFFFF and the next segment
// starts at its timestamp plus 0xFFFF. Pass dst with spare capacity to avoid
// allocating. volume is in -dBm0 (10 is usual).
func TelephoneEventPackets(dst []TelephoneEventPacket, d Digit, ts, duration, interval uint32, volume uint8) []TelephoneEventPacket {
	if interval == 0 {
		interval = 160
	}
	duration = max(duration, 1)
	var segStart uint32 // start of the current segment, relative to ts
	add := func(at, segDur uint32, end bool) {
		te := TelephoneEvent{Event: uint8(d), End: end, Volume: volume, Duration: uint16(segDur)}
		dst = append(dst, TelephoneEventPacket{
			Timestamp: ts + segStart,
			SendAt:    at,
			Payload:   te.Marshal(),
		})
	}
	first := len(dst)
	for at := uint32(0); ; at += interval {
		elapsed := min(at+interval, duration)
		for elapsed-segStart > 0xFFFF {
			add(at, 0xFFFF, false)
			segStart += 0xFFFF
		}
		if elapsed == duration {
			for i := range uint32(3) {
				add(at+i*interval, elapsed-segStart, true)
			}
			break
		}
		add(at, elapsed-segStart, false)
	}
	dst[first].Marker = true // §2.5.1.2: the first packet of the event
	return dst
}
