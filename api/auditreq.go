package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"

	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/recorder"
)

// How a request becomes an audit entry: adminOnly authenticates, gives
// the handler a note in the request context, and writes the entry when the
// handler is done. The handler fills the note through authorize (the
// resource's tenant) and auditTarget (the resource, once validated).

// auditNote is what a handler tells adminOnly about its request for the
// audit entry. Handlers set it from the request's goroutine.
type auditNote struct {
	target string // validated by the handler; verbatim in the entry
	tenant string // the resource's tenant, set by authorize
	// forwardedTo is the node the request was forwarded to (forward.go).
	forwardedTo string
}

// auditNoteKey is the context key of the *auditNote.
type auditNoteKey struct{}

// noteOf returns the request's note, or nil outside adminOnly.
func noteOf(r *http.Request) *auditNote {
	n, _ := r.Context().Value(auditNoteKey{}).(*auditNote)
	return n
}

// auditTarget names the resource the request is about (room ID, recording
// ID, key ID) in its audit entry. Call it once the handler has validated
// the ID; without it, the entry takes the ID from the path only if it
// cannot be a secret or a phone number (safeTarget).
func auditTarget(r *http.Request, target string) {
	if n := noteOf(r); n != nil {
		n.target = target
	}
}

// redactedTarget replaces a path value that safeTarget does not trust.
const redactedTarget = "<redacted>"

// safeTarget returns a path value for an audit entry if it has the form of
// one of our IDs and cannot be a key, PIN or phone number: a key ID, a
// recording ID, or a room ID with no run of four digits or more. Anything
// else, such as a key pasted where its ID belongs, is redactedTarget.
func safeTarget(s string) string {
	switch {
	case strings.HasPrefix(strings.ToLower(s), strings.ToLower(AdminKeyPrefix)):
		return redactedTarget
	case validKeyID(s), recorder.ID(s).Valid():
		return s
	case configs.ValidRoomID(s) && !hasDigitRun(s, 4):
		return s
	}
	return redactedTarget
}

// hasDigitRun reports whether s has n or more ASCII digits in a row.
func hasDigitRun(s string, n int) bool {
	run := 0
	for i := range len(s) {
		if s[i] >= '0' && s[i] <= '9' {
			if run++; run >= n {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// participantRef names a participant in an audit entry without its ID,
// which can be a SIP Call-ID holding a host address: the first 12 hex
// digits of its SHA-256, which whoever holds the ID can check.
func participantRef(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:6])
}

// auditRequest writes the audit entry of a request that adminOnly does not
// wrap, e.g. a download through a signed link: action from the class
// table, the resource's tenant and ID (validated by the caller), the
// answer's status (a refused link too: its status says so). The
// principal, if the request has one, is taken from its context.
func (s *Server) auditRequest(r *http.Request, action string, status int, tenant, target string) {
	p, _ := PrincipalFrom(r.Context())
	s.writeAudit(r, action, p, true, &auditNote{target: target, tenant: tenant}, status, nil)
}

// writeAudit writes a request's audit entry: to the persistent log when
// the server has one (WithAuditLog), and as an "audit" line to the node's
// log. authenticated is false for a request refused at authentication,
// whose entry is ActionAuthFailed. A failing write is logged and counted
// (mediagate_audit_write_failures_total); the answer has gone already.
func (s *Server) writeAudit(r *http.Request, action string, p Principal, authenticated bool, n *auditNote, status int, refused error) {
	e := AuditEntry{
		Action: action, KeyID: p.KeyID, Role: p.Role, KeyTenant: p.Tenant,
		Tenant: n.tenant, Target: n.target, Status: status, Client: AnonymizeAddr(r.RemoteAddr),
	}
	if e.Tenant == "" && p.Tenant != AllTenants {
		e.Tenant = p.Tenant
	}
	if e.Target == "" {
		for _, name := range []string{"room", "recording", "id"} {
			if v := r.PathValue(name); v != "" {
				e.Target = safeTarget(v)
				break
			}
		}
	}
	if v := r.PathValue("participant"); v != "" {
		e.Participant = participantRef(v)
	}
	e.ForwardedTo, e.ForwardedFrom = n.forwardedTo, forwardedBy(r)
	if !authenticated {
		e.Action, e.Attempted = ActionAuthFailed, action
	}
	attrs := []slog.Attr{
		slog.String("action", action),
		slog.String("key", e.KeyID),
		slog.String("role", string(e.Role)),
		slog.String("tenant", e.Tenant),
		slog.String("target", e.Target),
		slog.String("client", e.Client),
		slog.Int("status", status),
	}
	if e.Participant != "" {
		attrs = append(attrs, slog.String("participant", e.Participant))
	}
	if e.ForwardedTo != "" {
		attrs = append(attrs, slog.String("forwarded_to", e.ForwardedTo))
	}
	if e.ForwardedFrom != "" {
		attrs = append(attrs, slog.String("forwarded_from", e.ForwardedFrom))
	}
	if refused != nil {
		// The problem type, not the message: messages may echo what the
		// client sent, which can be a pasted key.
		attrs = append(attrs, slog.String("refused", problemFor(refused).Type))
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "audit", attrs...)
	if s.audit == nil {
		return
	}
	if _, err := s.audit.Record(e); err != nil {
		s.auditFailures.Inc()
		s.log.LogAttrs(context.WithoutCancel(r.Context()), slog.LevelError, "audit entry not written", slog.String("action", e.Action), slog.Any("err", err))
	}
}
