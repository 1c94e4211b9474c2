package recorder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/room"
)

// Source is where a recording reads a room's full mix from: a
// *room.MixConsumer (Room.SubscribeMix with RecommendedMixBuffer frames),
// or a test's stand-in. Read returns io.EOF when the room has closed.
type Source interface {
	Read(ctx context.Context, dst *room.MixFrame) error
	Close()
}

var _ Source = (*room.MixConsumer)(nil)

// audioFile is what a recording writes to: an *os.File, or a test's
// failing stand-in (the seam for disk-full tests).
type audioFile interface {
	io.Writer
	Sync() error
	Truncate(size int64) error
	Close() error
}

// Recorder owns the recordings of one store directory on one node: it starts
// them, recovers them after a crash, enforces their retention and writes the
// deletion receipts. Its methods are safe for concurrent use.
//
// Goroutines: each Recording runs one, which Recording.Stop or Close stops
// and waits for; Run is the sweeper loop, owned by its caller's ctx.
type Recorder struct {
	opts Options
	// policies are the retention policies in force: opts.Policies at
	// New, replaced by SetPolicies.
	policies atomic.Pointer[[]Policy]
	log      *slog.Logger
	st       store
	receipts *receiptLog

	mu      sync.Mutex
	entries map[ID]*entry
	closed  bool
	wg      sync.WaitGroup

	// warnMu guards warned, what WarnExpiring has told (expiry.go).
	warnMu sync.Mutex
	warned map[ID]warned

	// count are the Stats counters (stats.go).
	count counters

	// createAudio opens a new audio file; tests replace it to fail writes.
	createAudio func(path string) (audioFile, error)
}

// entry is one recording in the index. mu guards m and serialises the
// writes of its manifest.
type entry struct {
	mu  sync.Mutex
	m   Manifest
	rec *Recording // set while recording
}

// New opens (creating it if needed) the store in opts.Dir, recovers the
// recordings a crash left in state recording (see recover), loads every
// manifest and opens the receipts log. Manifests it cannot read are skipped
// and logged; they stay on disk for an operator to look at.
func New(opts Options) (*Recorder, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	enc, err := media.NewOpusEncoder(media.WithOpusConfig(opts.Opus))
	if err != nil { // found now, not at the first Start
		return nil, fmt.Errorf("%w: Opus: %w", ErrOptions, err)
	}
	_ = enc.Close()
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("create store directory: %w", err)
	}
	r := &Recorder{
		opts:    opts,
		log:     opts.Logger.With("component", "recorder", "node", opts.Node),
		st:      store{dir: opts.Dir},
		entries: make(map[ID]*entry),
		warned:  make(map[ID]warned),
		createAudio: func(path string) (audioFile, error) {
			// read and write: an encrypted file reads its tail chunk back
			// to cut it (sealedFile.Truncate)
			return os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
		},
	}
	r.policies.Store(&opts.Policies)
	ids, err := r.st.listIDs()
	if err != nil {
		return nil, err
	}
	var ms []Manifest
	for _, id := range ids {
		m, err := r.st.readManifest(id)
		if err != nil {
			r.log.Error("skipping unreadable manifest", "recording", string(id), "err", err)
			continue
		}
		if err := r.checkKey(&m); err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	pending := map[ID]*entry{}
	for _, m := range ms {
		id := m.ID
		if m.State == StateRecording {
			r.recover(&m)
		}
		e := &entry{m: m}
		r.entries[id] = e
		if m.Deletion != nil && m.State != StateDeleted && m.Deletion.Receipt == "" {
			pending[id] = e
		}
	}
	if r.receipts, err = openReceiptLog(opts.ReceiptsFile, opts.ReceiptKey, pending); err != nil {
		return nil, err
	}
	return r, nil
}

// checkKey refuses a store whose encrypted recording m the configured
// encryption key cannot read (by KeyID; the key itself is never logged).
func (r *Recorder) checkKey(m *Manifest) error {
	if m.Encryption == "" || m.State == StateDeleted {
		return nil
	}
	switch {
	case m.Encryption != EncryptionAESGCM:
		return fmt.Errorf("%w: recording %s uses encryption %q", ErrEncryptionKey, m.ID, truncate(m.Encryption, 20))
	case r.opts.EncryptionKey == nil:
		return fmt.Errorf("%w: recording %s is encrypted (key id %s) and no encryption key is configured", ErrEncryptionKey, m.ID, m.EncryptionKeyID)
	case KeyID(r.opts.EncryptionKey) != m.EncryptionKeyID:
		return fmt.Errorf("%w: recording %s needs key id %s, the configured key is %s", ErrEncryptionKey, m.ID, m.EncryptionKeyID, KeyID(r.opts.EncryptionKey))
	}
	return nil
}

