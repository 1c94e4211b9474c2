package api

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/room"
)

// TestAuditClassTable: the retention class of every action the admin API
// and the recordings endpoints use, as decision 8 lists them.
func TestAuditClassTable(t *testing.T) {
	instructions := []string{
		"recordings.extend", "recordings.hold", "recordings.unhold", "recordings.delete",
		"recordings.start", "recordings.stop", "tenants.erase", "keys.create", "keys.revoke",
		"rooms.lock", "rooms.unlock", "participants.mute", "participants.unmute", "tokens.issue",
		"streams.start", "streams.stop", "streams.add", "streams.remove",
	}
	access := []string{
		"recordings.list", "recordings.get", "recordings.download", "recordings.link",
		"receipts.list", "receipts.export", "rooms.list", "rooms.get", "nodes.list", "keys.list",
		"auth.signin", "auth.failed", "audit.list", "streams.list", "streams.get",
	}
	want := map[string]AuditClass{}
	for _, a := range instructions {
		want[a] = ClassInstruction
	}
	for _, a := range access {
		want[a] = ClassAccess
	}
	require.Equal(t, want, auditClasses, "the table and this list change together")
	_, ok := AuditClassOf("recordings.frobnicate")
	require.False(t, ok)
}

// TestAuditExpiresAt: three full calendar years after the entry's year
// for instructions (UTC, whatever the entry's zone), 180 days for access.
func TestAuditExpiresAt(t *testing.T) {
	jan2030 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, at := range []time.Time{
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 31, 23, 59, 59, 999999999, time.UTC),
		// 2027-01-01 00:30 in Berlin is still 2026 in UTC.
		time.Date(2027, 1, 1, 0, 30, 0, 0, time.FixedZone("CET", 3600)),
	} {
		require.Equal(t, jan2030, ClassInstruction.ExpiresAt(at), "%s", at)
	}
	require.Equal(t, time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC), ClassInstruction.ExpiresAt(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)))
	at := time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC)
	require.Equal(t, time.Date(2026, 9, 6, 8, 0, 0, 0, time.UTC), ClassAccess.ExpiresAt(at))
}

// auditEnv is an AuditLog in a temporary directory on a clock the test
// sets.
type auditEnv struct {
	now time.Time
	dir string
	log *AuditLog
}

func newAuditEnv(t *testing.T, opts ...AuditOption) *auditEnv {
	t.Helper()
	e := &auditEnv{now: t0, dir: filepath.Join(t.TempDir(), "audit")}
	var err error
	e.log, err = OpenAuditLog(e.dir, slog.New(slog.DiscardHandler),
		append([]AuditOption{WithAuditClock(func() time.Time { return e.now })}, opts...)...)
	require.NoError(t, err)
	return e
}

// TestAuditRetentionConfigured: with a retention of 5 years and 30 days
// (the audit section), instructions of 2026 stay until 2032-01-01 and
// access entries exactly 30 days, in queries and sweeps alike.
func TestAuditRetentionConfigured(t *testing.T) {
	ret := AuditRetention{InstructionYears: 5, Access: 30 * 24 * time.Hour}
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	jan2032 := time.Date(2032, 1, 1, 0, 0, 0, 0, time.UTC)
	require.Equal(t, jan2032, ret.ExpiresAt(ClassInstruction, at))
	require.Equal(t, at.Add(ret.Access), ret.ExpiresAt(ClassAccess, at))

	e := newAuditEnv(t, WithAuditRetention(ret))
	e.record(t, "recordings.delete", at, "target", "instruction")
	e.record(t, "recordings.download", at, "target", "access")
	visible := func(now time.Time) []string {
		e.now = now
		page, err := e.log.Query(AuditQuery{})
		require.NoError(t, err)
		var got []string
		for _, ent := range page.Entries {
			got = append(got, ent.Target)
		}
		slices.Sort(got)
		return got
	}
	require.Equal(t, []string{"access", "instruction"}, visible(at.Add(ret.Access-1)))
	require.Equal(t, []string{"instruction"}, visible(at.Add(ret.Access)))
	rep, err := e.log.Sweep(at.Add(ret.Access))
	require.NoError(t, err)
	require.Equal(t, []string{"access-2026-06.jsonl"}, rep.Removed)
	rep, err = e.log.Sweep(jan2032.Add(-1))
	require.NoError(t, err)
	require.Empty(t, rep.Removed, "the default three years would have removed it on 2030-01-01")
	require.Equal(t, []string{"instruction"}, visible(jan2032.Add(-1)))
	rep, err = e.log.Sweep(jan2032)
	require.NoError(t, err)
	require.Equal(t, []string{"instruction-2026-06.jsonl"}, rep.Removed)
}

