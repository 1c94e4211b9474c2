package siptest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
)

// codec is one codec the phone can offer.
type codec struct {
	name      string
	pt        uint8
	rtpmap    string
	clockRate int // RTP timestamp rate
	rate      int // PCM sample rate of Play, PCM and Last
}

var codecs = []codec{
	{PCMU, 0, "PCMU/8000", 8000, media.Rate8k},
	{PCMA, 8, "PCMA/8000", 8000, media.Rate8k},
	{G722, 9, "G722/8000", 8000, media.Rate16k},
	{Opus, opusPT, "opus/48000/2", 48000, media.Rate48k},
}

func lookupCodec(name string) (codec, error) {
	if name == "" {
		name = PCMU
	}
	for _, c := range codecs {
		if strings.EqualFold(c.name, name) {
			return c, nil
		}
	}
	return codec{}, fmt.Errorf("siptest: unknown codec %q", name)
}

func (c codec) newEncoder() (media.Encoder, error) {
	switch c.name {
	case PCMU:
		return media.NewPCMUEncoder(), nil
	case PCMA:
		return media.NewPCMAEncoder(), nil
	case G722:
		return media.NewG722Encoder(), nil
	default:
		return media.NewOpusEncoder(media.WithOpusRate(media.Rate48k))
	}
}

func (c codec) newDecoder() (media.Decoder, error) {
	switch c.name {
	case PCMU:
		return media.NewPCMUDecoder(), nil
	case PCMA:
		return media.NewPCMADecoder(), nil
	case G722:
		return media.NewG722Decoder(), nil
	default:
		return media.NewOpusDecoder(media.WithOpusRate(media.Rate48k))
	}
}

// Method says how Press sends a key press to the gateway; combine them
// with |.
type Method uint8

const (
	// RFC4733 sends telephone-event packets in the RTP stream (the call
	// must have TelephoneEvent), instead of audio while the key is down.
	RFC4733 Method = 1 << iota
	// INFO sends a SIP INFO request (application/dtmf-relay) as the key
	// goes down.
	INFO
	// InBand replaces the audio with the key's dual tone (ITU-T Q.23).
	InBand
)

// Key timing of Press: each key is held for KeyDuration, then KeyGap
// passes before the next one (Q.24 asks for 40 ms of each at least).
const (
	KeyDuration = 100 * time.Millisecond
	KeyGap      = 100 * time.Millisecond
	// inBandAmp is the peak of an in-band key's dual tone: about -9 dBFS
	// per tone, as loud as a handset's keypad.
	inBandAmp = 0.7
	// maxConceal is the longest gap in received sequence numbers filled
	// with concealment; a longer jump (a restarted sender) is not filled.
	maxConceal = 25
)

// keyJob is one key press handed to the sender.
type keyJob struct {
	digit media.Digit
	how   Method
	done  chan struct{} // closed by the sender when the key and its gap are over
}

// rtpMedia is a call's RTP: one socket, a sender paced by a 20 ms ticker
// and a receiver that decodes into a timeline of samples.
type rtpMedia struct {
	codec      codec
	teRate     int  // telephone-event clock offered, 0 for none
	interleave bool // audio goes on during telephone events
	conn       *net.UDPConn

	to   netip.AddrPort
	te   bool // the answer accepted telephone-event
	keys chan keyJob
	stop chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	source  []int16 // what Play set, at codec.rate
	loop    bool
	pos     int
	tone    *mediatest.Tone
	got     []int16
	changed chan struct{} // closed and replaced when got grows
	packets int
	err     error // the first sender or receiver failure

	closeOnce sync.Once
}

func newMedia(c codec, teRate int, interleave bool) (*rtpMedia, error) {
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		return nil, fmt.Errorf("siptest: rtp: %w", err)
	}
	return &rtpMedia{codec: c, teRate: teRate, interleave: interleave, conn: conn, keys: make(chan keyJob),
		stop: make(chan struct{}), changed: make(chan struct{})}, nil
}

func (m *rtpMedia) port() int { return m.conn.LocalAddr().(*net.UDPAddr).Port }

// start begins sending to the gateway's RTP address and receiving.
func (m *rtpMedia) start(to netip.AddrPort, te bool) {
	m.to, m.te = to, te
	m.wg.Add(2)
	go m.send()
	go m.receive()
}

func (m *rtpMedia) close() {
	m.closeOnce.Do(func() {
		close(m.stop)
		_ = m.conn.Close()
		m.wg.Wait()
	})
}

func (m *rtpMedia) fail(err error) {
	m.mu.Lock()
	if m.err == nil {
		m.err = err
	}
	m.mu.Unlock()
}

// fill writes the next frame of what Play or PlayTone set, or silence.
func (m *rtpMedia) fill(pcm []int16) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.tone != nil:
		m.tone.Fill(pcm)
	case len(m.source) > 0:
		for i := range pcm {
			if m.pos >= len(m.source) {
				if !m.loop {
					clear(pcm[i:])
					m.source = nil
					return
				}
				m.pos = 0
			}
			pcm[i] = m.source[m.pos]
			m.pos++
		}
	default:
		clear(pcm)
	}
}

