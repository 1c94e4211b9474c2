package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/recorder"
	"github.com/mediagate/mediagate/room"
)

// RoomRecorder starts and stops the recordings of rooms for the admin API.
// The node's wiring implements it: it subscribes the recorder to the
// room's mix, feeds it the participants and tells the room it is recorded
// (room.Room.SetRecording), so that everyone in it hears the notice.
type RoomRecorder interface {
	// StartRecording starts recording the open room id under its
	// retention policy and returns the new recording's manifest; it
	// fails with ErrAlreadyRecording, or room.ErrNotFound when the room
	// is not open on this node.
	StartRecording(id room.ID) (recorder.Manifest, error)
	// StopRecording stops the room's recording, waits (within ctx) until
	// its file and manifest are final, and returns the manifest; it
	// fails with ErrNotRecording when none runs.
	StopRecording(ctx context.Context, id room.ID) (recorder.Manifest, error)
}

// Recordings is what the admin API's recordings routes work with.
type Recordings struct {
	// Recorder is the node's recorder. Required.
	Recorder *recorder.Recorder
	// Rooms starts and stops recordings of rooms. Required.
	Rooms RoomRecorder
	// TenantOf names the tenant a room belongs to; nil means
	// DefaultTenant for every room.
	TenantOf func(room.ID) recorder.Tenant
	// LinkSecret is the secret download links are signed with (under a
	// key derived from it): the receipt key, so links survive restarts
	// and every node with the same key accepts them. Required.
	LinkSecret []byte
	// LinkLifetime is how long a signed link lasts unless the request
	// asks for less; default 15 minutes.
	LinkLifetime time.Duration
	// Now is the clock of link expiry; default time.Now.
	Now func() time.Time
}

// DefaultTenant is the tenant of rooms when no tenant is configured.
const DefaultTenant = recorder.Tenant(configs.DefaultTenant)

// recordings is the state of the recordings routes.
type recordings struct {
	rec      *recorder.Recorder
	rooms    RoomRecorder
	tenantOf func(room.ID) recorder.Tenant
	linkKey  []byte
	linkLife time.Duration
	now      func() time.Time
}

// WithRecordings mounts the admin API's recordings routes (each an admin
// action, audited, behind an API key):
//
//	POST   /api/v1/rooms/{room}/recording/start   start recording an open room
//	POST   /api/v1/rooms/{room}/recording/stop    stop it; the final manifest
//	GET    /api/v1/recordings                     manifests: room, state, from, to, expiring_before, tenant, limit, cursor
//	GET    /api/v1/recordings/{id}                one manifest
//	GET    /api/v1/recordings/{id}/download       the audio (Range, If-Range, ETag), or with a signed link
//	POST   /api/v1/recordings/{id}/link           a signed download link: {ttl_seconds}
//	POST   /api/v1/recordings/{id}/extend         move the expiry later: {until}
//	POST   /api/v1/recordings/{id}/hold           legal hold: {reason}
//	DELETE /api/v1/recordings/{id}/hold           lift the hold
//	DELETE /api/v1/recordings/{id}                delete the audio: {reason}, a receipt
//	GET    /api/v1/receipts                       deletion receipts: tenant, from, to
//	GET    /api/v1/receipts/export                the same as a file: format=json|csv
//	DELETE /api/v1/tenants/{tenant}/recordings    erase a tenant's recordings: {reason}
//
// The routes are mounted only together with WithAdmin, which holds the
// API keys. In a cluster (WithNodes, WithRecordingsIndex) they work on
// any node for the recordings of every node: the list comes from the
// index, the routes of one recording are forwarded to its holder
// (forward.go), and receipts and erasures ask every live node (fanout.go).
func WithRecordings(c Recordings) Option {
	return func(s *Server) {
		rc := &recordings{
			rec: c.Recorder, rooms: c.Rooms, tenantOf: c.TenantOf,
			linkKey: deriveLinkKey(c.LinkSecret), linkLife: c.LinkLifetime, now: c.Now,
		}
		if rc.tenantOf == nil {
			rc.tenantOf = func(room.ID) recorder.Tenant { return DefaultTenant }
		}
		if rc.linkLife <= 0 {
			rc.linkLife = 15 * time.Minute
		}
		if rc.now == nil {
			rc.now = time.Now
		}
		s.recs = rc
	}
}

