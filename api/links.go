package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/mediagate/mediagate/recorder"
)

// Signed download links let an admin hand one recording to someone
// without an API key (a browser's download, a colleague): the link is
//
//	/api/v1/recordings/{id}/download?expires=<unix seconds>&sig=<base64url>
//
// where sig is HMAC-SHA256 under the link key of "mediagate-link-v1",
// the recording's ID, its tenant and expires, separated by NUL bytes. It
// opens that recording only, until expires, which is never past the
// recording's expires_at (expiry is enforced on every read anyway).

// linkKeyLabel separates the link key from other keys derived from the
// same secret (the receipt key signs receipts with itself).
const linkKeyLabel = "mediagate recording download links v1"

// linkSigLabel starts every signed link message.
const linkSigLabel = "mediagate-link-v1"

// deriveLinkKey returns the link key for secret: HMAC-SHA256(secret,
// linkKeyLabel), so that no link signature can ever be a receipt
// signature, and the secret itself never signs outside input.
func deriveLinkKey(secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(linkKeyLabel))
	return m.Sum(nil)
}

// signLink returns the signature of a link to recording id of tenant that
// expires at exp (Unix seconds).
func (rc *recordings) signLink(id recorder.ID, tenant recorder.Tenant, exp int64) []byte {
	m := hmac.New(sha256.New, rc.linkKey)
	m.Write([]byte(linkSigLabel + "\x00" + string(id) + "\x00" + string(tenant) + "\x00" + strconv.FormatInt(exp, 10)))
	return m.Sum(nil)
}

// linkPath returns the path and query of a signed link.
func (rc *recordings) linkPath(id recorder.ID, tenant recorder.Tenant, exp time.Time) string {
	q := url.Values{}
	q.Set("expires", strconv.FormatInt(exp.Unix(), 10))
	q.Set("sig", b64.EncodeToString(rc.signLink(id, tenant, exp.Unix())))
	return "/api/v1/recordings/" + string(id) + "/download?" + q.Encode()
}

// checkLink verifies the link in r's query for recording id of tenant at
// now: ErrLinkInvalid for a bad or missing signature, ErrLinkExpired
// after its expiry. The signature is checked first, so an expired forgery
// is invalid, not expired.
func (rc *recordings) checkLink(r *http.Request, id recorder.ID, tenant recorder.Tenant, now time.Time) error {
	q := r.URL.Query()
	exp, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	if err != nil || len(q["expires"]) != 1 || len(q["sig"]) != 1 {
		return fmt.Errorf("%w: malformed", ErrLinkInvalid)
	}
	sig, err := b64.DecodeString(q.Get("sig"))
	if err != nil || !hmac.Equal(sig, rc.signLink(id, tenant, exp)) {
		return fmt.Errorf("%w: signature", ErrLinkInvalid)
	}
	if !now.Before(time.Unix(exp, 0)) {
		return fmt.Errorf("%w at %s", ErrLinkExpired, time.Unix(exp, 0).UTC().Format(time.RFC3339))
	}
	return nil
}

// isLinkRequest reports whether r carries a signed link rather than (or
// besides) an API key: the link then decides.
func isLinkRequest(r *http.Request) bool {
	q := r.URL.Query()
	return q.Has("sig") || q.Has("expires")
}