// record writes an entry of action at time at.
func (e *auditEnv) record(t *testing.T, action string, at time.Time, kv ...string) AuditEntry {
	t.Helper()
	ent := AuditEntry{Action: action, Time: at, Status: 200, Client: "192.0.2.0"}
	for i := 0; i+1 < len(kv); i += 2 {
		switch kv[i] {
		case "tenant":
			ent.Tenant = kv[i+1]
		case "key_tenant":
			ent.KeyTenant = kv[i+1]
		case "target":
			ent.Target = kv[i+1]
		}
	}
	got, err := e.log.Record(ent)
	require.NoError(t, err)
	return got
}

// files returns the names in the log's directory.
func (e *auditEnv) files(t *testing.T) []string {
	t.Helper()
	des, err := os.ReadDir(e.dir)
	require.NoError(t, err)
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	return out
}

// visible returns the targets of the entries Query returns at the env's
// clock, newest first.
func (e *auditEnv) visible(t *testing.T) []string {
	t.Helper()
	page, err := e.log.Query(AuditQuery{Limit: MaxAuditPage})
	require.NoError(t, err)
	var out []string
	for _, ent := range page.Entries {
		out = append(out, ent.Target)
	}
	return out
}

// lines returns the entries in file name.
func (e *auditEnv) lines(t *testing.T, name string) []AuditEntry {
	t.Helper()
	f, err := os.Open(filepath.Join(e.dir, name))
	require.NoError(t, err)
	defer f.Close()
	var out []AuditEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ent AuditEntry
		require.NoError(t, json.Unmarshal(sc.Bytes(), &ent), sc.Text())
		out = append(out, ent)
	}
	require.NoError(t, sc.Err())
	return out
}

// TestAuditInstructionPurge: an instruction of 2026, from its first to its
// last nanosecond, is kept until 2029 ends and gone on 2030-01-01.
func TestAuditInstructionPurge(t *testing.T) {
	e := newAuditEnv(t)
	e.record(t, "recordings.delete", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), "target", "first")
	e.record(t, "keys.revoke", time.Date(2026, 12, 31, 23, 59, 59, 999999999, time.UTC), "target", "last")
	e.record(t, "rooms.lock", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), "target", "next-year")
	require.Equal(t, []string{"instruction-2026-01.jsonl", "instruction-2026-12.jsonl", "instruction-2027-01.jsonl"}, e.files(t))

	e.now = time.Date(2029, 12, 31, 23, 59, 59, 999999999, time.UTC)
	rep, err := e.log.Sweep(e.now)
	require.NoError(t, err)
	require.Equal(t, AuditSweep{}, rep)
	require.Equal(t, []string{"next-year", "last", "first"}, e.visible(t))

	e.now = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	require.Equal(t, []string{"next-year"}, e.visible(t), "expired entries are hidden before any sweep")
	rep, err = e.log.Sweep(e.now)
	require.NoError(t, err)
	require.Equal(t, []string{"instruction-2026-01.jsonl", "instruction-2026-12.jsonl"}, rep.Removed)
	require.Equal(t, []string{"instruction-2027-01.jsonl"}, e.files(t))

	rep, err = e.log.Sweep(time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	require.Equal(t, []string{"instruction-2027-01.jsonl"}, rep.Removed)
	require.Empty(t, e.files(t))
}

