package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/bridge"
	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/rtc/rtctest"
)

// TestClusterJoinsFromAnyNode: three nodes and one redis-server. A pion
// participant joins room demo through node b, which then hosts it. A
// WHIP request for demo on node c is answered 307 with b's URL, and a
// client that follows it joins the room on b. A phone answered on node a
// keys conference number and PIN and is linked to the room on b: the
// pion participant hears the phone's tone and the phone the room's, and
// the phone hears the recording notice when b starts recording the room.
func TestClusterJoinsFromAnyNode(t *testing.T) {
	t.Parallel()
	c := startTestCluster(t, binary, "a", "b", "c")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	bot := c.joinBot(ctx, t, "b")
	c.nodes["b"].logs.await(t, 5*time.Second, "room lease acquired", "room="+demoRoom)

	// Every node lists the three live nodes, with their public URLs.
	code, body := c.admin(t, "a").do(http.MethodGet, "/api/v1/nodes", "")
	require.Equal(t, http.StatusOK, code, "%s", body)
	var listed struct {
		Self  string `json:"self"`
		Nodes []struct {
			ID      string `json:"id"`
			HTTPURL string `json:"http_url"`
			SIPAddr string `json:"sip_addr"`
		} `json:"nodes"`
	}
	require.NoError(t, json.Unmarshal(body, &listed))
	require.Equal(t, "a", listed.Self)
	require.Len(t, listed.Nodes, 3, "%s", body)
	for _, n := range listed.Nodes {
		require.Equal(t, c.nodes[n.ID].base, n.HTTPURL)
		require.Equal(t, c.nodes[n.ID].sip.String(), n.SIPAddr)
	}

	// The join page on c redirects to b's, path and query kept.
	resp, err := noRedirect.Get(c.nodes["c"].base + "/r/" + demoRoom + "?lang=de")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode)
	require.Equal(t, c.nodes["b"].base+"/r/"+demoRoom+"?lang=de", resp.Header.Get("Location"))

	// A participant whose WHIP request arrives at c is redirected (307)
	// and ends up in b's room.
	second := c.joinBot(ctx, t, "c")
	require.True(t, strings.HasPrefix(second.Location(), c.nodes["b"].base+"/whip/"+demoRoom+"/"),
		"session resource %q", second.Location())
	require.NoError(t, second.Close())

	call := c.dialDemo(ctx, t, "a")
	c.nodes["a"].logs.await(t, 5*time.Second, "call linked to the room's node", "node=b")
	level, margin, worst := hearsTone(ctx, t, bot, phoneToneHz)
	t.Logf("pion participant on b hears the phone on a: %d Hz at %.1f dB, %.1f dB above %.0f Hz", phoneToneHz, level, margin, worst)
	level, margin, worst = phoneHearsTone(ctx, t, call, toneHz)
	t.Logf("phone on a hears the room on b: %d Hz at %.1f dB, %.1f dB above %.0f Hz", toneHz, level, margin, worst)

	// Recording the room on b: the caller on a hears the notice.
	require.Empty(t, c.nodes["a"].logs.grep("play(recording_notice"))
	c.admin(t, "b").manifest(http.MethodPost, "/api/v1/rooms/"+demoRoom+"/recording/start", "", http.StatusCreated)
	c.nodes["a"].logs.await(t, 10*time.Second, "play(recording_notice")
	require.NoError(t, call.Err())
}

