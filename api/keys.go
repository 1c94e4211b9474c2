package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mediagate/mediagate/configs"
)

// The key management endpoints of the admin API:
//
//	POST   /api/v1/keys        {name, role, tenant} → 201 with the key, shown this once
//	GET    /api/v1/keys        the keys the caller may manage, revoked ones included
//	GET    /api/v1/keys/self   the caller's own key (the admin page's sign-in)
//	DELETE /api/v1/keys/{id}   revoke: the key answers 401 from now on
//
// Only admin keys manage keys. An admin of AllTenants manages every key
// and may make AllTenants admins; an admin of a tenant manages its
// tenant's keys only and can never make a key beyond its tenant.

// BootstrapKeyName is the Name of the bootstrap keys of auth.admin_keys in
// the Principal and in key listings.
const BootstrapKeyName = "auth.admin_keys"

// maxKeyNameLen bounds key names to one line of a listing.
const maxKeyNameLen = 64

// validKeyName reports whether s is 1 to maxKeyNameLen printable
// characters.
func validKeyName(s string) bool {
	if s == "" || utf8.RuneCountInString(s) > maxKeyNameLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// keyRequest is the body of POST /api/v1/keys.
type keyRequest struct {
	Name   string `json:"name"`
	Role   Role   `json:"role"`
	Tenant string `json:"tenant"`
}

// keyJSON is an API key as the admin API shows it: never the key, never
// its hash.
type keyJSON struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Role      Role       `json:"role"`
	Tenant    string     `json:"tenant"`
	CreatedAt *time.Time `json:"created_at,omitempty"` // none for bootstrap keys
	CreatedBy string     `json:"created_by,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	Bootstrap bool       `json:"bootstrap,omitempty"`
}

// newKeyJSON is the answer of POST /api/v1/keys: the key itself, which the
// server forgets at once, and its description.
type newKeyJSON struct {
	Key string `json:"key"`
	keyJSON
}

func keyView(k Key) keyJSON {
	created := k.CreatedAt
	return keyJSON{ID: k.ID, Name: k.Name, Role: k.Role, Tenant: k.Tenant,
		CreatedAt: &created, CreatedBy: k.CreatedBy, RevokedAt: k.RevokedAt}
}

func bootstrapView(id string) keyJSON {
	return keyJSON{ID: id, Name: BootstrapKeyName, Role: RoleAdmin, Tenant: AllTenants, Bootstrap: true}
}

// mountKeys registers the key management routes.
func (s *Server) mountKeys() {
	s.mux.Handle("POST /api/v1/keys", s.adminOnly("keys.create", s.adminCreateKey))
	s.mux.Handle("GET /api/v1/keys", s.adminOnly("keys.list", s.adminListKeys))
	s.mux.Handle("GET /api/v1/keys/self", s.adminOnly("auth.signin", s.adminSelf))
	s.mux.Handle("DELETE /api/v1/keys/{id}", s.adminOnly("keys.revoke", s.adminRevokeKey))
}

// adminCreateKey makes a key for the body's tenant and role, within what
// the caller may grant, and shows it once.
func (s *Server) adminCreateKey(w http.ResponseWriter, r *http.Request) error {
	p, err := requireAdmin(r)
	if err != nil {
		return err
	}
	var req keyRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	switch {
	case !validKeyName(req.Name):
		return fmt.Errorf("%w: name must be 1 to %d printable characters", ErrBadRequest, maxKeyNameLen)
	case !req.Role.valid():
		return fmt.Errorf("%w: role must be admin or viewer", ErrBadRequest)
	case req.Tenant == AllTenants && req.Role != RoleAdmin:
		return fmt.Errorf("%w: tenant %q is only for admin keys", ErrBadRequest, AllTenants)
	case req.Tenant != AllTenants && !configs.ValidTenant(req.Tenant):
		return fmt.Errorf("%w: tenant must be %q or 1 to %d characters from A-Z a-z 0-9 . _ -", ErrBadRequest, AllTenants, configs.MaxTenantLen)
	}
	if req.Tenant == AllTenants && p.Tenant != AllTenants {
		return fmt.Errorf("%w: only admins of every tenant make keys for every tenant", ErrForbidden)
	}
	if err := s.authorize(r, req.Tenant, true); err != nil {
		return err
	}
	for range 4 { // a 48-bit ID collides about never; retry anyway
		key, hash := NewAdminKey()
		k := Key{ID: keyIDOf(hash), Hash: hash, Name: req.Name, Role: req.Role, Tenant: req.Tenant,
			CreatedAt: s.admin.auth.now().UTC(), CreatedBy: p.KeyID}
		if s.admin.isBootstrap(k.ID) {
			continue
		}
		err := s.admin.keys.Add(k)
		if errors.Is(err, errKeyIDTaken) {
			continue
		}
		if err != nil {
			return err
		}
		auditTarget(r, k.ID)
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusCreated, newKeyJSON{Key: key, keyJSON: keyView(k)})
		return nil
	}
	return errors.New("no free key id after 4 tries")
}

// adminListKeys lists the keys the caller manages: every key for an
// AllTenants admin (bootstrap keys first), its tenant's otherwise.
func (s *Server) adminListKeys(w http.ResponseWriter, r *http.Request) error {
	p, err := requireAdmin(r)
	if err != nil {
		return err
	}
	out := []keyJSON{}
	if p.Tenant == AllTenants {
		for _, id := range s.admin.bootstrapIDs {
			out = append(out, bootstrapView(id))
		}
	}
	for _, k := range s.admin.keys.List() {
		if p.Sees(k.Tenant) {
			out = append(out, keyView(k))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// adminSelf describes the caller's own key, for any valid key: the admin
// page signs in with it and learns the role and tenant to show.
func (s *Server) adminSelf(w http.ResponseWriter, r *http.Request) error {
	p, ok := PrincipalFrom(r.Context())
	if !ok {
		return ErrAdminKeyMissing
	}
	auditTarget(r, p.KeyID)
	if k, ok := s.admin.keys.Get(p.KeyID); ok && !s.admin.isBootstrap(p.KeyID) {
		writeJSON(w, http.StatusOK, keyView(k))
		return nil
	}
	writeJSON(w, http.StatusOK, bootstrapView(p.KeyID))
	return nil
}

// adminRevokeKey revokes a key of a tenant the caller manages.
func (s *Server) adminRevokeKey(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r); err != nil {
		return err
	}
	id := r.PathValue("id")
	if !validKeyID(id) {
		// Not echoed: a key pasted in place of its ID would land in logs.
		return fmt.Errorf("%w: key ids are %d hex digits", ErrKeyNotFound, keyIDLen)
	}
	if s.admin.isBootstrap(id) {
		if err := s.authorize(r, AllTenants, true); err != nil {
			return err
		}
		auditTarget(r, id)
		return ErrBootstrapKey
	}
	k, ok := s.admin.keys.lookup(r.Context(), id)
	if !ok {
		return fmt.Errorf("%w: %s", ErrKeyNotFound, id)
	}
	if err := s.authorize(r, k.Tenant, true); err != nil {
		return err
	}
	auditTarget(r, id)
	if _, err := s.admin.keys.Revoke(id, s.admin.auth.now()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