// mountRecordings registers the recordings routes.
func (s *Server) mountRecordings() {
	s.mux.Handle("POST /api/v1/rooms/{room}/recording/start", s.adminOnly("recordings.start", s.hosted(true, s.recordingStart)))
	s.mux.Handle("POST /api/v1/rooms/{room}/recording/stop", s.adminOnly("recordings.stop", s.hosted(true, s.recordingStop)))
	s.mux.Handle("GET /api/v1/recordings", s.adminOnly("recordings.list", s.recordingList))
	s.mux.Handle("GET /api/v1/recordings/{id}", s.adminOnly("recordings.get", s.held(false, s.recordingGet)))
	s.mux.Handle("GET /api/v1/recordings/{id}/download", s.linkOr(s.adminOnly("recordings.download", s.held(false, s.recordingDownload))))
	s.mux.Handle("POST /api/v1/recordings/{id}/link", s.adminOnly("recordings.link", s.held(false, s.recordingLink)))
	s.mux.Handle("POST /api/v1/recordings/{id}/extend", s.adminOnly("recordings.extend", s.held(true, s.recordingExtend)))
	s.mux.Handle("POST /api/v1/recordings/{id}/hold", s.adminOnly("recordings.hold", s.held(true, s.recordingHold)))
	s.mux.Handle("DELETE /api/v1/recordings/{id}/hold", s.adminOnly("recordings.unhold", s.held(true, s.recordingUnhold)))
	s.mux.Handle("DELETE /api/v1/recordings/{id}", s.adminOnly("recordings.delete", s.held(true, s.recordingDelete)))
	s.mux.Handle("GET /api/v1/receipts", s.adminOnly("receipts.list", s.receiptList))
	s.mux.Handle("GET /api/v1/receipts/export", s.adminOnly("receipts.export", s.receiptExport))
	s.mux.Handle("DELETE /api/v1/tenants/{tenant}/recordings", s.adminOnly("tenants.erase", s.tenantErase))
}

// recordingOf checks the request's recording ID (recorder.ParseID: never
// joined into a path unchecked), finds the recording and asks authorize
// about its tenant.
func (s *Server) recordingOf(r *http.Request, write bool) (recorder.Manifest, error) {
	id, err := recorder.ParseID(r.PathValue("id"))
	if err != nil {
		return recorder.Manifest{}, err
	}
	auditTarget(r, string(id))
	m, err := s.recs.rec.Get(id)
	if err != nil {
		return recorder.Manifest{}, err
	}
	if err := s.authorize(r, string(m.Tenant), write); err != nil {
		return recorder.Manifest{}, err
	}
	return m, nil
}

// actorOf names who made an admin request, for manifests and receipts:
// "api-key:" and the key's ID (the first 12 hex digits of its hash, as in
// the audit log), never the key.
func actorOf(r *http.Request) string {
	sum := sha256.Sum256([]byte(bearerToken(r)))
	return "api-key:" + hex.EncodeToString(sum[:6])
}

// roomOf checks the request's room ID and asks authorize about the room's
// tenant.
func (s *Server) roomOf(r *http.Request) (room.ID, error) {
	id := room.ID(r.PathValue("room"))
	if !configs.ValidRoomID(string(id)) {
		return "", fmt.Errorf("%w: room id %q", ErrBadRequest, truncate(string(id), 70))
	}
	return id, s.authorize(r, string(s.recs.tenantOf(id)), true)
}

func (s *Server) recordingStart(w http.ResponseWriter, r *http.Request) error {
	id, err := s.roomOf(r)
	if err != nil {
		return err
	}
	m, err := s.recs.rooms.StartRecording(id)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/recordings/"+string(m.ID))
	writeJSON(w, http.StatusCreated, m)
	return nil
}