// TestAccessPurge: each access entry goes exactly 180 days after it was
// made: dropped from its month's file while younger entries stay, the file
// removed when its last possible entry expired.
func TestAccessPurge(t *testing.T) {
	e := newAuditEnv(t)
	a := time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC)
	b := time.Date(2026, 3, 20, 8, 0, 0, 0, time.UTC)
	c := time.Date(2026, 3, 31, 23, 59, 59, 999999999, time.UTC)
	for target, at := range map[string]time.Time{"a": a, "b": b, "c": c} {
		e.record(t, "recordings.download", at, "target", target)
	}
	e.record(t, "rooms.lock", a, "target", "instruction")
	const file = "access-2026-03.jsonl"
	targets := func() []string {
		var out []string
		for _, ent := range e.lines(t, file) {
			out = append(out, ent.Target)
		}
		slices.Sort(out)
		return out
	}

	for _, step := range []struct {
		now     time.Time
		visible []string // access entries Query returns, newest first
		inFile  []string // after the sweep
		purged  int
	}{
		{a.Add(AccessRetention - 1), []string{"c", "b", "a"}, []string{"a", "b", "c"}, 0},
		{a.Add(AccessRetention), []string{"c", "b"}, []string{"b", "c"}, 1},
		{b.Add(AccessRetention - 1), []string{"c", "b"}, []string{"b", "c"}, 0},
		{b.Add(AccessRetention), []string{"c"}, []string{"c"}, 1},
		{c.Add(AccessRetention - 1), []string{"c"}, []string{"c"}, 0},
	} {
		e.now = step.now
		page, err := e.log.Query(AuditQuery{Class: ClassAccess})
		require.NoError(t, err)
		var got []string
		for _, ent := range page.Entries {
			got = append(got, ent.Target)
		}
		require.Equal(t, step.visible, got, "query at %s", step.now)
		rep, err := e.log.Sweep(step.now)
		require.NoError(t, err)
		require.Equal(t, step.purged, rep.Purged, "sweep at %s", step.now)
		require.Empty(t, rep.Removed)
		require.Equal(t, step.inFile, targets(), "file after the sweep at %s", step.now)
	}
	rep, err := e.log.Sweep(c.Add(AccessRetention))
	require.NoError(t, err)
	require.Equal(t, []string{file}, rep.Removed)
	require.Equal(t, []string{"instruction-2026-03.jsonl"}, e.files(t), "the instruction of the same day stays")
	info, err := os.Stat(filepath.Join(e.dir, "instruction-2026-03.jsonl"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
}

// TestAuditTornLine: a line torn by a crash stays alone; the entries
// before and after it read, and the sweep keeps it until its file goes.
func TestAuditTornLine(t *testing.T) {
	e := newAuditEnv(t)
	e.record(t, "rooms.get", t0, "target", "before")
	path := filepath.Join(e.dir, fileName(ClassAccess, t0))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"id":"x","time":"2025-03-01T12:`)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	e.record(t, "rooms.get", t0.Add(time.Second), "target", "after")
	require.Equal(t, []string{"after", "before"}, e.visible(t))

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	require.Len(t, lines, 3)
	require.Equal(t, `{"id":"x","time":"2025-03-01T12:`, lines[1])

	rep, err := e.log.Sweep(t0.Add(AccessRetention))
	require.NoError(t, err)
	require.Equal(t, 1, rep.Purged)
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, 2, strings.Count(string(b), "\n"), "the torn line and the later entry: %s", b)
}

// TestAuditRun: Run sweeps at its start and at every tick, until its
// context ends.
func TestAuditRun(t *testing.T) {
	e := newAuditEnv(t)
	e.record(t, "rooms.get", t0, "target", "old")
	e.record(t, "rooms.get", t0.Add(24*time.Hour), "target", "newer")
	// Run's sweeps read this clock while the test sets it.
	var clock atomic.Int64
	set := func(at time.Time) { clock.Store(at.UnixNano()) }
	set(t0.Add(AccessRetention))
	l, err := OpenAuditLog(e.dir, slog.New(slog.DiscardHandler), WithAuditClock(func() time.Time { return time.Unix(0, clock.Load()).UTC() }))
	require.NoError(t, err)
	tick := make(chan time.Time)
	l.tick = tick

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	// A send completes when Run takes the tick, so after it the sweep
	// before that tick has finished and the next one is starting.
	tick <- time.Time{}
	require.Equal(t, []string{"newer"}, targetsOf(e.lines(t, fileName(ClassAccess, t0))), "swept at the start")

	set(t0.Add(24*time.Hour + AccessRetention))
	tick <- time.Time{} // the sweep after it reads the new clock
	tick <- time.Time{} // and has finished after this one
	require.Empty(t, e.files(t), "swept at a tick")
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
}

func targetsOf(es []AuditEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Target)
	}
	return out
}

