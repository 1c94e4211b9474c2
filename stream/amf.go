package stream

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/yutopp/go-rtmp/message"
)

// AMF0 (Adobe AMF0 specification §2) as RTMP commands carry it. Commands
// and metadata going out are encoded with go-rtmp's encoder; what the
// server sends is decoded here, with bounds: go-amf0's decoder allocates
// whatever length a strict array announces, so one hostile reply could take
// the process down.

// AMF0 type markers (AMF0 §2.1).
const (
	amfNumber      = 0x00
	amfBoolean     = 0x01
	amfString      = 0x02
	amfObject      = 0x03
	amfNull        = 0x05
	amfUndefined   = 0x06
	amfECMAArray   = 0x08
	amfObjectEnd   = 0x09
	amfStrictArray = 0x0a
	amfDate        = 0x0b
	amfLongString  = 0x0c
)

// maxAMFDepth bounds nested objects in a server's reply; real ones nest
// two deep.
const maxAMFDepth = 16

// encodeAMF appends the AMF0 encoding of each value to buf: strings,
// numbers, bools, nil (null) and structs with amf0 tags (objects).
func encodeAMF(buf *bytes.Buffer, values ...any) error {
	enc := message.NewAMFEncoder(buf, message.EncodingTypeAMF0)
	for _, v := range values {
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("amf0 encode %T: %w", v, err)
		}
	}
	return nil
}

// amfDecoder reads AMF0 values from one message body. Values come back as
// float64, bool, string, nil, map[string]any (object, ECMA array) or []any
// (strict array). Every length is checked against what is left of the
// body before anything is allocated.
type amfDecoder struct {
	b []byte
}

// more reports whether any bytes are left.
func (d *amfDecoder) more() bool { return len(d.b) > 0 }

// decode reads the next value.
func (d *amfDecoder) decode() (any, error) { return d.value(0) }

func (d *amfDecoder) value(depth int) (any, error) {
	if depth > maxAMFDepth {
		return nil, fmt.Errorf("%w: amf0 nesting deeper than %d", ErrProtocol, maxAMFDepth)
	}
	if len(d.b) == 0 {
		return nil, fmt.Errorf("%w: amf0 value missing", ErrProtocol)
	}
	marker := d.b[0]
	d.b = d.b[1:]
	switch marker {
	case amfNumber, amfDate:
		raw, err := d.take(8)
		if err != nil {
			return nil, err
		}
		if marker == amfDate {
			if _, err := d.take(2); err != nil { // time zone, unused (§2.13)
				return nil, err
			}
		}
		return math.Float64frombits(binary.BigEndian.Uint64(raw)), nil
	case amfBoolean:
		raw, err := d.take(1)
		if err != nil {
			return nil, err
		}
		return raw[0] != 0, nil
	case amfString:
		return d.str(2)
	case amfLongString:
		return d.str(4)
	case amfNull, amfUndefined:
		return nil, nil
	case amfObject:
		return d.object(depth)
	case amfECMAArray:
		if _, err := d.take(4); err != nil { // associative count, a hint only
			return nil, err
		}
		return d.object(depth)
	case amfStrictArray:
		return d.array(depth)
	}
	return nil, fmt.Errorf("%w: amf0 marker %#x", ErrProtocol, marker)
}

func (d *amfDecoder) take(n int) ([]byte, error) {
	if n > len(d.b) {
		return nil, fmt.Errorf("%w: amf0 value truncated", ErrProtocol)
	}
	b := d.b[:n]
	d.b = d.b[n:]
	return b, nil
}

// str reads a string with a lenBytes-byte length prefix.
func (d *amfDecoder) str(lenBytes int) (string, error) {
	raw, err := d.take(lenBytes)
	if err != nil {
		return "", err
	}
	n := uint64(binary.BigEndian.Uint16(raw[len(raw)-2:]))
	if lenBytes == 4 {
		n = uint64(binary.BigEndian.Uint32(raw))
	}
	if n > uint64(len(d.b)) {
		return "", fmt.Errorf("%w: amf0 string truncated", ErrProtocol)
	}
	s, _ := d.take(int(n))
	return string(s), nil
}

// object reads properties up to the object-end marker (AMF0 §2.5).
func (d *amfDecoder) object(depth int) (map[string]any, error) {
	obj := map[string]any{}
	for {
		key, err := d.str(2)
		if err != nil {
			return nil, err
		}
		if key == "" && len(d.b) > 0 && d.b[0] == amfObjectEnd {
			d.b = d.b[1:]
			return obj, nil
		}
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		obj[key] = v
	}
}

// array reads a strict array; each element takes at least one byte, so a
// count beyond what is left is a lie and refused before allocating.
func (d *amfDecoder) array(depth int) ([]any, error) {
	raw, err := d.take(4)
	if err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(raw)
	if uint64(n) > uint64(len(d.b)) {
		return nil, fmt.Errorf("%w: amf0 array of %d elements in %d bytes", ErrProtocol, n, len(d.b))
	}
	arr := make([]any, n)
	for i := range arr {
		if arr[i], err = d.value(depth + 1); err != nil {
			return nil, err
		}
	}
	return arr, nil
}

// command is a decoded AMF0 command message (RTMP §7.1.1): its name,
// transaction ID and the values after them.
type command struct {
	name string
	txn  float64
	args []any
}

// parseCommand decodes a command message body.
func parseCommand(body []byte) (command, error) {
	d := amfDecoder{b: body}
	name, err := d.decode()
	if err != nil {
		return command{}, err
	}
	txn, err := d.decode()
	if err != nil {
		return command{}, err
	}
	c := command{}
	var ok bool
	if c.name, ok = name.(string); !ok {
		return command{}, fmt.Errorf("%w: command name is %T", ErrProtocol, name)
	}
	if c.txn, ok = txn.(float64); !ok {
		return command{}, fmt.Errorf("%w: transaction id is %T", ErrProtocol, txn)
	}
	for d.more() && len(c.args) < 8 {
		v, err := d.decode()
		if err != nil {
			return command{}, err
		}
		c.args = append(c.args, v)
	}
	return c, nil
}

// info returns the information object of _result, _error and onStatus
// (RTMP §7.2.1.1): the argument that has a "code" (connect's _result puts
// the server's properties before it).
func (c *command) info() map[string]any {
	for _, a := range c.args {
		if m, ok := a.(map[string]any); ok && m["code"] != nil {
			return m
		}
	}
	return nil
}

// infoString returns a string property of the information object.
func (c *command) infoString(key string) string {
	s, _ := c.info()[key].(string)
	return s
}
