package api

import (
	"context"
	"fmt"
	"net/http"
)

// Role is what an API key may do. Every key has exactly one, fixed when
// the key is made: to change a key's role, make a new key and revoke the
// old one, so the audit log never has to say which role a key had when.
type Role string

// The roles of API keys.
const (
	// RoleAdmin may read and change everything of its tenant: lock rooms,
	// mute, issue join tokens, manage recordings and keys, read the audit
	// log.
	RoleAdmin Role = "admin"
	// RoleViewer may only read: room and recording listings and details,
	// downloads. Every change answers 403 (ErrForbidden).
	RoleViewer Role = "viewer"
)

// valid reports whether r is one of the roles.
func (r Role) valid() bool { return r == RoleAdmin || r == RoleViewer }

// AllTenants is the tenant of API keys that reach every tenant's
// resources: the bootstrap keys of auth.admin_keys and admin keys made by
// them. It is not a tenant name (configs.ValidTenant refuses it), so no
// resource can belong to it.
const AllTenants = "*"

// Principal is who an admin API request acts for: the API key that
// authenticated it. adminOnly puts it in the request context
// (PrincipalFrom) before the handler runs.
type Principal struct {
	// KeyID names the key in listings and the audit log: the first 12 hex
	// digits of its SHA-256 hash. Never the key.
	KeyID string
	// Name is what the key's creator called it; "auth.admin_keys" for the
	// bootstrap keys of the configuration.
	Name string
	// Role is what the key may do.
	Role Role
	// Tenant is the tenant whose resources the key reaches, or AllTenants.
	Tenant string
}

// Sees reports whether p may read the resources of tenant: its own
// tenant's, or every tenant's for AllTenants. A resource of no tenant ("")
// is visible only to AllTenants keys. Use it to filter listings; single
// resources go through Server.authorize, which also records the tenant in
// the audit entry.
func (p Principal) Sees(tenant string) bool {
	return p.Tenant == AllTenants || (tenant != "" && p.Tenant == tenant)
}

// principalKey is the context key of the Principal.
type principalKey struct{}

// PrincipalFrom returns the Principal adminOnly put in ctx, and false
// outside an authenticated admin API request.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// withPrincipal returns ctx carrying p.
func withPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// authorize decides whether the request's key may act on a resource of
// tenant, reading (write false) or changing it (write true), and records
// tenant as the resource's tenant in the request's audit entry. It answers
//
//   - ErrAdminKeyMissing (401) outside an authenticated admin request,
//   - ErrForbidden (403) for a viewer key that would change something, or a
//     key of another tenant than the resource's (tenant "" is a resource
//     of no tenant, which only AllTenants keys reach),
//   - nil otherwise.
//
// Handlers mounted with adminOnly call it once they know which resource
// the request is about, before they read or change it; the error goes
// back to adminOnly, which answers problem+json.
func (s *Server) authorize(r *http.Request, tenant string, write bool) error {
	p, ok := PrincipalFrom(r.Context())
	if !ok {
		return ErrAdminKeyMissing
	}
	if n := noteOf(r); n != nil {
		n.tenant = tenant
	}
	if write && p.Role != RoleAdmin {
		return fmt.Errorf("%w: a %s key only reads", ErrForbidden, p.Role)
	}
	if !p.Sees(tenant) {
		return fmt.Errorf("%w: the resource belongs to another tenant", ErrForbidden)
	}
	return nil
}

// requireAdmin refuses keys that are not admins with ErrForbidden, for
// endpoints that only admins may use even to read (keys, the audit log).
func requireAdmin(r *http.Request) (Principal, error) {
	p, ok := PrincipalFrom(r.Context())
	if !ok {
		return Principal{}, ErrAdminKeyMissing
	}
	if p.Role != RoleAdmin {
		return p, fmt.Errorf("%w: only admin keys may do this", ErrForbidden)
	}
	return p, nil
}
