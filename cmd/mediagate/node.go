package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mediagate/mediagate/api"
	"github.com/mediagate/mediagate/bridge"
	"github.com/mediagate/mediagate/cluster"
	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/recorder"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/rtc"
	"github.com/mediagate/mediagate/sip"
	"github.com/mediagate/mediagate/stream"
)

// node is one running gateway: the rooms, the WebRTC server and the HTTP
// face, wired together. Its parts are made in newNode and stopped in
// close, in the reverse order.
type node struct {
	log   *slog.Logger
	rooms *room.Manager
	rtc   *rtc.Server
	sip   *sip.UA
	http  *api.Server
	recs  *roomRecordings
	// streams are the rooms' live streams (egresses).
	streams *roomStreams
	// hooks sends the node's events to the webhooks (webhooks.go).
	hooks *nodeWebhooks

	stopSweep  context.CancelFunc
	sweepDone  chan struct{} // closed when the recorder's sweeper returned
	recordings *recorder.Recorder

	stopAudit context.CancelFunc // ends the audit log's sweeper
	auditDone chan struct{}      // closed when the audit sweeper returned

	// The cluster part (decisions 4, 5 and 9): the shared state (memory
	// for one node, Redis for many), this node's room leases, its
	// heartbeats and the links of calls to rooms hosted elsewhere.
	state      clusterState
	closeState func() error
	// roomPINs count wrong PINs per room over the IVR and the join page
	// (auth.pin_lockout.room_failures; nil when 0).
	roomPINs  cluster.Lockouts
	own       *ownership
	links     *links
	publicURL string
	sipAddr   func() string // the SIP address advertised to the cluster
	index     *indexSync    // this node's recordings in the cluster's index
	keys      *api.KeyStore // API keys, shared through the cluster state
	stopBeats context.CancelFunc
	beatsDone sync.WaitGroup

	live    live        // reload.go: the configuration in force and what SIGHUP replaces
	metrics nodeMetrics // metrics.go
}

