// Package stream pushes a room live to streaming platforms over RTMP and
// RTMPS (DESIGN.md decision 3): the room's full mix as AAC-LC, and the
// presenter's H.264 passed through untouched, or a pre-encoded slate picture
// while nobody presents.
//
// An Egress serves one room. It reads the mix (a MixSource, normally a
// *room.MixConsumer) and the presenter video (a VideoSource, normally an
// *rtc.VideoSub) once, encodes the audio once, and hands every FLV tag to
// each Destination through the destination's own bounded queue: a slow or
// dead destination drops and counts, the others never wait for it.
//
// Each destination is supervised on its own goroutine: dial (TCP, or TLS
// with SNI against the system roots plus Options.ExtraRootCAs), the RTMP
// handshake, connect, createStream and publish, each under a deadline, then
// streaming until the connection breaks; network failures back off
// exponentially (1 s doubling to 60 s, ±20 % jitter) and retry, a server
// that refuses the stream key or a certificate that does not verify stop
// the destination for good (StateRejected, StateError). Status reports each
// destination's state, bytes, bitrate, reconnects and last error.
//
// Fencing (DESIGN.md decision 4): with Options.Fence, an egress pushes
// only while its room's lease is held at Options.Epoch. New and Add refuse a
// stale epoch (ErrStale); every connection and reconnect asks first, live
// destinations ask every FenceInterval, and a stale answer ends the
// destination in StateFenced without another byte.
//
// Stream keys are secrets: a destination is named everywhere (status,
// events, errors, logs) by its masked URL — scheme, host and application.
//
// The RTMP client is this package's own (chunk.go, rtmp.go): go-rtmp's
// ClientConn cannot be given a deadline (its handshake runs inside Dial,
// before the caller holds the connection, and Connect waits on a channel
// that nothing closes when the connection dies), and its AMF0 decoder
// allocates whatever array length a server announces. go-rtmp provides the
// handshake, the message type IDs and the AMF0 encoder for commands and
// metadata; answers from the server are read by a bounded decoder here
// (amf.go). Its H.264 depacketizer is pion's behaviour without pion's
// copies (h264.go, checked against codecs.H264Packet by FuzzDepacketize).
package stream
