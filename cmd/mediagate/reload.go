package main

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mediagate/mediagate/api"
	"github.com/mediagate/mediagate/bridge"
	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/recorder"
	"github.com/mediagate/mediagate/room"
	"github.com/mediagate/mediagate/sip"
)

// Reload (SIGHUP, docs/reload.md): the configuration is read again from
// the same file and environment, and what can change without disturbing
// a call in progress is applied:
//
//   - log.level and node.max_participants (what /readyz reports);
//   - sip.trunks and sip.hide_unknown (registrations of unchanged trunks
//     go on; sip.UA.SetTrunks);
//   - dialin.numbers and dialin.language (the next call is dispatched by
//     the new rules; a call in progress keeps its rule and room);
//   - rooms: added and removed rooms, their name, pin, open, number and
//     max_participants (the join page, tokens, the IVR's directory, room
//     limits); a room's tenant only when the room is new; a removed room
//     that is open stays open until its last participant leaves;
//   - recording.policies and recording.room_policies (for recordings
//     started afterwards; a recording's expiry is fixed at its start).
//
// Every other changed key is logged as needing a restart, by name only.
// A configuration that does not load, or that a part refuses, changes
// nothing: the error is logged and the node goes on with the one it has.

// live is what a reload replaces, beside the node's parts that have their
// own swap methods. newNode fills it; node.reload replaces it.
type live struct {
	mu  sync.Mutex // serialises reloads
	cfg atomic.Pointer[configs.Config]
	// level is the log level (log.level); nil: not reloadable (tests
	// that build a node without serve).
	level   *slog.LevelVar
	auth    *api.Auth
	calls   *bridge.CallHandler
	dir     liveDirectory
	prompts *bridge.Prompts
}

// config returns the configuration in force: the one the node started
// with, as changed by reloads.
func (n *node) config() configs.Config { return *n.live.cfg.Load() }

// reloader applies one part of a reloaded configuration. prepare checks
// cfg (the configuration to apply) and returns the function that switches
// the part to it; prepare itself changes nothing, so that a reload one
// part refuses leaves every part as it was. The switch cannot fail.
type reloader struct {
	name    string
	prepare func(cfg configs.Config) (commit func(), err error)
}

// liveDirectory is the IVR's room directory, replaced by a reload.
type liveDirectory struct{ d atomic.Pointer[roomDirectory] }

var _ bridge.Directory = (*liveDirectory)(nil)

func (l *liveDirectory) set(d *roomDirectory) { l.d.Store(d) }

// Lookup asks the directory in force.
func (l *liveDirectory) Lookup(n string) (room.ID, bool, bool) { return l.d.Load().Lookup(n) }

// CheckPIN asks the directory in force.
func (l *liveDirectory) CheckPIN(id room.ID, pin string) bool { return l.d.Load().CheckPIN(id, pin) }

// reloadResult is what a reload changed.
type reloadResult struct {
	// Applied are the keys that changed and took effect.
	Applied []string
	// Restart are the keys that changed and wait for a restart.
	Restart []string
}

// reloadConfig is SIGHUP: it loads the configuration as serve did at
// start and applies it (node.reload), logging the outcome. An error keeps
// the running configuration whole.
func reloadConfig(n *node, path string, environ []string, log *slog.Logger) {
	loaded, err := configs.Load(path, environ)
	if err == nil {
		var res reloadResult
		if res, err = n.reload(loaded); err == nil {
			if len(res.Restart) > 0 {
				log.Warn("configuration changes need a restart", "keys", strings.Join(res.Restart, ","))
			}
			log.Info("configuration reloaded", "applied", strings.Join(res.Applied, ","), "restart", len(res.Restart))
			return
		}
	}
	// configs errors name file:line and key, one per line.
	log.Error("configuration not reloaded; keeping the running one", "err", strings.ReplaceAll(err.Error(), "\n", "; "))
}

// reload applies loaded: every part prepares (and may refuse: then
// nothing changes), then every part switches, then loaded (without what
// needs a restart) is the configuration in force.
func (n *node) reload(loaded configs.Config) (reloadResult, error) {
	n.live.mu.Lock()
	defer n.live.mu.Unlock()
	running := n.config()
	if loaded.Node.ID == "" { // serve gave it one from storage.dir/node-id
		loaded.Node.ID = running.Node.ID
	}
	eff := applicable(running, loaded)
	res := reloadResult{Applied: changedKeys(running, eff), Restart: changedKeys(eff, loaded)}
	if len(res.Applied) == 0 {
		return res, nil
	}
	var commits []func()
	for _, r := range n.reloaders(running) {
		commit, err := r.prepare(eff)
		if err != nil {
			return reloadResult{}, fmt.Errorf("%s: %w", r.name, err)
		}
		commits = append(commits, commit)
	}
	for _, c := range commits {
		c()
	}
	n.live.cfg.Store(&eff)
	return res, nil
}

// applicable is loaded with every key that needs a restart kept at its
// running value: what a reload puts in force.
func applicable(running, loaded configs.Config) configs.Config {
	eff := running
	eff.Log.Level = loaded.Log.Level
	eff.Node.MaxParticipants = loaded.Node.MaxParticipants
	eff.SIP.Trunks, eff.SIP.HideUnknown = loaded.SIP.Trunks, loaded.SIP.HideUnknown
	eff.Dialin.Numbers, eff.Dialin.Language = loaded.Dialin.Numbers, loaded.Dialin.Language
	eff.Recording.Policies, eff.Recording.RoomPolicies = loaded.Recording.Policies, loaded.Recording.RoomPolicies
	eff.Webhooks = loaded.Webhooks
	eff.Rooms = make(map[string]configs.Room, len(loaded.Rooms))
	for id, r := range loaded.Rooms {
		old, ok := running.Rooms[id]
		// Recording and streaming start with the room (newNode), and a
		// room's recordings belong to its tenant: these wait for a
		// restart, except the tenant of a room that is new.
		r.AutoRecord, r.AutoStream = old.AutoRecord, old.AutoStream
		if ok {
			r.Tenant = old.Tenant
		}
		eff.Rooms[id] = r
	}
	return eff
}