// newNode builds the node's parts from the configuration. It binds the
// WebRTC UDP port but not the HTTP listener, which serve owns. The
// recorder comes first: it repairs what a crash left (recordings cut at
// their last intact page, marked interrupted) before any room opens, and
// its sweeper starts at once to catch up on what expired meanwhile.
func newNode(cfg configs.Config, log *slog.Logger, httpAddr net.Addr) (*node, error) {
	auth, err := api.NewAuth(cfg.Auth, cfg.Rooms)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	keys, err := api.OpenKeyStore(filepath.Join(cfg.Storage.Dir, api.KeyStoreFileName))
	if err != nil {
		return nil, err
	}
	audit, err := api.OpenAuditLog(filepath.Join(cfg.Storage.Dir, api.AuditDirName), log,
		api.WithAuditRetention(api.AuditRetention{
			InstructionYears: cfg.Storage.AuditInstructionYears,
			Access:           cfg.Storage.AuditAccessRetention,
		}))
	if err != nil {
		return nil, err
	}
	streamOpts, err := streamOptions(cfg.Stream)
	if err != nil {
		return nil, err
	}
	key, err := receiptKey(cfg, log, true)
	if err != nil {
		return nil, err
	}
	n := &node{log: log, keys: keys, sweepDone: make(chan struct{}), auditDone: make(chan struct{}),
		metrics: newNodeMetrics()}
	n.live.cfg.Store(&cfg)
	n.live.auth = auth
	if err := n.joinCluster(cfg, log, httpAddr); err != nil {
		return nil, err
	}
	if n.clustered() {
		// Keys made on other nodes work from the first request on; a
		// Redis that does not answer leaves this node with its own.
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		if err := keys.Sync(ctx, n.state); err != nil {
			log.Warn("API keys not merged with the cluster's yet", "err", err)
		}
		cancel()
	}
	n.hooks = newNodeWebhooks(cfg, log)
	ro := recorderOptions(cfg, key, log)
	ro.Fence = room.Fence{Check: n.fence, Stale: isStale}
	logEvent := ro.OnEvent
	var index atomic.Pointer[indexSync]
	ro.OnEvent = func(ev recorder.Event) {
		logEvent(ev)
		index.Load().notify()
		n.hooks.recordingEvent(ev)
	}
	rec, err := recorder.New(ro)
	if err != nil {
		_ = n.closeState()
		_ = n.hooks.close(context.Background())
		return nil, fmt.Errorf("recorder: %w", err)
	}
	n.recordings = rec
	n.hooks.rec.Store(rec)
	if ro.EncryptionKey != nil { // the key id only: it names the key without giving it away
		log.Info("recordings are encrypted at rest", "cipher", recorder.EncryptionAESGCM, "key_id", recorder.KeyID(ro.EncryptionKey))
	}
	n.index = newIndexSync(log.With("component", "recordings-index"), cluster.NodeID(cfg.Node.ID), rec, n.state)
	index.Store(n.index)
	var sweepCtx context.Context
	sweepCtx, n.stopSweep = context.WithCancel(context.Background())
	go func() {
		defer close(n.sweepDone)
		_ = rec.Run(sweepCtx)
	}()
	// The audit sweeper deletes entries past their retention, at start and
	// daily; close stops it.
	var auditCtx context.Context
	auditCtx, n.stopAudit = context.WithCancel(context.Background())
	go func() {
		defer close(n.auditDone)
		_ = audit.Run(auditCtx)
	}()
	tenantOf := func(id room.ID) recorder.Tenant { return recorder.Tenant(auth.RoomTenant(id)) }
	policyOf := func(id room.ID) string { return n.config().Recording.RoomPolicy(string(id)) }
	n.recs = newRoomRecordings(log, rec, tenantOf, policyOf, autoRecorded(cfg.Rooms), cfg.Conference.EmptyTimeout)
	streamOpts.Fence = room.Fence{Check: n.fence, Stale: isStale}
	n.streams = newRoomStreams(log, streamOpts, autoStreamed(cfg.Rooms), cfg.Conference.EmptyTimeout)
	roomDefaults := []room.Option{
		room.WithLogger(log),
		room.WithEmptyTimeout(cfg.Conference.EmptyTimeout),
		room.WithMaxSpeakers(cfg.Conference.MaxSpeakers),
		room.WithTotals(n.metrics.totals),
	}
	n.rooms = room.NewManager(room.WithOnOpen(func(rm *room.Room) {
		n.recs.opened(rm)
		n.streams.opened(rm)
		n.hooks.roomOpened(rm)
	}), room.WithRoomDefaults(roomDefaults...),
		room.WithOpenGate(n.own.gate),
		room.WithOptionsFor(func(id room.ID) []room.Option {
			if rc, ok := n.config().Rooms[string(id)]; ok {
				return []room.Option{room.WithMaxParticipants(rc.MaxParticipants)}
			}
			return nil
		}))
	n.own.lost = func(id room.ID) {
		go func() { // not on the renewal loop: closing waits for the room
			ctx, cancel := context.WithTimeout(context.Background(), stopGrace)
			defer cancel()
			_ = n.rooms.CloseRoom(ctx, id)
		}()
	}
	n.recs.rooms, n.recs.epochOf = n.rooms, n.epochOf
	n.streams.rooms, n.streams.epochOf, n.streams.hooks = n.rooms, n.epochOf, n.hooks
	// On a single node, configured rooms stay open while the node runs,
	// with their limits; rooms a join token names but the configuration
	// does not are opened on first join and closed when empty. In a
	// cluster a configured room opens on demand on the node that wins its
	// lease (with the same limits) and closes when empty, so its lease
	// moves on with it.
	if !n.clustered() {
		for id, rc := range cfg.Rooms {
			if _, err := n.rooms.Create(room.ID(id),
				room.WithMaxParticipants(rc.MaxParticipants),
				room.WithEmptyTimeout(-1)); err != nil {
				_ = n.close(context.Background())
				return nil, fmt.Errorf("room %s: %w", id, err)
			}
		}
	}
	prompts, err := loadPrompts(cfg.Dialin)
	n.live.prompts = prompts
	if err != nil {
		_ = n.close(context.Background())
		return nil, err
	}
	n.links = newLinks(log.With("component", "links"), cluster.NodeID(cfg.Node.ID), n.publicURL,
		n.own, auth, roomDefaults,
		prompts.Prompt(bridge.Lang(cfg.Dialin.Language), bridge.PromptJoining).PCM48)
	app, err := media.ParseOpusApplication(cfg.WebRTC.OpusApplication)
	if err != nil {
		_ = n.close(context.Background())
		return nil, fmt.Errorf("webrtc.opus_application: %w", err)
	}
	opus := rtc.OpusSettings{Application: app, Complexity: cfg.WebRTC.OpusComplexity}
	n.links.opus = opus
	if n.rtc, err = rtc.NewServer(n.rooms,
		rtc.WithLogger(log),
		rtc.WithSettings(rtc.Settings{UDPPort: cfg.WebRTC.UDPPort, PublicIPs: cfg.WebRTC.PublicIPs, Opus: opus,
			MixThroughPion: !cfg.WebRTC.DirectSRTP}),
		rtc.WithAuthorizer(authorizer(auth))); err != nil {
		_ = n.close(context.Background())
		return nil, err
	}
	n.streams.video = func(id room.ID) stream.VideoSource {
		return n.rtc.SubscribeVideo(id, stream.RecommendedVideoBuffer)
	}
	if n.sip, err = dialIn(cfg, log, &clusterRooms{Manager: n.rooms, links: n.links}, &n.live,
		n.metrics.countLockouts(n.state), n.metrics.countRoomLockouts(n.roomPINs), n.state, n.hooks.callEvent); err != nil {
		_ = n.close(context.Background())
		return nil, fmt.Errorf("sip: %w", err)
	}
	apiOpts := []api.Option{api.WithVersion(version),
		api.WithJoinPage(n.rooms, auth),
		api.WithAdmin(n.rooms, auth, cfg.Auth.AdminKeys),
		api.WithKeyStore(keys),
		api.WithAuditLog(audit),
		api.WithRecordings(api.Recordings{
			Recorder: rec, Rooms: n.recs, TenantOf: tenantOf,
			LinkSecret: key, LinkLifetime: cfg.Recording.LinkLifetime,
		}),
		api.WithStreams(n.streams),
		api.WithNodes(cluster.NodeID(cfg.Node.ID), n.state),
	}
	apiOpts = append(apiOpts, n.capacities()...)
	if n.roomPINs != nil {
		apiOpts = append(apiOpts, api.WithRoomPINLockouts(n.roomPINs))
	}
	if r, ok := n.state.(*cluster.Redis); ok {
		apiOpts = append(apiOpts, api.WithRecordingsIndex(recordingsIndex{r}), api.WithRoomLocator(n.own),
			api.WithPINLockouts(r))
		if !cfg.Cluster.DegradedLocal {
			// Without Redis this node takes no new rooms: not ready.
			apiOpts = append(apiOpts, api.WithReadiness("redis", r.Ping))
		}
	}
	apiOpts = append(apiOpts, api.WithMetrics(n.metricsSources()))
	n.http = api.New(log, apiOpts...)
	n.http.Registry().MustRegister(n.hooks.hooks)
	n.http.Handle("/whip/", n.rtc.Handler())
	n.http.Handle("/whep/", n.rtc.Handler())
	n.startCluster(cfg)
	return n, nil
}

