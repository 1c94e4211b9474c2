package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// The persistent audit log (design decision 8): one entry for every admin
// API request and every download, kept by a fixed retention rule that
// depends on what the entry records. Entries are JSON lines in files per
// class and month, under storage.dir/audit:
//
//	audit/instruction-2026-11.jsonl
//	audit/access-2026-11.jsonl
//
// each appended and fsynced per entry, and deleted by Sweep when the
// retention of every entry in them has passed. Query filters expired
// entries out even before a sweep removed them, so retention holds to the
// nanosecond for readers.

// AuditDirName is the audit log's directory in storage.dir.
const AuditDirName = "audit"

// AuditClass is the retention class of an audit entry.
type AuditClass string

// The audit classes.
const (
	// ClassInstruction records what someone ordered the system to do:
	// recording starts and stops, retention changes, holds, deletions,
	// erasures, key creation and revocation, room locks, mutes, join
	// tokens. Kept AuditRetention.InstructionYears full calendar years
	// after the year of the entry (three by default, as the operators'
	// processing agreements require).
	ClassInstruction AuditClass = "instruction"
	// ClassAccess records what someone looked at or fetched: listings,
	// details, downloads, download links, sign-ins and refused keys. Kept
	// AuditRetention.Access (180 days by default).
	ClassAccess AuditClass = "access"
)

// AuditRetention says how long each class of audit entries is kept (the
// audit section of the configuration).
type AuditRetention struct {
	// InstructionYears is how many full calendar years instruction
	// entries are kept after the year they were given.
	InstructionYears int
	// Access is how long access entries are kept from their time.
	Access time.Duration
}

// AccessRetention is the default lifetime of access entries: 180 days of
// 24 h from the entry's time.
const AccessRetention = 180 * 24 * time.Hour

// DefaultAuditRetention keeps instructions three full calendar years after
// their year and access entries 180 days.
var DefaultAuditRetention = AuditRetention{InstructionYears: 3, Access: AccessRetention}

// ActionAuthFailed is the action of the entry of a request whose API key
// was missing, unknown or revoked; its Attempted field names the action
// the request was for.
const ActionAuthFailed = "auth.failed"

// auditClasses is the one table that decides each action's retention
// class. adminOnly refuses (panics at mount) an action missing here, so a
// new endpoint cannot go unaudited or be kept for a guessed time.
var auditClasses = map[string]AuditClass{
	"rooms.list":          ClassAccess,
	"nodes.list":          ClassAccess,
	"rooms.get":           ClassAccess,
	"rooms.lock":          ClassInstruction,
	"rooms.unlock":        ClassInstruction,
	"participants.mute":   ClassInstruction,
	"participants.unmute": ClassInstruction,
	"tokens.issue":        ClassInstruction,
	"keys.create":         ClassInstruction,
	"keys.revoke":         ClassInstruction,
	"keys.list":           ClassAccess,
	"auth.signin":         ClassAccess,
	ActionAuthFailed:      ClassAccess,
	"audit.list":          ClassAccess,
	"recordings.list":     ClassAccess,
	"recordings.get":      ClassAccess,
	"recordings.download": ClassAccess,
	"recordings.link":     ClassAccess,
	"recordings.extend":   ClassInstruction,
	"recordings.hold":     ClassInstruction,
	"recordings.unhold":   ClassInstruction,
	"recordings.delete":   ClassInstruction,
	"recordings.start":    ClassInstruction,
	"recordings.stop":     ClassInstruction,
	"receipts.list":       ClassAccess,
	"receipts.export":     ClassAccess,
	"tenants.erase":       ClassInstruction,
	"streams.list":        ClassAccess,
	"streams.get":         ClassAccess,
	"streams.start":       ClassInstruction,
	"streams.stop":        ClassInstruction,
	"streams.add":         ClassInstruction,
	"streams.remove":      ClassInstruction,
}

// AuditClassOf returns the retention class of action, and false for an
// action the table does not know.
func AuditClassOf(action string) (AuditClass, bool) {
	c, ok := auditClasses[action]
	return c, ok
}

// ExpiresAt is when an entry of class c made at t is deleted under the
// default retention (DefaultAuditRetention.ExpiresAt).
func (c AuditClass) ExpiresAt(t time.Time) time.Time { return DefaultAuditRetention.ExpiresAt(c, t) }

// ExpiresAt is when an entry of class c made at t is deleted: for
// instructions the 1st of January, 00:00 UTC, InstructionYears full years
// after t's year (three: 2026-xx-xx → 2030-01-01); for access entries t
// plus Access. The entry is kept while now is before it.
func (r AuditRetention) ExpiresAt(c AuditClass, t time.Time) time.Time {
	if c == ClassInstruction {
		return time.Date(t.UTC().Year()+r.InstructionYears+1, time.January, 1, 0, 0, 0, 0, time.UTC)
	}
	return t.Add(r.Access)
}