// reloaders are the parts a reload switches, in order: the trunks first
// (whose switch can meet a closing UA, which the others would not mind),
// then dispatch, rooms, retention, webhooks and the log level.
func (n *node) reloaders(running configs.Config) []reloader {
	return []reloader{
		{"sip.trunks", func(cfg configs.Config) (func(), error) {
			trunks, err := sipTrunks(cfg)
			if err == nil {
				err = sip.CheckTrunks(trunks...)
			}
			return func() {
				if err := n.sip.SetTrunks(cfg.SIP.HideUnknown, trunks...); err != nil {
					n.log.Warn("trunks not replaced", "err", err)
				}
			}, err
		}},
		{"dialin", func(cfg configs.Config) (func(), error) {
			return func() {
				n.live.dir.set(newRoomDirectory(cfg.Rooms))
				n.live.calls.SetDispatcher(newDispatcher(cfg))
			}, checkLanguages(n.live.prompts, cfg.Dialin)
		}},
		{"rooms", func(cfg configs.Config) (func(), error) {
			return func() {
				n.live.auth.SetRooms(cfg.Rooms)
				n.reloadRooms(running, cfg)
			}, nil
		}},
		{"recording.policies", func(cfg configs.Config) (func(), error) {
			policies := retentionPolicies(cfg.Recording)
			return func() { _ = n.recordings.SetPolicies(policies) }, recorder.CheckPolicies(policies)
		}},
		{"webhooks", func(cfg configs.Config) (func(), error) {
			// Validated with the file; an endpoint kept by name keeps its
			// queue (api.Webhooks.SetEndpoints).
			return func() { n.hooks.SetEndpoints(cfg.Webhooks) }, nil
		}},
		{"log.level", func(cfg configs.Config) (func(), error) {
			var level slog.Level
			err := level.UnmarshalText([]byte(cfg.Log.Level))
			return func() {
				if n.live.level != nil {
					n.live.level.Set(level)
				}
			}, err
		}},
	}
}

// reloadRooms brings the open rooms in line with cfg's rooms section: new
// limits apply to open rooms too (participants already in stay); on one
// node, configured rooms are kept open, so a new one opens now and a
// removed one closes once empty (in a cluster every configured room
// closes when empty anyway).
func (n *node) reloadRooms(running, cfg configs.Config) {
	for _, id := range slices.Sorted(maps.Keys(cfg.Rooms)) {
		rc := cfg.Rooms[id]
		old, existed := running.Rooms[id]
		r, err := n.rooms.Get(room.ID(id))
		switch {
		case err == nil && (!existed || old.MaxParticipants != rc.MaxParticipants):
			r.SetMaxParticipants(rc.MaxParticipants)
			if !existed && !n.clustered() {
				r.SetEmptyTimeout(-1) // open ad hoc, configured now
			}
		case errors.Is(err, room.ErrNotFound) && !existed && !n.clustered():
			if _, err := n.rooms.Create(room.ID(id), room.WithMaxParticipants(rc.MaxParticipants),
				room.WithEmptyTimeout(-1)); err != nil {
				n.log.Warn("configured room not opened", "room", id, "err", err)
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(running.Rooms)) {
		if _, ok := cfg.Rooms[id]; ok {
			continue
		}
		if r, err := n.rooms.Get(room.ID(id)); err == nil && !n.clustered() {
			r.SetEmptyTimeout(cfg.Conference.EmptyTimeout)
			n.log.Info("room removed from the configuration; it closes once empty", "room", id, "participants", r.Len())
		}
	}
}

// changedKeys lists the dotted keys (as in mediagate.yaml) whose values
// differ between a and b, sorted. Entries of map sections (rooms, trunks,
// dialin numbers, policies) are compared key by key, an added or removed
// entry is its own key ("rooms.board"). Values never appear, so the list
// can be logged even when secrets changed.
func changedKeys(a, b configs.Config) []string {
	var out []string
	diff("", reflect.ValueOf(a), reflect.ValueOf(b), &out)
	slices.Sort(out)
	return out
}

func diff(key string, a, b reflect.Value, out *[]string) {
	switch {
	case a.Kind() == reflect.Struct:
		for i := range a.NumField() {
			name, _, _ := strings.Cut(a.Type().Field(i).Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			diff(joinKey(key, name), a.Field(i), b.Field(i), out)
		}
	case a.Kind() == reflect.Map && a.Type().Elem().Kind() == reflect.Struct:
		keys := map[string]bool{}
		for _, k := range append(a.MapKeys(), b.MapKeys()...) {
			keys[k.String()] = true
		}
		for k := range keys {
			va, vb := a.MapIndex(reflect.ValueOf(k)), b.MapIndex(reflect.ValueOf(k))
			if !va.IsValid() || !vb.IsValid() {
				*out = append(*out, joinKey(key, k))
				continue
			}
			diff(joinKey(key, k), va, vb, out)
		}
	case (a.Kind() == reflect.Map || a.Kind() == reflect.Slice) && a.Len() == 0 && b.Len() == 0:
		// nil and empty are the same setting
	case !reflect.DeepEqual(a.Interface(), b.Interface()):
		*out = append(*out, key)
	}
}

func joinKey(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}
