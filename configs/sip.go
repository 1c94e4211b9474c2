package configs

import (
	"fmt"
	"strings"
	"time"
)

// SIPCodecs are the codec names sip.codecs accepts (case-insensitive), as
// package sip and SDP spell them.
var SIPCodecs = []string{"PCMA", "PCMU", "G722", "opus"}

// Bounds of sip.media_timeout: below a second, jitter and packet loss on a
// live call would end it; above an hour a dead call holds a seat too long.
const (
	minMediaTimeout = time.Second
	maxMediaTimeout = time.Hour
)

// sip checks the SIP section: the listener, codec names known and not
// repeated, the media timeout's range (0 and an empty list keep package
// sip's built-in defaults), and the trunks (trunks.go).
func (v *validator) sip(s SIP) {
	v.hostPort("sip.listen", s.Listen, 0)
	seen := map[string]int{}
	for i, c := range s.Codecs {
		key := fmt.Sprintf("sip.codecs[%d]", i)
		name := ""
		for _, k := range SIPCodecs {
			if strings.EqualFold(c, k) {
				name = k
			}
		}
		switch first, dup := seen[name]; {
		case name == "":
			v.fail(key, "%q is not one of %s", c, strings.Join(SIPCodecs, ", "))
		case dup:
			v.fail(key, "%q repeats sip.codecs[%d]", c, first)
		default:
			seen[name] = i
		}
	}
	if d := s.MediaTimeout; d != 0 && (d < minMediaTimeout || d > maxMediaTimeout) {
		v.fail("sip.media_timeout", "%s out of range 1s..1h (or 0s for the default)", d)
	}
	v.trunks(s.Trunks)
}
