package stream

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/yutopp/go-rtmp/handshake"
	"github.com/yutopp/go-rtmp/message"
)

// RTMP message type IDs (RTMP §5.4, §7.1).
const (
	typeSetChunkSize = byte(message.TypeIDSetChunkSize)
	typeAck          = byte(message.TypeIDAck)
	typeUserCtrl     = byte(message.TypeIDUserCtrl)
	typeWinAckSize   = byte(message.TypeIDWinAckSize)
	typeAudio        = byte(message.TypeIDAudioMessage)
	typeVideo        = byte(message.TypeIDVideoMessage)
	typeDataAMF0     = byte(message.TypeIDDataMessageAMF0)
	typeCommandAMF3  = byte(message.TypeIDCommandMessageAMF3)
	typeCommandAMF0  = byte(message.TypeIDCommandMessageAMF0)
)

// User control events (RTMP §7.1.7).
const (
	userCtrlPingRequest  = 6
	userCtrlPingResponse = 7
)

// Transaction IDs of the commands the egress sends, in order; publish uses
// 0 (RTMP §7.2.2.6) but servers answer with onStatus anyway.
const (
	txnConnect       = 1
	txnReleaseStream = 2
	txnFCPublish     = 3
	txnCreateStream  = 4
)

// flashVer is what the egress calls itself in connect, in the form
// platforms expect of an encoder (FMLE/3.0 is what OBS sends).
const flashVer = "FMLE/3.0 (compatible; mediagate)"

// conn is one RTMP publishing connection, from dial to close. Setup runs
// on the destination's goroutine; once publishing, a reader goroutine
// (readLoop) answers the server while the destination's goroutine writes.
type conn struct {
	nc       net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	cw       chunkWriter
	cr       *chunkReader
	t        *target
	timeout  time.Duration
	streamID uint32

	// Control messages readLoop wants written (acknowledgements, ping
	// responses), picked up by the writer between tags.
	ctrlMu    sync.Mutex
	pongs     []uint32
	ack       uint32 // sequence number to acknowledge, 0: none due
	ackWindow uint32
	lastAcked uint64
}

// connectOptions is what connecting needs from Options.
type connectOptions struct {
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	roots    *x509.CertPool
	timeout  time.Duration // per step
	metadata streamMetadata
}

// dialRTMP connects to t and publishes: TCP (and TLS for rtmps), the RTMP
// handshake, connect, createStream and publish, each step under
// o.timeout. ctx cancels any step at once.
func dialRTMP(ctx context.Context, t *target, o connectOptions) (*conn, error) {
	dctx, cancel := context.WithTimeout(ctx, o.timeout)
	nc, err := o.dial(dctx, "tcp", t.addr())
	if err == nil && t.tls {
		nc, err = handshakeTLS(dctx, nc, t, o.roots)
	}
	cancel()
	if err != nil {
		return nil, stepError("dial", err)
	}
	c := &conn{
		nc: nc, br: bufio.NewReaderSize(nc, 4096), bw: bufio.NewWriterSize(nc, 64<<10),
		t: t, timeout: o.timeout,
	}
	c.cw = chunkWriter{w: c.bw, size: defaultChunkSize}
	c.cr = newChunkReader(c.br)
	stop := context.AfterFunc(ctx, func() { _ = nc.Close() })
	err = c.setup(o.metadata)
	if !stop() || ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	return c, nil
}

// handshakeTLS wraps nc in TLS with SNI, verified against roots.
func handshakeTLS(ctx context.Context, nc net.Conn, t *target, roots *x509.CertPool) (net.Conn, error) {
	tc := tls.Client(nc, &tls.Config{ServerName: t.host, RootCAs: roots, MinVersion: tls.VersionTLS12})
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = nc.Close()
		var verr *tls.CertificateVerificationError
		var uerr x509.UnknownAuthorityError
		var herr x509.HostnameError
		var cerr x509.CertificateInvalidError
		if errors.As(err, &verr) || errors.As(err, &uerr) || errors.As(err, &herr) || errors.As(err, &cerr) {
			return nil, fmt.Errorf("%w: %w", ErrCertificate, err)
		}
		return nil, fmt.Errorf("tls: %w", err)
	}
	return tc, nil
}

// stepError names the failed step and maps timeouts to ErrTimeout and a
// connection the server closed or reset to ErrDisconnected.
func stepError(step string, err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%s: %w: %w", step, ErrTimeout, err)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err):
		return fmt.Errorf("%s: %w: %w", step, ErrDisconnected, err)
	}
	return fmt.Errorf("%s: %w", step, err)
}

// deadline starts a step: the connection fails if it takes longer.
func (c *conn) deadline() { _ = c.nc.SetDeadline(time.Now().Add(c.timeout)) }

