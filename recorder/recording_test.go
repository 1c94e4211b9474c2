package recorder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/room"
)

// toneParticipant is a room participant playing a tone.
type toneParticipant struct {
	info room.Info
	tone *mediatest.Tone
}

var _ room.Participant = (*toneParticipant)(nil)

func (p *toneParticipant) Info() room.Info { return p.info }
func (p *toneParticipant) ReadFrame(dst *media.Frame) bool {
	if p.tone == nil {
		return false
	}
	p.tone.Fill(dst[:])
	return true
}
func (p *toneParticipant) WriteMix(room.Packet) bool { return true }
func (p *toneParticipant) Detached(error)            {}

// TestRecordingOfRoomMix records a real room's mix (a caller playing a
// 440 Hz tone) and checks the file as audio and the manifest.
func TestRecordingOfRoomMix(t *testing.T) {
	h := newHarness(t, nil)
	rm := room.NewRoom("board", room.WithManualTick(), room.WithEmptyTimeout(-1), room.WithClock(h.clock.Now))
	caller := &toneParticipant{
		info: room.Info{ID: "call-1@192.0.2.7", Name: "Ada", Kind: room.KindPhone, Format: room.PCMU},
		tone: &mediatest.Tone{Freq: 440, Amp: 0.3, Rate: media.Rate48k},
	}
	require.NoError(t, rm.Join(caller))
	rec, err := h.r.Start(rm.ID(), "acme", "", rm.SubscribeMix(RecommendedMixBuffer+10))
	require.NoError(t, err)
	require.Equal(t, EventStarted, h.awaitEvent(t, EventStarted, rec.ID()).Type)
	rec.Joined(ParticipantInfo{ID: "call-1@192.0.2.7", Name: "Ada", Number: "+4930123456", Kind: room.KindPhone}, time.Time{})

	const ticks = 150
	for i := range ticks {
		now := t0.Add(time.Duration(i+1) * media.FrameDuration)
		h.clock.Set(now)
		rm.Tick(now)
	}
	require.NoError(t, rm.Close(context.Background())) // the mix ends: io.EOF
	waitDone(t, rec)
	require.NoError(t, rec.Err())
	h.awaitEvent(t, EventCompleted, rec.ID())

	m := rec.Manifest()
	require.Equal(t, StateComplete, m.State)
	require.Equal(t, Tenant("acme"), m.Tenant)
	require.Equal(t, room.ID("board"), m.Room)
	require.Equal(t, "node-a", m.Node)
	require.Equal(t, Format, m.Format)
	require.Equal(t, t0, m.StartedAt)
	require.Equal(t, t0.Add(ticks*media.FrameDuration), m.EndedAt)
	require.Equal(t, DefaultPolicyName, m.Retention)
	require.Equal(t, t0.Add(DefaultRetention), m.ExpiresAt)
	require.Nil(t, m.LegalHold)
	require.Zero(t, m.DroppedFrames)
	require.InDelta(t, 3.0, m.Duration, 0.01)
	require.Equal(t, 1, m.ParticipantCount)
	require.Equal(t, []Participant{{Name: "Ada", Number: "*********56", Kind: "phone", JoinedAt: t0, LeftAt: m.EndedAt,
		id: "call-1@192.0.2.7"}}, m.Participants)

	path := h.audioPath(t, m.ID)
	sum, size := fileSHA(t, path)
	require.Equal(t, sum, m.SHA256)
	require.Equal(t, size, m.Bytes)
	disk := h.diskManifest(t, m.ID)
	m.Participants[0].id = ""
	require.Equal(t, m, disk, "the manifest on disk is the final one")
	raw, err := os.ReadFile(h.manifestPath(t, m.ID))
	require.NoError(t, err)
	require.NotContains(t, string(raw), "4930123456")
	require.NotContains(t, string(raw), "192.0.2.7", "participant IDs (Call-IDs) are not stored")
	require.Contains(t, string(raw), `"started_at": "2031-03-14T09:00:00Z"`, "UTC RFC 3339")

	require.InDelta(t, 3.0, probe(t, path).Duration, 0.05)
	got := mediatest.FFmpegDecode(t, path)
	mid := got[media.Rate48k/2 : 5*media.Rate48k/2]
	require.InDelta(t, mediatest.ToneDB(mediatest.Sine(440, 0.3, media.Rate48k, len(mid)), 440, media.Rate48k),
		mediatest.ToneDB(mid, 440, media.Rate48k), 2, "the caller's tone at its level")
	ref := mediatest.Sine(440, 1, media.Rate48k, media.Rate48k/2)
	_, corr := mediatest.BestLag(ref, mid, media.Rate48k/440+1)
	require.GreaterOrEqual(t, corr, 0.9)
}