// TestClusterOwnerKilled: the room's node b is killed (SIGKILL) while a
// phone answered on node a is linked to it. The room's lease expires, and
// a's link finds the room's new host on its own: a pion participant that
// rejoins through node c lands in the same room as the phone, and the
// phone, still in its call, hears a short notice while its link is
// redialled and the participant again within 10 s of the kill.
func TestClusterOwnerKilled(t *testing.T) {
	t.Parallel()
	c := startTestCluster(t, binary, "a", "b", "c")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	bot := c.joinBot(ctx, t, "b")
	call := c.dialDemo(ctx, t, "a")
	c.nodes["a"].logs.await(t, 5*time.Second, "call linked to the room's node", "node=b")
	phoneHearsTone(ctx, t, call, toneHz)

	heard := call.Received()
	killed := time.Now()
	require.NoError(t, c.nodes["b"].cmd.Process.Kill())
	<-c.nodes["b"].done
	require.NoError(t, bot.Close())
	// The participant comes back through c, as soon as some node will
	// take the room: until b's lease and heartbeat have expired, c
	// answers 503 or redirects to b, which refuses the connection.
	again := c.rejoin(ctx, t, "c")
	level, margin, _ := phoneHearsTone(ctx, t, call, toneHz)
	took := time.Since(killed)
	t.Logf("phone on a hears the room again %v after b was killed (%.1f dB, %.1f dB margin)", took.Round(time.Millisecond), level, margin)
	require.Less(t, took, 10*time.Second, "node a's log:\n%s\nnode c's log:\n%s", c.nodes["a"].logs.text(), c.nodes["c"].logs.text())
	require.NoError(t, call.Err())
	c.nodes["a"].logs.await(t, time.Second, "room link re-established")
	hearsTone(ctx, t, again, phoneToneHz)

	// While its link was redialled, the caller heard the notice.
	prompts, err := bridge.Load("")
	require.NoError(t, err)
	notice := prompts.Prompt(bridge.English, bridge.PromptJoining)
	require.Equal(t, call.Rate(), notice.Rate)
	at, corr := findPrompt(call.PCM(heard, call.Received()), notice.PCM)
	t.Logf("the phone heard the notice %.2f s after the kill, correlation %.3f", float64(at)/float64(call.Rate()), corr)
	require.GreaterOrEqual(t, corr, 0.8, "no notice while the link was redialled")
}

// TestClusterPausedOwner: node b hosts room demo, records it and streams
// it to nginx-rtmp when it is paused (SIGSTOP) past its lease. Node c
// takes the room over at the next join and records and streams it itself.
// When b resumes (SIGCONT) it finds its lease taken, gives the room up and
// writes nothing with its stale epoch: its recording's manifest stays as
// it was when b stopped, it starts no second recording, its stream ends
// without a second publish, and c's recording is the only one of the room
// in progress.
func TestClusterPausedOwner(t *testing.T) {
	t.Parallel()
	ingest := startRTMPIngest(t)
	c := startTestCluster(t, binary)
	c.env = append(c.env, "MEDIAGATE_STREAM_ALLOW_PRIVATE=true")
	c.start(t, "b")
	c.start(t, "c")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	bot := c.joinBot(ctx, t, "b")
	waitFrames(ctx, t, bot, 10)
	onB := c.admin(t, "b").manifest(http.MethodPost, "/api/v1/rooms/"+demoRoom+"/recording/start", "", http.StatusCreated)
	ingestURL := fmt.Sprintf("rtmp://127.0.0.1:%d/live", ingest.port)
	streamTo := func(node, key string) {
		code, body := c.admin(t, node).do(http.MethodPost, "/api/v1/rooms/"+demoRoom+"/egresses",
			`{"destinations": [{"id": "nginx", "url": "`+ingestURL+`", "key": "`+key+`"}]}`)
		require.Equal(t, http.StatusCreated, code, "%s", body)
		c.nodes[node].logs.await(t, 10*time.Second, "state=live")
	}
	streamTo("b", "from-b")
	waitFrames(ctx, t, bot, bot.Received()+50)

	b := c.nodes["b"]
	require.NoError(t, b.cmd.Process.Signal(syscall.SIGSTOP))
	t.Cleanup(func() { _ = b.cmd.Process.Signal(syscall.SIGCONT) })
	manifestB := filepath.Join(c.dirs["b"], "data", "recordings", string(onB.ID)+".json")
	frozen, err := os.ReadFile(manifestB)
	require.NoError(t, err)

	// A participant arriving at c gets the room once b's lease expired.
	again := c.rejoin(ctx, t, "c")
	c.nodes["c"].logs.await(t, 5*time.Second, "room lease acquired", "room="+demoRoom)
	onC := c.admin(t, "c").manifest(http.MethodPost, "/api/v1/rooms/"+demoRoom+"/recording/start", "", http.StatusCreated)
	require.NotEqual(t, onB.ID, onC.ID)

	streamTo("c", "from-c")

	require.NoError(t, b.cmd.Process.Signal(syscall.SIGCONT))
	b.logs.await(t, 10*time.Second, "giving up the room", "room="+demoRoom)
	b.logs.await(t, 10*time.Second, "recording", "stale")
	b.logs.await(t, 10*time.Second, "room stream ended", "room="+demoRoom)
	after, err := os.ReadFile(manifestB)
	require.NoError(t, err)
	require.Equal(t, string(frozen), string(after), "b rewrote its manifest with a stale epoch")
	manifests, err := filepath.Glob(filepath.Join(c.dirs["b"], "data", "recordings", "*.json"))
	require.NoError(t, err)
	require.Len(t, manifests, 1, "b started a second recording")

	m := c.admin(t, "c").manifest(http.MethodGet, "/api/v1/recordings/"+string(onC.ID), "", http.StatusOK)
	require.Equal(t, "recording", string(m.State))
	_ = bot.Close()
	_ = again.Close()
	code, body := c.admin(t, "c").do(http.MethodDelete, "/api/v1/rooms/"+demoRoom+"/egresses", "")
	require.Equal(t, http.StatusNoContent, code, "%s", body)
	ingest.stop()
	for key, want := range map[string]int{"from-b": 1, "from-c": 1} {
		files, err := filepath.Glob(filepath.Join(ingest.rec, key+"*.flv"))
		require.NoError(t, err)
		require.Len(t, files, want, "publishes of %s", key)
	}
	require.Empty(t, b.logs.grep("from-b"), "the stream key is in b's log")
}

