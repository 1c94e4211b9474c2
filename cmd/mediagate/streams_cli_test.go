package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/rtc/rtctest"
)

// rtmpIngest is nginx with the RTMP module standing in for a streaming
// platform: application "live" on 127.0.0.1:port, recorded into rec/.
type rtmpIngest struct {
	dir, rec string
	port     int
	cmd      *exec.Cmd
	exited   chan struct{}
}

const rtmpIngestConf = `load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off; master_process off; worker_processes 1;
pid {{.Dir}}/nginx.pid; error_log {{.Dir}}/error.log info;
events { worker_connections 64; }
rtmp { server { listen 127.0.0.1:{{.Port}}; chunk_size 4096;
  application live { live on; record all; record_path {{.Dir}}/rec; record_unique on; } } }
`

// startRTMPIngest starts nginx on a free port and stops it by PID at
// cleanup (or earlier with stop).
func startRTMPIngest(t *testing.T) *rtmpIngest {
	t.Helper()
	if _, err := os.Stat("/usr/lib/nginx/modules/ngx_rtmp_module.so"); err != nil {
		t.Fatal("nginx with the rtmp module not installed: run scripts/bootstrap")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	n := &rtmpIngest{dir: t.TempDir(), port: l.Addr().(*net.TCPAddr).Port, exited: make(chan struct{})}
	require.NoError(t, l.Close())
	n.rec = filepath.Join(n.dir, "rec")
	require.NoError(t, os.Mkdir(n.rec, 0o755))
	var conf bytes.Buffer
	require.NoError(t, template.Must(template.New("").Parse(rtmpIngestConf)).Execute(&conf, map[string]any{"Dir": n.dir, "Port": n.port}))
	require.NoError(t, os.WriteFile(filepath.Join(n.dir, "nginx.conf"), conf.Bytes(), 0o600))
	n.cmd = exec.Command("nginx", "-c", filepath.Join(n.dir, "nginx.conf"), "-p", n.dir+"/")
	require.NoError(t, n.cmd.Start())
	go func() { _ = n.cmd.Wait(); close(n.exited) }()
	t.Cleanup(n.stop)
	for i := 0; ; i++ { // nginx has no readiness signal: poll its port
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", n.port), time.Second)
		if err == nil {
			_ = c.Close()
			return n
		}
		select {
		case <-n.exited:
			log, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
			t.Fatalf("nginx exited at start:\n%s", log)
		case <-time.After(20 * time.Millisecond):
		}
		require.Less(t, i, 250, "nginx not listening after 5 s")
	}
}

// stop ends nginx by PID; SIGQUIT lets it finish its recordings.
func (n *rtmpIngest) stop() {
	select {
	case <-n.exited:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-n.exited:
	case <-time.After(5 * time.Second):
		_ = n.cmd.Process.Signal(syscall.SIGKILL)
		<-n.exited
	}
}

// awaitLogWithout is awaitLog that also fails on any line, read on the
// way, that holds secret.
func (n *gateway) awaitLogWithout(t *testing.T, secret string, timeout time.Duration, parts ...string) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-n.logs:
			if !ok {
				t.Fatalf("mediagate exited before logging %q", parts)
			}
			require.NotContains(t, line, secret, "a log line holds the stream key")
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return line
			}
		case <-deadline:
			t.Fatalf("no log line with %q within %v", parts, timeout)
		}
	}
}

