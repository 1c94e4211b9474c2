package room

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
)

// announcer is a peer that announces a tone for a number of ticks.
type announcer struct {
	*peer
	ann   *mediatest.Tone
	ticks int // ticks of announcement left; the mixer's goroutine only
}

var _ Announcer = (*announcer)(nil)

func (a *announcer) Announcement(dst *media.Frame) bool {
	if a.ticks == 0 {
		return false
	}
	a.ticks--
	a.ann.Fill(dst[:])
	return true
}

// TestAnnouncer: while a listener announces a 1 kHz tone it hears the tone
// over the room's 440 Hz lowered by AnnounceDuckDB, on its own stream;
// another listener of the same format hears the room alone, from the
// shared stream, throughout; one encode per tick is all the announcement
// costs, and the ticks allocate nothing. After the encoder hangover the
// announcer is back on the shared stream and hears the room as before.
func TestAnnouncer(t *testing.T) {
	const hangover = 10 // ticks
	r, c, enc := newTestRoom(t, WithEncoderHangover(hangover*media.FrameDuration))
	speaker := newPeer(t, "speaker", 440, 0.3, formatL16)
	a := &announcer{peer: newPeer(t, "announcer", 0, 0, formatL16), ann: tone(1000, 0.2)}
	b := newPeer(t, "listener", 0, 0, formatL16)
	for _, p := range []Participant{speaker, a, b} {
		require.NoError(t, r.Join(p))
	}
	c.run(r, 20)
	room440 := toneDB(b.frames(10, 20), 440, media.Rate48k)
	require.InDelta(t, toneDB(a.frames(10, 20), 440, media.Rate48k), room440, 0.1, "before: both hear the room alike")

	const announce = 50
	a.ticks = announce
	c.run(r, 10) // the announcer's own encoder starts (priming counts too)
	before := enc.encodes.Load()
	c.run(r, 20)
	require.Equal(t, int64(3*20), enc.encodes.Load()-before,
		"shared stream, the speaker's mix-minus and the announcer's own: one encode more than without")
	allocs := testing.AllocsPerRun(10, func() { c.run(r, 1) })
	require.Zero(t, allocs, "a tick with an announcement allocates")
	c.run(r, announce-30-11) // to the end of the announcement

	// During the announcement (ticks 21..70, packets 20..69).
	during := a.frames(25, 65)
	require.InDelta(t, -14, toneDB(during, 1000, media.Rate48k), 0.2, "the announcer hears its announcement at its level")
	require.InDelta(t, room440-AnnounceDuckDB, toneDB(during, 440, media.Rate48k), 0.2, "the room under it, lowered")
	heard := b.frames(25, 65)
	require.InDelta(t, room440, toneDB(heard, 440, media.Rate48k), 0.1, "the listener hears the room as before")
	require.Less(t, toneDB(heard, 1000, media.Rate48k), -90.0, "and nothing of the announcement")
	for k := 20; k < 70; k++ {
		require.False(t, a.pkts[k].Shared, "packet %d: the announcer is on its own stream", k)
		require.True(t, b.pkts[k].Shared, "packet %d: the listener stays on the shared stream", k)
	}

	// After the announcement and the hangover: back on the shared stream.
	c.run(r, hangover+20)
	n := len(a.pkts)
	for k := n - 15; k < n; k++ {
		require.True(t, a.pkts[k].Shared, "packet %d: back on the shared stream", k)
	}
	after := a.frames(n-15, n)
	require.InDelta(t, room440, toneDB(after, 440, media.Rate48k), 0.1, "the announcer hears the room again")
	require.Less(t, toneDB(after, 1000, media.Rate48k), -90.0, "the announcement is over")
	require.Equal(t, b.frames(n-15, n), after, "sample for sample what the listener hears")
}

// TestOverlaySaturates: an announcement over a loud mix clips at full
// scale instead of wrapping around.
func TestOverlaySaturates(t *testing.T) {
	var ann, mix media.Frame
	for i := range ann {
		ann[i], mix[i] = 30000, 32767
		if i%2 == 1 {
			ann[i], mix[i] = -30000, -32768
		}
	}
	overlay(ann[:], mix[:])
	require.Equal(t, int16(32767), ann[0])
	require.Equal(t, int16(-32768), ann[1])
	var quiet media.Frame
	quiet[0], mix[0] = 100, 400
	overlay(quiet[:], mix[:])
	require.Equal(t, int16(200), quiet[0], "100 plus 400 lowered by 12 dB")
}

// TestAdmits: Room.Admits and Manager.Admits give the error Join would,
// without joining.
func TestAdmits(t *testing.T) {
	listener := func(id string) *fake { return &fake{info: Info{ID: ParticipantID(id), Format: formatL16}} }
	r, _, _ := newTestRoom(t, WithMaxParticipants(1))
	require.NoError(t, r.Admits())
	require.NoError(t, r.Join(listener("a")))
	require.ErrorIs(t, r.Admits(), ErrRoomFull)
	require.Equal(t, 1, r.Len(), "asking joins nobody")
	r.SetMaxParticipants(2)
	require.NoError(t, r.Admits())
	r.SetLocked(true)
	require.ErrorIs(t, r.Admits(), ErrRoomLocked)
	require.NoError(t, r.Close(context.Background()))
	require.ErrorIs(t, r.Admits(), ErrRoomClosed)

	for _, auto := range []bool{true, false} {
		t.Run(fmt.Sprintf("auto-create %t", auto), func(t *testing.T) {
			m := NewManager(WithAutoCreate(auto), WithRoomDefaults(WithManualTick(), WithEncoderFactory((&encoders{}).factory)))
			if auto {
				require.NoError(t, m.Admits("new"), "Join would open it")
			} else {
				require.ErrorIs(t, m.Admits("new"), ErrNotFound)
			}
			_, err := m.Create("small", WithMaxParticipants(1))
			require.NoError(t, err)
			require.NoError(t, m.Admits("small"))
			_, err = m.Join("small", listener("a"))
			require.NoError(t, err)
			require.ErrorIs(t, m.Admits("small"), ErrRoomFull)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			require.NoError(t, m.Close(ctx))
			require.ErrorIs(t, m.Admits("small"), ErrManagerClosed)
		})
	}
}

// TestRecordingState: SetRecording changes Recording and publishes
// recording_started and recording_stopped once per change.
func TestRecordingState(t *testing.T) {
	r, _, _ := newTestRoom(t)
	sub := r.SubscribeEvents(8)
	require.False(t, r.Recording())
	r.SetRecording(true)
	r.SetRecording(true)
	require.True(t, r.Recording())
	r.SetRecording(false)
	var got []string
	for len(sub.C()) > 0 {
		ev := <-sub.C()
		require.Empty(t, ev.Participant)
		got = append(got, ev.Type.String())
	}
	require.Equal(t, []string{"recording_started", "recording_stopped"}, got)
	require.False(t, r.Recording())
}