// TestClusterRedisOutage: redis-server is killed for 20 s while a phone
// on node a is linked to room demo on node b. The call keeps its audio
// both ways, a room not yet open is refused (503), and once Redis is back
// (empty: it keeps nothing on disk) b re-asserts its lease, new rooms open
// again and nobody crashed.
func TestClusterRedisOutage(t *testing.T) {
	t.Parallel()
	c := startTestCluster(t, binary, "a", "b")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	bot := c.joinBot(ctx, t, "b")
	call := c.dialDemo(ctx, t, "a")
	phoneHearsTone(ctx, t, call, toneHz)

	before := map[string]int{}
	for name, n := range c.nodes {
		before[name] = goroutines(t, n.base)
	}
	c.redis.Kill(t)
	down := time.Now()
	token := c.admin(t, "a").token("other")
	_, err := rtctest.Join(ctx, t, c.nodes["a"].base, "other", token, rtctest.Options{})
	var he *rtctest.HTTPError
	require.ErrorAs(t, err, &he)
	require.Equal(t, http.StatusServiceUnavailable, he.Status)
	for time.Since(down) < 20*time.Second {
		phoneHearsTone(ctx, t, call, toneHz)
		hearsTone(ctx, t, bot, phoneToneHz)
	}
	c.redis.Restart(t)
	c.nodes["b"].logs.await(t, 10*time.Second, "room lease re-asserted", "room="+demoRoom)

	for {
		other, err := rtctest.Join(ctx, t, c.nodes["a"].base, "other", token, rtctest.Options{})
		if err == nil {
			require.NoError(t, other.Close())
			break
		}
		require.ErrorAs(t, err, &he)
		require.Equal(t, http.StatusServiceUnavailable, he.Status)
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	phoneHearsTone(ctx, t, call, toneHz)
	require.NoError(t, call.Err())
	for name, n := range c.nodes {
		select {
		case <-n.done:
			t.Fatalf("node %s exited: %v", name, n.cmd.ProcessState)
		default:
		}
		// The same calls and sessions as before the outage: what the
		// outage started (retries, timers) must have ended.
		after := goroutines(t, n.base)
		t.Logf("node %s: %d goroutines before the outage, %d after", name, before[name], after)
		require.LessOrEqual(t, after, before[name]+25, "node %s grew goroutines through the outage", name)
	}
}

// goroutines reads go_goroutines from the node's /metrics.
func goroutines(t *testing.T, base string) int {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, err := strconv.Atoi(v)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatal("no go_goroutines in /metrics")
	return 0
}

// rejoin joins room demo through node name as a pion participant sending
// toneHz, trying again while the room's dead or paused owner still holds
// it: until its lease and heartbeat have expired, name answers 503 or
// redirects to the owner, which refuses the connection (dead) or does not
// answer (paused).
func (c *testCluster) rejoin(ctx context.Context, tb testing.TB, name string) *rtctest.Client {
	tb.Helper()
	base := c.nodes[name].base
	for {
		token, err := rtctest.PageToken(ctx, base, demoRoom, "Tone Bot again", demoPIN)
		require.NoError(tb, err)
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		bot, err := rtctest.Join(actx, tb, base, demoRoom, token, rtctest.Options{Tone: toneHz})
		cancel()
		if err == nil {
			return bot
		}
		var he *rtctest.HTTPError
		switch {
		case errors.As(err, &he):
			require.Equal(tb, http.StatusServiceUnavailable, he.Status, "%v", err)
		case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, context.DeadlineExceeded):
		default:
			tb.Fatalf("joining through %s: %v", name, err)
		}
		select {
		case <-ctx.Done():
			tb.Fatal(ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// TestClusterRecordingsAnyNode: a recording made and held by node b is
// listed by node c's admin API (with its node), its manifest is read and
// its audio downloaded through c (the same bytes as on b's disk), and a
// legal hold set through c lands in b's manifest; b writes the receipt of
// a deletion asked of c.
func TestClusterRecordingsAnyNode(t *testing.T) {
	t.Parallel()
	c := startTestCluster(t, binary, "b", "c")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bot := c.joinBot(ctx, t, "b")
	waitFrames(ctx, t, bot, 10)
	onB := c.admin(t, "b")
	m := makeRecording(ctx, t, onB, bot, demoRoom, 50)
	onDisk := sha256File(t, filepath.Join(c.dirs["b"], "data", "recordings", string(m.ID)+".opus"))

	viaC := c.admin(t, "c")
	var listed struct {
		Recordings []struct {
			ID   string `json:"id"`
			Node string `json:"node"`
		} `json:"recordings"`
	}
	for deadline := time.Now().Add(15 * time.Second); ; {
		code, body := viaC.do(http.MethodGet, "/api/v1/recordings", "")
		require.Equal(t, http.StatusOK, code, "%s", body)
		require.NoError(t, json.Unmarshal(body, &listed))
		if len(listed.Recordings) == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond) // the index is filled at b's pace
	}
	require.Len(t, listed.Recordings, 1, "c lists b's recording")
	require.Equal(t, string(m.ID), listed.Recordings[0].ID)
	require.Equal(t, "b", listed.Recordings[0].Node)

	got := viaC.manifest(http.MethodGet, "/api/v1/recordings/"+string(m.ID), "", http.StatusOK)
	require.Equal(t, m.SHA256, got.SHA256)
	_, sum := viaC.download(m.ID, t.TempDir())
	require.Equal(t, onDisk, sum, "the download through c is b's file")

	held := viaC.manifest(http.MethodPost, "/api/v1/recordings/"+string(m.ID)+"/hold", `{"reason": "court order 17"}`, http.StatusOK)
	require.NotNil(t, held.LegalHold)
	onBNow := onB.manifest(http.MethodGet, "/api/v1/recordings/"+string(m.ID), "", http.StatusOK)
	require.NotNil(t, onBNow.LegalHold, "the hold is in b's manifest")
	viaC.manifest(http.MethodDelete, "/api/v1/recordings/"+string(m.ID)+"/hold", "", http.StatusOK)
	deleted := viaC.manifest(http.MethodDelete, "/api/v1/recordings/"+string(m.ID), `{"reason": "admin"}`, http.StatusOK)
	require.Equal(t, "deleted", string(deleted.State))
	_, err := os.Stat(filepath.Join(c.dirs["b"], "data", "recordings", string(m.ID)+".opus"))
	require.ErrorIs(t, err, os.ErrNotExist, "b deleted the audio")
	code, body := onB.do(http.MethodGet, "/api/v1/receipts", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), string(m.ID), "b wrote the receipt")
	require.NoError(t, bot.Close())
}

// TestClusterDrainHandover: node b hosts room demo, with a phone answered
// on node a linked to it, and is stopped with SIGTERM. It refuses new
// work at once (readiness 503), gives its sessions the drain timeout, then
// closes the room and releases the lease: node a takes the room over at
// once (well before the lease could have expired), the phone's link moves
// there, and a participant joining again is heard by the phone.
func TestClusterDrainHandover(t *testing.T) {
	t.Parallel()
	c := startTestCluster(t, binary, "a")
	b := c.start(t, "b", "MEDIAGATE_NODE_DRAIN_TIMEOUT=1s")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bot := c.joinBot(ctx, t, "b")
	call := c.dialDemo(ctx, t, "a")
	c.nodes["a"].logs.await(t, 5*time.Second, "call linked to the room's node", "node=b")
	phoneHearsTone(ctx, t, call, toneHz)

	require.NoError(t, b.cmd.Process.Signal(syscall.SIGTERM))
	termed := time.Now()
	b.logs.await(t, 5*time.Second, "terminating; draining")
	resp, err := http.Get(b.base + "/readyz")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "a draining node is not ready")
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		t.Fatal("b did not stop after its drain timeout")
	}
	// Released, the lease moves at once; kept, it would expire up to
	// 5 s after b's last renewal, which b sends until it stops.
	c.nodes["a"].logs.await(t, 3*time.Second, "room lease acquired", "room="+demoRoom)
	t.Logf("a took the room over %v after SIGTERM to b (drain timeout 1 s, lease TTL 5 s)",
		time.Since(termed).Round(time.Millisecond))
	c.nodes["a"].logs.await(t, 5*time.Second, "room link re-established")
	_ = bot.Close()

	again := c.rejoin(ctx, t, "a")
	phoneHearsTone(ctx, t, call, toneHz)
	hearsTone(ctx, t, again, phoneToneHz)
	require.NoError(t, call.Err())
	require.NoError(t, again.Close())
}