func (r *Recorder) now() time.Time { return utc(r.opts.Now()) }

// emit hands ev to Options.OnEvent. Callers hold no lock.
func (r *Recorder) emit(t EventType, m *Manifest, err error) {
	r.count.countEvent(t)
	if r.opts.OnEvent != nil {
		r.opts.OnEvent(Event{Type: t, ID: m.ID, Tenant: m.Tenant, Err: err, Time: r.now()})
	}
}

// Policies returns the retention policies in force, the default included.
func (r *Recorder) Policies() []Policy { return slices.Clone(*r.policies.Load()) }

// SetPolicies replaces the retention policies (Options.Policies), for a
// configuration reload. Recordings started afterwards get the new
// policies; a recording's expires_at stays what its start fixed
// (DESIGN.md decision 7), and extending or deleting it early follows the
// policy of its name now in force (its promised expiry when the policy is
// gone). Invalid policies are an error wrapping ErrOptions, and nothing
// changes.
func (r *Recorder) SetPolicies(policies []Policy) error {
	ps, err := checkPolicies(policies)
	if err != nil {
		return err
	}
	r.policies.Store(&ps)
	return nil
}

// CheckPolicies reports whether SetPolicies would take policies, without
// changing anything.
func CheckPolicies(policies []Policy) error {
	_, err := checkPolicies(policies)
	return err
}

// policy returns the policy in force called name ("" is the default).
func (r *Recorder) policy(name string) (Policy, bool) { return findPolicy(*r.policies.Load(), name) }

// Node returns the node name written into manifests and receipts.
func (r *Recorder) Node() string { return r.opts.Node }

// Start begins recording roomID's mix from src for tenant under the named
// retention policy ("" for the default). It takes src over: the recording
// closes it when it ends, and Start closes it when it fails. The returned
// Recording runs until Stop, until src reports io.EOF (the room closed), or
// until a write error interrupts it.
//
// With WithEpoch, Start first asks Options.Fence whether this node still
// owns the room at that epoch, and creates nothing unless it does: it fails
// with ErrStale when the epoch is stale, with ErrFenceUnavailable when the
// fence cannot tell.
func (r *Recorder) Start(roomID room.ID, tenant Tenant, policy string, src Source, opts ...StartOption) (*Recording, error) {
	var so startOptions
	for _, o := range opts {
		o(&so)
	}
	rec, err := r.start(roomID, tenant, policy, src, so)
	if err != nil {
		src.Close()
		return nil, err
	}
	r.log.Info("recording started", "recording", string(rec.id), "room", string(roomID), "tenant", string(tenant))
	snap := rec.Manifest()
	go rec.run()
	r.emit(EventStarted, &snap, nil)
	return rec, nil
}

func (r *Recorder) start(roomID room.ID, tenant Tenant, policyName string, src Source, so startOptions) (*Recording, error) {
	if !tenant.Valid() {
		return nil, fmt.Errorf("%w: %q", ErrInvalidTenant, truncate(string(tenant), 40))
	}
	if roomID == "" {
		return nil, fmt.Errorf("%w: empty room id", ErrInvalidArgument)
	}
	policy, ok := r.policy(policyName)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownPolicy, truncate(policyName, 40))
	}
	if err := checkFence(context.Background(), r.opts.Fence, roomID, so.epoch); err != nil {
		return nil, fmt.Errorf("start recording: %w", err)
	}
	now := r.now()
	e := &entry{m: Manifest{
		Version: manifestVersion, Tenant: tenant, Room: roomID, Node: r.opts.Node, Epoch: so.epoch,
		State: StateRecording, Format: r.opts.Format, StartedAt: now,
		Retention: policy.Name, ExpiresAt: now.Add(policy.Duration),
	}}
	if r.opts.EncryptionKey != nil {
		e.m.Encryption, e.m.EncryptionKeyID = EncryptionAESGCM, KeyID(r.opts.EncryptionKey)
	}
	// e.mu is held until the files exist, so that nobody who finds the
	// entry in the index sees it half made; it is released before r.mu is
	// taken again (Close takes r.mu, then e.mu).
	e.mu.Lock()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		e.mu.Unlock()
		return nil, ErrClosed
	}
	for e.m.ID == "" || r.entries[e.m.ID] != nil { // 128 random bits: a repeat is a broken RNG
		e.m.ID = NewID()
	}
	rec := newRecording(r, e, src)
	e.rec = rec
	r.entries[e.m.ID] = e
	r.wg.Add(1)
	r.mu.Unlock()
	err := rec.open()
	if err != nil {
		e.rec = nil
	} else {
		r.count.active.Add(1)
	}
	e.mu.Unlock()
	if err != nil {
		r.mu.Lock()
		delete(r.entries, e.m.ID)
		r.mu.Unlock()
		r.wg.Done()
		return nil, err
	}
	return rec, nil
}

