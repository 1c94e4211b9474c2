package main

import (
	"context"
	"time"

	"github.com/mediagate/mediagate/room"
)

// whileOccupied drives what runs only while people are in a room (an
// auto-recording, an auto-stream): start at once when someone is in rm
// already and on every join, stop once rm has been empty for grace. It
// returns when ctx ends or sub's events end (the room closed), closing
// sub.
func whileOccupied(ctx context.Context, rm *room.Room, sub *room.EventSub, grace time.Duration, start, stop func(*room.Room)) {
	defer sub.Close()
	idle := time.NewTimer(time.Hour)
	idle.Stop()
	defer idle.Stop()
	if rm.Len() > 0 {
		start(rm)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-sub.C():
			switch {
			case !ok:
				return
			case ev.Type == room.EventJoined:
				idle.Stop()
				start(rm)
			case ev.Type == room.EventLeft && rm.Len() == 0:
				idle.Reset(grace)
			}
		case <-idle.C:
			if rm.Len() == 0 {
				stop(rm)
			}
		}
	}
}
