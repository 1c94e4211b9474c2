package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// Janus AudioBridge, the comparison peer: rooms are created through the
// HTTP API and each participant joins as a plain RTP participant (the join
// request's "rtp" object names where Janus sends the room's mix; the
// "joined" event says where to send our PCMU), so the same legs, tones and
// probes run against Janus as against mediagate, without SIP.

// janusRoomBase is the AudioBridge room id of room 0.
const janusRoomBase = 1000

// janusSampling is the AudioBridge rooms' mixing rate: Janus's default.
const janusSampling = 16000

// janusMsg is the part of a Janus API message the client reads.
type janusMsg struct {
	Janus       string `json:"janus"`
	Transaction string `json:"transaction"`
	Sender      int64  `json:"sender"`
	Data        struct {
		ID int64 `json:"id"`
	} `json:"data"`
	Error *struct {
		Code   int    `json:"code"`
		Reason string `json:"reason"`
	} `json:"error"`
	PluginData struct {
		Data json.RawMessage `json:"data"`
	} `json:"plugindata"`
	Jsep *struct {
		Type string `json:"type"`
		SDP  string `json:"sdp"`
	} `json:"jsep"`
}

// janusSig joins legs to AudioBridge rooms; one Janus session holds a
// plugin handle per participant, and one long poll reads the session's
// events.
type janusSig struct {
	api     string // e.g. http://127.0.0.1:8088/janus
	host    string // our RTP address
	client  *http.Client
	session int64

	mu      sync.Mutex
	seq     int
	waiters map[string]chan janusMsg // by transaction, for asynchronous answers
	handles []int64

	stopPoll context.CancelFunc
	pollDone chan struct{}
}

// newJanus opens a session at api and creates rooms AudioBridge rooms.
func newJanus(ctx context.Context, api, host string, rooms int) (*janusSig, error) {
	j := &janusSig{api: api, host: host, client: &http.Client{Timeout: 40 * time.Second},
		waiters: map[string]chan janusMsg{}, pollDone: make(chan struct{})}
	// Janus logs that its web server started before the transport takes
	// requests: a first request can meet a closed connection (seen once
	// in a suite run). Up to ten tries, 100 ms apart.
	var m janusMsg
	var err error
	for try := 0; ; try++ {
		if m, err = j.post(ctx, j.api, map[string]any{"janus": "create"}); err == nil || try == 9 || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("janus session: %w", err)
	}
	j.session = m.Data.ID
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	j.stopPoll = cancel
	go j.poll(pctx)
	ctl, err := j.attach(ctx)
	if err != nil {
		j.close()
		return nil, err
	}
	for k := range rooms {
		m, err := j.post(ctx, j.handleURL(ctl), map[string]any{"janus": "message", "body": map[string]any{
			"request": "create", "room": janusRoomBase + k, "sampling_rate": janusSampling,
			"permanent": false, "allow_rtp_participants": true}})
		if err == nil {
			err = pluginError(m, "created")
		}
		if err != nil {
			j.close()
			return nil, fmt.Errorf("janus room %d: %w", janusRoomBase+k, err)
		}
	}
	return j, nil
}

func (j *janusSig) sessionURL() string { return j.api + "/" + strconv.FormatInt(j.session, 10) }

func (j *janusSig) handleURL(h int64) string {
	return j.sessionURL() + "/" + strconv.FormatInt(h, 10)
}

// attach attaches a new AudioBridge handle to the session.
func (j *janusSig) attach(ctx context.Context) (int64, error) {
	m, err := j.post(ctx, j.sessionURL(), map[string]any{"janus": "attach", "plugin": "janus.plugin.audiobridge"})
	if err != nil {
		return 0, fmt.Errorf("janus attach: %w", err)
	}
	return m.Data.ID, nil
}

// join attaches a handle and joins it to room as a plain RTP participant
// sending and receiving PCMU at l's port.
func (j *janusSig) join(ctx context.Context, room int, l *leg) (netip.AddrPort, time.Duration, error) {
	h, err := j.attach(ctx)
	if err != nil {
		return netip.AddrPort{}, 0, err
	}
	j.mu.Lock()
	j.handles = append(j.handles, h)
	j.mu.Unlock()
	start := time.Now()
	ev, err := j.request(ctx, h, map[string]any{"janus": "message", "body": map[string]any{
		"request": "join", "room": janusRoomBase + room, "display": "load", "codec": "pcmu",
		"rtp": map[string]any{"ip": j.host, "port": l.port(), "payload_type": ptPCMU}}})
	if err != nil {
		return netip.AddrPort{}, 0, err
	}
	setup := time.Since(start)
	var d struct {
		RTP struct {
			IP   string `json:"ip"`
			Port int    `json:"port"`
		} `json:"rtp"`
	}
	if err := json.Unmarshal(ev.PluginData.Data, &d); err != nil {
		return netip.AddrPort{}, 0, fmt.Errorf("janus join: %w", err)
	}
	ip, err := netip.ParseAddr(d.RTP.IP)
	if err != nil || d.RTP.Port == 0 {
		return netip.AddrPort{}, 0, fmt.Errorf("janus join: no rtp address in %s", ev.PluginData.Data)
	}
	return netip.AddrPortFrom(ip, uint16(d.RTP.Port)), setup, nil
}

