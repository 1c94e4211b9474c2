package media

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDigitParseAndString(t *testing.T) {
	for i, r := range "0123456789*#ABCD" {
		d, err := ParseDigit(r)
		require.NoError(t, err)
		require.Equal(t, Digit(i), d, "RFC 4733 §3.2 event code of %q", r)
		require.Equal(t, string(r), d.String())
		require.Equal(t, r, d.Rune())
	}
	d, err := ParseDigit('b')
	require.NoError(t, err)
	require.Equal(t, DigitB, d)
	for _, r := range []rune{'E', 'e', ' ', 'x', '+', '٣'} {
		_, err := ParseDigit(r)
		require.ErrorIs(t, err, ErrInvalidDigit, "%q", r)
	}
	require.Equal(t, "Digit(16)", Digit(16).String())
}

func TestDTMFTone(t *testing.T) {
	for d := range Digit(NumDigits) {
		low, high := d.Frequencies()
		whole := make([]int16, 800)
		DTMFTone(d, Rate8k, whole, 0, 0.5)
		// Each tone at half the peak: 0.25 of full scale, -12 dB.
		require.InDelta(t, -12.04, toneDB(whole, float64(low), Rate8k), 0.3, "%v low", d)
		require.InDelta(t, -12.04, toneDB(whole, float64(high), Rate8k), 0.3, "%v high", d)
		for _, f := range append(dtmfRowHz[:], dtmfColHz[:]...) {
			if f != low && f != high {
				require.Less(t, toneDB(whole, float64(f), Rate8k), -30.0, "%v at %d Hz", d, f)
			}
		}
		// Frame by frame with advancing offsets gives the same samples.
		framed := make([]int16, 800)
		for off := 0; off < len(framed); off += 160 {
			DTMFTone(d, Rate8k, framed[off:off+160], off, 0.5)
		}
		require.Equal(t, whole, framed)
	}
	pcm := []int16{1, 2, 3}
	DTMFTone(Digit(20), Rate8k, pcm, 0, 0.5)
	require.Equal(t, []int16{0, 0, 0}, pcm, "an invalid digit writes silence")
}

func TestTelephoneEventParse(t *testing.T) {
	te, err := ParseTelephoneEvent([]byte{11, 0x80 | 0x40 | 10, 0x03, 0x20, 0xff})
	require.NoError(t, err)
	// §2.3: event 11 (#), E bit, R bit ignored, volume 10, duration 800.
	require.Equal(t, TelephoneEvent{Event: 11, End: true, Volume: 10, Duration: 800}, te)
	b := te.Marshal()
	require.Equal(t, [4]byte{11, 0x80 | 10, 0x03, 0x20}, b, "R bit sent as zero")
	for n := range 4 {
		_, err := ParseTelephoneEvent(make([]byte, n))
		require.ErrorIs(t, err, ErrShortTelephoneEvent, "%d bytes", n)
	}
}

// tePacket is one telephone-event packet as a test feeds it to the decoder.
type tePacket struct {
	ts      uint32
	marker  bool
	payload []byte
}

// teRaw builds a packet by hand.
func teRaw(ts uint32, marker bool, event uint8, end bool, dur uint16) tePacket {
	b := TelephoneEvent{Event: event, End: end, Volume: 10, Duration: dur}.Marshal()
	return tePacket{ts: ts, marker: marker, payload: b[:]}
}

// teKey returns the packets TelephoneEventPackets plans for one key press.
func teKey(d Digit, ts, duration uint32) []tePacket {
	var out []tePacket
	for _, p := range TelephoneEventPackets(nil, d, ts, duration, 160, 10) {
		out = append(out, tePacket{ts: p.Timestamp, marker: p.Marker, payload: p.Payload[:]})
	}
	return out
}

// teReport summarises what a decoder reported about one press.
type teReport struct {
	digit Digit
	ts    uint32
	ended bool
	dur   time.Duration
}

// decodeAll feeds packets to a fresh 8 kHz decoder and returns one report per
// press, with the end folded in, and the number of Press and End flags seen.
func decodeAll(t *testing.T, pkts []tePacket) (reports []teReport, presses, ends int) {
	t.Helper()
	d := NewTelephoneEventDecoder(Rate8k)
	at := time.Unix(0, 0)
	for _, p := range pkts {
		ev, ok, err := d.Decode(p.ts, p.marker, p.payload, at)
		require.NoError(t, err)
		if !ok {
			continue
		}
		require.Equal(t, at, ev.Arrival)
		if ev.Press {
			presses++
			reports = append(reports, teReport{digit: ev.Digit, ts: ev.Timestamp})
		}
		if ev.End {
			ends++
			require.NotEmpty(t, reports, "end before any press")
			last := &reports[len(reports)-1]
			require.Equal(t, last.ts, ev.Timestamp, "end belongs to the last press")
			last.ended, last.dur = true, ev.Duration
		}
	}
	return reports, presses, ends
}