// autoRecorded lists the rooms whose entry sets auto_record, in ID order.
func autoRecorded(rooms map[string]configs.Room) []string {
	var ids []string
	for _, id := range slices.Sorted(maps.Keys(rooms)) {
		if rooms[id].AutoRecord {
			ids = append(ids, id)
		}
	}
	return ids
}

// authorizer lets the join-token policy of api decide rtc's WHIP and WHEP
// requests.
func authorizer(auth *api.Auth) rtc.Authorizer {
	return rtc.AuthorizerFunc(func(r *http.Request, id room.ID, listenOnly bool) (rtc.Grant, error) {
		who, err := auth.Check(r, id, listenOnly)
		if err != nil {
			return rtc.Grant{}, err
		}
		return rtc.Grant{
			ParticipantID: room.ParticipantID(who.Subject),
			Name:          who.Name,
			Publish:       who.Grants.Publish,
			Listen:        who.Grants.Listen,
			Present:       who.Grants.Present,
		}, nil
	})
}

// drain stops taking new work (readiness 503, new WHIP/WHEP sessions 503,
// new calls 503 with Retry-After) and waits until no WebRTC session and no
// call is left, or ctx ends. Sessions and calls end when their people
// leave; nothing announces the last one, so it looks twice a second.
func (n *node) drain(ctx context.Context) {
	n.http.Drain()
	n.sip.Drain()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for n.rtc.Sessions() > 0 || n.sip.Calls() > 0 {
		select {
		case <-ctx.Done():
			n.log.Warn("drain timeout; closing what is left", "sessions", n.rtc.Sessions(), "calls", n.sip.Calls())
			return
		case <-t.C:
		}
	}
}

// close stops what newNode started (what it got to): the live streams
// first (each unpublishes politely), calls and sessions next (each says goodbye to its peer, and registration trunks remove
// their binding with REGISTER Expires 0), then the recordings (each
// completes: its last page written, its manifest final) and the sweeper,
// then the rooms, then the audit sweeper (a sweep in progress finishes
// first).
func (n *node) close(ctx context.Context) error {
	var errs []error
	if n.streams != nil {
		errs = append(errs, n.streams.close(ctx))
	}
	if n.sip != nil {
		errs = append(errs, n.sip.Close(ctx))
	}
	if n.links != nil {
		errs = append(errs, n.links.close(ctx))
	}
	if n.rtc != nil {
		errs = append(errs, n.rtc.Close(ctx))
	}
	n.stopSweep()
	select { // Recorder.Close wants the sweeper gone
	case <-n.sweepDone:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("sweeper: %w", ctx.Err()))
	}
	errs = append(errs, n.recs.close(ctx))
	if n.rooms != nil {
		errs = append(errs, n.rooms.Close(ctx))
	}
	if n.hooks != nil { // after the rooms: their last events are queued
		errs = append(errs, n.hooks.close(ctx))
	}
	n.stopAudit()
	<-n.auditDone
	errs = append(errs, n.leaveCluster(ctx))
	return errors.Join(errs...)
}