func (s *Server) recordingStop(w http.ResponseWriter, r *http.Request) error {
	id, err := s.roomOf(r)
	if err != nil {
		return err
	}
	m, err := s.recs.rooms.StopRecording(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (s *Server) recordingGet(w http.ResponseWriter, r *http.Request) error {
	m, err := s.recordingOf(r, false)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (s *Server) recordingDownload(w http.ResponseWriter, r *http.Request) error {
	m, err := s.recordingOf(r, false)
	if err != nil {
		return err
	}
	return s.serveRecording(w, r, m.ID)
}

// serveRecording answers with the recording's audio through
// http.ServeContent, which does Range (RFC 9110 §14), If-Range and
// conditional requests against the ETag: the SHA-256 of the complete
// file, so a resumed download never splices two different files. Expiry
// is checked by recorder.Open, here and on every read.
func (s *Server) serveRecording(w http.ResponseWriter, r *http.Request, id recorder.ID) error {
	f, m, err := s.recs.rec.Open(id)
	if err != nil {
		return err
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", recorder.ContentType(m.Format))
	if m.SHA256 != "" {
		h.Set("ETag", `"`+m.SHA256+`"`)
	}
	h.Set("Content-Disposition", `attachment; filename="`+string(m.ID)+recorder.Extension(m.Format)+`"`)
	h.Set("Cache-Control", "private, no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", m.EndedAt, f)
	return nil
}

// linkOr serves requests that carry a signed link (linkDownload) and
// passes the others, which need an API key, to next. A link download is
// audited like one with a key, without a key ID.
func (s *Server) linkOr(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isLinkRequest(r) {
			next.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		note := &auditNote{}
		r = r.WithContext(context.WithValue(r.Context(), auditNoteKey{}, note))
		m, err := s.linkDownload(sw, r)
		aborted := errors.Is(err, errAborted)
		if err != nil && !aborted {
			s.writeProblem(sw, r, err)
		}
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		note.tenant, note.target = string(m.Tenant), string(m.ID)
		s.writeAudit(r, "recordings.download", Principal{}, true, note, sw.code, nil)
		if aborted {
			panic(http.ErrAbortHandler) // a forwarded answer broke off: so must ours
		}
	})
}

// linkDownload serves a download authorised by a signed link alone. It
// returns the recording's manifest once the ID is known to exist, for the
// audit entry.
func (s *Server) linkDownload(w http.ResponseWriter, r *http.Request) (recorder.Manifest, error) {
	id, err := recorder.ParseID(r.PathValue("id"))
	if err != nil {
		return recorder.Manifest{}, err
	}
	if e, remote, err := s.holderOf(r, id); err != nil || remote {
		// The holder checks the link: every node has the link key.
		m := recorder.Manifest{ID: e.ID, Tenant: e.Tenant}
		if err == nil {
			err = s.forwardToNode(w, r, e.Node)
		}
		return m, err
	}
	m, err := s.recs.rec.Get(id)
	if errors.Is(err, recorder.ErrNotFound) {
		return recorder.Manifest{}, ErrLinkInvalid // no oracle for which IDs exist
	}
	if err != nil {
		return recorder.Manifest{}, err
	}
	if err := s.recs.checkLink(r, m.ID, m.Tenant, s.recs.now()); err != nil {
		return m, err
	}
	return m, s.serveRecording(w, r, m.ID)
}

// linkRequest is the optional body of POST /api/v1/recordings/{id}/link.
type linkRequest struct {
	// TTLSeconds shortens the link's lifetime below recording.link_lifetime.
	TTLSeconds int `json:"ttl_seconds"`
}

// linkResponse is a signed download link.
type linkResponse struct {
	// URL is the absolute link, built from the host the client asked
	// (the forwarding node's, when another node forwarded the request).
	URL string `json:"url"`
	// Path is the link relative to the server, for clients that know
	// the server's public address better than its Host header does.
	Path      string    `json:"path"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (s *Server) recordingLink(w http.ResponseWriter, r *http.Request) error {
	m, err := s.recordingOf(r, false)
	if err != nil {
		return err
	}
	var req linkRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
	}
	life := s.recs.linkLife
	if req.TTLSeconds < 0 || time.Duration(req.TTLSeconds)*time.Second > life {
		return fmt.Errorf("%w: ttl_seconds must be 1 to %d", ErrBadRequest, int(life.Seconds()))
	}
	if req.TTLSeconds > 0 {
		life = time.Duration(req.TTLSeconds) * time.Second
	}
	f, m, err := s.recs.rec.Open(m.ID) // a link only to what may be read now
	if err != nil {
		return err
	}
	_ = f.Close()
	exp := s.recs.now().Add(life).Truncate(time.Second)
	if m.LegalHold == nil && exp.After(m.ExpiresAt) {
		exp = m.ExpiresAt.Truncate(time.Second) // never past expires_at
	}
	path := s.recs.linkPath(m.ID, m.Tenant, exp)
	writeJSON(w, http.StatusCreated, linkResponse{URL: publicBase(r) + path, Path: path, ExpiresAt: exp.UTC()})
	return nil
}

// extendRequest is the body of POST /api/v1/recordings/{id}/extend.
type extendRequest struct {
	// Until is the new expires_at (RFC 3339).
	Until time.Time `json:"until"`
}

func (s *Server) recordingExtend(w http.ResponseWriter, r *http.Request) error {
	m, err := s.recordingOf(r, true)
	if err != nil {
		return err
	}
	var req extendRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Until.IsZero() {
		return fmt.Errorf("%w: until is required", ErrBadRequest)
	}
	m, err = s.recs.rec.Extend(m.ID, req.Until)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

// maxReasonLen bounds a legal hold's reason, which every manifest copy
// carries.
const maxReasonLen = 500

// holdRequest is the body of POST /api/v1/recordings/{id}/hold.
type holdRequest struct {
	// Reason says why (a case number, a dispute); required.
	Reason string `json:"reason"`
}

func (s *Server) recordingHold(w http.ResponseWriter, r *http.Request) error {
	m, err := s.recordingOf(r, true)
	if err != nil {
		return err
	}
	var req holdRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Reason == "" || utf8.RuneCountInString(req.Reason) > maxReasonLen || !printableText(req.Reason) {
		return fmt.Errorf("%w: reason must be 1 to %d printable characters", ErrBadRequest, maxReasonLen)
	}
	m, err = s.recs.rec.SetLegalHold(m.ID, req.Reason, actorOf(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (s *Server) recordingUnhold(w http.ResponseWriter, r *http.Request) error {
	m, err := s.recordingOf(r, true)
	if err != nil {
		return err
	}
	m, err = s.recs.rec.ClearLegalHold(m.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

// deleteRequest is the body of DELETE /api/v1/recordings/{id} and of
// DELETE /api/v1/tenants/{tenant}/recordings.
type deleteRequest struct {
	// Reason is "admin" (an administrator's decision) or
	// "erasure-request" (a data subject's or tenant's request), as the
	// receipt records it.
	Reason recorder.DeletionReason `json:"reason"`
}

// deletionReason reads and checks a deleteRequest.
func deletionReason(w http.ResponseWriter, r *http.Request) (recorder.DeletionReason, error) {
	var req deleteRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return "", err
	}
	if req.Reason != recorder.ReasonAdmin && req.Reason != recorder.ReasonErasure {
		return "", fmt.Errorf("%w: reason must be %q or %q", ErrBadRequest, recorder.ReasonAdmin, recorder.ReasonErasure)
	}
	return req.Reason, nil
}

func (s *Server) recordingDelete(w http.ResponseWriter, r *http.Request) error {
	m, err := s.recordingOf(r, true)
	if err != nil {
		return err
	}
	reason, err := deletionReason(w, r)
	if err != nil {
		return err
	}
	m, err = s.recs.rec.Delete(m.ID, reason, actorOf(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

// printableText reports whether s is valid UTF-8 without control
// characters other than tab and newline.
func printableText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if c < 0x20 && c != '\t' && c != '\n' || c == 0x7f {
			return false
		}
	}
	return true
}
