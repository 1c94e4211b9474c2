package configs

import (
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Stream is how rooms are pushed live to streaming platforms over RTMP and
// RTMPS (package stream): the audio encoding, the connection deadlines and
// reconnect backoff, which certificate authorities rtmps trusts, and
// whether destinations may be private addresses.
type Stream struct {
	// AudioBitrate is the AAC-LC bitrate in bit/s.
	AudioBitrate int `yaml:"audio_bitrate"`
	// AudioChannels is 1 (the mono mix) or 2 (the mix on both channels,
	// for platforms that insist on stereo).
	AudioChannels int `yaml:"audio_channels"`
	// Timeout bounds each connection step (dial, TLS, RTMP handshake,
	// connect, publish) and each write.
	Timeout time.Duration `yaml:"timeout"`
	// BackoffMin and BackoffMax bound the reconnect backoff, which
	// doubles after each failure.
	BackoffMin time.Duration `yaml:"backoff_min"`
	BackoffMax time.Duration `yaml:"backoff_max"`
	// CAFile is a PEM file of certificate authorities rtmps trusts
	// besides the system roots; empty means the system roots only.
	CAFile string `yaml:"ca_file"`
	// AllowPrivate lets destinations be, or resolve to, loopback, private,
	// link-local and shared addresses. Off: an admin API that connects
	// anywhere would be a way into the operator's own network.
	AllowPrivate bool `yaml:"allow_private"`
}

// Limits of the stream section, enforced by Validate.
const (
	// minStreamBitrate and maxStreamBitrate bound stream.audio_bitrate:
	// below 32 kbit/s AAC-LC is unusable, above 320 kbit/s platforms
	// refuse or re-encode.
	minStreamBitrate, maxStreamBitrate = 32000, 320000
	// maxStreamTimeout bounds stream.timeout and stream.backoff_max.
	maxStreamTimeout = 10 * time.Minute
)

// defaultStream is the stream section's defaults, those of package stream
// (stream.DefaultAudioBitrate and so on; a test in cmd/mediagate holds
// them together).
func defaultStream() Stream {
	return Stream{
		AudioBitrate: 128000, AudioChannels: 1, Timeout: 10 * time.Second,
		BackoffMin: time.Second, BackoffMax: 60 * time.Second,
	}
}

// stream checks the stream section.
func (v *validator) stream(s Stream) {
	v.intRange("stream.audio_bitrate", s.AudioBitrate, minStreamBitrate, maxStreamBitrate)
	v.intRange("stream.audio_channels", s.AudioChannels, 1, 2)
	if d := s.Timeout; d < time.Second || d > maxStreamTimeout {
		v.fail("stream.timeout", "%s out of range 1s..10m", d)
	}
	if d := s.BackoffMin; d < 100*time.Millisecond || d > maxStreamTimeout {
		v.fail("stream.backoff_min", "%s out of range 100ms..10m", d)
	}
	if d := s.BackoffMax; d < s.BackoffMin || d > maxStreamTimeout {
		v.fail("stream.backoff_max", "%s out of range stream.backoff_min (%s)..10m", d, s.BackoffMin)
	}
}

// StreamDestination is one entry of rooms.<id>.auto_stream: where the room
// is pushed live (package stream's Destination).
type StreamDestination struct {
	// Name is a label for people ("YouTube"); optional.
	Name string `yaml:"name"`
	// URL is rtmp://host[:port]/app[/key] or rtmps://...; without Key
	// its last path segment is the stream key.
	URL string `yaml:"url"`
	// Key is the stream key, for platforms that hand it out apart from
	// the URL. It is a secret: never logged, blanked by Redacted.
	Key string `yaml:"key"`
}

// String keeps the key, and the URL that may hold it, out of fmt's %v.
func (d StreamDestination) String() string {
	return fmt.Sprintf("{name:%q url:%q key:%q}", d.Name, maskStreamURL(d.URL, d.Key != ""), redactIfSet(d.Key))
}

// maskStreamURL is a destination URL without what may be a key: scheme,
// host and the application, as package stream masks it (the whole path
// with the key apart, else the path up to its last segment).
func maskStreamURL(raw string, keyApart bool) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return redactIfSet(raw)
	}
	path := strings.Trim(u.EscapedPath(), "/")
	if keyApart {
		return u.Scheme + "://" + u.Host + "/" + path
	}
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		path = path[:i]
	} else {
		path = ""
	}
	return u.Scheme + "://" + u.Host + "/" + path
}

// redactIfSet is redactedValue for a set secret, "" otherwise.
func redactIfSet(s string) string {
	if s == "" {
		return ""
	}
	return redactedValue
}

// redactStreams returns a copy of ds with the keys redacted and the URLs
// masked (a URL may end in the key).
func redactStreams(ds []StreamDestination) []StreamDestination {
	if ds == nil {
		return nil
	}
	out := make([]StreamDestination, len(ds))
	for i, d := range ds {
		out[i] = StreamDestination{Name: d.Name, URL: maskStreamURL(d.URL, d.Key != ""), Key: redactIfSet(d.Key)}
	}
	return out
}

// maxAutoStreams bounds rooms.<id>.auto_stream: each destination is a
// connection and its bandwidth.
const maxAutoStreams = 10

// autoStream checks a room's auto_stream list. Messages never show a key
// or a URL (whose last segment may be one).
func (v *validator) autoStream(key string, ds []StreamDestination) {
	if len(ds) > maxAutoStreams {
		v.fail(key, "%d destinations, at most %d", len(ds), maxAutoStreams)
	}
	for i, d := range ds {
		k := fmt.Sprintf("%s[%d]", key, i)
		if utf8.RuneCountInString(d.Name) > maxRoomNameLen || !printable(d.Name) {
			v.fail(k+".name", "must be at most %d printable characters", maxRoomNameLen)
		}
		if msg := checkStreamURL(d.URL, d.Key); msg != "" {
			v.fail(k+".url", "%s", msg)
		}
		if strings.ContainsAny(d.Key, "\x00\r\n") {
			v.fail(k+".key", "must not contain control characters")
		}
	}
}

// checkStreamURL returns what is wrong with a destination URL, without
// quoting it, or "".
func checkStreamURL(raw, key string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	switch {
	case raw == "":
		return "is required"
	case err != nil:
		return "is not a URL"
	case u.Scheme != "rtmp" && u.Scheme != "rtmps":
		return "must be an rtmp:// or rtmps:// URL"
	case u.Hostname() == "" || u.Opaque != "":
		return "has no host"
	case u.User != nil:
		return "must not hold credentials"
	case u.Fragment != "":
		return "must not have a fragment"
	}
	segs := 0
	for seg := range strings.SplitSeq(strings.Trim(u.EscapedPath(), "/"), "/") {
		if seg != "" {
			segs++
		}
	}
	switch {
	case key != "" && segs == 0:
		return "has no application in the path"
	case key == "" && segs < 2:
		return "needs an application and a stream key in the path (or set key)"
	}
	return ""
}