// TestAuditEntriesOfRequests: the entries the admin API writes, with what
// they say and what they never say.
func TestAuditEntriesOfRequests(t *testing.T) {
	e := newAdminEnv(t)
	rm, err := e.mgr.Create("board")
	require.NoError(t, err)
	const callID = "a84b4c76e66710@pc33.atlanta.example.com"
	require.NoError(t, rm.Join(&fakeParticipant{info: room.Info{ID: callID, Name: "+49 30 1234567", Kind: room.KindPhone, Format: room.PCMU}}))
	acme, acmeID := e.newKey(t, "acme ops", RoleAdmin, "acme")
	viewer, viewerID := e.newKey(t, "acme wall", RoleViewer, "acme")

	require.Equal(t, http.StatusNoContent, e.as(acme, http.MethodPost, "/api/v1/rooms/board/lock", "").Code)
	require.Equal(t, http.StatusNoContent, e.as(acme, http.MethodPost, "/api/v1/rooms/board/participants/"+callID+"/mute", "").Code)
	require.Equal(t, http.StatusForbidden, e.as(viewer, http.MethodPost, "/api/v1/rooms/board/unlock", "").Code)
	require.Equal(t, http.StatusOK, e.as(viewer, http.MethodGet, "/api/v1/rooms", "").Code)
	e.do(http.MethodPost, "/api/v1/rooms/board/lock", "", "RemoteAddr", "[2001:db8:1:2::7]:5000")
	e.do(http.MethodGet, "/api/v1/rooms/4930123456", "", "Authorization", "Bearer "+acme)
	e.do(http.MethodDelete, "/api/v1/keys/"+viewer, "", "Authorization", "Bearer "+acme)
	e.do(http.MethodGet, "/api/v1/rooms", "", "Authorization", "Bearer hunter2")
	e.do(http.MethodGet, "/api/v1/rooms", "", "Authorization", "Bearer mgk_"+strings.Repeat("A", 52))

	ins := e.audit
	page, err := ins.Query(AuditQuery{})
	require.NoError(t, err)
	byAction := map[string][]AuditEntry{}
	for _, ent := range page.Entries {
		require.Equal(t, t0, ent.Time)
		require.Regexp(t, `^[0-9a-f]{16}$`, ent.ID)
		ent.ID, ent.Time = "", time.Time{}
		byAction[ent.Action] = append(byAction[ent.Action], ent)
	}
	boot := hashAdminKey(e.key)[7:19]
	bootstrap := func(id string) AuditEntry {
		return AuditEntry{Class: ClassInstruction, Action: "keys.create", KeyID: boot, Role: RoleAdmin, KeyTenant: AllTenants,
			Tenant: "acme", Target: id, Status: 201, Client: "192.0.2.0"}
	}
	want := map[string][]AuditEntry{
		"keys.create": {bootstrap(acmeID), bootstrap(viewerID)},
		"rooms.lock": {{Class: ClassInstruction, Action: "rooms.lock", KeyID: acmeID, Role: RoleAdmin, KeyTenant: "acme",
			Tenant: "acme", Target: "board", Status: 204, Client: "192.0.2.0"}},
		"participants.mute": {{Class: ClassInstruction, Action: "participants.mute", KeyID: acmeID, Role: RoleAdmin, KeyTenant: "acme",
			Tenant: "acme", Target: "board", Participant: participantRef(callID), Status: 204, Client: "192.0.2.0"}},
		"rooms.unlock": {{Class: ClassInstruction, Action: "rooms.unlock", KeyID: viewerID, Role: RoleViewer, KeyTenant: "acme",
			Tenant: "acme", Target: "board", Status: 403, Client: "192.0.2.0"}},
		"rooms.list": {{Class: ClassAccess, Action: "rooms.list", KeyID: viewerID, Role: RoleViewer, KeyTenant: "acme",
			Tenant: "acme", Status: 200, Client: "192.0.2.0"}},
		"rooms.get": {{Class: ClassAccess, Action: "rooms.get", KeyID: acmeID, Role: RoleAdmin, KeyTenant: "acme",
			Tenant: "acme", Target: redactedTarget, Status: 404, Client: "192.0.2.0"}},
		"keys.revoke": {{Class: ClassInstruction, Action: "keys.revoke", KeyID: acmeID, Role: RoleAdmin, KeyTenant: "acme",
			Tenant: "acme", Target: redactedTarget, Status: 404, Client: "192.0.2.0"}},
		ActionAuthFailed: {
			{Class: ClassAccess, Action: ActionAuthFailed, Attempted: "rooms.lock", Target: "board", Status: 401, Client: "2001:db8:1::"},
			{Class: ClassAccess, Action: ActionAuthFailed, Attempted: "rooms.list", Status: 401, Client: "192.0.2.0"},
			{Class: ClassAccess, Action: ActionAuthFailed, Attempted: "rooms.list", KeyID: hashAdminKey("mgk_" + strings.Repeat("A", 52))[7:19],
				Status: 401, Client: "192.0.2.0"},
		},
	}
	for action := range want {
		require.ElementsMatch(t, want[action], byAction[action], action)
	}
	require.ElementsMatch(t, slices.Collect(maps.Keys(want)), slices.Collect(maps.Keys(byAction)))

	// Nothing secret or personal in any file or the node's log.
	var all strings.Builder
	for _, name := range []string{"instruction-2025-03.jsonl", "access-2025-03.jsonl"} {
		b, err := os.ReadFile(filepath.Join(e.dir, "audit", name))
		require.NoError(t, err)
		all.Write(b)
	}
	all.WriteString(e.log.String())
	for _, secret := range []string{acme, viewer, e.key, "hunter2", "4930123456", "1234567", callID, "pc33", "192.0.2.1", "2001:db8:1:2"} {
		require.NotContains(t, all.String(), secret)
	}
	require.Zero(t, auditFailures(t, e))

	// An entry that cannot be written does not change the answer; it is
	// counted and logged.
	require.NoError(t, os.RemoveAll(filepath.Join(e.dir, "audit")))
	require.NoError(t, os.WriteFile(filepath.Join(e.dir, "audit"), nil, 0o600))
	require.Equal(t, http.StatusOK, e.as(acme, http.MethodGet, "/api/v1/rooms", "").Code)
	require.Equal(t, 1.0, auditFailures(t, e))
	require.Contains(t, e.log.String(), `msg="audit entry not written" component=api action=rooms.list`)
}