// send sends one packet every 20 ms until close: audio, or while a key is
// down the key's telephone events or tone.
func (m *rtpMedia) send() {
	defer m.wg.Done()
	enc, err := m.codec.newEncoder()
	if err != nil {
		m.fail(err)
		return
	}
	defer enc.Close()
	frameTS := uint32(m.codec.clockRate / 50)
	teFrame := uint32(m.teRate / 50)
	pressTicks := int(KeyDuration / media.FrameDuration)
	keyTicks := pressTicks + int(KeyGap/media.FrameDuration)
	pcm := make([]int16, media.SamplesPerFrame(m.codec.rate))
	payload := make([]byte, 1500)
	buf := make([]byte, 1500)
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 0x5157e57, Marker: true}}
	var (
		key  *keyJob
		tick int // ticks since the key went down
		plan []media.TelephoneEventPacket
		next int // next packet of plan
	)
	write := func() bool {
		n, err := pkt.MarshalTo(buf)
		if err != nil {
			m.fail(err)
			return false
		}
		if _, err := m.conn.WriteToUDPAddrPort(buf[:n], m.to); err != nil {
			return !errors.Is(err, net.ErrClosed)
		}
		pkt.SequenceNumber++
		pkt.Marker = false
		return true
	}
	ticker := time.NewTicker(media.FrameDuration)
	defer ticker.Stop()
	for ts := uint32(0); ; ts += frameTS {
		select {
		case <-m.stop:
			return
		case <-ticker.C:
		}
		if key == nil {
			select {
			case k := <-m.keys:
				key, tick, next = &k, 0, 0
				if k.how&RFC4733 != 0 {
					// §2.5.1.2: the event's timestamp is the audio's at
					// its start; durations count in the event's clock.
					plan = media.TelephoneEventPackets(plan[:0], k.digit, ts,
						uint32(pressTicks)*teFrame, teFrame, 10)
				}
			default:
			}
		}
		events := false
		if key != nil && key.how&RFC4733 != 0 {
			for ; next < len(plan) && plan[next].SendAt <= uint32(tick)*teFrame; next++ {
				p := plan[next]
				pkt.PayloadType, pkt.Timestamp, pkt.Payload = tePT, p.Timestamp, p.Payload[:]
				pkt.Marker = p.Marker
				if !write() {
					return
				}
				events = true
			}
			// Replaced audio resumes after the last end packet, marked
			// as a new talkspurt (RFC 3551 §4.1).
			if next < len(plan) || events {
				events = true
				pkt.Marker = !m.interleave
			}
		}
		if !events || m.interleave {
			switch {
			case key != nil && key.how&InBand != 0 && tick < pressTicks:
				media.DTMFTone(key.digit, m.codec.rate, pcm, tick*len(pcm), inBandAmp)
			case key != nil && key.how&InBand != 0:
				clear(pcm)
			default:
				m.fill(pcm)
			}
			n, err := enc.Encode(pcm, payload)
			if err != nil {
				m.fail(err)
				return
			}
			pkt.PayloadType, pkt.Timestamp, pkt.Payload = m.codec.pt, ts, payload[:n]
			if !write() {
				return
			}
		}
		if key != nil {
			if tick++; tick >= keyTicks {
				close(key.done)
				key = nil
			}
		}
	}
}

// receive decodes the gateway's audio into the timeline. Packets are taken
// in arrival order; a gap in sequence numbers is concealed, and a late or
// repeated packet is dropped, as a jitter buffer would.
func (m *rtpMedia) receive() {
	defer m.wg.Done()
	dec, err := m.codec.newDecoder()
	if err != nil {
		m.fail(err)
		return
	}
	defer dec.Close()
	buf := make([]byte, 1500)
	pcm := make([]int16, media.SamplesPerFrame(m.codec.rate))
	var pkt rtp.Packet
	var last uint16
	started := false
	for {
		n, err := m.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if pkt.Unmarshal(buf[:n]) != nil || pkt.PayloadType != m.codec.pt {
			continue
		}
		gap := 0
		if started {
			d := int(int16(pkt.SequenceNumber - last))
			if d <= 0 {
				continue
			}
			gap = d - 1
		}
		started, last = true, pkt.SequenceNumber
		for i := gap; i > 0 && i <= maxConceal; i-- {
			var next []byte
			if i == 1 {
				next = pkt.Payload
			}
			k, _ := dec.Conceal(next, pcm)
			m.add(pcm[:k], false)
		}
		k, err := dec.Decode(pkt.Payload, pcm)
		if err != nil {
			k, _ = dec.Conceal(nil, pcm)
		}
		m.add(pcm[:k], true)
	}
}

func (m *rtpMedia) add(pcm []int16, packet bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.got = append(m.got, pcm...)
	if packet {
		m.packets++
	}
	close(m.changed)
	m.changed = make(chan struct{})
}