func TestRecordingFillsDroppedFramesWithSilence(t *testing.T) {
	h := newHarness(t, nil)
	tone := &mediatest.Tone{Freq: 1000, Amp: 0.5, Rate: media.Rate48k}
	frames := append(toneFrames(tone, 1, 50), toneFrames(tone, 61, 40)...) // ticks 51..60 lost
	m := h.record(t, "acme", "", frames)
	require.Equal(t, uint64(10), m.DroppedFrames)
	require.InDelta(t, 2.0, m.Duration, 0.01, "the gap is kept as silence")
	path := h.audioPath(t, m.ID)
	require.InDelta(t, 2.0, probe(t, path).Duration, 0.05)
	got := mediatest.FFmpegDecode(t, path)
	at := func(s float64) []int16 { i := int(s * media.Rate48k); return got[i : i+media.Rate48k/20] }
	require.Greater(t, mediatest.ToneDB(at(0.5), 1000, media.Rate48k), -10.0)
	require.Less(t, mediatest.RMSDBFS(at(1.07)), -50.0, "silence where frames were lost")
	require.Greater(t, mediatest.ToneDB(at(1.5), 1000, media.Rate48k), -10.0)
}

// fullFile is an audio file on a disk that fills up after limit bytes.
type fullFile struct {
	*os.File
	limit, n int64
}

func (f *fullFile) Write(p []byte) (int, error) {
	room := int(max(f.limit-f.n, 0))
	if len(p) <= room {
		n, err := f.File.Write(p)
		f.n += int64(n)
		return n, err
	}
	n, _ := f.File.Write(p[:room])
	f.n += int64(n)
	return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
}

func TestDiskFullInterruptsOnlyThatRecording(t *testing.T) {
	h := newHarness(t, nil)
	var mu sync.Mutex
	first := true
	create := h.r.createAudio
	h.r.createAudio = func(path string) (audioFile, error) {
		f, err := create(path)
		mu.Lock()
		defer mu.Unlock()
		if err != nil || !first {
			return f, err
		}
		first = false
		return &fullFile{File: f.(*os.File), limit: 6000}, nil // headers and one page fit
	}
	srcA, srcB := newChanSource(), newChanSource()
	a, err := h.r.Start("room-a", "acme", "", srcA)
	require.NoError(t, err)
	b, err := h.r.Start("room-b", "acme", "", srcB)
	require.NoError(t, err)

	toneA := &mediatest.Tone{Freq: 1000, Amp: 0.5, Rate: media.Rate48k}
	for _, f := range toneFrames(toneA, 1, 150) {
		srcA.frames <- f
	}
	ev := h.awaitEvent(t, EventInterrupted, a.ID())
	require.ErrorIs(t, ev.Err, ErrInterrupted)
	require.ErrorIs(t, ev.Err, syscall.ENOSPC)
	waitDone(t, a)
	require.ErrorIs(t, a.Err(), syscall.ENOSPC)
	select {
	case <-srcA.closed:
	default:
		t.Fatal("the interrupted recording did not close its source")
	}

	ma := a.Manifest()
	require.Equal(t, StateInterrupted, ma.State)
	require.Contains(t, ma.Error, "no space left on device")
	path := h.audioPath(t, ma.ID)
	sum, size := fileSHA(t, path)
	require.Equal(t, ma.Bytes, size, "cut back to the last complete page")
	require.Equal(t, ma.SHA256, sum)
	require.InDelta(t, 1.0, ma.Duration, 0.01, "one page of 50 packets survived")
	require.Equal(t, ma, withoutIDs(h.diskManifest(t, ma.ID)))
	require.InDelta(t, 1.0, probe(t, path).Duration, 0.05)
	mediatest.FFmpegDecode(t, path)

	toneB := &mediatest.Tone{Freq: 700, Amp: 0.5, Rate: media.Rate48k}
	srcB.feed(t, toneFrames(toneB, 1, 150))
	require.Equal(t, StateRecording, b.State(), "the other recording goes on")
	require.NoError(t, b.Stop(context.Background()))
	mb := b.Manifest()
	require.Equal(t, StateComplete, mb.State)
	require.InDelta(t, 3.0, mb.Duration, 0.01)
}

// withoutIDs clears the unexported participant IDs, as a manifest read from
// disk has none.
func withoutIDs(m Manifest) Manifest {
	for i := range m.Participants {
		m.Participants[i].id = ""
	}
	return m
}

