package stream

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/room"
)

// flashClip is 10 s of black 320x240 video at 25 fps with a white frame at
// 1, 3, 5, 7 and 9 s: the picture half of an A/V sync check.
func flashClip(t *testing.T) *h264Clip {
	return makeClip(t, "color=c=black", "drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='eq(mod(n,50),25)'", "320x240", 25, 10)
}

// beepTimes are when the flashes are, and the beeps of the sound half.
var beepTimes = []float64{1, 3, 5, 7, 9}

const beepFreq = 5000

// onsets finds, for each expected time (s on the file's timeline), the
// first millisecond within ±400 ms at which pcm holds the beep.
func onsets(pcm []int16, expected []float64) []float64 {
	var out []float64
	const win = media.Rate48k / 100 // 10 ms
	for _, e := range expected {
		found := -1.0
		for ms := -400; ms <= 400; ms++ {
			i := int((e + float64(ms)/1000) * media.Rate48k)
			if i < 0 || i+win > len(pcm) {
				continue
			}
			if mediatest.ToneDB(pcm[i:i+win], beepFreq, media.Rate48k) > -20 {
				found = float64(i) / media.Rate48k
				break
			}
		}
		out = append(out, found)
	}
	return out
}

// TestPresenterAndSpeech: 10 s of a room with a speaker and a presenter
// reach nginx-rtmp as H.264 + AAC; the recording lasts 10 s, its audio is
// the speech, and every flash of the video comes with its beep within
// 100 ms.
func TestPresenterAndSpeech(t *testing.T) {
	t.Parallel()
	ng := startNginx(t, nginxOpts{})
	clip := flashClip(t)
	pcm := withBeeps(mediatest.Speech(t, media.Rate48k, 10), beepTimes, beepFreq, 0.5)
	ev := newEvents()
	mix, video := newMixFeed(), newVideoFeed()
	eg, err := New(mix, video, testOptions(ev))
	require.NoError(t, err)
	defer eg.Close()
	id, err := eg.Add(context.Background(), Destination{Name: "nginx", URL: ng.url("av")})
	require.NoError(t, err)
	ev.await(t, id, StateLive, 5*time.Second)

	f := feeder{mix: mix, video: video, pcm: pcm, clip: clip}
	f.run(t.Context())
	st := eg.Status()
	require.Equal(t, VideoPresenter, st.Video)
	require.Equal(t, StateLive, st.Destinations[0].State)
	require.Zero(t, st.Destinations[0].Reconnects)
	require.Greater(t, st.Destinations[0].Bitrate, int64(100_000))
	require.NotEmpty(t, video.plis, "no keyframe request")
	require.NoError(t, eg.Close())
	require.Equal(t, StateStopped, eg.Status().Destinations[0].State)

	recs := ng.recordings("av")
	require.Len(t, recs, 1, ng.log())
	p := probe(t, recs[0])
	require.Equal(t, map[string]string{"audio": "aac", "video": "h264"}, p.codecs())
	require.InDelta(t, 10.0, p.duration(t).Seconds(), 0.5)
	checkTimestamps(t, recs[0])

	// The flashes, on the file's timeline.
	var flashes []float64
	for _, fr := range decodeVideo(t, recs[0]) {
		if fr.luma > 128 && fr.width == 320 {
			flashes = append(flashes, fr.pts)
		}
	}
	require.Len(t, flashes, len(beepTimes), "flashes %v", flashes)

	// Each flash has its beep within 100 ms.
	audio := decodeAudio(t, recs[0])
	beeps := onsets(audio, flashes)
	for i := range flashes {
		require.Positive(t, beeps[i], "no beep near the flash at %.3f s", flashes[i])
		t.Logf("flash %.3f s, beep %.3f s: audio %+.0f ms", flashes[i], beeps[i], (beeps[i]-flashes[i])*1000)
		require.InDelta(t, flashes[i], beeps[i], 0.1, "A/V offset at flash %d", i)
	}

	// The audio is the speech: align by the first beep, then correlate
	// 1.6 s between beeps, searching ±10 ms.
	offset := beeps[0] - beepTimes[0] // file time of source time 0
	src := pcm[int(3.2*media.Rate48k):int(4.8*media.Rate48k)]
	from := int((3.2 + offset - 0.01) * media.Rate48k)
	require.Positive(t, from)
	lag, corr := mediatest.BestLag(src, audio[from:], media.Rate48k/50)
	t.Logf("speech correlation %.3f at %+.1f ms", corr, float64(lag-media.Rate48k/100)/48)
	require.Greater(t, corr, 0.95)
}

// checkTimestamps checks an FLV's audio and video timestamps never go back
// and that it has AAC (all alike) and AVC sequence headers.
func checkTimestamps(t *testing.T, path string) {
	t.Helper()
	last := map[byte]uint32{}
	var aacHdr, avcHdr int
	var asc []byte
	for _, tag := range readFLV(t, path) {
		if tag.typ != typeAudio && tag.typ != typeVideo {
			continue
		}
		require.GreaterOrEqual(t, tag.ts, last[tag.typ], "timestamp went back (type %d)", tag.typ)
		last[tag.typ] = tag.ts
		if len(tag.data) > 1 && tag.data[1] == flvSequenceHeader {
			if tag.typ == typeAudio {
				// nginx-rtmp's record writes the header it keeps at the
				// start of the file, then ours as it arrived.
				if asc == nil {
					asc = tag.data[2:]
				}
				require.Equal(t, asc, tag.data[2:], "AAC sequence headers differ")
				aacHdr++
			} else {
				avcHdr++
			}
		}
	}
	require.GreaterOrEqual(t, aacHdr, 1, "AAC sequence headers")
	require.GreaterOrEqual(t, avcHdr, 1, "AVC sequence headers")
}