// AuditEntry is one line of the audit log. It never holds a key, a PIN or
// a phone number: keys appear by ID, clients by their anonymised network,
// participants by a hash of their ID.
type AuditEntry struct {
	// ID is random; with Time it orders entries for paging.
	ID string `json:"id"`
	// Time is when the request was answered, UTC.
	Time time.Time `json:"time"`
	// Class is the retention class, from Action.
	Class AuditClass `json:"class"`
	// Action is what the request did (rooms.lock, recordings.download, ...),
	// or ActionAuthFailed.
	Action string `json:"action"`
	// Attempted is the action a request refused at authentication asked
	// for; empty otherwise.
	Attempted string `json:"attempted,omitempty"`
	// KeyID names the API key (first 12 hex digits of its hash); empty
	// without one, or for a presented key that is not of our form.
	KeyID string `json:"key_id,omitempty"`
	// Role is the key's role; empty when it was not authenticated.
	Role Role `json:"role,omitempty"`
	// KeyTenant is the key's tenant, or AllTenants.
	KeyTenant string `json:"key_tenant,omitempty"`
	// Tenant is the tenant of the resource acted on; for listings the
	// key's own tenant; empty for AllTenants keys acting on no particular
	// tenant.
	Tenant string `json:"tenant,omitempty"`
	// Target is the room, recording or key the request was about.
	Target string `json:"target,omitempty"`
	// Participant is the first 12 hex digits of the SHA-256 of the
	// participant ID (mutes), which can be a SIP Call-ID.
	Participant string `json:"participant,omitempty"`
	// ForwardedTo names the node this node forwarded the request to,
	// which answered it (a recording or room held there); that node
	// audits the request too.
	ForwardedTo string `json:"forwarded_to,omitempty"`
	// ForwardedFrom names the node that forwarded the request here (its
	// Mediagate-Forwarded header); Client is then that node's address,
	// and its own entry has the client's.
	ForwardedFrom string `json:"forwarded_from,omitempty"`
	// Node is the node whose log holds the entry, in the answers of
	// GET /api/v1/audit in a cluster; never stored (each node's log is
	// its own).
	Node string `json:"node,omitempty"`
	// Status is the HTTP status of the answer.
	Status int `json:"status"`
	// Client is the client's address anonymised (AnonymizeAddr).
	Client string `json:"client"`
}

// AuditLog writes and reads the persistent audit log in one directory.
// It is safe for concurrent use. Run sweeps expired files; its owner
// cancels its context to stop it.
type AuditLog struct {
	dir      string
	log      *slog.Logger
	now      func() time.Time
	interval time.Duration
	tick     <-chan time.Time // tests: replaces the daily ticker
	ret      AuditRetention

	mu sync.Mutex // serialises appends and sweeps
}

// AuditOption changes one setting of an AuditLog.
type AuditOption func(*AuditLog)

// WithAuditClock sets where the log takes the time of entries and of
// Run's sweeps from (time.Now by default).
func WithAuditClock(now func() time.Time) AuditOption {
	return func(l *AuditLog) { l.now = now }
}

// WithAuditRetention sets how long each class is kept
// (DefaultAuditRetention by default).
func WithAuditRetention(r AuditRetention) AuditOption {
	return func(l *AuditLog) { l.ret = r }
}

// DefaultAuditSweepInterval is how often Run sweeps after the sweep at
// its start: daily, as retention is counted in days and years.
const DefaultAuditSweepInterval = 24 * time.Hour

// OpenAuditLog opens the audit log in dir (storage.dir/audit), making the
// directory (0700) if needed and removing temp files a crash left
// behind.
func OpenAuditLog(dir string, log *slog.Logger, opts ...AuditOption) (*AuditLog, error) {
	l := &AuditLog{dir: dir, log: log.With("component", "audit"), now: time.Now, interval: DefaultAuditSweepInterval,
		ret: DefaultAuditRetention}
	for _, o := range opts {
		o(l)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	removeTemps(dir, ".tmp-")
	return l, nil
}

// auditFile matches the names of the log's files: class, year, month.
var auditFile = regexp.MustCompile(`^(instruction|access)-(\d{4})-(\d{2})\.jsonl$`)

// fileName is the file of entries of class c made in t's month (UTC).
func fileName(c AuditClass, t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%s-%04d-%02d.jsonl", c, t.Year(), int(t.Month()))
}

// parseFileName returns the class and month start of a log file's name.
func parseFileName(name string) (AuditClass, time.Time, bool) {
	m := auditFile.FindStringSubmatch(name)
	if m == nil {
		return "", time.Time{}, false
	}
	y, _ := strconv.Atoi(m[2])
	mo, _ := strconv.Atoi(m[3])
	if mo < 1 || mo > 12 {
		return "", time.Time{}, false
	}
	return AuditClass(m[1]), time.Date(y, time.Month(mo), 1, 0, 0, 0, 0, time.UTC), true
}

// Record completes e (ID, Time from the clock when zero, Class from its
// Action) and appends it to its file, fsynced before Record returns. An
// action the class table does not know is refused.
func (l *AuditLog) Record(e AuditEntry) (AuditEntry, error) {
	c, ok := AuditClassOf(e.Action)
	if !ok {
		return e, fmt.Errorf("audit: action %q has no class", e.Action)
	}
	e.Class = c
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	e.Time = e.Time.UTC()
	e.ID = newEntryID()
	line, err := json.Marshal(e)
	if err != nil {
		return e, fmt.Errorf("audit: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return e, l.appendLine(filepath.Join(l.dir, fileName(c, e.Time)), append(line, '\n'))
}

// newEntryID returns 64 random bits in hex.
func newEntryID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// appendLine appends line to path and fsyncs it; a new file also gets its
// directory fsynced. A file whose last line a crash tore gets a newline
// first, so the torn line stays alone and the new entry readable.
func (l *AuditLog) appendLine(path string, line []byte) (err error) {
	created := true
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		created = false
		f, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
	}
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("audit: %w", cerr)
		}
	}()
	if !created {
		if st, err := f.Stat(); err == nil && st.Size() > 0 {
			var last [1]byte
			if _, err := f.ReadAt(last[:], st.Size()-1); err == nil && last[0] != '\n' {
				line = append([]byte{'\n'}, line...)
			}
		}
	}
	if _, err := f.Write(line); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if created {
		return syncDir(l.dir)
	}
	return nil
}

