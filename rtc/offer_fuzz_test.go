package rtc

import (
	"errors"
	"strings"
	"testing"
)

// browserOffer is the shape of a browser's WHIP offer: bundled audio and
// video, Opus with FEC, H.264 and VP8.
const browserOffer = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
	"a=group:BUNDLE 0 1\r\na=msid-semantic: WMS\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n" +
	"a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=ice-options:trickle\r\n" +
	"a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n" +
	"a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\n" +
	"a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:0 PCMU/8000\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96 102\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendonly\r\na=rtcp-mux\r\n" +
	"a=rtpmap:96 VP8/90000\r\na=rtpmap:102 H264/90000\r\n" +
	"a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"

// TestParseOffer: what the checks find in an offer, and what they refuse.
func TestParseOffer(t *testing.T) {
	oi, err := parseOffer([]byte(browserOffer), false)
	if err != nil {
		t.Fatal(err)
	}
	want := offerInfo{fec: true, recvAudio: true, sendAudio: true, sendVideo: true, actpass: true}
	if oi != want {
		t.Fatalf("got %+v, want %+v", oi, want)
	}
	for setup, actpass := range map[string]bool{"a=setup:passive": false, "a=setup:active": false, "": true} {
		o := strings.Replace(browserOffer, "a=setup:actpass\r\n", setup, 1)
		if setup != "" {
			o = strings.Replace(browserOffer, "a=setup:actpass", setup, 1)
		}
		if oi, _ := parseOffer([]byte(o), false); oi.actpass != actpass {
			t.Fatalf("%q: actpass %v", setup, oi.actpass)
		}
	}
	noFEC := strings.Replace(browserOffer, ";useinbandfec=1", "", 1)
	if oi, _ := parseOffer([]byte(noFEC), false); oi.fec {
		t.Fatal("fec without useinbandfec=1")
	}
	recvOnly := strings.Replace(browserOffer, "a=sendrecv", "a=recvonly", 1)
	if _, err := parseOffer([]byte(recvOnly), true); err != nil {
		t.Fatalf("whep recvonly: %v", err)
	}
	rejected := strings.Replace(browserOffer, "m=audio 9", "m=audio 0", 1)
	if _, err := parseOffer([]byte(rejected), false); !errors.Is(err, ErrNoAudio) {
		t.Fatalf("rejected audio m-line: %v", err)
	}
	upper := strings.Replace(browserOffer, "opus/48000/2", "OPUS/48000/2", 1)
	if _, err := parseOffer([]byte(upper), false); err != nil {
		t.Fatalf("codec names are case-insensitive: %v", err)
	}
	notListed := strings.Replace(browserOffer, "SAVPF 111 0", "SAVPF 0", 1)
	if _, err := parseOffer([]byte(notListed), false); !errors.Is(err, ErrNoOpus) {
		t.Fatalf("opus rtpmap for a payload type not in the m-line: %v", err)
	}
}

// FuzzParseOffer: no input makes the offer checks panic, and what they
// accept is consistent with what they were asked.
func FuzzParseOffer(f *testing.F) {
	f.Add([]byte(browserOffer), false)
	f.Add([]byte(strings.Replace(browserOffer, "a=sendrecv", "a=recvonly", 1)), true)
	f.Add([]byte("v=0\r\n"), false)
	f.Add([]byte("hello, I am not SDP"), true)
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"), false)
	f.Fuzz(func(t *testing.T, body []byte, listen bool) {
		oi, err := parseOffer(body, listen)
		if err != nil {
			var rtcErr *Error
			if !errors.As(err, &rtcErr) {
				t.Fatalf("error without status: %v", err)
			}
			return
		}
		if listen && !oi.recvAudio {
			t.Fatal("whep offer accepted without receiving audio")
		}
		if !oi.recvAudio && !oi.sendAudio {
			t.Fatal("inactive audio accepted")
		}
	})
}
