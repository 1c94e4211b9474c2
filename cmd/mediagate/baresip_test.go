package main

import (
	"bufio"
	byteorder "encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// baresip is a headless baresip 1.0 softphone run by a test (TESTING.md,
// "baresip"): its own config directory, SIP and RTP on 127.0.0.1, its
// microphone a WAV file (aufile), its loudspeaker the ALSA null device,
// and what it hears written by sndfile to a WAV file. The test drives it
// through ctrl_tcp: JSON commands (dial, sndcode, hangup) and events
// (CALL_ESTABLISHED, CALL_CLOSED, ...), each a netstring.
type baresip struct {
	cmd    *exec.Cmd
	dir    string
	recDir string
	conn   net.Conn
	exited chan struct{} // closed when the process has exited
	reader chan struct{} // closed when the ctrl_tcp reader has returned

	mu        sync.Mutex
	events    []baresipMessage
	responses map[string]baresipMessage
	changed   chan struct{} // closed and replaced when a message arrives
	token     int
}

// baresipMessage is an event or a command's response on ctrl_tcp.
type baresipMessage struct {
	Event    bool   `json:"event"`
	Type     string `json:"type"`
	Param    string `json:"param"`
	PeerURI  string `json:"peeruri"`
	Response bool   `json:"response"`
	OK       bool   `json:"ok"`
	Data     string `json:"data"`
	Token    string `json:"token"`
	// At is when the test read it.
	At time.Time `json:"-"`
}

// baresipOptions choose a softphone's codec and microphone.
type baresipOptions struct {
	// codecs is the account's audio_codecs: PCMU, G722, opus/48000/2.
	codecs string
	// source is the WAV file the phone sends: its rate is rate, and the
	// call ends when it has been played (aufile), so it must outlast the
	// test's call.
	source string
	rate   int
	// mediaenc is the account's media encryption (its mediaenc
	// parameter), e.g. "srtp-mand": SDES-keyed SRTP, calls without it
	// fail. Empty: plain RTP, and the srtp module is not loaded.
	mediaenc string
}

// baresipRTPBlock hands each softphone of the test binary its own block of
// 20 RTP ports, below the ephemeral range (32768-60999) that pion and the
// gateway's WebRTC port take from and above the gateway's RTP range.
var baresipRTPBlock atomic.Int32

// startBaresip starts a softphone with o and connects to its ctrl_tcp; it
// is killed when the test ends.
func startBaresip(t *testing.T, o baresipOptions) *baresip {
	t.Helper()
	if _, err := exec.LookPath("baresip"); err != nil {
		t.Fatal("baresip not installed: run scripts/bootstrap")
	}
	dir := t.TempDir()
	b := &baresip{dir: dir, recDir: filepath.Join(dir, "rec"), exited: make(chan struct{}),
		reader: make(chan struct{}), responses: map[string]baresipMessage{}, changed: make(chan struct{})}
	require.NoError(t, os.Mkdir(b.recDir, 0o755))
	sipPort, ctrlPort := freeSIPPort(t), freeTCPPort(t)
	rtp := 21000 + 20*int(baresipRTPBlock.Add(1)%100)
	config := strings.Join([]string{
		"sip_listen 127.0.0.1:" + strconv.Itoa(sipPort),
		"net_interface 127.0.0.1",
		"audio_player alsa,null",
		"audio_alert alsa,null",
		"audio_source aufile," + o.source,
		"ausrc_srate " + strconv.Itoa(o.rate),
		"auplay_srate " + strconv.Itoa(o.rate),
		"ausrc_channels 1",
		"auplay_channels 1",
		fmt.Sprintf("rtp_ports %d-%d", rtp, rtp+19),
		"module_path /usr/lib/baresip/modules",
		"module g711.so", "module g722.so", "module opus.so", "module alsa.so",
		"module aufile.so", "module sndfile.so",
		"module_tmp uuid.so", "module_tmp account.so",
		"module_app contact.so", "module_app menu.so", "module_app ctrl_tcp.so",
		"ctrl_tcp_listen 127.0.0.1:" + strconv.Itoa(ctrlPort),
		"snd_path " + b.recDir,
	}, "\n") + "\n"
	if o.mediaenc != "" {
		config += "module srtp.so\n"
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config"), []byte(config), 0o644))
	account := fmt.Sprintf("<sip:phone@127.0.0.1:%d>;regint=0;answermode=manual;audio_codecs=%s", sipPort, o.codecs)
	if o.mediaenc != "" {
		account += ";mediaenc=" + o.mediaenc
	}
	account += "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "accounts"), []byte(account), 0o644))

	logFile, err := os.Create(filepath.Join(dir, "baresip.log"))
	require.NoError(t, err)
	// -t bounds its life should the test binary die without cleanup.
	b.cmd = exec.Command("baresip", "-4", "-f", dir, "-t", "300")
	b.cmd.Stdout, b.cmd.Stderr = logFile, logFile
	require.NoError(t, b.cmd.Start())
	go func() {
		_ = b.cmd.Wait()
		_ = logFile.Close()
		close(b.exited)
	}()
	t.Cleanup(func() {
		_ = b.cmd.Process.Kill()
		<-b.exited
		if b.conn != nil {
			_ = b.conn.Close()
			<-b.reader
		}
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "baresip.log"))
			var lines []string
			for line := range strings.SplitSeq(strings.ReplaceAll(string(log), "\r", "\n"), "\n") {
				// Without its status line ("[0:00:03] audio=...").
				if line = strings.TrimSpace(line); line != "" && !strings.Contains(line, "audio=") {
					lines = append(lines, line)
				}
			}
			t.Logf("baresip's log:\n%s", lastLines(strings.Join(lines, "\n"), 40))
		}
	})

	// ctrl_tcp listens once baresip has loaded its modules.
	addr := "127.0.0.1:" + strconv.Itoa(ctrlPort)
	require.True(t, eventually(10*time.Second, 50*time.Millisecond, func() bool {
		select {
		case <-b.exited:
			return true
		default:
		}
		b.conn, err = net.DialTimeout("tcp", addr, time.Second)
		return err == nil
	}), "baresip's ctrl_tcp does not answer on %s: %v", addr, err)
	require.NotNil(t, b.conn, "baresip exited at start: %v", b.cmd.ProcessState)
	go b.read()
	return b
}