// AuditSweep reports what one Sweep did.
type AuditSweep struct {
	// Removed are the files deleted, every entry in them expired.
	Removed []string
	// Rewritten are the access files some of whose entries expired: they
	// were replaced by a copy without them.
	Rewritten []string
	// Purged counts the entries dropped from rewritten files.
	Purged int
}

// Sweep deletes what has expired at now: instruction files of a year
// whose retention ended, access files whose newest possible entry is
// older than AccessRetention, and the expired entries of the access files
// in between (the file replaced atomically). Lines that do not parse stay
// until their file goes.
func (l *AuditLog) Sweep(now time.Time) (AuditSweep, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var rep AuditSweep
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return rep, fmt.Errorf("audit sweep: %w", err)
	}
	var errs []error
	for _, de := range entries {
		c, month, ok := parseFileName(de.Name())
		if !ok || !de.Type().IsRegular() {
			continue
		}
		path := filepath.Join(l.dir, de.Name())
		// Every entry of the file is from [month, next).
		next := month.AddDate(0, 1, 0)
		switch {
		case !now.Before(l.ret.ExpiresAt(c, next.Add(-time.Nanosecond))):
			if err := os.Remove(path); err != nil {
				errs = append(errs, err)
				continue
			}
			rep.Removed = append(rep.Removed, de.Name())
		case c == ClassAccess && !now.Before(l.ret.ExpiresAt(c, month)):
			n, empty, err := l.purgeFile(path, now)
			switch {
			case err != nil:
				errs = append(errs, err)
			case empty:
				rep.Removed, rep.Purged = append(rep.Removed, de.Name()), rep.Purged+n
			case n > 0:
				rep.Rewritten, rep.Purged = append(rep.Rewritten, de.Name()), rep.Purged+n
			}
		}
	}
	if len(rep.Removed) > 0 {
		if err := syncDir(l.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return rep, errors.Join(errs...)
}

// purgeFile replaces the access file at path with its lines that have
// not expired at now, or removes it when none is left; it returns how many
// entries it dropped and whether it removed the file.
func (l *AuditLog) purgeFile(path string, now time.Time) (dropped int, removed bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	var keep []byte
	err = scanLines(f, func(line []byte, e *AuditEntry) {
		if e != nil && !now.Before(l.ret.ExpiresAt(e.Class, e.Time)) {
			dropped++
			return
		}
		keep = append(append(keep, line...), '\n')
	})
	switch {
	case err != nil || dropped == 0:
		return 0, false, err
	case len(keep) == 0:
		return dropped, true, os.Remove(path)
	}
	return dropped, false, replaceFile(path, keep)
}

// scanLines calls fn for every non-empty line of r (without its newline),
// with its entry, or nil for a line that is no entry (torn by a crash,
// damaged).
func scanLines(r io.Reader, fn func(line []byte, e *AuditEntry)) error {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadBytes('\n')
		line = bytes.TrimSuffix(line, []byte{'\n'})
		if len(line) > 0 {
			var e AuditEntry
			if json.Unmarshal(line, &e) == nil && !e.Time.IsZero() && e.Class != "" {
				fn(line, &e)
			} else {
				fn(line, nil)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Run sweeps at once and then every day (DefaultAuditSweepInterval) until
// ctx ends; it returns ctx's error. Failures are logged and retried at the
// next sweep.
func (l *AuditLog) Run(ctx context.Context) error {
	tick := l.tick
	if tick == nil {
		t := time.NewTicker(l.interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		rep, err := l.Sweep(l.now())
		if err != nil {
			l.log.Error("audit sweep failed", "err", err)
		}
		if len(rep.Removed) > 0 || rep.Purged > 0 {
			l.log.Info("audit sweep", "files_removed", len(rep.Removed), "entries_purged", rep.Purged)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick:
		}
	}
}
