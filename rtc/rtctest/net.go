package rtctest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// NewAPI returns a pion API for test peers that stays on loopback
// (TESTING.md, "Loopback traps"): loopback host candidates only, IPv4 UDP,
// no mDNS. me supplies the codecs (nil: pion's defaults and the audio
// level header extension, as a browser offers them), with pion's
// default interceptors (NACK, RTCP reports, TWCC) registered on it. conn,
// when not nil, is the one UDP socket the peer uses; the returned mux owns
// it and must be closed after the PeerConnections made with the API
// (nil when conn is nil). logs may be nil (pion's errors go to stderr).
func NewAPI(me *webrtc.MediaEngine, conn net.PacketConn, logs logging.LoggerFactory) (*webrtc.API, ice.UDPMux, error) {
	if me == nil {
		me = &webrtc.MediaEngine{}
		if err := me.RegisterDefaultCodecs(); err != nil {
			return nil, nil, fmt.Errorf("rtctest: codecs: %w", err)
		}
		// Browsers offer the RFC 6464 audio level and send it on every packet.
		err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI}, webrtc.RTPCodecTypeAudio)
		if err != nil {
			return nil, nil, fmt.Errorf("rtctest: audio level: %w", err)
		}
	}
	if logs == nil {
		logs = logging.NewDefaultLoggerFactory()
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		return nil, nil, fmt.Errorf("rtctest: interceptors: %w", err)
	}
	se := webrtc.SettingEngine{LoggerFactory: logs}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	var mux ice.UDPMux
	if conn != nil {
		mux = webrtc.NewICEUDPMux(logs.NewLogger("rtctest-mux"), conn)
		se.SetICEUDPMux(mux)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	return api, mux, nil
}

// HTTPError is a refused HTTP request: a join the server did not accept,
// say, with the problem+json body that tells why.
type HTTPError struct {
	Op     string // "POST /whip/demo", ...
	Status int
	Body   string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("rtctest: %s: status %d: %s", e.Op, e.Status, strings.TrimSpace(e.Body))
}

// MaxRedirects is how many redirects a client follows for one request.
const MaxRedirects = 3

// httpClient makes every request on a new connection, so a finished
// client leaves no idle connection (and no goroutine) behind for goleak.
// It follows 307 and 308 redirects as a WHIP client must (RFC 9725, on
// load balancing and redirections; in mediagate a node that does not host
// the room sends the client to the one that does): net/http re-sends the method and the offer (http.NewRequest sets
// GetBody for a bytes.Reader), and redirect puts the bearer token back,
// which net/http drops on a redirect to another domain. Any other redirect
// is not followed: the 30x comes back to the caller as the response.
var httpClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, CheckRedirect: redirect}

func redirect(req *http.Request, via []*http.Request) error {
	if len(via) > MaxRedirects {
		return fmt.Errorf("rtctest: more than %d redirects", MaxRedirects)
	}
	switch req.Response.StatusCode {
	case http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default:
		return http.ErrUseLastResponse
	}
	if auth := via[0].Header.Get("Authorization"); auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return nil
}

// do sends one request and returns the answer with its body read. token,
// when set, goes in as a bearer token.
func do(ctx context.Context, method, target, token, contentType string, body []byte) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return nil, nil, fmt.Errorf("rtctest: %w", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("rtctest: %s %s: %w", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("rtctest: %s %s: %w", method, target, err)
	}
	return resp, b, nil
}

// PageToken asks a room's join page for a join token the way the page's
// script does: POST /r/{room}/token with a display name and the room's
// PIN (empty for open rooms). The token then joins with Join.
func PageToken(ctx context.Context, baseURL, room, name, pin string) (string, error) {
	body, err := json.Marshal(map[string]string{"name": name, "pin": pin})
	if err != nil {
		return "", fmt.Errorf("rtctest: %w", err)
	}
	path := "/r/" + url.PathEscape(room) + "/token"
	resp, b, err := do(ctx, http.MethodPost, baseURL+path, "", "application/json", body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", &HTTPError{Op: "POST " + path, Status: resp.StatusCode, Body: string(b)}
	}
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &tok); err != nil || tok.Token == "" {
		return "", fmt.Errorf("rtctest: POST %s: no token in %q", path, b)
	}
	return tok.Token, nil
}