// webrtcJoin is the offerAnswer that joins a WebRTC participant to room:
// a handle of its own, the join request with our offer, the "joined"
// event with Janus's answer (candidates included; Janus gathers on
// loopback only, see janusConfig).
func (j *janusSig) webrtcJoin(room int) offerAnswer {
	return func(ctx context.Context, offer string) (string, string, error) {
		h, err := j.attach(ctx)
		if err != nil {
			return "", "", err
		}
		j.mu.Lock()
		j.handles = append(j.handles, h)
		j.mu.Unlock()
		ev, err := j.request(ctx, h, map[string]any{"janus": "message",
			"body": map[string]any{"request": "join", "room": janusRoomBase + room, "display": "load-webrtc"},
			"jsep": map[string]any{"type": "offer", "sdp": offer}})
		if err != nil {
			return "", "", err
		}
		if ev.Jsep == nil || ev.Jsep.Type != "answer" {
			return "", "", fmt.Errorf("janus join: no answer in the joined event")
		}
		return ev.Jsep.SDP, "", nil
	}
}

// request sends an asynchronous plugin request on handle h and waits up to
// 10 s for its event, which must be "joined".
func (j *janusSig) request(ctx context.Context, h int64, body map[string]any) (janusMsg, error) {
	tx, ch := j.waiter()
	defer j.forget(tx)
	ev, err := j.postTx(ctx, j.handleURL(h), tx, body)
	if err != nil {
		return janusMsg{}, fmt.Errorf("janus join: %w", err)
	}
	if ev.Janus == "ack" {
		select {
		case ev = <-ch:
		case <-ctx.Done():
			return janusMsg{}, ctx.Err()
		case <-time.After(10 * time.Second):
			return janusMsg{}, errors.New("janus join: no event within 10 s")
		}
	}
	if err := pluginError(ev, "joined"); err != nil {
		return janusMsg{}, fmt.Errorf("janus join: %w", err)
	}
	return ev, nil
}

// pluginError is the error of an AudioBridge answer whose "audiobridge"
// is not want.
func pluginError(m janusMsg, want string) error {
	if m.Error != nil {
		return fmt.Errorf("%d %s", m.Error.Code, m.Error.Reason)
	}
	var d struct {
		AudioBridge string `json:"audiobridge"`
		Code        int    `json:"error_code"`
		Error       string `json:"error"`
	}
	if err := json.Unmarshal(m.PluginData.Data, &d); err != nil {
		return fmt.Errorf("%s answer: %w", m.Janus, err)
	}
	if d.AudioBridge != want {
		return fmt.Errorf("audiobridge %q (%d %s), want %q", d.AudioBridge, d.Code, d.Error, want)
	}
	return nil
}

// leaveAll detaches every participant's handle.
func (j *janusSig) leaveAll() {
	j.mu.Lock()
	hs := j.handles
	j.handles = nil
	j.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	parallel(len(hs), 16, func(i int) {
		_, _ = j.post(ctx, j.handleURL(hs[i]), map[string]any{"janus": "detach"})
	})
}

// close destroys the session and stops the long poll.
func (j *janusSig) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = j.post(ctx, j.sessionURL(), map[string]any{"janus": "destroy"})
	j.stopPoll()
	<-j.pollDone
}

// waiter registers a transaction whose asynchronous answer poll delivers.
func (j *janusSig) waiter() (string, chan janusMsg) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.seq++
	tx := "t" + strconv.Itoa(j.seq)
	ch := make(chan janusMsg, 1)
	j.waiters[tx] = ch
	return tx, ch
}

func (j *janusSig) forget(tx string) {
	j.mu.Lock()
	delete(j.waiters, tx)
	j.mu.Unlock()
}

// poll long-polls the session's events until ctx ends, handing answers
// to their transactions' waiters (events of no waiter are dropped).
func (j *janusSig) poll(ctx context.Context) {
	defer close(j.pollDone)
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.sessionURL()+"?maxev=50", nil)
		if err != nil {
			return
		}
		res, err := j.client.Do(req)
		if err != nil {
			if wait(ctx, 100*time.Millisecond) != nil {
				return
			}
			continue
		}
		var evs []janusMsg
		err = json.NewDecoder(res.Body).Decode(&evs)
		_ = res.Body.Close()
		if err != nil {
			continue
		}
		j.mu.Lock()
		for _, ev := range evs {
			if ch, ok := j.waiters[ev.Transaction]; ok && ev.Janus == "event" {
				select {
				case ch <- ev:
				default:
				}
			}
		}
		j.mu.Unlock()
	}
}

// post sends one API request with a fresh transaction and returns the
// synchronous answer, an error when it is "error".
func (j *janusSig) post(ctx context.Context, url string, body map[string]any) (janusMsg, error) {
	j.mu.Lock()
	j.seq++
	tx := "s" + strconv.Itoa(j.seq)
	j.mu.Unlock()
	return j.postTx(ctx, url, tx, body)
}

func (j *janusSig) postTx(ctx context.Context, url, tx string, body map[string]any) (janusMsg, error) {
	body["transaction"] = tx
	data, err := json.Marshal(body)
	if err != nil {
		return janusMsg{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(data))
	if err != nil {
		return janusMsg{}, err
	}
	res, err := j.client.Do(req)
	if err != nil {
		return janusMsg{}, err
	}
	defer func() { _ = res.Body.Close() }()
	var m janusMsg
	if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
		return janusMsg{}, fmt.Errorf("%s: %w", url, err)
	}
	if m.Janus == "error" && m.Error != nil {
		return m, fmt.Errorf("%d %s", m.Error.Code, m.Error.Reason)
	}
	return m, nil
}

// freePort is a TCP port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
