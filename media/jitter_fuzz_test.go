package media

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// jitterFuzzer plays a byte string as a sequence of network and mixer
// events against a JitterBuffer and checks its invariants after each.
//
// Operations, one opcode byte each (low 3 bits), some followed by operands:
//
//	0-2 push a b c   seq += int8(a) (a == 0x7f: jump by 0x4000) and the
//	                 timestamp with it; then by b%4: 1 shifts the timestamps
//	                 by int8(b) ms, 2 by c<<24, 3 sets garbage from b and c;
//	                 payload 2+6c bytes (may be too big); opcode bit 7
//	                 switches to SSRC 1+c%3
//	3     pop        at the current time
//	4     tick       time += 20 ms, then pop
//	5 c   wait       time += c ms
//	6     steady     10 × (push the next packet, tick)
//	7 c   clock      time -= c ms (a clock that steps back must not hurt)
type jitterFuzzer struct {
	t    *testing.T
	jb   *JitterBuffer
	now  time.Time
	ssrc uint32
	seq  uint16
	ts   uint32
	buf  [MaxJitterPayload + 64]byte

	epoch    uint32
	lastSeq  uint16
	haveLast bool
	lostRun  int
}

func (f *jitterFuzzer) push(a, b, c byte, switchSSRC bool) {
	if switchSSRC {
		f.ssrc = 1 + uint32(c%3)
	}
	delta := uint16(int8(a))
	if a == 0x7f {
		delta = 0x4000
	}
	f.seq += delta
	f.ts += uint32(int16(delta)) * 160
	switch b % 4 {
	case 1:
		f.ts += uint32(int32(int8(b)) * 8)
	case 2:
		f.ts += uint32(c) << 24
	case 3:
		f.ts = uint32(b)<<8 | uint32(c)
	}
	ts := f.ts
	n := 2 + int(c)*6
	payload := f.buf[:n]
	binary.BigEndian.PutUint16(payload, f.seq)
	before := f.jb.Stats().Received
	err := f.jb.Push(Packet{Seq: f.seq, Timestamp: ts, SSRC: f.ssrc, Payload: payload}, f.now)
	if n > MaxJitterPayload {
		if !errors.Is(err, ErrJitterPayloadTooBig) || f.jb.Stats().Received != before {
			f.t.Fatalf("oversize payload: err %v, received %d → %d", err, before, f.jb.Stats().Received)
		}
	} else if err != nil {
		f.t.Fatalf("push: %v", err)
	}
}

func (f *jitterFuzzer) pop() {
	r := f.jb.Pop(f.now)
	if r.Epoch != f.epoch {
		f.epoch, f.haveLast, f.lostRun = r.Epoch, false, 0
	}
	switch r.Kind {
	case PopEmpty:
		if r.Payload != nil || r.Next != nil {
			f.t.Fatalf("empty result with payload")
		}
		return
	case PopFrame:
		f.lostRun = 0
		if len(r.Payload) < 2 || binary.BigEndian.Uint16(r.Payload) != r.Seq {
			f.t.Fatalf("frame seq %d carries the payload of another packet (%x)", r.Seq, r.Payload[:min(2, len(r.Payload))])
		}
	case PopLost:
		f.lostRun++
		if f.lostRun > 5 {
			f.t.Fatalf("%d lost in a row, bound is 5", f.lostRun)
		}
		if r.Next != nil && binary.BigEndian.Uint16(r.Next) != r.Seq+1 {
			f.t.Fatalf("lost %d offers next payload of %d", r.Seq, binary.BigEndian.Uint16(r.Next))
		}
	}
	if f.haveLast && int16(r.Seq-f.lastSeq) <= 0 {
		f.t.Fatalf("%v seq %d after %d in epoch %d", r.Kind, r.Seq, f.lastSeq, r.Epoch)
	}
	f.lastSeq, f.haveLast = r.Seq, true
}

func (f *jitterFuzzer) check() {
	s := f.jb.Stats()
	if s.Received != s.Duplicates+s.Late+s.Delivered+s.Discarded+uint64(s.Depth) {
		f.t.Fatalf("counters do not add up: %+v", s)
	}
	if s.Depth < 0 || s.Depth > jitterSlots {
		f.t.Fatalf("depth %d", s.Depth)
	}
	if s.TargetDelay < 20*time.Millisecond || s.TargetDelay > 200*time.Millisecond {
		f.t.Fatalf("target delay %v outside [20ms, 200ms]", s.TargetDelay)
	}
}

func (f *jitterFuzzer) run(data []byte) {
	operand := func(i int) byte {
		if i < len(data) {
			return data[i]
		}
		return 0
	}
	for i := 0; i < len(data); {
		op := data[i]
		i++
		switch op & 7 {
		case 0, 1, 2:
			f.push(operand(i), operand(i+1), operand(i+2), op&0x80 != 0)
			i += 3
		case 3:
			f.pop()
		case 4:
			f.now = f.now.Add(FrameDuration)
			f.pop()
		case 5:
			f.now = f.now.Add(time.Duration(operand(i)) * time.Millisecond)
			i++
		case 6:
			for range 10 {
				f.push(1, 0, 26, false)
				f.now = f.now.Add(FrameDuration)
				f.pop()
				f.check()
			}
		case 7:
			f.now = f.now.Add(-time.Duration(operand(i)) * time.Millisecond)
			i++
		}
		f.check()
	}
}

func FuzzJitterBuffer(f *testing.F) {
	f.Add([]byte{6, 6, 6, 6})
	f.Add([]byte{0, 2, 0, 10, 0, 0xff, 0, 10, 4, 4, 4, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		jb, err := NewJitterBuffer(160)
		if err != nil {
			t.Fatal(err)
		}
		// Start just before both the sequence number (after 36 packets)
		// and the timestamp (after 20) wrap.
		fz := &jitterFuzzer{t: t, jb: jb, now: jbT0, ssrc: 1, seq: 65499, ts: 1<<32 - 21*160}
		fz.run(data)
	})
}
