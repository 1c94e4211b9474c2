package main

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/api"
	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/recorder"
	"github.com/mediagate/mediagate/room"
)

// member is a room participant that sends nothing.
type member struct{ id, name string }

var _ room.Participant = (*member)(nil)

func (p *member) Info() room.Info {
	return room.Info{ID: room.ParticipantID(p.id), Name: p.name, Kind: room.KindWebRTC, Format: room.PCMU}
}
func (p *member) ReadFrame(*media.Frame) bool { return false }
func (p *member) WriteMix(room.Packet) bool   { return true }
func (p *member) Detached(error)              {}

// roomsEnv is roomRecordings over a real room manager (rooms ticking in
// real time) and a real recorder, with the recorder's events.
type roomsEnv struct {
	g      *roomRecordings
	mgr    *room.Manager
	rec    *recorder.Recorder
	events chan recorder.Event
}

func newRoomsEnv(t *testing.T, auto []string) *roomsEnv {
	t.Helper()
	e := &roomsEnv{events: make(chan recorder.Event, 100)}
	rec, err := recorder.New(recorder.Options{
		Dir: t.TempDir(), ReceiptKey: bytes.Repeat([]byte("k"), 32), Sync: recorder.SyncNever,
		Policies: []recorder.Policy{{Name: "short", Duration: time.Hour}},
		OnEvent: func(ev recorder.Event) {
			select {
			case e.events <- ev:
			default:
			}
		},
	})
	require.NoError(t, err)
	e.rec = rec
	policyOf := func(id room.ID) string {
		if id == "board" {
			return "short"
		}
		return ""
	}
	e.g = newRoomRecordings(slog.New(slog.DiscardHandler), rec, func(room.ID) recorder.Tenant { return api.DefaultTenant }, policyOf, auto, 0)
	e.mgr = room.NewManager(room.WithOnOpen(e.g.opened), room.WithRoomDefaults(room.WithEmptyTimeout(time.Hour)))
	e.g.rooms = e.mgr
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, e.g.close(ctx))
		require.NoError(t, e.mgr.Close(ctx))
	})
	return e
}

// await returns the next recorder event of type typ.
func (e *roomsEnv) await(t *testing.T, typ recorder.EventType) recorder.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-e.events:
			if ev.Type == typ {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s event within 10 s", typ)
		}
	}
}

// names returns the participants' names and whether each has left.
func (e *roomsEnv) names(t *testing.T, id recorder.ID) map[string]bool {
	t.Helper()
	m, err := e.rec.Get(id)
	require.NoError(t, err)
	out := map[string]bool{}
	for _, p := range m.Participants {
		out[p.Name] = !p.LeftAt.IsZero()
	}
	return out
}

// awaitRoomEvent returns the next event of type typ from sub.
func awaitRoomEvent(t *testing.T, sub *room.EventSub, typ room.EventType) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-sub.C():
			if ev.Type == typ {
				return
			}
		case <-deadline:
			t.Fatalf("no room event %s within 10 s", typ)
		}
	}
}

// TestRecordingRoomsFollowParticipants: an admin's recording marks the
// room recorded (the event phone callers hear the notice from) until it
// stops, and its manifest follows who is in the room, starting with who
// was there already.
func TestRecordingRoomsFollowParticipants(t *testing.T) {
	e := newRoomsEnv(t, nil)
	rm, err := e.mgr.Create("board")
	require.NoError(t, err)
	require.NoError(t, rm.Join(&member{"a", "Ada"}))
	sub := rm.SubscribeEvents(64)

	m, err := e.g.StartRecording("board")
	require.NoError(t, err)
	require.Equal(t, "short", m.Retention, "the room's policy")
	require.Equal(t, api.DefaultTenant, m.Tenant)
	require.True(t, rm.Recording())
	awaitRoomEvent(t, sub, room.EventRecordingStarted)
	_, err = e.g.StartRecording("board")
	require.ErrorIs(t, err, api.ErrAlreadyRecording)
	_, err = e.g.StartRecording("nowhere")
	require.ErrorIs(t, err, room.ErrNotFound)

	require.NoError(t, rm.Join(&member{"b", "Bob"}))
	require.NoError(t, rm.Leave("a"))
	require.Eventually(t, func() bool {
		return len(e.names(t, m.ID)) == 2 && e.names(t, m.ID)["Ada"] && !e.names(t, m.ID)["Bob"]
	}, 10*time.Second, 10*time.Millisecond, "Ada there from the start and gone, Bob joined")

	done, err := e.g.StopRecording(context.Background(), "board")
	require.NoError(t, err)
	require.Equal(t, recorder.StateComplete, done.State)
	require.False(t, rm.Recording(), "unmarked once StopRecording returns")
	awaitRoomEvent(t, sub, room.EventRecordingStopped)
	_, err = e.g.StopRecording(context.Background(), "board")
	require.ErrorIs(t, err, api.ErrNotRecording)

	// A room that closes ends its recording.
	next, err := e.g.StartRecording("board")
	require.NoError(t, err)
	require.NoError(t, e.mgr.CloseRoom(context.Background(), "board"))
	for ev := e.await(t, recorder.EventCompleted); ev.ID != next.ID; ev = e.await(t, recorder.EventCompleted) {
	}
	got, err := e.rec.Get(next.ID)
	require.NoError(t, err)
	require.Equal(t, recorder.StateComplete, got.State, "complete, not interrupted")
}