// TestStreamsCLIToNginx: a pion participant speaks in a room; `mediagate
// streams start` (the key from an environment variable) streams the room
// to nginx-rtmp, `streams ls` shows it live without the key, `streams
// stop` ends it; nginx's recording is AAC audio with the H.264 slate. The
// key is in no log line and no output.
func TestStreamsCLIToNginx(t *testing.T) {
	const streamKey = "sk-cli-0123456789abcdef"
	ingest := startRTMPIngest(t)
	key, keyEnv := newAdminKey()
	g := startGateway(t, nil, recordedRoomEnv(t.TempDir(), keyEnv, "MEDIAGATE_STREAM_ALLOW_PRIVATE=true")...)
	env := []string{"MEDIAGATE_API_KEY=" + key, "MEDIAGATE_SERVER=" + g.base}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pion, err := rtctest.Join(ctx, t, g.base, "board", "", rtctest.Options{PCM: mediatest.Speech(t, media.Rate48k, 10)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pion.Close() })
	require.NoError(t, pion.WaitFrames(ctx, 25), "media flows")

	ingestURL := fmt.Sprintf("rtmp://127.0.0.1:%d/live", ingest.port)
	requireCLIErrors(t, []cliCase{
		{env, []string{"streams", "start", "board", "--url", ingestURL}, exitUsage, "never from the command line"},
		{env, []string{"streams", "start", "board", "--url", ingestURL, "--key-env", "NOPE"}, exitUsage, "NOPE (--key-env) is not set"},
		{env, []string{"streams", "start", "--url", ingestURL, "--key-env", "K"}, exitUsage, "takes one room"},
		{env, []string{"streams", "stop", "board"}, exitFailed, "404 room board: room is not streaming"},
		{env, []string{"streams", "ls", "board"}, exitFailed, "404"},
	})

	out, errOut, code := cli(t, append(env, "STREAM_KEY="+streamKey),
		"streams", "start", "board", "--url", ingestURL, "--key-env", "STREAM_KEY", "--name", "nginx", "--id", "ingest")
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "room board streams to ingest ("+ingestURL+")")
	g.awaitLogWithout(t, streamKey, 20*time.Second, "stream destination", "destination=ingest", "state=live")
	first := pion.Received()
	require.NoError(t, pion.WaitFrames(ctx, first+200), "4 s of the room go out")

	out, errOut, code = cli(t, env, "streams", "ls")
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "ROOM")
	require.Contains(t, out, "board")
	require.Contains(t, out, "ingest")
	require.Contains(t, out, ingestURL)
	require.Contains(t, out, "live")
	require.NotContains(t, out, streamKey)
	out, errOut, code = cli(t, env, "streams", "ls", "board", "--json")
	require.Equal(t, exitOK, code, errOut)
	var list []cliEgress
	require.NoError(t, json.Unmarshal([]byte(out), &list))
	require.Len(t, list, 1)
	require.Len(t, list[0].Destinations, 1)
	d := list[0].Destinations[0]
	require.Equal(t, "live", d.State)
	require.Positive(t, d.Bytes)
	require.Equal(t, "slate", list[0].Video)
	require.NotContains(t, out, streamKey)

	out, errOut, code = cli(t, env, "streams", "stop", "board")
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "room board stopped streaming")
	g.awaitLogWithout(t, streamKey, 20*time.Second, "room stream ended", "room=board")
	ingest.stop()

	files, err := filepath.Glob(filepath.Join(ingest.rec, streamKey+"*.flv"))
	require.NoError(t, err)
	require.Len(t, files, 1, "nginx recorded the stream under its key")
	probe, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name,sample_rate",
		"-show_entries", "format=duration", "-of", "json", files[0]).Output()
	require.NoError(t, err)
	var p struct {
		Streams []struct {
			CodecType  string `json:"codec_type"`
			CodecName  string `json:"codec_name"`
			SampleRate string `json:"sample_rate"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	require.NoError(t, json.Unmarshal(probe, &p))
	codecs := map[string]string{}
	for _, s := range p.Streams {
		codecs[s.CodecType] = s.CodecName
	}
	require.Equal(t, map[string]string{"audio": "aac", "video": "h264"}, codecs, "%s", probe)
	var dur float64
	_, err = fmt.Sscan(p.Format.Duration, &dur)
	require.NoError(t, err)
	require.Greater(t, dur, 3.0, "the recording holds the seconds streamed")
	t.Logf("nginx recorded %.1f s: %s", dur, probe)
}
