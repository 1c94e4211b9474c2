package configs

import (
	"cmp"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Webhook is an HTTP endpoint that receives the node's events (webhooks,
// keyed by a name like a room ID that labels its metrics and logs): each
// event is POSTed as JSON, signed with Secret (HMAC-SHA256 over the
// timestamp and the body, docs/webhooks.md). Every field but URL and
// Secret has a usable zero value.
type Webhook struct {
	// URL is the absolute http:// or https:// URL events are POSTed to.
	// Credentials in it (user:password@) are secrets: never logged,
	// blanked by Redacted.
	URL string `yaml:"url"`
	// Secret is the HMAC-SHA256 key the events are signed with, at least
	// MinWebhookSecretLen bytes. A secret: never logged, blanked by
	// Redacted.
	Secret string `yaml:"secret"`
	// Events are the event types sent (WebhookEvents); empty means all.
	Events []string `yaml:"events"`
	// Timeout bounds one delivery attempt; 0 means DefaultWebhookTimeout.
	Timeout time.Duration `yaml:"timeout"`
}

// WebhookEvents are the event types a webhook can receive, in the order
// docs/webhooks.md lists them (package api's WebhookEventTypes, which a
// test holds equal).
var WebhookEvents = []string{
	"room.started", "room.finished",
	"participant.joined", "participant.left",
	"call.started", "call.ended",
	"recording.started", "recording.ended", "recording.expiring", "recording.deleted",
	"egress.started", "egress.updated", "egress.ended",
}

// Limits of the webhooks section, enforced by Validate.
const (
	// MinWebhookSecretLen is the shortest accepted webhook secret: 128
	// bits, if random.
	MinWebhookSecretLen = 16
	// maxWebhookSecretLen bounds a secret, which also travels in env.
	maxWebhookSecretLen = 256
	// DefaultWebhookTimeout bounds a delivery attempt when timeout is 0.
	DefaultWebhookTimeout = 10 * time.Second
	// maxWebhookTimeout: a receiver should answer at once and do its work
	// later; a longer attempt only holds the endpoint's queue back.
	maxWebhookTimeout = time.Minute
	// maxWebhooks bounds the endpoints: each has a queue and a worker.
	maxWebhooks = 20
)

// webhooks checks the webhooks section in the order the operator wrote
// it. Messages never show a secret or a URL's credentials.
func (v *validator) webhooks(hooks map[string]Webhook) {
	names := slices.SortedFunc(maps.Keys(hooks), func(a, b string) int {
		return cmp.Or(cmp.Compare(v.origins["webhooks."+a].line, v.origins["webhooks."+b].line), cmp.Compare(a, b))
	})
	if len(names) > maxWebhooks {
		v.fail("webhooks", "has %d endpoints, at most %d are allowed", len(names), maxWebhooks)
	}
	for _, name := range names {
		h, key := hooks[name], "webhooks."+name
		if !ValidRoomID(name) {
			v.fail(key, "webhook name %q must be 1 to %d characters from a-z 0-9 _ -, starting with a letter or digit", name, MaxRoomIDLen)
		}
		if h.URL == "" {
			v.fail(key, "needs a url (an absolute http:// or https:// URL)")
		} else if msg := checkWebhookURL(h.URL); msg != "" {
			v.fail(key+".url", "%s", msg)
		}
		switch n := len(h.Secret); {
		case n == 0:
			v.fail(key, "needs a secret of at least %d bytes (e.g. `openssl rand -hex 32`)", MinWebhookSecretLen)
		case n < MinWebhookSecretLen || n > maxWebhookSecretLen:
			v.fail(key+".secret", "must be %d to %d bytes, got %d", MinWebhookSecretLen, maxWebhookSecretLen, n)
		case !printable(h.Secret):
			v.fail(key+".secret", "must be printable characters")
		}
		seen := map[string]bool{}
		for i, ev := range h.Events {
			k := fmt.Sprintf("%s.events[%d]", key, i)
			switch {
			case !slices.Contains(WebhookEvents, ev):
				v.fail(k, "%q is not an event; known: %s", truncate(ev, 40), strings.Join(WebhookEvents, ", "))
			case seen[ev]:
				v.fail(k, "%q is listed twice", ev)
			}
			seen[ev] = true
		}
		if d := h.Timeout; d != 0 && (d < time.Second || d > maxWebhookTimeout) {
			v.fail(key+".timeout", "%s out of range 1s..1m (or 0s for %s)", d, DefaultWebhookTimeout)
		}
	}
}

// checkWebhookURL returns what is wrong with a webhook URL, or "". The
// URL is not echoed: it may hold credentials.
func checkWebhookURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "is not a URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return "must be an absolute http:// or https:// URL"
	case u.Host == "" || u.Hostname() == "":
		return "has no host"
	case u.Fragment != "":
		return "must not have a #fragment"
	}
	return ""
}

// truncate cuts s to n bytes for messages about bad input.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// TimeoutOrDefault is Timeout, or DefaultWebhookTimeout when it is 0.
func (h Webhook) TimeoutOrDefault() time.Duration {
	if h.Timeout == 0 {
		return DefaultWebhookTimeout
	}
	return h.Timeout
}

// RedactedURL is URL with the password of its credentials replaced, for
// showing; "" stays "", and a URL that does not parse becomes
// "<redacted>".
func (h Webhook) RedactedURL() string {
	if h.URL == "" {
		return ""
	}
	u, err := url.Parse(h.URL)
	if err != nil {
		return redactedValue
	}
	return u.Redacted()
}

// redactWebhooks returns a copy of hooks with secrets and URL passwords
// replaced.
func redactWebhooks(hooks map[string]Webhook) map[string]Webhook {
	if hooks == nil {
		return nil
	}
	out := make(map[string]Webhook, len(hooks))
	for name, h := range hooks {
		h.Secret = redact(h.Secret)
		h.URL = h.RedactedURL()
		out[name] = h
	}
	return out
}

// String keeps the secret and the URL's password out of fmt's %v and %+v.
func (h Webhook) String() string {
	return fmt.Sprintf("{url:%q secret:%q events:%q timeout:%s}", h.RedactedURL(), redact(h.Secret), h.Events, h.Timeout)
}