// TestRecordingRoomsAutoRecord: a room with auto_record set is
// recorded from its first join until it is empty (grace 0 here), again at
// the next join, and until it closes; other rooms are not.
func TestRecordingRoomsAutoRecord(t *testing.T) {
	e := newRoomsEnv(t, []string{"auto"})
	rm, err := e.mgr.Join("auto", &member{"a", "Ada"})
	require.NoError(t, err)
	first := e.await(t, recorder.EventStarted)
	require.Eventually(t, func() bool { return e.names(t, first.ID)["Ada"] == false && len(e.names(t, first.ID)) == 1 },
		10*time.Second, 10*time.Millisecond)
	require.Eventually(t, rm.Recording, 10*time.Second, 10*time.Millisecond, "marked recorded")

	require.NoError(t, rm.Leave("a"))
	require.Equal(t, first.ID, e.await(t, recorder.EventCompleted).ID)
	require.Eventually(t, func() bool { return !rm.Recording() }, 10*time.Second, 10*time.Millisecond)

	require.NoError(t, rm.Join(&member{"b", "Bob"}))
	second := e.await(t, recorder.EventStarted)
	require.NotEqual(t, first.ID, second.ID)

	plain, err := e.mgr.Join("plain", &member{"c", "Cy"})
	require.NoError(t, err)
	require.NoError(t, e.mgr.CloseRoom(context.Background(), "auto"))
	require.Equal(t, second.ID, e.await(t, recorder.EventCompleted).ID)
	require.False(t, plain.Recording())
	require.Len(t, e.rec.List(recorder.Filter{}), 2, "nothing recorded in plain")
}

// TestRecordingReceiptKey: without recording.receipt_key the node makes a
// key once, 0600 in storage.dir, and keeps using it; the verifier never
// makes one; a configured key wins; a key file that is too short is
// refused.
func TestRecordingReceiptKey(t *testing.T) {
	cfg := configs.Default()
	cfg.Storage.Dir = filepath.Join(t.TempDir(), "data")
	_, err := receiptKey(cfg, nil, false)
	require.ErrorIs(t, err, fs.ErrNotExist, "the verifier makes no key")

	key, err := receiptKey(cfg, nil, true)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(key), recorder.MinReceiptKeyLen)
	path := filepath.Join(cfg.Storage.Dir, configs.ReceiptKeyFile)
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	again, err := receiptKey(cfg, nil, true)
	require.NoError(t, err)
	require.Equal(t, key, again, "kept across restarts")
	offline, err := receiptKey(cfg, nil, false)
	require.NoError(t, err)
	require.Equal(t, key, offline)

	cfg.Recording.ReceiptKey = string(bytes.Repeat([]byte("c"), 40))
	configured, err := receiptKey(cfg, nil, true)
	require.NoError(t, err)
	require.Equal(t, []byte(cfg.Recording.ReceiptKey), configured)

	cfg.Recording.ReceiptKey = ""
	require.NoError(t, os.WriteFile(path, []byte("short\n"), 0o600))
	_, err = receiptKey(cfg, nil, true)
	require.ErrorContains(t, err, "want at least 32")
}
