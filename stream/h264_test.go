package stream

import (
	"bytes"
	"log/slog"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/stretchr/testify/require"
)

// fuzzAU builds a well-formed Annex B access unit from arbitrary bytes:
// units split at 0xff, each with a header of type 1-23, emulation
// prevention (H.264 §7.4.1) and a stop bit, so no start code hides inside.
func fuzzAU(data []byte) []byte {
	var au []byte
	for _, chunk := range bytes.Split(data, []byte{0xff}) {
		typ := byte(1)
		if len(chunk) > 0 {
			typ, chunk = chunk[0]%23+1, chunk[1:]
		}
		au = append(au, 0, 0, 0, 1, 0x40|typ)
		zeros := 0
		for _, b := range chunk {
			if zeros >= 2 && b <= 3 {
				au, zeros = append(au, 3), 0
			}
			au = append(au, b)
			if b == 0 {
				zeros++
			} else {
				zeros = 0
			}
		}
		au = append(au, 0x80)
	}
	return au
}

// FuzzDepacketize: any access unit, packetized by pion's payloader at any
// MTU, comes out of our depacketizer as pion's H264Packet gives it; and
// arbitrary payloads never make it panic or output more than they hold.
func FuzzDepacketize(f *testing.F) {
	f.Add(uint16(1200), []byte("\x05\x01\x02\xff\x07\x42\xc0\x1e\xff\x08\xce"))
	f.Add(uint16(20), bytes.Repeat([]byte{0, 0, 1, 4}, 100))
	f.Add(uint16(3), []byte{0x7c, 0x85, 1, 2, 0x7c, 0x05, 3, 0x7c, 0x45, 4})
	f.Fuzz(func(t *testing.T, mtu uint16, data []byte) {
		mtu = 3 + mtu%1400
		var pay codecs.H264Payloader
		var ref codecs.H264Packet
		var want, got []byte
		var d depacketizer
		for _, p := range pay.Payload(mtu, fuzzAU(data)) {
			out, err := ref.Unmarshal(p)
			require.NoError(t, err)
			want = append(want, out...)
			got, err = d.append(got, p)
			require.NoError(t, err)
		}
		require.Equal(t, want, got)

		// The raw bytes as payloads of mtu bytes.
		d.reset()
		var out []byte
		for p := data; len(p) > 0; {
			n := min(int(mtu), len(p))
			out, _ = d.append(out[:0], p[:n])
			require.LessOrEqual(t, len(out), 2*n+4) // STAP-A: 2 bytes of size per unit become 4 of start code
			p = p[n:]
		}
	})
}

// TestAssembler: access units reach the pipeline whole; a lost packet
// drops its unit and the ones after it until an IDR, asking for one.
func TestAssembler(t *testing.T) {
	slate, err := loadSlate()
	require.NoError(t, err)
	e := &Egress{fan: newFanout(), zero: time.Now(), opts: Options{Now: time.Now}, log: slog.New(slog.DiscardHandler)}
	q := newQueue(64)
	e.fan.attach(q, nil, nil)
	src := newVideoFeed()
	v := newVideoPipe(e, src, slate)
	e.video = v
	clip := makeClip(t, "testsrc", "", "320x240", 25, 4) // IDRs at 0 and 2 s
	pk := packetizer{pay: codecs.H264Payloader{}, ssrc: 7}
	a := assembler{}
	send := func(i int, drop int) {
		for k, b := range pk.packets(clip.aus[i], uint32(i*3600)) {
			if k == drop {
				continue
			}
			var p rtp.Packet
			require.NoError(t, p.Unmarshal(b))
			a.add(v, &p)
		}
	}
	frames := func() (keys, inter int) {
		for tg, _ := q.pop(); tg != nil; tg, _ = q.pop() {
			switch {
			case tg.hdr:
			case tg.key:
				keys++
				require.True(t, bytes.Contains(tg.data, scanAU(clip.aus[0]).sps), "SPS in band")
			default:
				inter++
			}
			tg.release()
		}
		return keys, inter
	}
	for i := range 10 {
		send(i, -1)
	}
	keys, inter := frames()
	require.Equal(t, [2]int{1, 9}, [2]int{keys, inter})
	require.Equal(t, VideoPresenter, v.Mode())

	for len(src.plis) > 0 {
		<-src.plis
	}
	v.lastKeyReq = time.Time{}
	send(10, 0) // its (first) packet is lost: the gap shows at frame 11
	for i := 11; i < 60; i++ {
		send(i, -1)
	}
	keys, inter = frames()
	require.Equal(t, [2]int{1, 9}, [2]int{keys, inter}, "frames 11-49 dropped, 50-59 sent")
	require.NotEmpty(t, src.plis, "no keyframe request after the loss")
}
