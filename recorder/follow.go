package recorder

import (
	"context"

	"github.com/mediagate/mediagate/room"
)

// Follow feeds rec the joins and leaves of its room, read from events (a
// room.EventSub's C()), until events is closed (the room closed), ctx ends
// or the recording ends; it returns ctx's error in the second case and nil
// otherwise. lookup says who a joining participant is (name, caller number,
// kind), typically from Room.Participants and the bridge's call; it is
// called from Follow's goroutine. Participants already in the room when
// the recording started are the caller's to feed with Joined.
func (rec *Recording) Follow(ctx context.Context, events <-chan room.Event, lookup func(room.ParticipantID) ParticipantInfo) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-rec.done:
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			switch ev.Type {
			case room.EventJoined:
				p := lookup(ev.Participant)
				p.ID = ev.Participant
				rec.Joined(p, ev.Time)
			case room.EventLeft:
				rec.Left(ev.Participant, ev.Time)
			}
		}
	}
}
