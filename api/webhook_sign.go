package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Headers of a webhook request.
const (
	// WebhookSignatureHeader carries "t=<unix seconds>,v1=<hex>": the
	// time of the attempt and HMAC-SHA256(secret, "<t>.<body>") in lower-
	// case hex. A receiver recomputes the MAC over the raw body
	// (VerifyWebhook) and refuses a t too far from its clock, so a
	// captured request cannot be replayed later.
	WebhookSignatureHeader = "Mediagate-Signature"
	// WebhookIDHeader carries the event's ID (the same on every retry).
	WebhookIDHeader = "Mediagate-Event-Id"
	// WebhookTypeHeader carries the event's type.
	WebhookTypeHeader = "Mediagate-Event"
	// WebhookAttemptHeader carries the attempt number, 1 for the first.
	WebhookAttemptHeader = "Mediagate-Delivery-Attempt"
)

// DefaultWebhookTolerance is how far a signature's timestamp may be from
// the receiver's clock in VerifyWebhook's examples and tests.
const DefaultWebhookTolerance = 5 * time.Minute

// SignWebhook returns the Mediagate-Signature value for body sent at t.
func SignWebhook(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + webhookMAC(secret, ts, body)
}

// webhookMAC is hex(HMAC-SHA256(secret, ts + "." + body)).
func webhookMAC(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// VerifyWebhook checks a webhook request as its receiver should: header is
// the Mediagate-Signature value, body the raw request body, now the
// receiver's clock. It returns nil when one of the header's v1 signatures
// (more than one may come while secrets rotate) is the HMAC of the body
// under secret and its timestamp lies within tolerance of now (either
// way); ErrWebhookSignatureMalformed, ErrWebhookTimestamp (a replay of
// an old request, or a clock far off) or ErrWebhookSignature otherwise.
// Receivers should also drop event IDs they have seen.
func VerifyWebhook(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs []string
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		switch {
		case !ok:
			return fmt.Errorf("%w: %q is not key=value", ErrWebhookSignatureMalformed, truncate(part, 40))
		case k == "t":
			ts = v
		case k == "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: no t=<unix seconds>", ErrWebhookSignatureMalformed)
	}
	if len(sigs) == 0 {
		return fmt.Errorf("%w: no v1 signature", ErrWebhookSignatureMalformed)
	}
	if age := now.Sub(time.Unix(sec, 0)); age > tolerance || age < -tolerance {
		return fmt.Errorf("%w: signed %s from now, tolerance %s", ErrWebhookTimestamp, age.Round(time.Second), tolerance)
	}
	want := []byte(webhookMAC(secret, ts, body))
	for _, s := range sigs {
		if hmac.Equal(want, []byte(strings.ToLower(s))) {
			return nil
		}
	}
	return ErrWebhookSignature
}
