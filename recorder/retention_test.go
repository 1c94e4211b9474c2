package recorder

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/room"
)

const day = 24 * time.Hour

func shortTone() []room.MixFrame {
	return toneFrames(&mediatest.Tone{Freq: 800, Amp: 0.3, Rate: media.Rate48k}, 1, 60)
}

// receiptLines reads the receipts log.
func (h *harness) receiptLines(t *testing.T) []Receipt {
	t.Helper()
	f, err := os.Open(filepath.Join(h.opts.Dir, ReceiptsFileName))
	require.NoError(t, err)
	defer f.Close()
	n, err := Verify(f, testKey)
	require.NoError(t, err)
	rs, err := h.r.Receipts(ReceiptFilter{})
	require.NoError(t, err)
	require.Len(t, rs, n)
	return rs
}

func TestExpiryIsEnforcedOnReadAndBySweep(t *testing.T) {
	h := newHarness(t, nil)
	src := newChanSource()
	rec, err := h.r.Start("room-1", "acme", "", src)
	require.NoError(t, err)
	rec.Joined(ParticipantInfo{ID: "p1", Name: "Ada", Number: "+4930123456"}, time.Time{})
	src.feed(t, shortTone())
	require.NoError(t, rec.Stop(context.Background()))
	m := rec.Manifest()
	require.Equal(t, t0.Add(30*day), m.ExpiresAt)
	path := h.audioPath(t, m.ID)
	sum, size := fileSHA(t, path)

	rc, got, err := h.r.Open(m.ID)
	require.NoError(t, err)
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Len(t, b, int(size))
	require.Equal(t, sum, got.SHA256)

	h.clock.Set(m.ExpiresAt.Add(-time.Millisecond))
	require.Empty(t, h.r.Sweep(h.clock.Now()).Deleted, "not expired yet")
	h.clock.Set(m.ExpiresAt)
	_, _, err = h.r.Open(m.ID)
	require.ErrorIs(t, err, ErrExpired, "expiry holds before the sweeper ran")
	require.Equal(t, 410, httpStatus(err))
	_, err = h.r.Extend(m.ID, m.ExpiresAt.Add(day))
	require.ErrorIs(t, err, ErrExpired, "an expired recording cannot be revived")

	rep := h.r.Sweep(h.clock.Now())
	require.Equal(t, []ID{m.ID}, rep.Deleted)
	require.Empty(t, rep.Failed)
	ev := h.awaitEvent(t, EventDeleted, m.ID)
	require.NoError(t, ev.Err)
	_, err = os.Stat(path)
	require.ErrorIs(t, err, os.ErrNotExist, "the audio is gone")

	_, _, err = h.r.Open(m.ID)
	require.ErrorIs(t, err, ErrDeleted)
	require.Equal(t, 410, httpStatus(err))
	d := h.diskManifest(t, m.ID)
	require.Equal(t, StateDeleted, d.State)
	require.Empty(t, d.Participants)
	require.Equal(t, 1, d.ParticipantCount, "the count is no personal data and stays")
	require.Equal(t, &Deletion{Reason: ReasonExpired, Actor: sweeperActor, RequestedAt: m.ExpiresAt, SHA256: sum, Bytes: size,
		At: m.ExpiresAt, Receipt: d.Deletion.Receipt}, d.Deletion)
	raw, err := os.ReadFile(h.manifestPath(t, m.ID))
	require.NoError(t, err)
	require.NotContains(t, string(raw), "Ada")

	rs := h.receiptLines(t)
	require.Len(t, rs, 1)
	require.Equal(t, Receipt{ID: d.Deletion.Receipt, Recording: m.ID, Tenant: "acme", Room: "room-1", SHA256: sum, Bytes: size,
		ExpiresAt: m.ExpiresAt, DeletedAt: m.ExpiresAt, Reason: ReasonExpired, Actor: sweeperActor, Node: "node-a",
		Prev: genesisPrev, Sig: rs[0].Sig}, rs[0])

	require.Empty(t, h.r.Sweep(h.clock.Now().Add(day)).Deleted, "deleted once")
	require.Len(t, h.receiptLines(t), 1)
}

// httpStatus finds the HTTP status an error maps to, as the API will.
func httpStatus(err error) int {
	var s interface{ HTTPStatus() int }
	if errorsAs(err, &s) {
		return s.HTTPStatus()
	}
	return 500
}

