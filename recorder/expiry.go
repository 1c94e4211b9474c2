package recorder

import (
	"slices"
	"time"

	"github.com/mediagate/mediagate/room"
)

// Warning is one expiry warning (EventExpiring): the recording expires
// within Lead, at ExpiresAt, unless someone extends it or puts it on hold.
type Warning struct {
	ID        ID
	Tenant    Tenant
	Room      room.ID
	ExpiresAt time.Time
	// Lead is the lead time of Options.ExpiryWarnings whose threshold was
	// crossed.
	Lead time.Duration
}

// warned remembers, per recording, the expiry the last warning was about
// and the index (into Options.ExpiryWarnings, longest first) of its lead.
type warned struct {
	expires time.Time
	level   int
}

// WarnExpiring raises an EventExpiring for each recording that has come
// within one of Options.ExpiryWarnings of its expiry since the last
// warning about it, and returns the warnings. A recording gets at most one
// warning per lead time, the most urgent one due: after downtime it is not
// told in one go that it expires within 7 days and within 1 day. Extending
// a recording starts its warnings over; recordings on legal hold, deleted
// or already expired get none. What was warned is kept in memory only, so
// a restarted node warns once more at the current lead time. Run calls it
// after every sweep.
func (r *Recorder) WarnExpiring(now time.Time) []Warning {
	leads := r.opts.ExpiryWarnings
	if len(leads) == 0 {
		return nil
	}
	now = utc(now)
	var out []Warning
	for _, e := range r.snapshot() {
		e.mu.Lock()
		m := &e.m
		level := -1
		if m.State != StateDeleted && m.Deletion == nil && m.LegalHold == nil && now.Before(m.ExpiresAt) {
			for i, lead := range leads {
				if !now.Before(m.ExpiresAt.Add(-lead)) {
					level = i
				}
			}
		}
		w := Warning{ID: m.ID, Tenant: m.Tenant, Room: m.Room, ExpiresAt: m.ExpiresAt}
		e.mu.Unlock()
		if r.markWarned(w.ID, w.ExpiresAt, level) {
			w.Lead = leads[level]
			out = append(out, w)
		}
	}
	slices.SortFunc(out, func(a, b Warning) int { return a.ExpiresAt.Compare(b.ExpiresAt) })
	for _, w := range out {
		r.log.Info("recording expiring", "recording", string(w.ID), "expires_at", w.ExpiresAt, "lead", w.Lead)
		r.count.countEvent(EventExpiring)
		if r.opts.OnEvent != nil {
			r.opts.OnEvent(Event{Type: EventExpiring, ID: w.ID, Tenant: w.Tenant, Time: now, ExpiresAt: w.ExpiresAt, Lead: w.Lead})
		}
	}
	return out
}

// markWarned records that id, expiring at expires, is at warning level
// (-1: none due) and reports whether that is a warning not given yet.
func (r *Recorder) markWarned(id ID, expires time.Time, level int) bool {
	r.warnMu.Lock()
	defer r.warnMu.Unlock()
	if level < 0 {
		delete(r.warned, id)
		return false
	}
	last, ok := r.warned[id]
	if ok && last.expires.Equal(expires) && last.level >= level {
		return false
	}
	r.warned[id] = warned{expires: expires, level: level}
	return true
}
