package media

import (
	"encoding/binary"
	"testing"
	"time"
)

// FuzzRFC4733 feeds arbitrary telephone-event packets to the decoder. The
// input is a 4-byte base RTP timestamp followed by records of
// [offset (2 bytes), flags, payload (flags&7 bytes)]; bit 3 of flags is the
// marker. Timestamps stay within 0xFFFF of the base (which may sit next to
// the 32-bit wrap), the span over which events are ordered, so the decoder
// must never report two presses, or two ends, for one timestamp, never panic,
// and fail exactly the payloads shorter than four bytes.
func FuzzRFC4733(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 {
			return
		}
		base := binary.BigEndian.Uint32(data)
		data = data[4:]
		d := NewTelephoneEventDecoder(Rate8k)
		pressed := map[uint32]bool{}
		ended := map[uint32]bool{}
		at := time.Unix(0, 0)
		for len(data) >= 3 {
			ts := base + uint32(binary.BigEndian.Uint16(data))
			flags := data[2]
			n := min(int(flags&7), len(data)-3)
			payload := data[3 : 3+n]
			data = data[3+n:]
			ev, ok, err := d.Decode(ts, flags&8 != 0, payload, at)
			if (err != nil) != (n < TelephoneEventSize) {
				t.Fatalf("payload of %d bytes: err %v", n, err)
			}
			if !ok {
				continue
			}
			if err != nil || !ev.Digit.Valid() || !(ev.Press || ev.End) || ev.Duration < 0 {
				t.Fatalf("bad report %+v, err %v", ev, err)
			}
			if ev.Press {
				if pressed[ev.Timestamp] {
					t.Fatalf("second press for timestamp %#x", ev.Timestamp)
				}
				pressed[ev.Timestamp] = true
			}
			if ev.End {
				if ended[ev.Timestamp] || !pressed[ev.Timestamp] {
					t.Fatalf("end for timestamp %#x: ended before %v, pressed %v",
						ev.Timestamp, ended[ev.Timestamp], pressed[ev.Timestamp])
				}
				ended[ev.Timestamp] = true
			}
		}
	})
}