// TestClusterBaresip: baresip, a real softphone, calls node a, keys
// conference number and PIN and is linked to room demo on node b: the
// pion participant on b hears baresip's 1 kHz tone, and what baresip
// heard before it hung up holds the room's tone.
func TestClusterBaresip(t *testing.T) {
	t.Parallel()
	c := startTestCluster(t, binary, "a", "b")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	bot := c.joinBot(ctx, t, "b")
	a := c.nodes["a"]

	tone := mediatest.Sine(phoneToneHz, 0.3, media.Rate8k, 60*media.Rate8k)
	phone := startBaresip(t, baresipOptions{codecs: "PCMU",
		source: writeTempWAV(t, "tone8k.wav", tone, media.Rate8k), rate: media.Rate8k})
	phone.dial(t, a.sip, dialedURI)
	a.logs.await(t, 10*time.Second, "play(enter_number")
	phone.do(t, "sndcode", dialNumber+"#")
	a.logs.await(t, 10*time.Second, "play(enter_pin")
	phone.do(t, "sndcode", demoPIN+"#")
	a.logs.await(t, 10*time.Second, "session: joined", "room="+demoRoom)
	a.logs.await(t, 5*time.Second, "call linked to the room's node", "node=b")

	level, margin, worst := hearsTone(ctx, t, bot, phoneToneHz)
	t.Logf("pion participant on b hears baresip on a: %d Hz at %.1f dB, %.1f dB above %.0f Hz", phoneToneHz, level, margin, worst)
	waitFrames(ctx, t, bot, bot.Received()+150) // 3 s of the room for baresip
	phone.do(t, "hangup", "")
	phone.await(t, "CALL_CLOSED", 5*time.Second)
	rec, rate := phone.stop(t)
	require.Equal(t, media.Rate8k, rate)
	last := rec[max(len(rec)-5*rate/2, 0) : len(rec)-rate/2]
	level, margin, worst = toneMargin(last, toneHz, rate)
	t.Logf("baresip on a heard the room on b: %d Hz at %.1f dB, %.1f dB above %.0f Hz", toneHz, level, margin, worst)
	require.GreaterOrEqual(t, margin, float64(toneMarginDB), "the room's tone is not what baresip heard: %s", toneTimeline(rec, toneHz, rate))
	require.NoError(t, bot.Close())
}

