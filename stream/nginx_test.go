package stream

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/stretchr/testify/require"
)

// nginx is nginx with the RTMP module standing in for a streaming platform
// (TESTING.md): it accepts publishes on 127.0.0.1:port, application "live",
// and records everything to rec/.
type nginx struct {
	t       testing.TB
	dir     string
	rec     string
	port    int
	tlsPort int // an nginx stream{} TLS front proxying to port; 0: none
	cmd     *exec.Cmd
	exited  chan struct{}
}

// nginxOpts configure a test nginx.
type nginxOpts struct {
	// onPublish is an on_publish URL (nginx-rtmp notify): a non-2xx answer
	// refuses the stream.
	onPublish string
	// certPEM and keyPEM, when set, start a TLS front (stream { ssl
	// proxy_pass }) on tlsPort that logs the SNI it was sent.
	certPEM, keyPEM []byte
}

const nginxConf = `load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
{{if .TLS}}load_module /usr/lib/nginx/modules/ngx_stream_module.so;{{end}}
daemon off; master_process off; worker_processes 1;
pid {{.Dir}}/nginx.pid; error_log {{.Dir}}/error.log info;
events { worker_connections 64; }
rtmp { server { listen 127.0.0.1:{{.Port}}; chunk_size 4096;
  application live { live on; record all; record_path {{.Dir}}/rec; record_unique on;
    {{if .OnPublish}}on_publish {{.OnPublish}};{{end}} } } }
{{if .TLS}}stream {
  log_format sni "$ssl_server_name";
  server { listen 127.0.0.1:{{.TLSPort}} ssl;
    ssl_certificate {{.Dir}}/cert.pem; ssl_certificate_key {{.Dir}}/key.pem;
    access_log {{.Dir}}/sni.log sni;
    proxy_pass 127.0.0.1:{{.Port}}; } }{{end}}
`

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startNginx writes a config into a temp dir, starts nginx on free ports
// and stops it (by PID) at cleanup.
func startNginx(t testing.TB, o nginxOpts) *nginx {
	t.Helper()
	if _, err := os.Stat("/usr/lib/nginx/modules/ngx_rtmp_module.so"); err != nil {
		t.Fatal("nginx with the rtmp module not installed: run scripts/bootstrap")
	}
	n := &nginx{t: t, dir: t.TempDir(), port: freePort(t)}
	n.rec = filepath.Join(n.dir, "rec")
	require.NoError(t, os.Mkdir(n.rec, 0o755))
	tlsOn := o.certPEM != nil
	if tlsOn {
		n.tlsPort = freePort(t)
		require.NoError(t, os.WriteFile(filepath.Join(n.dir, "cert.pem"), o.certPEM, 0o600))
		require.NoError(t, os.WriteFile(filepath.Join(n.dir, "key.pem"), o.keyPEM, 0o600))
	}
	var conf bytes.Buffer
	require.NoError(t, template.Must(template.New("").Parse(nginxConf)).Execute(&conf, map[string]any{
		"Dir": n.dir, "Port": n.port, "TLS": tlsOn, "TLSPort": n.tlsPort, "OnPublish": o.onPublish,
	}))
	require.NoError(t, os.WriteFile(filepath.Join(n.dir, "nginx.conf"), conf.Bytes(), 0o600))
	n.start()
	t.Cleanup(n.stop)
	return n
}

// start runs nginx and waits until its ports accept connections.
func (n *nginx) start() {
	n.t.Helper()
	n.cmd = exec.Command("nginx", "-c", filepath.Join(n.dir, "nginx.conf"), "-p", n.dir+"/")
	out, err := os.Create(filepath.Join(n.dir, "stderr.log"))
	require.NoError(n.t, err)
	n.cmd.Stdout, n.cmd.Stderr = out, out
	require.NoError(n.t, n.cmd.Start())
	exited := make(chan struct{})
	n.exited = exited
	cmd := n.cmd
	go func() {
		_ = cmd.Wait()
		_ = out.Close()
		close(exited)
	}()
	ports := []int{n.port}
	if n.tlsPort != 0 {
		ports = append(ports, n.tlsPort)
	}
	for _, p := range ports {
		waitListening(n.t, p, exited, n.dir)
	}
}

// waitListening polls until 127.0.0.1:port accepts a connection (nginx has
// no readiness signal), failing at once if nginx exited.
func waitListening(t testing.TB, port int, exited <-chan struct{}, dir string) {
	t.Helper()
	for range 250 {
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited at start:\n%s", log)
		default:
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond) // polling a process that cannot tell us
	}
	t.Fatalf("nginx not listening on %d after 5 s", port)
}

// kill stops nginx at once (SIGKILL), as a crash would.
func (n *nginx) kill() {
	n.t.Helper()
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
	n.cmd = nil
}