// setup runs the handshake and the publishing commands (RTMP §7.2.1.1,
// §7.2.1.3, §7.2.2.6, with FMLE's releaseStream and FCPublish, which
// several platforms wait for).
func (c *conn) setup(md streamMetadata) error {
	c.deadline()
	if err := handshake.HandshakeWithServer(c.br, c.nc, &handshake.Config{}); err != nil {
		return stepError("handshake", err)
	}
	c.deadline()
	if err := c.writeControl(typeSetChunkSize, outChunkSize); err != nil {
		return stepError("connect", err)
	}
	c.cw.size = outChunkSize
	type connectObject struct {
		App      string `amf0:"app"`
		Type     string `amf0:"type"`
		FlashVer string `amf0:"flashVer"`
		TCURL    string `amf0:"tcUrl"`
	}
	obj := connectObject{App: c.t.app, Type: "nonprivate", FlashVer: flashVer, TCURL: c.t.tcURL}
	if err := c.command(0, "connect", txnConnect, obj); err != nil {
		return stepError("connect", err)
	}
	if _, err := c.await("connect", txnConnect); err != nil {
		return err
	}
	c.deadline()
	for _, cmd := range []struct {
		name string
		txn  int
		args []any
	}{
		{"releaseStream", txnReleaseStream, []any{nil, c.t.key}},
		{"FCPublish", txnFCPublish, []any{nil, c.t.key}},
		{"createStream", txnCreateStream, []any{nil}},
	} {
		if err := c.command(0, cmd.name, cmd.txn, cmd.args...); err != nil {
			return stepError("createStream", err)
		}
	}
	res, err := c.await("createStream", txnCreateStream)
	if err != nil {
		return err
	}
	var id float64
	if len(res.args) > 0 {
		id, _ = res.args[len(res.args)-1].(float64)
	}
	if id < 1 || id > 1<<24 {
		return fmt.Errorf("createStream: %w: no stream id in the answer", ErrProtocol)
	}
	c.streamID = uint32(id)
	c.deadline()
	if err := c.command(c.streamID, "publish", 0, nil, c.t.key, "live"); err != nil {
		return stepError("publish", err)
	}
	if err := c.awaitPublish(); err != nil {
		return err
	}
	if err := c.writeMetadata(md); err != nil {
		return stepError("publish", err)
	}
	return nil
}

// command writes an AMF0 command message and flushes.
func (c *conn) command(streamID uint32, name string, txn int, args ...any) error {
	var buf bytes.Buffer
	if err := encodeAMF(&buf, append([]any{name, txn}, args...)...); err != nil {
		return err
	}
	if err := c.cw.write(csidCommand, typeCommandAMF0, streamID, 0, buf.Bytes()); err != nil {
		return err
	}
	return c.bw.Flush()
}

// writeControl writes a 4-byte protocol control message on chunk stream 2.
func (c *conn) writeControl(typ byte, v uint32) error {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	if err := c.cw.write(csidControl, typ, 0, 0, b[:]); err != nil {
		return err
	}
	return c.bw.Flush()
}

// await reads messages until the _result or _error of transaction txn.
func (c *conn) await(step string, txn float64) (command, error) {
	for {
		cmd, err := c.next()
		if err != nil {
			return command{}, stepError(step, err)
		}
		if cmd == nil || cmd.txn != txn {
			continue
		}
		switch cmd.name {
		case "_result":
			return *cmd, nil
		case "_error":
			return command{}, fmt.Errorf("%s: %w: %s", step, ErrRejected, describe(cmd))
		}
	}
}

// awaitPublish reads messages until publish's onStatus. A server that
// closes the connection instead has refused the key (nginx-rtmp's
// on_publish, Twitch and YouTube close without a word).
func (c *conn) awaitPublish() error {
	for {
		cmd, err := c.next()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
			return fmt.Errorf("publish: %w: connection closed in reply to publish", ErrRejected)
		}
		if err != nil {
			return stepError("publish", err)
		}
		if cmd == nil || cmd.name != "onStatus" {
			continue
		}
		code := cmd.infoString("code")
		switch {
		case code == "NetStream.Publish.Start":
			return nil
		case cmd.infoString("level") != "error":
			continue
		case strings.Contains(strings.ToLower(cmd.infoString("description")), "already"):
			// nginx-rtmp's "Already publishing": the server still holds
			// our previous connection; it goes away, so retry.
			return fmt.Errorf("publish: %w: %s", ErrDisconnected, describe(cmd))
		}
		return fmt.Errorf("publish: %w: %s", ErrRejected, describe(cmd))
	}
}