func TestExtendStaysWithinThePolicy(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.Policies = []Policy{{Name: "board", Duration: 7 * day, Max: 90 * day}, {Name: "fixed", Duration: 3 * day}}
	})
	m := h.record(t, "acme", "board", shortTone())
	require.Equal(t, "board", m.Retention)
	require.Equal(t, t0.Add(7*day), m.ExpiresAt)

	_, err := h.r.Extend(m.ID, t0.Add(90*day+time.Millisecond))
	require.ErrorIs(t, err, ErrRetentionMax)
	_, err = h.r.Extend(m.ID, t0.Add(6*day))
	require.ErrorIs(t, err, ErrRetentionShorten)
	got, err := h.r.Extend(m.ID, t0.Add(90*day))
	require.NoError(t, err)
	require.Equal(t, t0.Add(90*day), got.ExpiresAt)
	h.reopen(t)
	d, err := h.r.Get(m.ID)
	require.NoError(t, err)
	require.Equal(t, t0.Add(90*day), d.ExpiresAt, "the extension is in the manifest")

	f := h.record(t, "acme", "fixed", shortTone())
	_, err = h.r.Extend(f.ID, f.ExpiresAt.Add(time.Second))
	require.ErrorIs(t, err, ErrRetentionMax, "max defaults to the duration")

	src := newChanSource()
	rec, err := h.r.Start("room-1", "acme", "board", src)
	require.NoError(t, err)
	got, err = h.r.Extend(rec.ID(), t0.Add(30*day))
	require.NoError(t, err, "a running recording can be extended")
	require.NoError(t, rec.Stop(context.Background()))
	require.Equal(t, t0.Add(30*day), rec.Manifest().ExpiresAt)
	require.Equal(t, got.ExpiresAt, h.diskManifest(t, rec.ID()).ExpiresAt, "the final manifest keeps it")
}

func TestLegalHoldSuspendsExpiry(t *testing.T) {
	h := newHarness(t, nil)
	m := h.record(t, "acme", "", shortTone())
	_, err := h.r.SetLegalHold(m.ID, "", "alice")
	require.ErrorIs(t, err, ErrInvalidArgument)
	h.clock.Set(t0.Add(time.Hour))
	held, err := h.r.SetLegalHold(m.ID, "case 2031-17", "alice")
	require.NoError(t, err)
	require.Equal(t, &LegalHold{Reason: "case 2031-17", By: "alice", At: t0.Add(time.Hour)}, held.LegalHold)
	require.Equal(t, held.LegalHold, h.diskManifest(t, m.ID).LegalHold)

	h.clock.Set(m.ExpiresAt.Add(day))
	rep := h.r.Sweep(h.clock.Now())
	require.Empty(t, rep.Deleted)
	require.Equal(t, 1, rep.Held)
	rc, _, err := h.r.Open(m.ID)
	require.NoError(t, err, "a held recording stays readable past its expiry")
	require.NoError(t, rc.Close())
	_, err = h.r.Delete(m.ID, ReasonAdmin, "bob")
	require.ErrorIs(t, err, ErrLegalHold)
	require.Equal(t, 409, httpStatus(err))
	got, err := h.r.Extend(m.ID, m.ExpiresAt.Add(2*day))
	require.NoError(t, err, "a held recording can be given a new expiry")

	_, err = h.r.ClearLegalHold(m.ID)
	require.NoError(t, err)
	require.Nil(t, h.diskManifest(t, m.ID).LegalHold)
	h.clock.Set(got.ExpiresAt)
	_, _, err = h.r.Open(m.ID)
	require.ErrorIs(t, err, ErrExpired)
	require.Equal(t, []ID{m.ID}, h.r.Sweep(h.clock.Now()).Deleted)
	_, err = h.r.SetLegalHold(m.ID, "too late", "alice")
	require.ErrorIs(t, err, ErrDeleted)
}

