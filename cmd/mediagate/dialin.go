package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/netip"

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

// dialIn starts the SIP user agent: every call is answered and led through
// the IVR (conference number, PIN) into its room, with English prompts.
// Dispatch rules per dialed number come with issue [3].
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
	network, err := sipNetwork(cfg.SIP)
	if err != nil {
		return nil, err
	}
	return sip.New(cfg.SIP.Listen, handle, append([]sip.Option{
		sip.WithLogger(log),
		sip.WithCodecs(cfg.SIP.Codecs...),
		sip.WithMediaTimeout(cfg.SIP.MediaTimeout),
		sip.WithRTPPorts(cfg.RTP.PortMin, cfg.RTP.PortMax),
		sip.WithSessionExpires(cfg.SIP.SessionExpires),
		sip.WithMinSE(cfg.SIP.MinSE),
		sip.WithMaxCallDuration(cfg.SIP.MaxCallDuration),
	}, network...)...)
}

// sipNetwork turns sip.external_address and sip.tls into options: the
// address announced behind NAT, and the TLS listener with the certificate
// loaded from sip.tls.cert and sip.tls.key.
func sipNetwork(s configs.SIP) ([]sip.Option, error) {
	var opts []sip.Option
	if s.ExternalAddress != "" {
		a, err := netip.ParseAddr(s.ExternalAddress)
		if err != nil {
			return nil, fmt.Errorf("sip.external_address: %w", err)
		}
		opts = append(opts, sip.WithAdvertisedAddr(a))
	}
	if s.TLS.Enabled() {
		cert, err := tls.LoadX509KeyPair(s.TLS.Cert, s.TLS.Key)
		if err != nil {
			return nil, fmt.Errorf("sip.tls.cert, sip.tls.key: %w", err)
		}
		opts = append(opts, sip.WithTLS(s.TLS.Listen, &tls.Config{Certificates: []tls.Certificate{cert}}))
	}
	return opts, nil
}