func TestManifestFollowsParticipantsWhileRecording(t *testing.T) {
	h := newHarness(t, nil)
	src := newChanSource()
	rec, err := h.r.Start("room-1", "acme", "", src)
	require.NoError(t, err)
	disk := h.diskManifest(t, rec.ID())
	require.Equal(t, StateRecording, disk.State, "the manifest exists from the start")

	rec.Joined(ParticipantInfo{ID: "p1", Name: "Grace", Number: "+15550100", Kind: room.KindPhone}, t0.Add(time.Second))
	rec.Joined(ParticipantInfo{ID: "p2", Name: "Linus", Kind: room.KindWebRTC}, t0.Add(2*time.Second))
	rec.Left("p1", t0.Add(3*time.Second))
	rec.Left("nobody", t0.Add(3*time.Second))
	tone := &mediatest.Tone{Freq: 1000, Amp: 0.5, Rate: media.Rate48k}
	src.feed(t, toneFrames(tone, 1, packetsPerPage+1)) // the first audio page is written with packet 51

	disk = h.diskManifest(t, rec.ID())
	require.Equal(t, StateRecording, disk.State)
	require.Equal(t, 2, disk.ParticipantCount)
	require.Equal(t, []Participant{
		{Name: "Grace", Number: "*******00", Kind: "phone", JoinedAt: t0.Add(time.Second), LeftAt: t0.Add(3 * time.Second)},
		{Name: "Linus", Kind: "webrtc", JoinedAt: t0.Add(2 * time.Second)},
	}, disk.Participants)
	require.Positive(t, disk.Bytes)

	ents, err := os.ReadDir(h.opts.Dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	require.ElementsMatch(t, []string{string(rec.ID()) + ".opus", string(rec.ID()) + ".json", ReceiptsFileName}, names,
		"no temp files left behind")
	require.NoError(t, rec.Stop(context.Background()))
	require.NoError(t, rec.Stop(context.Background()), "Stop twice is fine")
	rec.Joined(ParticipantInfo{ID: "late"}, time.Time{})
	require.Equal(t, 2, rec.Manifest().ParticipantCount, "joins after the end are ignored")
}

func TestFollowFeedsRoomEvents(t *testing.T) {
	h := newHarness(t, nil)
	src := newChanSource()
	rec, err := h.r.Start("room-1", "acme", "", src)
	require.NoError(t, err)
	events := make(chan room.Event, 8)
	events <- room.Event{Type: room.EventJoined, Room: "room-1", Participant: "c1", Time: t0.Add(time.Second)}
	events <- room.Event{Type: room.EventSpeakingStarted, Room: "room-1", Participant: "c1", Time: t0.Add(2 * time.Second)}
	events <- room.Event{Type: room.EventLeft, Room: "room-1", Participant: "c1", Time: t0.Add(4 * time.Second)}
	close(events)
	lookup := func(id room.ParticipantID) ParticipantInfo {
		return ParticipantInfo{Name: "caller " + string(id), Number: "0301234", Kind: room.KindPhone}
	}
	require.NoError(t, rec.Follow(context.Background(), events, lookup))
	require.NoError(t, rec.Stop(context.Background()))
	require.Equal(t, []Participant{{Name: "caller c1", Number: "*****34", Kind: "phone",
		JoinedAt: t0.Add(time.Second), LeftAt: t0.Add(4 * time.Second), id: "c1"}}, rec.Manifest().Participants)

	require.NoError(t, rec.Follow(context.Background(), make(chan room.Event), lookup), "an ended recording ends Follow")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, newRecording(h.r, &entry{}, newChanSource()).Follow(ctx, nil, lookup), context.Canceled)
}

func TestStartRefusesBadArguments(t *testing.T) {
	h := newHarness(t, nil)
	for _, tc := range []struct {
		tenant Tenant
		policy string
		room   room.ID
		want   error
	}{
		{"", "", "r", ErrInvalidTenant},
		{"acme/../x", "", "r", ErrInvalidTenant},
		{Tenant(strings.Repeat("a", 65)), "", "r", ErrInvalidTenant},
		{"acme", "forever", "r", ErrUnknownPolicy},
		{"acme", "", "", ErrInvalidArgument},
	} {
		src := newChanSource()
		_, err := h.r.Start(tc.room, tc.tenant, tc.policy, src)
		require.ErrorIs(t, err, tc.want, "%+v", tc)
		select {
		case <-src.closed:
		default:
			t.Fatalf("%+v: source not closed", tc)
		}
	}
	require.Empty(t, h.r.List(Filter{}))
}