// toneParticipant is a room participant that plays a tone.
type toneParticipant struct {
	id   room.ParticipantID
	tone mediatest.Tone
}

var _ room.Participant = (*toneParticipant)(nil)

func (p *toneParticipant) Info() room.Info {
	return room.Info{ID: p.id, Name: "tone", Kind: room.KindOther, Format: room.PCMU}
}
func (p *toneParticipant) ReadFrame(dst *media.Frame) bool { p.tone.Fill(dst[:]); return true }
func (p *toneParticipant) WriteMix(room.Packet) bool       { return true }
func (p *toneParticipant) Detached(error)                  {}

// TestAudioOnlyRoomSlate: a real room with a participant and no presenter
// streams the slate: nginx accepts it, ffmpeg decodes it without an error,
// it has an IDR every 2 s, and the audio is the participant's tone. When
// the room closes, the egress ends by itself.
func TestAudioOnlyRoomSlate(t *testing.T) {
	t.Parallel()
	ng := startNginx(t, nginxOpts{})
	r := room.NewRoom("slate")
	require.NoError(t, r.Join(&toneParticipant{id: "p1", tone: mediatest.Tone{Freq: 440, Amp: 0.3, Rate: media.Rate48k}}))
	ev := newEvents()
	eg, err := New(r.SubscribeMix(RecommendedMixBuffer), nil, testOptions(ev))
	require.NoError(t, err)
	defer eg.Close()
	id, err := eg.Add(context.Background(), Destination{URL: ng.url("slate")})
	require.NoError(t, err)
	ev.await(t, id, StateLive, 5*time.Second)
	select {
	case <-time.After(5 * time.Second): // stream for 5 s
	case <-eg.Done():
		t.Fatal("egress ended early")
	}
	require.Equal(t, VideoSlate, eg.Status().Video)
	require.NoError(t, r.Close(t.Context()))
	select {
	case <-eg.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("egress did not end with its room")
	}
	require.True(t, eg.Status().Ended)

	recs := ng.recordings("slate")
	require.Len(t, recs, 1)
	p := probe(t, recs[0])
	require.Equal(t, map[string]string{"audio": "aac", "video": "h264"}, p.codecs())
	require.InDelta(t, 5.0, p.duration(t).Seconds(), 0.6)
	frames := decodeVideo(t, recs[0])
	require.InDelta(t, 25, len(frames), 4, "slate frames at 5 fps")
	for _, f := range frames {
		require.Equal(t, [2]int{640, 360}, [2]int{f.width, f.height})
	}
	var keys []uint32
	for _, tag := range readFLV(t, recs[0]) {
		if tag.typ == typeVideo && tag.data[0] == flvVideoKey && tag.data[1] == flvRaw {
			keys = append(keys, tag.ts)
		}
	}
	require.GreaterOrEqual(t, len(keys), 3)
	for i := 1; i < len(keys); i++ {
		require.InDelta(t, 2000, keys[i]-keys[i-1], 300, "IDR interval")
	}
	audio := decodeAudio(t, recs[0])
	mid := audio[len(audio)/2 : len(audio)/2+media.Rate48k/2]
	require.Greater(t, mediatest.ToneDB(mid, 440, media.Rate48k), -16.0)
	checkTimestamps(t, recs[0])
}

// TestSlatePresenterSwitch: a presenter who starts and stops mid-stream
// replaces the slate and is replaced by it on the same connection, each
// switch with a new sequence header; the whole recording decodes.
func TestSlatePresenterSwitch(t *testing.T) {
	t.Parallel()
	ng := startNginx(t, nginxOpts{})
	clip := makeClip(t, "testsrc", "", "320x240", 25, 8)
	ev := newEvents()
	mix, video := newMixFeed(), newVideoFeed()
	eg, err := New(mix, video, testOptions(ev))
	require.NoError(t, err)
	defer eg.Close()
	id, err := eg.Add(context.Background(), Destination{URL: ng.url("switch")})
	require.NoError(t, err)
	ev.await(t, id, StateLive, 5*time.Second)
	f := feeder{mix: mix, video: video, pcm: mediatest.Sine(300, 0.2, media.Rate48k, 8*media.Rate48k),
		clip: clip, videoFrom: 2, videoTo: 4}
	f.run(t.Context())
	require.Equal(t, VideoSlate, eg.Status().Video)
	require.Zero(t, eg.Status().Destinations[0].Reconnects)
	require.NoError(t, eg.Close())

	recs := ng.recordings("switch")
	require.Len(t, recs, 1)
	frames := decodeVideo(t, recs[0])
	var sizes []int // 640 or 320, each run once
	for _, fr := range frames {
		if len(sizes) == 0 || sizes[len(sizes)-1] != fr.width {
			sizes = append(sizes, fr.width)
		}
	}
	require.Equal(t, []int{640, 320, 640}, sizes)
	var hdrs int
	for _, tag := range readFLV(t, recs[0]) {
		if tag.typ == typeVideo && tag.data[1] == flvSequenceHeader {
			hdrs++
		}
	}
	t.Logf("%d AVC sequence headers in the recording", hdrs)
	checkTimestamps(t, recs[0])
}
