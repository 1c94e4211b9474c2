package stream

import (
	"bytes"
	"errors"
	"fmt"
)

// FLV tag bodies as RTMP audio and video messages carry them (Adobe FLV
// specification v10.1 §E.4.2.1 AUDIODATA, §E.4.3.1 VIDEODATA, and the
// AVC/AAC packet types of §E.4.2.2 and §E.4.3.2).

const (
	// flvAudioAAC is the AUDIODATA header byte for AAC: SoundFormat 10,
	// and the rate, size and type bits the specification fixes at 44 kHz,
	// 16 bit, stereo for AAC (the AudioSpecificConfig is what counts).
	flvAudioAAC = 0xaf
	// AACPacketType and AVCPacketType values.
	flvSequenceHeader = 0
	flvRaw            = 1
	// VIDEODATA header bytes: FrameType (1 key, 2 inter) and CodecID 7.
	flvVideoKey   = 0x17
	flvVideoInter = 0x27
)

// appendAudioHeader appends the AAC sequence header: the AudioSpecificConfig
// (ISO 14496-3 §1.6.2.1) a decoder needs before the first frame.
func appendAudioHeader(dst, asc []byte) []byte {
	dst = append(dst, flvAudioAAC, flvSequenceHeader)
	return append(dst, asc...)
}

// appendAudioFrame appends the AUDIODATA header of a raw AAC frame; the
// frame follows.
func appendAudioFrame(dst []byte) []byte { return append(dst, flvAudioAAC, flvRaw) }

// appendVideoFrameHeader appends the VIDEODATA header of an AVC frame; the
// AVCC NAL units follow.
func appendVideoFrameHeader(dst []byte, key bool) []byte {
	b := byte(flvVideoInter)
	if key {
		b = flvVideoKey
	}
	return append(dst, b, flvRaw, 0, 0, 0)
}

// errParamSets means an SPS or PPS is missing or too short to describe.
var errParamSets = errors.New("stream: h264 sps or pps missing")

// appendVideoHeader appends the AVC sequence header: an
// AVCDecoderConfigurationRecord (ISO 14496-15 §5.2.4.1) with one SPS and
// one PPS and 4-byte NAL lengths.
func appendVideoHeader(dst, sps, pps []byte) ([]byte, error) {
	if !paramSetsOK(sps, pps) {
		return dst, errParamSets
	}
	dst = append(dst, flvVideoKey, flvSequenceHeader, 0, 0, 0)
	dst = append(dst,
		1,                      // configurationVersion
		sps[1], sps[2], sps[3], // profile, constraint flags, level
		0xfc|3, // lengthSizeMinusOne: 4-byte lengths
		0xe0|1, // one SPS
		byte(len(sps)>>8), byte(len(sps)))
	dst = append(dst, sps...)
	dst = append(dst, 1, byte(len(pps)>>8), byte(len(pps)))
	return append(dst, pps...), nil
}

// paramSetsOK reports whether an SPS and a PPS fit a decoder configuration
// record: the SPS holds at least the profile and level bytes.
func paramSetsOK(sps, pps []byte) bool {
	return len(sps) >= 4 && len(pps) >= 1 && len(sps) <= 0xffff && len(pps) <= 0xffff
}

// streamMetadata is what onMetaData announces: the codecs, so a platform
// (and nginx-rtmp's record) knows the stream before the first frames. The
// fields are exported for go-amf0's encoder, which names them by their
// amf0 tags (FLV §E.5).
type streamMetadata struct {
	AudioCodecID    int    `amf0:"audiocodecid"`
	AudioDataRate   int    `amf0:"audiodatarate"`
	AudioSampleRate int    `amf0:"audiosamplerate"`
	AudioSampleSize int    `amf0:"audiosamplesize"`
	AudioChannels   int    `amf0:"audiochannels"`
	Stereo          bool   `amf0:"stereo"`
	VideoCodecID    int    `amf0:"videocodecid"`
	Encoder         string `amf0:"encoder"`
}

// newMetadata describes the egress's output.
func newMetadata(bitrate, channels int) streamMetadata {
	return streamMetadata{
		AudioCodecID: 10, AudioDataRate: bitrate / 1000, AudioSampleRate: 48000,
		AudioSampleSize: 16, AudioChannels: channels, Stereo: channels == 2,
		VideoCodecID: 7, Encoder: "mediagate",
	}
}

// writeMetadata sends @setDataFrame onMetaData (FLV §E.5), which the server
// keeps as the stream's metadata.
func (c *conn) writeMetadata(md streamMetadata) error {
	var buf bytes.Buffer
	if err := encodeAMF(&buf, "@setDataFrame", "onMetaData", md); err != nil {
		return err
	}
	if err := c.writeTag(typeDataAMF0, 0, buf.Bytes()); err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	return c.bw.Flush()
}