func TestCloseCompletesRecordingsAndRefusesNew(t *testing.T) {
	h := newHarness(t, nil)
	var recs []*Recording
	for range 3 {
		src := newChanSource()
		rec, err := h.r.Start("room-1", "acme", "", src)
		require.NoError(t, err)
		src.feed(t, toneFrames(&mediatest.Tone{Freq: 500, Amp: 0.2, Rate: media.Rate48k}, 1, 60))
		recs = append(recs, rec)
	}
	require.NoError(t, h.r.Close(context.Background()))
	for _, rec := range recs {
		m := rec.Manifest()
		require.Equal(t, StateComplete, m.State)
		require.InDelta(t, 1.2, m.Duration, 0.01)
		require.InDelta(t, 1.2, probe(t, h.audioPath(t, m.ID)).Duration, 0.05)
	}
	_, err := h.r.Start("room-1", "acme", "", newChanSource())
	require.ErrorIs(t, err, ErrClosed)
}

// TestLogsHoldNoPersonalData checks decision 8 on a whole recording's life:
// names and numbers go into the manifest, never into a log line.
func TestLogsHoldNoPersonalData(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	h := newHarness(t, func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	src := newChanSource()
	rec, err := h.r.Start("room-1", "acme", "", src)
	require.NoError(t, err)
	rec.Joined(ParticipantInfo{ID: "sip-call@198.51.100.9", Name: "Margaret Hamilton", Number: "+4915112345678"}, time.Time{})
	src.feed(t, toneFrames(&mediatest.Tone{Freq: 500, Amp: 0.2, Rate: media.Rate48k}, 1, 60))
	require.NoError(t, rec.Stop(context.Background()))
	h.clock.Set(t0.Add(DefaultRetention))
	require.Len(t, h.r.Sweep(h.clock.Now()).Deleted, 1)
	mu.Lock()
	logs := buf.String()
	mu.Unlock()
	require.Contains(t, logs, string(rec.ID()))
	for _, secret := range []string{"Margaret", "Hamilton", "4915112345678", "12345678", "198.51.100.9", string(testKey)} {
		require.NotContains(t, logs, secret)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestParseID(t *testing.T) {
	good := NewID()
	require.Len(t, string(good), 22)
	got, err := ParseID(string(good))
	require.NoError(t, err)
	require.Equal(t, good, got)
	for _, bad := range []string{
		"", "short", string(good) + "A", string(good[:21]), "../../../../etc/passwd",
		"AAAAAAAAAAAAAAAAAAAAA/", "AAAAAAAAAAAAAAAAAAAA==", "AAAAAAAAAAAAAAAAAAAAA+",
		"AAAAAAAAAAAAAAAAAAAAAB", // non-canonical: the last 2 bits must be 0
		"AAAAAAAAAAAAAAAAAAAA.A", "AAAAAAAAAAAAAAAAAAAA\x00A",
	} {
		_, err := ParseID(bad)
		require.ErrorIs(t, err, ErrInvalidID, "%q", bad)
	}
	_, err = ParseID("AAAAAAAAAAAAAAAAAAAAAA")
	require.NoError(t, err)
	seen := map[ID]bool{}
	for range 1000 {
		id := NewID()
		require.True(t, id.Valid())
		require.False(t, seen[id])
		seen[id] = true
	}
	_, err = NewHarnessLookup(t).Get("../x")
	require.ErrorIs(t, err, ErrInvalidID, "IDs are checked before any path is built")
}

// NewHarnessLookup is a recorder for lookups only.
func NewHarnessLookup(t *testing.T) *Recorder { return newHarness(t, nil).r }

func TestMaskNumber(t *testing.T) {
	for in, want := range map[string]string{"": "", "1": "**", "12": "**", "+4930123456": "*********56", "0301234": "*****34"} {
		require.Equal(t, want, MaskNumber(in))
	}
}

func TestManifestJSONFields(t *testing.T) {
	h := newHarness(t, nil)
	m := h.record(t, "acme", "", toneFrames(&mediatest.Tone{Freq: 500, Amp: 0.2, Rate: media.Rate48k}, 1, 10))
	raw, err := os.ReadFile(filepath.Join(h.opts.Dir, string(m.ID)+".json"))
	require.NoError(t, err)
	var fields map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &fields))
	for _, k := range []string{"id", "tenant", "room", "started_at", "ended_at", "duration", "format", "bytes", "sha256",
		"participant_count", "state", "retention", "expires_at", "legal_hold", "node"} {
		require.Contains(t, fields, k)
	}
	require.Equal(t, "null", string(fields["legal_hold"]))
	require.True(t, errors.Is(ErrExpired, ErrExpired))
}
