package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"

	"github.com/mediagate/mediagate/bridge"
	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/sip"
)

// roomDirectory answers the IVR's questions from the rooms section:
// which room a conference number opens, and whether a PIN is right.
type roomDirectory struct {
	byNumber map[string]room.ID
	rooms    map[string]configs.Room
}

var _ bridge.Directory = (*roomDirectory)(nil)

func newRoomDirectory(rooms map[string]configs.Room) *roomDirectory {
	d := &roomDirectory{byNumber: map[string]room.ID{}, rooms: rooms}
	for id, r := range rooms {
		if r.Number != "" {
			d.byNumber[r.Number] = room.ID(id)
		}
	}
	return d
}

// Lookup finds the room with conference number n; open rooms need no PIN.
func (d *roomDirectory) Lookup(n string) (room.ID, bool, bool) {
	id, ok := d.byNumber[n]
	if !ok {
		return "", false, false
	}
	r := d.rooms[string(id)]
	return id, !r.Open && r.PIN != "", true
}

// CheckPIN compares pin with the room's PIN in constant time (over their
// hashes, so the length leaks nothing either).
func (d *roomDirectory) CheckPIN(id room.ID, pin string) bool {
	r, ok := d.rooms[string(id)]
	if !ok || r.PIN == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(pin)), sha256.Sum256([]byte(r.PIN))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// dialIn starts the SIP user agent: every call the trunks admit (sip.trunks;
// everyone when there are none) is answered and led through the IVR
// (conference number, PIN) into its room, with English prompts. Dispatch
// rules per dialed number come with issue [3]. Registration trunks
// register once the UA runs and un-REGISTER when node.close closes it.
func dialIn(cfg configs.Config, log *slog.Logger, rooms *room.Manager) (*sip.UA, error) {
	prompts, err := bridge.Load("")
	if err != nil {
		return nil, err
	}
	deps := bridge.SessionDeps{
		Prompts:   prompts,
		Lang:      bridge.English,
		Rooms:     rooms,
		Directory: newRoomDirectory(cfg.Rooms),
		Log:       log.With("component", "bridge"),
	}
	handle := sip.HandlerFunc(func(ctx context.Context, in *sip.IncomingCall) {
		call, err := in.Answer()
		if err != nil {
			return
		}
		if err := bridge.RunCall(ctx, call, deps); err != nil {
			log.Warn("call ended with an error", "call", in.Info(), "err", err)
		}
	})
	trunks, err := sipTrunks(cfg)
	if err != nil {
		return nil, err
	}
	return sip.New(cfg.SIP.Listen, handle,
		sip.WithLogger(log),
		sip.WithCodecs(cfg.SIP.Codecs...),
		sip.WithMediaTimeout(cfg.SIP.MediaTimeout),
		sip.WithRTPPorts(cfg.RTP.PortMin, cfg.RTP.PortMax),
		sip.WithTrunks(trunks...),
		sip.WithHideUnknown(cfg.SIP.HideUnknown))
}

// sipTrunks turns sip.trunks into package sip's trunks, in name order.
// A trunk that challenges callers gets the node's ID as its realm unless
// it names one; a registration trunk keeps an empty realm, which answers
// the registrar's challenge in whatever realm it names.
func sipTrunks(cfg configs.Config) ([]sip.Trunk, error) {
	var out []sip.Trunk
	for _, name := range slices.Sorted(maps.Keys(cfg.SIP.Trunks)) {
		t := cfg.SIP.Trunks[name]
		st := sip.Trunk{Name: name, Username: t.Username, Password: t.Password, Realm: t.Realm,
			Register: t.Register, Registrar: t.Registrar, Expires: t.Expires}
		if !t.Register && t.Realm == "" {
			st.Realm = cfg.NodeID()
		}
		for _, c := range t.CIDRs {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				return nil, fmt.Errorf("sip.trunks.%s.cidrs: %w", name, err)
			}
			st.CIDRs = append(st.CIDRs, p)
		}
		out = append(out, st)
	}
	return out, nil
}