// read takes ctrl_tcp's netstrings ("LEN:JSON,") until the connection
// closes.
func (b *baresip) read() {
	defer close(b.reader)
	r := bufio.NewReader(b.conn)
	for {
		head, err := r.ReadString(':')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSpace(head[:len(head)-1]))
		if err != nil || n < 0 || n > 1<<20 {
			return
		}
		body := make([]byte, n+1)
		if _, err := io.ReadFull(r, body); err != nil || body[n] != ',' {
			return
		}
		m := baresipMessage{At: time.Now()}
		if json.Unmarshal(body[:n], &m) != nil {
			continue
		}
		b.mu.Lock()
		switch {
		case m.Response:
			b.responses[m.Token] = m
		case m.Event:
			b.events = append(b.events, m)
		}
		close(b.changed)
		b.changed = make(chan struct{})
		b.mu.Unlock()
	}
}

// waitFor waits up to timeout for found to hold, checking it under b.mu
// whenever a message arrives.
func (b *baresip) waitFor(timeout time.Duration, found func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		ok, changed := found(), b.changed
		b.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return false
		case <-b.exited:
			return false
		}
	}
}

// do sends a ctrl_tcp command (as the menu module names it) and waits for
// its response.
func (b *baresip) do(t *testing.T, command, params string) {
	t.Helper()
	b.mu.Lock()
	b.token++
	token := "t" + strconv.Itoa(b.token)
	b.mu.Unlock()
	msg, err := json.Marshal(map[string]string{"command": command, "params": params, "token": token})
	require.NoError(t, err)
	_, err = fmt.Fprintf(b.conn, "%d:%s,", len(msg), msg)
	require.NoError(t, err)
	var res baresipMessage
	require.True(t, b.waitFor(5*time.Second, func() bool {
		var ok bool
		res, ok = b.responses[token]
		return ok
	}), "baresip did not answer %s %q", command, params)
	require.True(t, res.OK, "baresip refused %s %q: %s", command, params, res.Data)
}