// stop ends nginx by PID; SIGQUIT lets it finish its recordings.
func (n *nginx) stop() {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-n.exited:
	case <-time.After(5 * time.Second):
		_ = n.cmd.Process.Signal(syscall.SIGKILL)
		<-n.exited
	}
	n.cmd = nil
}

// url is the publishing URL for key.
func (n *nginx) url(key string) string {
	return fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s", n.port, key)
}

// recordings lists the FLV files recorded for key, oldest first.
func (n *nginx) recordings(key string) []string {
	n.t.Helper()
	files, err := filepath.Glob(filepath.Join(n.rec, key+"*.flv"))
	require.NoError(n.t, err)
	slices.Sort(files)
	return files
}

// log returns nginx's error log.
func (n *nginx) log() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
	return string(b)
}

// probeResult is what ffprobe says about a file.
type probeResult struct {
	Streams []struct {
		CodecType  string `json:"codec_type"`
		CodecName  string `json:"codec_name"`
		SampleRate string `json:"sample_rate"`
		Channels   int    `json:"channels"`
		Width      int    `json:"width"`
		Height     int    `json:"height"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

// codecs returns codec_type → codec_name.
func (p probeResult) codecs() map[string]string {
	m := map[string]string{}
	for _, s := range p.Streams {
		m[s.CodecType] = s.CodecName
	}
	return m
}

func (p probeResult) duration(t *testing.T) time.Duration {
	d, err := strconv.ParseFloat(p.Format.Duration, 64)
	require.NoError(t, err, "ffprobe duration %q", p.Format.Duration)
	return time.Duration(d * float64(time.Second))
}

// probe runs ffprobe on path and logs what it found (go test -v shows
// it: the figures of a pushed stream).
func probe(t *testing.T, path string) probeResult {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", path).Output()
	require.NoError(t, err, "ffprobe %s", path)
	var p probeResult
	require.NoError(t, json.Unmarshal(out, &p))
	for _, s := range p.Streams {
		t.Logf("ffprobe %s: %s %s %s Hz %d ch %dx%d", filepath.Base(path), s.CodecType, s.CodecName, s.SampleRate, s.Channels, s.Width, s.Height)
	}
	t.Logf("ffprobe %s: duration %s s", filepath.Base(path), p.Format.Duration)
	return p
}

// decodeAudio decodes path's audio to 48 kHz mono PCM on the file's own
// timeline: sample i is at i/48000 s (silence before the first packet).
func decodeAudio(t *testing.T, path string) []int16 {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-copyts", "-i", path, "-map", "0:a",
		"-af", "aresample=async=1:first_pts=0", "-ac", "1", "-ar", "48000", "-f", "s16le", "-").Output()
	require.NoError(t, err, "ffmpeg decode audio %s", path)
	pcm := make([]int16, len(out)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(out[2*i:]))
	}
	return pcm
}

// videoFrame is one decoded frame: when, how big, how bright.
type videoFrame struct {
	pts           float64 // s on the file's timeline
	width, height int
	luma          int // mean Y
}

var showinfoRE = regexp.MustCompile(`pts_time:\s*([-\d.]+).*?s:(\d+)x(\d+).*?mean:\[(\d+)`)

// decodeVideo decodes every video frame of path; decoding errors fail.
func decodeVideo(t *testing.T, path string) []videoFrame {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-v", "info", "-xerror", "-copyts", "-i", path, "-map", "0:v",
		"-vf", "showinfo", "-f", "null", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Run(), "ffmpeg decode video %s:\n%s", path, tail(stderr.String(), 2000))
	var frames []videoFrame
	for _, m := range showinfoRE.FindAllStringSubmatch(stderr.String(), -1) {
		pts, _ := strconv.ParseFloat(m[1], 64)
		w, _ := strconv.Atoi(m[2])
		h, _ := strconv.Atoi(m[3])
		y, _ := strconv.Atoi(m[4])
		frames = append(frames, videoFrame{pts: pts, width: w, height: h, luma: y})
	}
	return frames
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// flvTag is one tag of an FLV file.
type flvTag struct {
	typ  byte
	ts   uint32
	data []byte
}

// readFLV parses an FLV file (FLV §E.2, §E.3) into its tags.
func readFLV(t *testing.T, path string) []flvTag {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.True(t, len(b) >= 13 && string(b[:3]) == "FLV", "not an FLV file")
	b = b[binary.BigEndian.Uint32(b[5:9])+4:]
	var tags []flvTag
	for len(b) >= 11 {
		size := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
		if len(b) < 11+size+4 {
			break // cut short
		}
		ts := uint32(b[4])<<16 | uint32(b[5])<<8 | uint32(b[6]) | uint32(b[7])<<24
		tags = append(tags, flvTag{typ: b[0], ts: ts, data: b[11 : 11+size]})
		b = b[11+size+4:]
	}
	return tags
}