func TestSweepCatchesUpAndRetries(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.Policies = []Policy{{Name: "short", Duration: day}, {Name: "week", Duration: 7 * day}}
	})
	a := h.record(t, "acme", "short", shortTone())
	b := h.record(t, "acme", "week", shortTone())
	c := h.record(t, "acme", "", shortTone())

	// A deletion that fails: the audio path is a non-empty directory,
	// which no one can remove as a file, root included.
	pathB := h.audioPath(t, b.ID)
	saved, err := os.ReadFile(pathB)
	require.NoError(t, err)
	require.NoError(t, os.Remove(pathB))
	require.NoError(t, os.MkdirAll(filepath.Join(pathB, "x"), 0o750))

	h.clock.Set(t0.Add(10 * day)) // the node was down for ten days
	h.reopen(t)
	rep := h.r.Sweep(h.clock.Now())
	require.Equal(t, []ID{a.ID}, rep.Deleted, "caught up on what expired while down")
	require.Len(t, rep.Failed, 1)
	require.Equal(t, b.ID, rep.Failed[0].ID)
	ev := h.awaitEvent(t, EventDeleteFailed, b.ID)
	require.Error(t, ev.Err)
	gotB, err := h.r.Get(b.ID)
	require.NoError(t, err)
	require.NotEqual(t, StateDeleted, gotB.State)

	require.NoError(t, os.RemoveAll(pathB))
	require.NoError(t, os.WriteFile(pathB, saved, 0o640))
	rep = h.r.Sweep(h.clock.Now())
	require.Equal(t, []ID{b.ID}, rep.Deleted, "retried")
	require.Empty(t, rep.Failed)
	gotC, err := h.r.Get(c.ID)
	require.NoError(t, err)
	require.Equal(t, StateComplete, gotC.State, "not expired yet")
	rs := h.receiptLines(t)
	require.Len(t, rs, 2)
	require.Equal(t, []ID{a.ID, b.ID}, []ID{rs[0].Recording, rs[1].Recording})
}

// TestDeletionResumesAfterCrash simulates crashes inside a deletion: after
// the intent was written, and after the receipt was appended. The next
// start's sweep finishes the deletion with the recorded reason and actor,
// and writes exactly one receipt.
func TestDeletionResumesAfterCrash(t *testing.T) {
	for _, receiptWritten := range []bool{false, true} {
		h := newHarness(t, nil)
		m := h.record(t, "acme", "", shortTone())
		e, err := h.r.lookup(m.ID)
		require.NoError(t, err)
		e.mu.Lock()
		require.NoError(t, h.r.beginDeletion(&e.m, ReasonErasure, "dpo@example.org", h.clock.Now()))
		if receiptWritten {
			require.NoError(t, h.r.receipts.Append(&Receipt{Recording: m.ID, Tenant: m.Tenant, Room: m.Room,
				SHA256: e.m.Deletion.SHA256, Bytes: e.m.Deletion.Bytes, ExpiresAt: m.ExpiresAt, DeletedAt: h.clock.Now(),
				Reason: ReasonErasure, Actor: "dpo@example.org", Node: "node-a"}))
			require.NoError(t, os.Remove(h.audioPath(t, m.ID)))
		}
		e.mu.Unlock()
		_, _, err = h.r.Open(m.ID)
		require.ErrorIs(t, err, ErrDeleted, "a deletion under way already refuses reads")

		h.reopen(t)
		_, _, err = h.r.Open(m.ID)
		require.ErrorIs(t, err, ErrDeleted)
		rep := h.r.Sweep(h.clock.Now())
		require.Equal(t, []ID{m.ID}, rep.Deleted, "receipt written before the crash: %v", receiptWritten)
		rs := h.receiptLines(t)
		require.Len(t, rs, 1)
		require.Equal(t, ReasonErasure, rs[0].Reason)
		d := h.diskManifest(t, m.ID)
		require.Equal(t, StateDeleted, d.State)
		require.Equal(t, rs[0].ID, d.Deletion.Receipt)
		require.Equal(t, ReasonErasure, d.Deletion.Reason)
	}
}