func cat(parts ...[]tePacket) []tePacket {
	var out []tePacket
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestTelephoneEventDecoder(t *testing.T) {
	key5 := teKey(Digit5, 1000, 800) // 100 ms: 4 updates, 3 end packets
	long := teKey(DigitPound, 5000, 200000)
	flash := teRaw(9000, true, 16, false, 160) // RFC 4733 §3.2: event 16 is flash
	ms := time.Millisecond
	for _, tc := range []struct {
		name string
		pkts []tePacket
		want []teReport
	}{
		{name: "whole event", pkts: key5,
			want: []teReport{{Digit5, 1000, true, 100 * ms}}},
		{name: "start packets lost", pkts: key5[2:],
			want: []teReport{{Digit5, 1000, true, 100 * ms}}},
		{name: "only one end packet arrives", pkts: key5[5:6],
			want: []teReport{{Digit5, 1000, true, 100 * ms}}},
		{name: "end packets repeated and duplicated", pkts: cat(key5, key5[4:], key5[4:]),
			want: []teReport{{Digit5, 1000, true, 100 * ms}}},
		{name: "no end packet", pkts: key5[:4],
			want: []teReport{{Digit5, 1000, false, 0}}},
		{name: "same key twice", pkts: cat(key5, teKey(Digit5, 2600, 480)),
			want: []teReport{{Digit5, 1000, true, 100 * ms}, {Digit5, 2600, true, 60 * ms}}},
		{name: "same key twice, ends of the first lost", pkts: cat(key5[:4], teKey(Digit5, 2600, 480)),
			want: []teReport{{Digit5, 1000, false, 0}, {Digit5, 2600, true, 60 * ms}}},
		{name: "late packets of the previous key", pkts: cat(key5[:3], teKey(Digit1, 2600, 480)[:2], key5[3:], teKey(Digit1, 2600, 480)[2:]),
			want: []teReport{{Digit5, 1000, false, 0}, {Digit1, 2600, true, 60 * ms}}},
		{name: "reordered update after the end", pkts: cat(key5[:2], key5[4:5], key5[2:4], key5[5:]),
			want: []teReport{{Digit5, 1000, true, 100 * ms}}},
		{name: "segmented long event (25 s)", pkts: long,
			want: []teReport{{DigitPound, 5000, true, 25 * time.Second}}},
		{name: "segmented event, segment ends lost", pkts: dropSegmentEnds(long),
			want: []teReport{{DigitPound, 5000, true, 25 * time.Second}}},
		{name: "segmented event joined in its second segment", pkts: long[450:],
			want: []teReport{{DigitPound, 5000 + 0xFFFF, true, 25*time.Second - 0xFFFF*time.Second/8000}}},
		{name: "event above 15 ignored", pkts: cat([]tePacket{flash, flash}, key5),
			want: []teReport{{Digit5, 1000, true, 100 * ms}}},
		{name: "timestamp wraps", pkts: cat(teKey(Digit9, 0xFFFFFF00, 800), teKey(Digit9, 0x200, 800)),
			want: []teReport{{Digit9, 0xFFFFFF00, true, 100 * ms}, {Digit9, 0x200, true, 100 * ms}}},
		{name: "sender restarts its timestamps", pkts: cat(teKey(Digit2, 900000, 800), teKey(Digit3, 1000, 800)),
			want: []teReport{{Digit2, 900000, true, 100 * ms}, {Digit3, 1000, true, 100 * ms}}},
		{name: "different key on the same timestamp ignored", pkts: cat(key5[:2], []tePacket{teRaw(1000, false, 7, false, 480)}),
			want: []teReport{{Digit5, 1000, false, 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, presses, ends := decodeAll(t, tc.pkts)
			require.Equal(t, tc.want, got)
			require.Equal(t, len(tc.want), presses, "one press per key")
			wantEnds := 0
			for _, w := range tc.want {
				if w.ended {
					wantEnds++
				}
			}
			require.Equal(t, wantEnds, ends, "one end per key")
		})
	}
}

// dropSegmentEnds removes the packets carrying duration 0xFFFF, the last
// word of each segment but the final one.
func dropSegmentEnds(pkts []tePacket) []tePacket {
	var out []tePacket
	for _, p := range pkts {
		if te, _ := ParseTelephoneEvent(p.payload); te.Duration != 0xFFFF {
			out = append(out, p)
		}
	}
	return out
}

func TestTelephoneEventDecoderErrors(t *testing.T) {
	d := NewTelephoneEventDecoder(Rate8k)
	for n := range 4 {
		ev, ok, err := d.Decode(1000, true, make([]byte, n), time.Time{})
		require.ErrorIs(t, err, ErrShortTelephoneEvent)
		require.False(t, ok)
		require.Zero(t, ev)
	}
	// A bad packet does not disturb the event around it.
	key := teKey(DigitA, 1000, 800)
	ev, ok, err := d.Decode(key[0].ts, key[0].marker, key[0].payload, time.Time{})
	require.NoError(t, err)
	require.True(t, ok && ev.Press && !ev.LostStart)
	_, _, err = d.Decode(key[1].ts, false, key[1].payload[:2], time.Time{})
	require.ErrorIs(t, err, ErrShortTelephoneEvent)
	ev, ok, err = d.Decode(key[5].ts, false, key[5].payload, time.Time{})
	require.NoError(t, err)
	require.True(t, ok && ev.End && !ev.Press)
	require.Equal(t, 100*time.Millisecond, ev.Duration)
	require.Equal(t, uint8(10), ev.Volume)
	// After Reset the same timestamp is a new press; it lost its start.
	d.Reset()
	ev, ok, err = d.Decode(key[2].ts, false, key[2].payload, time.Time{})
	require.NoError(t, err)
	require.True(t, ok && ev.Press && ev.LostStart)
}

func TestTelephoneEventPackets(t *testing.T) {
	for _, tc := range []struct {
		duration uint32
		packets  int
		segments int
		finalDur uint16
	}{
		{duration: 800, packets: 4 + 3, segments: 1, finalDur: 800},
		{duration: 100, packets: 3, segments: 1, finalDur: 100},
		{duration: 0xFFFF + 1000, packets: 415 + 1 + 3, segments: 2, finalDur: 1000},
		{duration: 200000, packets: 1249 + 3 + 3, segments: 4, finalDur: 200000 - 3*0xFFFF},
	} {
		t.Run(fmt.Sprint(tc.duration), func(t *testing.T) {
			pkts := TelephoneEventPackets(make([]TelephoneEventPacket, 0, 2000), Digit7, 0xFFFFF000, tc.duration, 160, 10)
			require.Len(t, pkts, tc.packets)
			segs := map[uint32]bool{}
			var prevDur uint16
			var prevTS uint32 = 0xFFFFF000
			for i, p := range pkts {
				te, err := ParseTelephoneEvent(p.Payload[:])
				require.NoError(t, err)
				require.Equal(t, uint8(Digit7), te.Event)
				require.Equal(t, uint8(10), te.Volume)
				require.Equal(t, i == 0, p.Marker, "§2.5.1.2: marker on the first packet only")
				require.Equal(t, i >= len(pkts)-3, te.End, "§2.5.1.4: the final packet three times")
				if p.Timestamp != prevTS {
					// §2.5.1.3: the next segment starts where the last ended.
					require.Equal(t, prevTS+0xFFFF, p.Timestamp)
					require.Equal(t, uint16(0xFFFF), prevDur)
					prevDur = 0
				}
				require.GreaterOrEqual(t, te.Duration, prevDur, "durations grow")
				prevTS, prevDur = p.Timestamp, te.Duration
				segs[p.Timestamp] = true
				if i > 0 {
					require.GreaterOrEqual(t, p.SendAt, pkts[i-1].SendAt)
				}
			}
			require.Len(t, segs, tc.segments)
			require.Equal(t, tc.finalDur, prevDur)
			end := pkts[len(pkts)-3:]
			require.Equal(t, []uint32{end[0].SendAt + 160, end[0].SendAt + 320}, []uint32{end[1].SendAt, end[2].SendAt})
		})
	}
}

func TestTelephoneEventDecoderNoAlloc(t *testing.T) {
	pkts := TelephoneEventPackets(nil, Digit3, 1000, 800, 160, 10)
	d := NewTelephoneEventDecoder(Rate8k)
	at := time.Unix(1, 0)
	ts := uint32(0)
	allocs := testing.AllocsPerRun(100, func() {
		ts += 2000
		for _, p := range pkts {
			_, _, _ = d.Decode(p.Timestamp+ts, p.Marker, p.Payload[:], at)
		}
	})
	require.Zero(t, allocs)
}
