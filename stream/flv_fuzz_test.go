package stream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

// sameAMF compares decoded AMF0 values, NaN equal to NaN (a number's bits
// are not kept: the encoder writes the canonical NaN).
func sameAMF(a, b any) bool {
	switch a := a.(type) {
	case float64:
		b, ok := b.(float64)
		return ok && (a == b || math.IsNaN(a) && math.IsNaN(b))
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, v := range a {
			w, ok := b[k]
			if !ok || !sameAMF(v, w) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !sameAMF(a[i], b[i]) {
				return false
			}
		}
		return true
	}
	return a == b
}

// FuzzAMFRoundTrip decodes arbitrary AMF0 values as a server's replies are
// decoded, then encodes each with the encoder of our own commands and
// decodes it again. Properties: a decode error is ErrProtocol; every value
// decoded re-encodes (strings, numbers, booleans, null, objects, arrays)
// and decodes to the same value, consuming exactly the encoding.
func FuzzAMFRoundTrip(f *testing.F) {
	var b bytes.Buffer
	_ = encodeAMF(&b, "_result", 1.0, nil, map[string]any{"level": "status", "code": "NetStream.Publish.Start",
		"nested": map[string]any{"a": []any{1.0, "x", true}}})
	f.Add(b.Bytes())
	f.Add([]byte{amfECMAArray, 0, 0, 0, 1, 0, 1, 'k', amfDate, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, amfObjectEnd})
	f.Add([]byte{amfLongString, 0, 0, 0, 3, 'a', 'b', 'c', amfUndefined, amfBoolean, 2})
	f.Add([]byte{amfNumber, 0xff, 0xf0, 0, 0, 0, 0, 0, 0, amfStrictArray, 0, 0, 0, 2, amfNull, amfString, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		d := amfDecoder{b: data}
		for d.more() {
			v, err := d.decode()
			if err != nil {
				if !errors.Is(err, ErrProtocol) {
					t.Fatalf("error not ErrProtocol: %v", err)
				}
				return
			}
			var enc bytes.Buffer
			if err := encodeAMF(&enc, v); err != nil {
				t.Fatalf("%#v does not encode: %v", v, err)
			}
			back := amfDecoder{b: enc.Bytes()}
			w, err := back.decode()
			if err != nil {
				t.Fatalf("our encoding of %#v does not decode: %v\n% x", v, err, enc.Bytes())
			}
			if back.more() {
				t.Fatalf("%d bytes left after %#v", len(back.b), w)
			}
			if !sameAMF(v, w) {
				t.Fatalf("%#v came back as %#v", v, w)
			}
		}
	})
}

// FuzzVideoHeader builds the AVC sequence header tag from arbitrary
// parameter sets. Properties: it is refused (errParamSets, nothing
// appended) exactly when the sets do not fit a decoder configuration
// record; otherwise the record (ISO 14496-15 §5.2.4.1) parses back to the
// same SPS and PPS, with the profile and level of the SPS and 4-byte NAL
// lengths.
func FuzzVideoHeader(f *testing.F) {
	f.Add([]byte{0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01}, []byte{0x68, 0xce, 0x3c, 0x80})
	f.Add([]byte{0x67, 0x64, 0, 0x28}, []byte{0x68})
	f.Add([]byte{0x67, 0x42, 0}, []byte{0x68})
	f.Add([]byte{0x67, 0x42, 0, 0x1e}, []byte{})
	f.Fuzz(func(t *testing.T, sps, pps []byte) {
		prefix := []byte{0xaa}
		tag, err := appendVideoHeader(prefix, sps, pps)
		if !paramSetsOK(sps, pps) {
			if !errors.Is(err, errParamSets) || len(tag) != 1 {
				t.Fatalf("bad sets: %v, %d bytes", err, len(tag))
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		tag = tag[1:]
		if len(tag) < 5 || tag[0] != flvVideoKey || tag[1] != flvSequenceHeader || tag[2]|tag[3]|tag[4] != 0 {
			t.Fatalf("header % x", tag[:min(len(tag), 5)])
		}
		rec := tag[5:]
		if len(rec) < 8 || rec[0] != 1 || !bytes.Equal(rec[1:4], sps[1:4]) || rec[4] != 0xff || rec[5] != 0xe1 {
			t.Fatalf("record % x", rec[:min(len(rec), 8)])
		}
		n := int(binary.BigEndian.Uint16(rec[6:]))
		if n != len(sps) || len(rec) < 8+n+3 || !bytes.Equal(rec[8:8+n], sps) {
			t.Fatalf("sps of %d bytes, want %d", n, len(sps))
		}
		rest := rec[8+n:]
		m := int(binary.BigEndian.Uint16(rest[1:]))
		if rest[0] != 1 || m != len(pps) || len(rest) != 3+m || !bytes.Equal(rest[3:], pps) {
			t.Fatalf("pps part % x", rest[:min(len(rest), 3)])
		}
	})
}