// TestClusterKeys: an API key made through node b's admin API works on
// node c within the key sync interval, and revoked through c it stops
// working on b within it too.
func TestClusterKeys(t *testing.T) {
	t.Parallel()
	c := startTestCluster(t, binary, "b", "c")
	code, body := c.admin(t, "b").do(http.MethodPost, "/api/v1/keys", `{"name": "wall", "role": "viewer", "tenant": "default"}`)
	require.Equal(t, http.StatusCreated, code, "%s", body)
	var k keyInfo
	require.NoError(t, json.Unmarshal(body, &k))
	status := func(node string) int {
		code, _ := apiClient{t: t, base: c.nodes[node].base, key: k.Key}.do(http.MethodGet, "/api/v1/rooms", "")
		return code
	}
	// awaitStatus polls (the nodes merge keys every 2 s) for want.
	awaitStatus := func(node string, want int) time.Duration {
		start := time.Now()
		for status(node) != want {
			require.Less(t, time.Since(start), 10*time.Second, "node %s never answered %d", node, want)
			time.Sleep(100 * time.Millisecond)
		}
		return time.Since(start)
	}
	require.Equal(t, http.StatusOK, status("b"))
	t.Logf("the key made on b works on c after %v", awaitStatus("c", http.StatusOK).Round(time.Millisecond))

	code, body = c.admin(t, "c").do(http.MethodDelete, "/api/v1/keys/"+k.ID, "")
	require.Equal(t, http.StatusNoContent, code, "%s", body)
	require.Equal(t, http.StatusUnauthorized, status("c"))
	t.Logf("revoked on c, refused on b after %v", awaitStatus("b", http.StatusUnauthorized).Round(time.Millisecond))
}