// describe summarises a status reply for an error message.
func describe(cmd *command) string {
	code, desc := cmd.infoString("code"), cmd.infoString("description")
	if code == "" {
		code = cmd.name
	}
	if desc == "" {
		return truncate(code, 80)
	}
	return truncate(code, 80) + " (" + truncate(desc, 120) + ")"
}

// isReset reports a connection reset or broken pipe.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// next reads one message, handles protocol control itself and returns
// commands (nil for anything else).
func (c *conn) next() (*command, error) {
	m, err := c.cr.read()
	if err != nil {
		return nil, err
	}
	switch m.typ {
	case typeSetChunkSize, typeWinAckSize:
		if len(m.body) < 4 {
			return nil, fmt.Errorf("%w: short control message %d", ErrProtocol, m.typ)
		}
		v := binary.BigEndian.Uint32(m.body)
		if m.typ == typeWinAckSize {
			c.ctrlMu.Lock()
			c.ackWindow = v
			c.ctrlMu.Unlock()
			return nil, nil
		}
		return nil, c.cr.setChunkSize(v)
	case typeUserCtrl:
		if len(m.body) >= 6 && binary.BigEndian.Uint16(m.body) == userCtrlPingRequest {
			c.ctrlMu.Lock()
			if len(c.pongs) < 4 {
				c.pongs = append(c.pongs, binary.BigEndian.Uint32(m.body[2:]))
			}
			c.ctrlMu.Unlock()
		}
		return nil, nil
	case typeCommandAMF0, typeCommandAMF3:
		body := m.body
		if m.typ == typeCommandAMF3 && len(body) > 0 {
			body = body[1:] // AMF3 command messages start with a 0 format byte
		}
		cmd, err := parseCommand(body)
		if err != nil {
			return nil, err
		}
		return &cmd, nil
	}
	c.noteRead()
	return nil, nil
}

// noteRead schedules an acknowledgement once the server has sent a window
// of bytes (RTMP §5.4.3).
func (c *conn) noteRead() {
	c.ctrlMu.Lock()
	defer c.ctrlMu.Unlock()
	if c.ackWindow > 0 && c.cr.total-c.lastAcked >= uint64(c.ackWindow) {
		c.ack, c.lastAcked = uint32(c.cr.total), c.cr.total
	}
}

// readLoop reads the server's messages while publishing, until the
// connection fails or the server reports an error; it returns why. The
// writer picks up the acknowledgements and ping responses it queues.
func (c *conn) readLoop() error {
	_ = c.nc.SetReadDeadline(time.Time{})
	for {
		cmd, err := c.next()
		if err != nil {
			return stepError("read", err)
		}
		c.noteRead()
		if cmd != nil && cmd.name == "onStatus" && cmd.infoString("level") == "error" {
			return fmt.Errorf("%w: %s", ErrDisconnected, describe(cmd))
		}
	}
}

// writeControlDue writes the acknowledgements and ping responses readLoop
// queued; the caller flushes.
func (c *conn) writeControlDue() error {
	c.ctrlMu.Lock()
	ack, pongs := c.ack, c.pongs
	c.ack = 0
	var pong [4]uint32
	n := copy(pong[:], pongs)
	c.pongs = c.pongs[:0]
	c.ctrlMu.Unlock()
	if ack != 0 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], ack)
		if err := c.cw.write(csidControl, typeAck, 0, 0, b[:]); err != nil {
			return err
		}
	}
	for _, ts := range pong[:n] {
		var b [6]byte
		binary.BigEndian.PutUint16(b[:], userCtrlPingResponse)
		binary.BigEndian.PutUint32(b[2:], ts)
		if err := c.cw.write(csidControl, typeUserCtrl, 0, 0, b[:]); err != nil {
			return err
		}
	}
	return nil
}

// writeTag writes one FLV tag body as an RTMP message; the caller flushes.
func (c *conn) writeTag(typ byte, ts uint32, body []byte) error {
	csid := byte(csidVideo)
	switch typ {
	case typeAudio:
		csid = csidAudio
	case typeDataAMF0:
		csid = csidData
	}
	return c.cw.write(csid, typ, c.streamID, ts, body)
}

// unpublish ends the stream politely (FCUnpublish, deleteStream: the
// platform ends the broadcast at once instead of waiting for a timeout)
// and closes the connection, all within a short deadline.
func (c *conn) unpublish() {
	_ = c.nc.SetDeadline(time.Now().Add(time.Second))
	_ = c.command(0, "FCUnpublish", 6, nil, c.t.key)
	_ = c.command(0, "deleteStream", 7, nil, c.streamID)
	_ = c.nc.Close()
}

// close drops the connection.
func (c *conn) close() { _ = c.nc.Close() }