// lookup returns the entry for id, checking the ID's form first.
func (r *Recorder) lookup(id ID) (*entry, error) {
	if !id.Valid() {
		return nil, fmt.Errorf("%w: %q", ErrInvalidID, truncate(string(id), 40))
	}
	r.mu.Lock()
	e := r.entries[id]
	r.mu.Unlock()
	if e == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return e, nil
}

// Get returns a copy of the recording's manifest (ErrInvalidID,
// ErrNotFound). Deleted recordings are found too: their manifest stays.
func (r *Recorder) Get(id ID) (Manifest, error) {
	e, err := r.lookup(id)
	if err != nil {
		return Manifest{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.m.clone(), nil
}

// Recording returns the running recording with id, for stopping it or
// feeding it participants; false when it is not recording.
func (r *Recorder) Recording(id ID) (*Recording, bool) {
	e, err := r.lookup(id)
	if err != nil {
		return nil, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rec, e.rec != nil
}

// Filter selects manifests for List; zero fields match everything.
type Filter struct {
	Tenant Tenant
	Room   room.ID
	State  State
	// From and To bound StartedAt: From <= started_at < To.
	From, To time.Time
	// ExpiresBefore selects the recordings not deleted whose expires_at
	// is before it: what must be downloaded or extended soon (those on
	// legal hold included; their manifest says so).
	ExpiresBefore time.Time
}

func (f *Filter) match(m *Manifest) bool {
	return (f.Tenant == "" || m.Tenant == f.Tenant) &&
		(f.Room == "" || m.Room == f.Room) &&
		(f.State == "" || m.State == f.State) &&
		(f.From.IsZero() || !m.StartedAt.Before(f.From)) &&
		(f.To.IsZero() || m.StartedAt.Before(f.To)) &&
		(f.ExpiresBefore.IsZero() || m.State != StateDeleted && m.Deletion == nil && m.ExpiresAt.Before(f.ExpiresBefore))
}

// List returns copies of the manifests f selects, oldest first.
func (r *Recorder) List(f Filter) []Manifest {
	var out []Manifest
	for _, e := range r.snapshot() {
		e.mu.Lock()
		if f.match(&e.m) {
			out = append(out, e.m.clone())
		}
		e.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b Manifest) int {
		if c := a.StartedAt.Compare(b.StartedAt); c != 0 {
			return c
		}
		return compareStrings(string(a.ID), string(b.ID))
	})
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// snapshot returns the entries, to be locked one at a time.
func (r *Recorder) snapshot() []*entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*entry, 0, len(r.entries))
	for _, e := range r.entries {
		out = append(out, e)
	}
	return out
}

// Close stops every recording (each ends complete), waits for them or for
// ctx, and closes the receipts log. Later Starts fail with ErrClosed. Call
// it after Run has returned.
func (r *Recorder) Close(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	var recs []*Recording
	for _, e := range r.entries {
		e.mu.Lock()
		if e.rec != nil {
			recs = append(recs, e.rec)
		}
		e.mu.Unlock()
	}
	r.mu.Unlock()
	var errs []error
	for _, rec := range recs {
		if err := rec.Stop(ctx); err != nil && !errors.Is(err, ErrInterrupted) {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		r.wg.Wait() // every recording has finished: no wait
	}
	errs = append(errs, r.receipts.Close())
	return errors.Join(errs...)
}