// auditFailures reads mediagate_audit_write_failures_total from /metrics.
func auditFailures(t *testing.T, e *adminEnv) float64 {
	t.Helper()
	w := e.do(http.MethodGet, "/metrics", "")
	require.Equal(t, http.StatusOK, w.Code)
	for line := range strings.SplitSeq(w.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "mediagate_audit_write_failures_total "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return f
		}
	}
	t.Fatal("no mediagate_audit_write_failures_total in /metrics")
	return 0
}

// TestAdminOnlyUnknownAction: an action without a retention class cannot
// be mounted.
func TestAdminOnlyUnknownAction(t *testing.T) {
	e := newAdminEnv(t)
	s := New(slog.New(slog.DiscardHandler), WithAdmin(e.mgr, e.auth, nil))
	require.PanicsWithValue(t, "api: admin action recordings.export has no audit class; add it to auditClasses", func() {
		s.adminOnly("recordings.export", func(http.ResponseWriter, *http.Request) error { return nil })
	})
}

// TestAuditRequestOutsideAdmin: a download through a signed link, which no
// API key authenticates, is audited by its handler with auditRequest.
func TestAuditRequestOutsideAdmin(t *testing.T) {
	e := newAuditEnv(t)
	s := New(slog.New(slog.DiscardHandler), WithAuditLog(e.log))
	const rec = "AAAAAAAAAAAAAAAAAAAAAA"
	s.Handle("GET /dl/{recording}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		s.auditRequest(r, "recordings.download", http.StatusOK, "acme", r.PathValue("recording"))
	}))
	r := httptest.NewRequest(http.MethodGet, "/dl/"+rec+"?sig=secret-signature", nil)
	s.Handler().ServeHTTP(httptest.NewRecorder(), r)
	page, err := e.log.Query(AuditQuery{})
	require.NoError(t, err)
	require.Len(t, page.Entries, 1)
	got := page.Entries[0]
	require.Equal(t, AuditEntry{ID: got.ID, Time: t0, Class: ClassAccess, Action: "recordings.download",
		Tenant: "acme", Target: rec, Status: 200, Client: "192.0.2.0"}, got)
}
