package stream

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// RTMP chunk streams (RTMP specification §5.3): every message is cut into
// chunks of at most the sender's chunk size, each behind a basic header
// (format and chunk stream ID) and a message header of 11, 7, 3 or 0 bytes.

const (
	// defaultChunkSize is the chunk size of both directions until a Set
	// Chunk Size message says otherwise (RTMP §5.4.1).
	defaultChunkSize = 128
	// outChunkSize is the chunk size the egress announces and writes with:
	// 4096, as OBS and ffmpeg use, keeps per-chunk overhead under 0.3 %.
	outChunkSize = 4096
	// maxMessageLen is the longest message the 3-byte length field can
	// describe (RTMP §5.3.1.2.1); longer frames cannot be sent.
	maxMessageLen = 0xFFFFFF
	// maxInMessage bounds a message from the server: its commands and
	// control messages are a few hundred bytes; a publisher is sent no
	// media.
	maxInMessage = 256 << 10
	// maxInStreams bounds the chunk streams a server may open towards us.
	maxInStreams = 16
	// extendedTS marks a timestamp that follows as 4 extra bytes
	// (RTMP §5.3.1.3).
	extendedTS = 0xFFFFFF
)

// Chunk stream IDs the egress writes on (2 is reserved for protocol
// control by RTMP §5.4; the others are conventions shared with OBS).
const (
	csidControl = 2
	csidCommand = 3
	csidAudio   = 4
	csidData    = 5
	csidVideo   = 6
)

// chunkWriter writes messages as chunks. Every message starts with a
// format-0 header (absolute timestamp), continuation chunks use format 3;
// 11 bytes per message is a price worth paying for never tracking deltas.
// It allocates nothing.
type chunkWriter struct {
	w    *bufio.Writer
	size int
	hdr  [16]byte
}

// write writes one message; the caller flushes.
func (cw *chunkWriter) write(csid byte, typ byte, streamID, ts uint32, payload []byte) error {
	if len(payload) > maxMessageLen {
		return fmt.Errorf("%w: message of %d bytes", ErrProtocol, len(payload))
	}
	t3 := min(ts, extendedTS)
	n := len(payload)
	h := append(cw.hdr[:0], csid&0x3f, // fmt 0
		byte(t3>>16), byte(t3>>8), byte(t3),
		byte(n>>16), byte(n>>8), byte(n), typ)
	h = binary.LittleEndian.AppendUint32(h, streamID) // little-endian, RTMP §5.3.1.2.1
	if t3 == extendedTS {
		h = binary.BigEndian.AppendUint32(h, ts)
	}
	if _, err := cw.w.Write(h); err != nil {
		return err
	}
	for {
		k := min(cw.size, len(payload))
		if _, err := cw.w.Write(payload[:k]); err != nil {
			return err
		}
		payload = payload[k:]
		if len(payload) == 0 {
			return nil
		}
		// fmt 3 repeats the extended timestamp (RTMP §5.3.1.3, as
		// Flash, OBS and nginx-rtmp do).
		h = append(cw.hdr[:0], 0xc0|csid&0x3f)
		if t3 == extendedTS {
			h = binary.BigEndian.AppendUint32(h, ts)
		}
		if _, err := cw.w.Write(h); err != nil {
			return err
		}
	}
}

// inMessage is one message read from the server. Body is valid until the
// next read.
type inMessage struct {
	typ      byte
	streamID uint32
	ts       uint32
	body     []byte
}

// chunkState is what a chunk stream remembers between chunks.
type chunkState struct {
	ts, delta uint32
	length    uint32
	typ       byte
	streamID  uint32
	ext       bool // the last header carried an extended timestamp
	started   bool // a format-0 header was seen
	buf       []byte
}

// chunkReader reassembles the server's messages. It is the parser of
// outside input on this side of the connection, so everything it allocates
// is bounded by maxInMessage and maxInStreams.
type chunkReader struct {
	r       *bufio.Reader
	size    uint32
	streams map[uint32]*chunkState
	scratch [11]byte
	total   uint64 // bytes read, for acknowledgements
}

func newChunkReader(r *bufio.Reader) *chunkReader {
	return &chunkReader{r: r, size: defaultChunkSize, streams: map[uint32]*chunkState{}}
}

