package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/mediagate/mediagate/api"
	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/rtc"
	"github.com/mediagate/mediagate/sip"
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

	stopAudit func()        // ends the audit log's sweeper
	auditDone chan struct{} // closed when the sweeper has returned
}

// newNode builds the node's parts from the configuration. It binds the
// WebRTC UDP port but not the HTTP listener, which serve owns.
func newNode(cfg configs.Config, log *slog.Logger) (*node, error) {
	auth, err := api.NewAuth(cfg.Auth, cfg.Rooms)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	keys, err := api.OpenKeyStore(filepath.Join(cfg.Storage.Dir, api.KeyStoreFileName))
	if err != nil {
		return nil, err
	}
	audit, err := api.OpenAuditLog(filepath.Join(cfg.Storage.Dir, api.AuditDirName), log)
	if err != nil {
		return nil, err
	}
	rooms := room.NewManager(room.WithRoomDefaults(
		room.WithLogger(log),
		room.WithEmptyTimeout(cfg.Conference.EmptyTimeout),
		room.WithMaxSpeakers(cfg.Conference.MaxSpeakers)))
	// Configured rooms stay open while the node runs, with their limits;
	// rooms a join token names but the configuration does not are opened
	// on first join and closed when empty.
	for id, rc := range cfg.Rooms {
		if _, err := rooms.Create(room.ID(id),
			room.WithMaxParticipants(rc.MaxParticipants),
			room.WithEmptyTimeout(-1)); err != nil {
			return nil, fmt.Errorf("room %s: %w", id, err)
		}
	}
	webrtc, err := rtc.NewServer(rooms,
		rtc.WithLogger(log),
		rtc.WithSettings(rtc.Settings{UDPPort: cfg.WebRTC.UDPPort, PublicIPs: cfg.WebRTC.PublicIPs}),
		rtc.WithAuthorizer(authorizer(auth)))
	if err != nil {
		_ = rooms.Close(context.Background())
		return nil, err
	}
	ua, err := dialIn(cfg, log, rooms)
	if err != nil {
		_ = webrtc.Close(context.Background())
		_ = rooms.Close(context.Background())
		return nil, fmt.Errorf("sip: %w", err)
	}
	srv := api.New(log, api.WithVersion(version),
		api.WithJoinPage(rooms, auth),
		api.WithAdmin(rooms, auth, cfg.Auth.AdminKeys),
		api.WithKeyStore(keys),
		api.WithAuditLog(audit))
	srv.Handle("/whip/", webrtc.Handler())
	srv.Handle("/whep/", webrtc.Handler())
	n := &node{log: log, rooms: rooms, rtc: webrtc, sip: ua, http: srv, auditDone: make(chan struct{})}
	// The audit sweeper deletes entries past their retention, at start and
	// daily; close stops it.
	actx, cancel := context.WithCancel(context.Background())
	n.stopAudit = cancel
	go func() {
		defer close(n.auditDone)
		_ = audit.Run(actx)
	}()
	return n, nil
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

// close stops what newNode started: calls and sessions first (each says
// goodbye to its peer, and registration trunks remove their binding with
// REGISTER Expires 0), then the rooms, then the audit sweeper (a sweep in
// progress finishes first).
func (n *node) close(ctx context.Context) error {
	err := errors.Join(n.sip.Close(ctx), n.rtc.Close(ctx), n.rooms.Close(ctx))
	n.stopAudit()
	<-n.auditDone
	return err
}
