package configs

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWebhookSecretsRedacted: fmt and Redacted never show a webhook's
// secret or the password in its URL; the original is untouched.
func TestWebhookSecretsRedacted(t *testing.T) {
	c := Default()
	c.Webhooks = map[string]Webhook{"ops": {URL: "https://hook:pa55word@ops.example/h", Secret: "s3cret-s3cret-s3cret"}}
	require.NoError(t, c.Validate())
	r := c.Redacted()
	require.Equal(t, "<redacted>", r.Webhooks["ops"].Secret)
	require.Equal(t, "https://hook:xxxxx@ops.example/h", r.Webhooks["ops"].URL)
	require.Equal(t, "s3cret-s3cret-s3cret", c.Webhooks["ops"].Secret, "the original is untouched")
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%v", c.Webhooks["ops"])} {
		require.NotContains(t, s, "s3cret")
		require.NotContains(t, s, "pa55word")
	}
}

// TestWebhookDefaults: an entry with url and secret only sends every event
// with the default timeout.
func TestWebhookDefaults(t *testing.T) {
	h := Webhook{URL: "http://127.0.0.1:9/x", Secret: "0123456789abcdef"}
	c := Default()
	c.Webhooks = map[string]Webhook{"a": h}
	require.NoError(t, c.Validate())
	require.Equal(t, DefaultWebhookTimeout, h.TimeoutOrDefault())
	require.Empty(t, Default().Webhooks, "no webhooks by default")
}