// setChunkSize applies the server's Set Chunk Size (RTMP §5.4.1: 31 bits,
// at least 1).
func (cr *chunkReader) setChunkSize(n uint32) error {
	if n == 0 || n > 0x7fffffff {
		return fmt.Errorf("%w: chunk size %d", ErrProtocol, n)
	}
	cr.size = n
	return nil
}

func (cr *chunkReader) full(b []byte) error {
	n, err := io.ReadFull(cr.r, b)
	cr.total += uint64(n)
	return err
}

func (cr *chunkReader) u24(b []byte) uint32 {
	return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2])
}

// read returns the next complete message.
func (cr *chunkReader) read() (inMessage, error) {
	for {
		st, err := cr.readChunk()
		if err != nil {
			return inMessage{}, err
		}
		if st != nil {
			return inMessage{typ: st.typ, streamID: st.streamID, ts: st.ts, body: st.buf}, nil
		}
	}
}

// readChunk reads one chunk and returns its stream's state when the chunk
// completed a message, nil when more chunks are needed.
func (cr *chunkReader) readChunk() (*chunkState, error) {
	b := cr.scratch[:1]
	if err := cr.full(b); err != nil {
		return nil, err
	}
	format, csid := b[0]>>6, uint32(b[0]&0x3f)
	switch csid { // RTMP §5.3.1.1: 2- and 3-byte basic headers
	case 0:
		if err := cr.full(b); err != nil {
			return nil, err
		}
		csid = 64 + uint32(b[0])
	case 1:
		b = cr.scratch[:2]
		if err := cr.full(b); err != nil {
			return nil, err
		}
		csid = 64 + uint32(b[0]) + uint32(b[1])<<8
	}
	st, err := cr.state(csid, format)
	if err != nil {
		return nil, err
	}
	if err := cr.header(st, format); err != nil {
		return nil, err
	}
	need := st.length - uint32(len(st.buf))
	k := min(need, cr.size)
	start := len(st.buf)
	st.buf = st.buf[:start+int(k)]
	if err := cr.full(st.buf[start:]); err != nil {
		return nil, err
	}
	if uint32(len(st.buf)) < st.length {
		return nil, nil
	}
	return st, nil
}

// state finds or makes the state of chunk stream csid.
func (cr *chunkReader) state(csid uint32, format byte) (*chunkState, error) {
	st := cr.streams[csid]
	if st == nil {
		if len(cr.streams) >= maxInStreams {
			return nil, fmt.Errorf("%w: more than %d chunk streams", ErrProtocol, maxInStreams)
		}
		st = &chunkState{}
		cr.streams[csid] = st
	}
	if format != 0 && !st.started {
		return nil, fmt.Errorf("%w: chunk stream %d starts with format %d", ErrProtocol, csid, format)
	}
	return st, nil
}

// header reads a message header of format 0-3 into st (RTMP §5.3.1.2).
func (cr *chunkReader) header(st *chunkState, format byte) error {
	newMsg := len(st.buf) == int(st.length) // the previous message completed
	if format != 3 && !newMsg {
		return fmt.Errorf("%w: message header inside a message", ErrProtocol)
	}
	sizes := [4]int{11, 7, 3, 0}
	h := cr.scratch[:sizes[format]]
	if err := cr.full(h); err != nil {
		return err
	}
	var t uint32
	if format < 3 {
		t = cr.u24(h)
		st.ext = t == extendedTS
	}
	if st.ext {
		e := cr.scratch[:4]
		if err := cr.full(e); err != nil {
			return err
		}
		t = binary.BigEndian.Uint32(e)
	}
	if format <= 1 {
		st.length, st.typ = cr.u24(h[3:]), h[6]
		if st.length > maxInMessage {
			return fmt.Errorf("%w: server message of %d bytes", ErrProtocol, st.length)
		}
	}
	switch format {
	case 0:
		st.streamID = binary.LittleEndian.Uint32(h[7:])
		st.ts, st.delta, st.started = t, 0, true
	case 1, 2:
		st.delta = t
		st.ts += t
	case 3:
		if newMsg {
			st.ts += st.delta
		}
	}
	if newMsg {
		if cap(st.buf) < int(st.length) {
			st.buf = make([]byte, 0, st.length)
		}
		st.buf = st.buf[:0]
	}
	return nil
}
