package configs

import "time"

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