// await waits for an event of type typ (the first one since the start)
// and returns it.
func (b *baresip) await(t *testing.T, typ string, timeout time.Duration) baresipMessage {
	t.Helper()
	var ev baresipMessage
	ok := b.waitFor(timeout, func() bool {
		for _, e := range b.events {
			if e.Type == typ {
				ev = e
				return true
			}
		}
		return false
	})
	if !ok {
		b.mu.Lock()
		var seen []string
		for _, e := range b.events {
			seen = append(seen, e.Type+"("+e.Param+")")
		}
		b.mu.Unlock()
		t.Fatalf("no %s from baresip within %v; events: %s", typ, timeout, strings.Join(seen, " "))
	}
	return ev
}

// dial calls number at the gateway's SIP address, waits until the call
// is established and returns when it was: when the phone started to send
// its source file.
func (b *baresip) dial(t *testing.T, gateway netip.AddrPort, number string) time.Time {
	t.Helper()
	b.do(t, "dial", fmt.Sprintf("sip:%s@%s", number, gateway))
	return b.await(t, "CALL_ESTABLISHED", 10*time.Second).At
}

// stop ends baresip with SIGTERM, which closes its recordings properly,
// and returns what the phone heard: the first channel of sndfile's
// decoder-side WAV and its sample rate.
func (b *baresip) stop(t *testing.T) ([]int16, int) {
	t.Helper()
	require.NoError(t, b.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("baresip did not exit within 10 s of SIGTERM")
	}
	files, err := filepath.Glob(filepath.Join(b.recDir, "dump-*-dec.wav"))
	require.NoError(t, err)
	require.Len(t, files, 1, "one recording of the call")
	raw, err := os.ReadFile(files[0])
	require.NoError(t, err)
	pcm, rate, err := readWAVChannel(raw)
	require.NoError(t, err, files[0])
	return pcm, rate
}

// readWAVChannel returns the first channel of a 16-bit PCM WAV file and
// its sample rate. A data chunk whose size was never written (a writer
// killed before it closed the file) runs to the end of the file.
func readWAVChannel(b []byte) ([]int16, int, error) {
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, 0, errors.New("not a RIFF/WAVE file")
	}
	var channels, bits, rate int
	for p := 12; p+8 <= len(b); {
		id, size := string(b[p:p+4]), int(byteorder.LittleEndian.Uint32(b[p+4:]))
		body := b[p+8:]
		switch id {
		case "fmt ":
			if len(body) < 16 {
				return nil, 0, errors.New("short fmt chunk")
			}
			channels = int(byteorder.LittleEndian.Uint16(body[2:]))
			rate = int(byteorder.LittleEndian.Uint32(body[4:]))
			bits = int(byteorder.LittleEndian.Uint16(body[14:]))
		case "data":
			if bits != 16 || channels < 1 {
				return nil, 0, fmt.Errorf("%d-bit, %d channels: want 16-bit PCM", bits, channels)
			}
			if size == 0 || size > len(body) {
				size = len(body)
			}
			frame := 2 * channels
			pcm := make([]int16, size/frame)
			for i := range pcm {
				pcm[i] = int16(byteorder.LittleEndian.Uint16(body[i*frame:]))
			}
			return pcm, rate, nil
		}
		p += 8 + size + size%2
	}
	return nil, 0, errors.New("no data chunk")
}

// freeSIPPort returns a port free a moment ago for both UDP and TCP on
// 127.0.0.1, with the next TCP port free too, as baresip listens there.
func freeSIPPort(t *testing.T) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		require.NoError(t, err)
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp4", "127.0.0.1:"+strconv.Itoa(port))
		// baresip also binds its SIP/TLS listener, on the next port.
		var tls net.Listener
		if err == nil {
			tls, err = net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(port+1))
		}
		_ = l.Close()
		if u != nil {
			_ = u.Close()
		}
		if err == nil {
			_ = tls.Close()
			return port
		}
	}
	t.Fatal("no port free for both UDP and TCP")
	return 0
}

// freeTCPPort returns a TCP port of 127.0.0.1 free a moment ago.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