func TestDeleteRules(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.Policies = []Policy{{Name: "legal", Duration: 30 * day, Min: 7 * day, Max: 60 * day}}
	})
	m := h.record(t, "acme", "legal", shortTone())
	for _, tc := range []struct {
		reason DeletionReason
		actor  string
		want   error
	}{
		{ReasonAdmin, "", ErrInvalidArgument},
		{ReasonExpired, "bob", ErrInvalidArgument},
		{"because", "bob", ErrInvalidArgument},
		{ReasonAdmin, "bob", ErrRetentionMin},
		{ReasonErasure, "bob", ErrRetentionMin},
	} {
		_, err := h.r.Delete(m.ID, tc.reason, tc.actor)
		require.ErrorIs(t, err, tc.want, "%+v", tc)
	}
	_, err := h.r.Delete("nope", ReasonAdmin, "bob")
	require.ErrorIs(t, err, ErrInvalidID)
	_, err = h.r.Delete(NewID(), ReasonAdmin, "bob")
	require.ErrorIs(t, err, ErrNotFound)
	require.Equal(t, 404, httpStatus(err))

	src := newChanSource()
	rec, err := h.r.Start("room-1", "acme", "legal", src)
	require.NoError(t, err)
	h.clock.Set(t0.Add(8 * day))
	_, err = h.r.Delete(rec.ID(), ReasonAdmin, "bob")
	require.ErrorIs(t, err, ErrActive)
	_, _, err = h.r.Open(rec.ID())
	require.ErrorIs(t, err, ErrActive)
	require.NoError(t, rec.Stop(context.Background()))

	d, err := h.r.Delete(m.ID, ReasonAdmin, "bob")
	require.NoError(t, err)
	require.Equal(t, StateDeleted, d.State)
	require.Equal(t, "bob", d.Deletion.Actor)
	again, err := h.r.Delete(m.ID, ReasonAdmin, "carol")
	require.NoError(t, err, "deleting twice is no error")
	require.Equal(t, "bob", again.Deletion.Actor)
	require.Len(t, h.receiptLines(t), 1, "and writes no second receipt")
}

func TestRunSweepsUntilCancelled(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.SweepInterval = 10 * time.Millisecond })
	m := h.record(t, "acme", "", shortTone())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.r.Run(ctx) }()
	h.clock.Set(m.ExpiresAt) // the next tick's sweep finds it expired
	h.awaitEvent(t, EventDeleted, m.ID)
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}

func TestListFilters(t *testing.T) {
	h := newHarness(t, nil)
	a := h.record(t, "acme", "", shortTone())
	h.clock.Set(t0.Add(time.Hour))
	b := h.record(t, "globex", "", shortTone())
	require.Equal(t, []ID{a.ID, b.ID}, ids(h.r.List(Filter{})))
	require.Equal(t, []ID{b.ID}, ids(h.r.List(Filter{Tenant: "globex"})))
	require.Equal(t, []ID{b.ID}, ids(h.r.List(Filter{From: t0.Add(time.Minute)})))
	require.Equal(t, []ID{a.ID}, ids(h.r.List(Filter{To: t0.Add(time.Minute)})))
	require.Empty(t, h.r.List(Filter{State: StateDeleted}))
	require.True(t, strings.HasPrefix(Format, "audio/ogg"))
}

func ids(ms []Manifest) []ID {
	var out []ID
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

// TestSetPolicies: replaced policies apply to recordings started
// afterwards; one started before keeps the expiry its start fixed; an
// invalid set changes nothing.
func TestSetPolicies(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Policies = []Policy{{Name: "board", Duration: 30 * day}} })
	before := h.record(t, "acme", "board", shortTone())
	require.Equal(t, before.StartedAt.Add(30*day), before.ExpiresAt)

	require.ErrorIs(t, h.r.SetPolicies([]Policy{{Name: "board"}}), ErrOptions)
	require.ErrorIs(t, h.r.SetPolicies([]Policy{{Name: "board", Duration: day}, {Name: "board", Duration: day}}), ErrOptions)
	require.Len(t, h.r.Policies(), 2, "board and the default, unchanged")

	require.NoError(t, h.r.SetPolicies([]Policy{{Name: "board", Duration: 7 * day}, {Name: "legal", Duration: 365 * day}}))
	after := h.record(t, "acme", "board", shortTone())
	require.Equal(t, after.StartedAt.Add(7*day), after.ExpiresAt, "the new duration")
	legal := h.record(t, "acme", "legal", shortTone())
	require.Equal(t, legal.StartedAt.Add(365*day), legal.ExpiresAt, "an added policy")
	kept, err := h.r.Get(before.ID)
	require.NoError(t, err)
	require.Equal(t, before.ExpiresAt, kept.ExpiresAt, "a promise is kept")

	require.NoError(t, h.r.SetPolicies(nil))
	_, err = h.r.Start("room-1", "acme", "legal", newChanSource())
	require.ErrorIs(t, err, ErrUnknownPolicy, "a removed policy")
}
