package main

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/internal/redistest"
	"github.com/mediagate/mediagate/rtc/rtctest"
	"github.com/mediagate/mediagate/sip/siptest"
)

// TestNoSecretsInLogs (decision 8, issue [7]): a node in a cluster (Redis
// with a password) logging at debug level takes a browser through the
// join page with the room's PIN, a phone call that keys a wrong PIN and
// then the right one, a recording (started, stopped, downloaded), an
// egress to nginx-rtmp with a stream key and an admin request with a
// wrong API key; then it stops. No log line, and no answer to the wrong
// key, holds any of the secrets it was given or saw: the PINs, the admin
// key, the join-token secret, a join token, the Redis password, the
// receipt key, the stream key, the webhook secret and the password in the
// webhook's URL, or the caller's full number. Nor does any webhook event
// the node sent meanwhile.
func TestNoSecretsInLogs(t *testing.T) {
	t.Parallel()
	const (
		pin        = "73190482"
		wrongPIN   = "55501937"
		number     = "2207"
		caller     = "+4930555012345"
		tokenKey   = "tok-secret-Zq8v3m1xLk0pWn6yRb4tHs2uJd7fGc5e"
		redisPass  = "redis-pw-Kd93nXv0qLz"
		receiptKey = "receipt-key-Vb7mQ2xN9sLp4tR8wY1zC6kJ3hF5gD0a"
		streamKey  = "sk-live-7f3a9c2e1b"
		badAPIKey  = "mg_wrongkey_Xc81Lm0Qs7Tp"
		hookPass   = "hook-pw-Rt5sW2qN8v"
	)
	redis := redistest.Start(t, "--requirepass", redisPass)
	ingest := startRTMPIngest(t)
	adminKey, keyEnv := newAdminKey()
	hookURL, hooks := startHookReceiver(t)
	hookURL = strings.Replace(hookURL, "http://", "http://hook:"+hookPass+"@", 1)
	dir := t.TempDir()
	yaml := fmt.Sprintf("node:\n  id: p1\nlog:\n  level: debug\nredis:\n  addr: %q\nstream:\n  allow_private: true\n"+
		"rooms:\n  vault:\n    pin: %q\n    number: %q\n", redis.Addr, pin, number)
	path := filepath.Join(dir, "mediagate.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o644))
	g := startGatewayIn(t, dir, []string{"serve", "--config", path}, keyEnv,
		"MEDIAGATE_AUTH_TOKEN_SECRET="+tokenKey, "MEDIAGATE_REDIS_PASSWORD="+redisPass,
		"MEDIAGATE_RECORDING_RECEIPT_KEY="+receiptKey,
		fmt.Sprintf(`MEDIAGATE_WEBHOOKS={"platform": {"url": %q, "secret": %q}}`, hookURL, webhookTestSecret))
	logs := watchLogs(g)
	m := regexp.MustCompile(`sip_port=(\d+)`).FindStringSubmatch(g.ready)
	require.NotNil(t, m)
	port, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	token, err := rtctest.PageToken(ctx, g.base, "vault", "Ada", pin)
	require.NoError(t, err)
	bot, err := rtctest.Join(ctx, t, g.base, "vault", token, rtctest.Options{Tone: toneHz})
	require.NoError(t, err)

	call, err := siptest.NewPhone(t).Dial(ctx, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)),
		siptest.Options{Codec: siptest.PCMU, TelephoneEvent: true, User: dialedURI, From: caller})
	require.NoError(t, err)
	call.PlayTone(phoneToneHz, 0.3)
	require.NoError(t, call.Press(ctx, number+"#", siptest.RFC4733))
	logs.await(t, 10*time.Second, "lookup("+number+")")
	require.NoError(t, call.Press(ctx, wrongPIN+"#", siptest.RFC4733))
	logs.await(t, 10*time.Second, "play(wrong_pin")
	require.NoError(t, call.Press(ctx, pin+"#", siptest.RFC4733))
	logs.await(t, 10*time.Second, "session: joined", "room=vault")
	hearsTone(ctx, t, bot, phoneToneHz)

	admin := apiClient{t: t, base: g.base, key: adminKey}
	rec := makeRecording(ctx, t, admin, bot, "vault", 50)
	admin.download(rec.ID, t.TempDir())
	code, body := admin.do(http.MethodPost, "/api/v1/rooms/vault/egresses",
		`{"destinations": [{"id": "nginx", "url": "rtmp://127.0.0.1:`+strconv.Itoa(ingest.port)+`/live", "key": "`+streamKey+`"}]}`)
	require.Equal(t, http.StatusCreated, code, "%s", body)
	logs.await(t, 10*time.Second, "state=live")
	code, body = apiClient{t: t, base: g.base, key: badAPIKey}.do(http.MethodGet, "/api/v1/rooms", "")
	require.Equal(t, http.StatusUnauthorized, code)
	require.NotContains(t, string(body), badAPIKey)

	require.NoError(t, call.Err())
	require.NoError(t, bot.Close())
	require.NoError(t, g.cmd.Process.Signal(syscall.SIGINT)) // stop now, the call with it
	require.Equal(t, exitOK, g.wait(t))

	text := logs.text()
	require.NotEmpty(t, text)
	var sent []string // every webhook body
	for len(hooks) > 0 {
		sent = append(sent, string((<-hooks).raw))
	}
	require.NotEmpty(t, sent, "the webhook got events")
	for name, secret := range map[string]string{
		"the room's PIN": pin, "a wrong PIN": wrongPIN, "the admin key": adminKey, "the token secret": tokenKey,
		"a join token": token, "the Redis password": redisPass, "the receipt key": receiptKey,
		"the stream key": streamKey, "a wrong API key": badAPIKey,
		"the caller's number": strings.TrimPrefix(caller, "+"),
		"the webhook secret":  webhookTestSecret, "the webhook URL's password": hookPass,
	} {
		for _, line := range strings.Split(text, "\n") {
			require.NotContains(t, line, secret, "%s is in a log line", name)
		}
		for _, body := range sent {
			require.NotContains(t, body, secret, "%s is in a webhook event", name)
		}
	}
	t.Logf("%d log lines, none with a secret", strings.Count(text, "\n"))
}
