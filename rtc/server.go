// Package rtc puts WebRTC peers into rooms: browsers, OBS and other WHIP
// (RFC 9725) clients join a room with one send-receive Opus transceiver and
// hear their mix-minus; WHEP clients listen to the full mix; a publisher's
// H.264 video is forwarded to viewers and offered to the stream egress. All
// media of all sessions shares one UDP port (DESIGN.md: webrtc.udp_port).
//
// Dial is the client side of the same protocol, for the cluster: a Link
// puts a room hosted on another node into a local relay room, as a
// participant (DESIGN.md decision 5).
//
// Signalling is non-trickle: the answer carries every candidate, PATCH is
// refused (ErrTrickleUnsupported), so a session cannot be resumed with an
// ICE restart; a client whose connection failed joins again.
package rtc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/logging"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/mediagate/mediagate/room"
)

// Defaults of Settings, used where a field is zero.
const (
	// DefaultGatherTimeout bounds the wait for ICE gathering before a
	// non-trickle answer. Host candidates on the shared UDP port are ready
	// at once; only a broken network takes longer.
	DefaultGatherTimeout = 5 * time.Second
	// DefaultConnectTimeout is how long a session may take to connect (ICE
	// and DTLS) after its answer before it is dropped from the room.
	DefaultConnectTimeout = 15 * time.Second
	// DefaultDisconnectTimeout is how long a connected peer may be silent
	// before it counts as failed and leaves the room.
	DefaultDisconnectTimeout = 15 * time.Second
	// teardownTimeout bounds closing one PeerConnection (DTLS close_notify,
	// stopping its goroutines).
	teardownTimeout = 5 * time.Second
)

// Settings are the ICE and session settings of a Server. api maps the
// webrtc section of the configuration onto them.
type Settings struct {
	// UDPPort is the one UDP port all sessions' media is multiplexed on
	// (webrtc.udp_port); 0 takes a free port, see Server.Addr.
	UDPPort int
	// PublicIPs replace the interface addresses in host candidates, for a
	// node behind a 1:1 NAT (webrtc.public_ips).
	PublicIPs []string
	// Opus is how the rooms encode the mixes of this server's
	// participants. The zero value is VoIP at complexity 0; the
	// configuration's default is VoIP at DefaultOpusComplexity.
	Opus OpusSettings
	// MixThroughPion sends every session's mix through its pion track;
	// by default a session whose DTLS handshake the server served gets it
	// around pion (directSender, webrtc.direct_srtp).
	MixThroughPion bool
	// LoopbackOnly binds the port on 127.0.0.1 and offers only loopback
	// candidates: for tests, which must stay on loopback (TESTING.md).
	LoopbackOnly bool
	// GatherTimeout, ConnectTimeout and DisconnectTimeout default to the
	// constants above when zero.
	GatherTimeout     time.Duration
	ConnectTimeout    time.Duration
	DisconnectTimeout time.Duration
	// AllowOrigin is the CORS Access-Control-Allow-Origin of every answer
	// (default "*": WHIP clients run on the operator's own pages and send
	// bearer tokens, not cookies).
	AllowOrigin string
}

func (st *Settings) applyDefaults() {
	if st.GatherTimeout <= 0 {
		st.GatherTimeout = DefaultGatherTimeout
	}
	if st.ConnectTimeout <= 0 {
		st.ConnectTimeout = DefaultConnectTimeout
	}
	if st.DisconnectTimeout <= 0 {
		st.DisconnectTimeout = DefaultDisconnectTimeout
	}
	if st.AllowOrigin == "" {
		st.AllowOrigin = "*"
	}
}

// Option changes one setting of a Server.
type Option func(*Server)

// WithLogger sets the logger; the server adds component=rtc, and pion's own
// messages arrive through it with pion=<scope>.
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithSettings sets the ICE and session settings.
func WithSettings(st Settings) Option { return func(s *Server) { s.set = st } }

// WithAuthorizer sets who may join. Without it every request is refused
// with 401 (private by default, DESIGN.md decision 8); AllowAll opens every
// room.
func WithAuthorizer(a Authorizer) Option { return func(s *Server) { s.auth = a } }

// Server serves WHIP and WHEP sessions for the rooms of one room.Manager.
// Create it with NewServer, mount Handler, and stop it with Close.
type Server struct {
	log   *slog.Logger
	set   Settings
	auth  Authorizer
	rooms *room.Manager

	conn  net.PacketConn
	input *inputFilter // conn as pion's mux reads it: malformed datagrams dropped and counted
	mux   ice.UDPMux
	pion  pionParts // each session's API is made of these (sessionAPI)

	mu       sync.Mutex
	sessions map[string]*participant // by session ID
	feeds    map[room.ID]*videoFeed
	closed   bool
	wg       sync.WaitGroup // session goroutines and stray PeerConnection closers
}

// NewServer binds the UDP port and builds the pion API every session is
// made with. It fails when the port is taken or a setting is invalid.
func NewServer(rooms *room.Manager, opts ...Option) (*Server, error) {
	if rooms == nil {
		return nil, errors.New("rtc: nil room manager")
	}
	s := &Server{rooms: rooms, sessions: make(map[string]*participant), feeds: make(map[room.ID]*videoFeed)}
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "rtc")
	if s.auth == nil {
		s.auth = denyAll{}
	}
	s.set.applyDefaults()
	if err := s.set.Opus.check(); err != nil {
		return nil, fmt.Errorf("rtc: %w", err)
	}
	for _, ip := range s.set.PublicIPs {
		if _, err := netip.ParseAddr(ip); err != nil {
			return nil, fmt.Errorf("rtc: public ip %q: %w", ip, err)
		}
	}
	host := "0.0.0.0"
	if s.set.LoopbackOnly {
		host = "127.0.0.1"
	}
	addr, err := net.ResolveUDPAddr("udp4", net.JoinHostPort(host, fmt.Sprint(s.set.UDPPort)))
	if err != nil {
		return nil, fmt.Errorf("rtc: udp port %d: %w", s.set.UDPPort, err)
	}
	conn, err := net.ListenUDP("udp4", addr)
	if err != nil {
		return nil, fmt.Errorf("rtc: listen on udp port %d: %w", s.set.UDPPort, err)
	}
	s.conn = conn
	if s.input, err = newInputFilter(conn, s.log); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("rtc: udp port %d: %w", s.set.UDPPort, err)
	}
	logs := pionLogs{s.log}
	s.mux = webrtc.NewICEUDPMux(logs.NewLogger("ice-mux"), s.input)
	if s.pion, err = s.newPionParts(logs); err != nil {
		_ = s.mux.Close()
		_ = conn.Close()
		return nil, err
	}
	s.log.Info("webrtc listening", "udp", conn.LocalAddr().String())
	return s, nil
}

// newPionParts builds what the pion APIs of the server's sessions share:
// ICE on the shared port, with the address rewriting of PublicIPs.
func (s *Server) newPionParts(logs pionLogs) (pionParts, error) {
	se := webrtc.SettingEngine{LoggerFactory: logs}
	se.SetICEUDPMux(s.mux)
	setICE(&se, s.set.LoopbackOnly, s.set.DisconnectTimeout, s.log)
	if len(s.set.PublicIPs) > 0 {
		err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        s.set.PublicIPs,
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteReplace,
		})
		if err != nil {
			return pionParts{}, fmt.Errorf("rtc: public ips: %w", err)
		}
	}
	return newPionParts(se, logs)
}

// sessionAPI is the pion API of one session: the server's, with keys
// catching the handshake for the direct mix (directSender) and, when the
// offer leaves the DTLS role to the answer (actpass, as browsers offer),
// the gateway the DTLS server, whose side of the handshake gives the keys.
// (pion writes the answering role into every answer, so it is set only
// then: an offer that insists on a role gets the other one, RFC 8842
// §5.3, and a mix through pion.) A nil keys makes the server's API as it
// is; kind picks the session's interceptors (pionParts).
func (s *Server) sessionAPI(keys *dtlsKeys, actpass bool, kind sessionKind) (*webrtc.API, error) {
	parts := s.pion
	if keys != nil {
		if actpass {
			if err := parts.se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer); err != nil {
				return nil, fmt.Errorf("rtc: %w", err)
			}
		}
		parts.se.SetDTLSKeyLogWriter(keys)
		parts.se.SetDTLSServerHelloMessageHook(keys.serverHello)
	}
	return parts.api(kind), nil
}

// pionParts are what a pion API is made of. An API per session costs
// little on shared parts: pion copies the media engine and builds the
// interceptors per PeerConnection anyway.
type pionParts struct {
	se webrtc.SettingEngine
	// me and ir are for sessions with video: NACK, TWCC feedback (the
	// presenter's browser sizes its video by it) and RTCP reports.
	me *webrtc.MediaEngine
	ir *interceptor.Registry
	// meAudio and irAudio are for audio-only sessions: RTCP reports only.
	// Audio negotiates no NACK, and a room's Opus needs no congestion
	// feedback; pion's NACK generator and TWCC reporter each wake every
	// 100 ms per PeerConnection whether they have anything to say or not,
	// which with 300 listeners was 6000 wake-ups a second for nothing.
	meAudio *webrtc.MediaEngine
	irAudio *interceptor.Registry
	// irListen is for WHEP listeners without video: no interceptor at
	// all. A listener sends nothing to report on, and the direct mix
	// sends its own sender reports; the two report loops were another
	// 600 wake-ups a second with 300 listeners.
	irListen *interceptor.Registry
}

// sessionKind picks a session's interceptors (pionParts.api).
type sessionKind uint8

const (
	kindAudio  sessionKind = iota // audio both ways: RTCP reports
	kindVideo                     // with video: NACK, TWCC, reports
	kindListen                    // a WHEP listener without video: none
)

// newPionParts builds the parts of pion APIs on se: Opus and H.264 only
// and pion's default interceptors (NACK, RTCP sender and receiver reports,
// TWCC; audio-only sessions the reports only) except its stats
// interceptor: nothing here calls GetStats, and it cost 6 % of the
// gateway's CPU with 300 listeners (docs/benchmarks.md). Sessions and
// links both use it.
func newPionParts(se webrtc.SettingEngine, logs pionLogs) (pionParts, error) {
	p := pionParts{se: se, me: &webrtc.MediaEngine{}, meAudio: &webrtc.MediaEngine{},
		ir: &interceptor.Registry{}, irAudio: &interceptor.Registry{}, irListen: &interceptor.Registry{}}
	for _, me := range []*webrtc.MediaEngine{p.me, p.meAudio} {
		if err := registerCodecs(me); err != nil {
			return pionParts{}, fmt.Errorf("rtc: register codecs: %w", err)
		}
	}
	if err := registerInterceptors(p.me, p.ir, logs); err != nil {
		return pionParts{}, fmt.Errorf("rtc: interceptors: %w", err)
	}
	if err := registerReports(p.irAudio, logs); err != nil {
		return pionParts{}, fmt.Errorf("rtc: interceptors: %w", err)
	}
	return p, nil
}

// api makes a pion API of the parts for a kind of session.
func (p pionParts) api(kind sessionKind) *webrtc.API {
	me, ir := p.meAudio, p.irAudio
	switch kind {
	case kindVideo:
		me, ir = p.me, p.ir
	case kindListen:
		ir = p.irListen
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir),
		webrtc.WithSettingEngine(p.se))
}

// registerReports registers pion's RTCP sender and receiver reports.
func registerReports(ir *interceptor.Registry, logs pionLogs) error {
	return webrtc.ConfigureRTCPReportsWithOptions(ir,
		[]report.ReceiverOption{report.WithReceiverLoggerFactory(logs)},
		report.WithSenderLoggerFactory(logs))
}

// registerInterceptors is webrtc.RegisterDefaultInterceptorsWithOptions
// without the stats interceptor.
func registerInterceptors(me *webrtc.MediaEngine, ir *interceptor.Registry, logs pionLogs) error {
	err := webrtc.ConfigureNackWithOptions(me, ir,
		[]nack.GeneratorOption{nack.WithGeneratorLoggerFactory(logs)},
		nack.WithResponderLoggerFactory(logs))
	if err == nil {
		err = registerReports(ir, logs)
	}
	if err == nil {
		err = webrtc.ConfigureSimulcastExtensionHeaders(me)
	}
	if err == nil {
		err = webrtc.ConfigureTWCCSenderWithOptions(me, ir, twcc.WithLoggerFactory(logs))
	}
	return err
}

// setICE sets the ICE behaviour every PeerConnection of this package
// shares, sessions and links alike: IPv4 UDP, no mDNS, consent timeouts
// from disconnect, and loopback candidates where they are needed.
func setICE(se *webrtc.SettingEngine, loopbackOnly bool, disconnect time.Duration, log *slog.Logger) {
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	// Browsers hide their host addresses behind mDNS names, which a server
	// cannot resolve; their checks arrive anyway and become peer-reflexive
	// candidates (RFC 8445 §7.3.1.3), so mDNS is off.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// ICE consent (RFC 7675) keeps the pair alive; a peer silent for the
	// disconnect timeout fails and leaves its room.
	disc := min(5*time.Second, disconnect/2)
	se.SetICETimeouts(disc, disconnect-disc, 2*time.Second)
	switch {
	case loopbackOnly:
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	case !hasExternalIPv4():
		// pion leaves loopback out of the candidates, so a host whose only
		// IPv4 interface is loopback (a container or network namespace
		// without a network) would answer with no candidate at all, which
		// no peer can reach. Its loopback address at least serves the
		// peers on the same host, such as the browser tests.
		log.Warn("no IPv4 address but loopback: offering loopback ICE candidates")
		se.SetIncludeLoopbackCandidate(true)
	}
}

// hasExternalIPv4 reports whether an interface that is up has an IPv4
// address other than loopback, which pion's ICE candidates would use.
func hasExternalIPv4() bool {
	ifaces, err := net.Interfaces()
	if err != nil {
		return true // assume a normal host; pion reports its own trouble
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() {
				return true
			}
		}
	}
	return false
}

// Payload types the answer uses; the offer's own numbers win where pion
// matches a codec (RFC 8829 §5.3.1).
const (
	opusPT = 111
	// Opus's fmtp: in-band FEC (RFC 7587 §6.1) and 10 ms packets at the
	// least; the room always sends 20 ms.
	opusFmtp = "minptime=10;useinbandfec=1"
)

// registerCodecs registers Opus 48 kHz stereo-signalled (RFC 7587 §7) for
// audio and the H.264 profiles browsers offer for presenter video
// (RFC 6184, packetization-mode 1), each with NACK, PLI and FIR feedback so
// keyframe requests can be forwarded to the presenter. Audio takes the
// RFC 6464 audio level header extension, which browsers send on every
// packet: a packet whose level says silence is not decoded (voice.readAudio).
func registerCodecs(me *webrtc.MediaEngine) error {
	err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI},
		webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverDirectionRecvonly)
	if err != nil {
		return err
	}
	err = me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: opusFmtp,
		},
		PayloadType: opusPT,
	}, webrtc.RTPCodecTypeAudio)
	if err != nil {
		return err
	}
	feedback := []webrtc.RTCPFeedback{
		{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"},
	}
	for _, c := range []struct {
		pt   webrtc.PayloadType
		fmtp string
	}{
		{102, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"},
		{106, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"},
		{127, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f"},
		{112, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f"},
	} {
		err := me.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: c.fmtp, RTCPFeedback: feedback,
			},
			PayloadType: c.pt,
		}, webrtc.RTPCodecTypeVideo)
		if err != nil {
			return err
		}
	}
	return nil
}

// Addr is the bound UDP address all media uses (the actual port when
// Settings.UDPPort was 0).
func (s *Server) Addr() net.Addr { return s.conn.LocalAddr() }

// Sessions returns the number of open WHIP and WHEP sessions.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// SessionCounts returns the open sessions split into WHIP publishers
// (they send audio) and WHEP listeners (they only receive the mix), for
// the participants-by-kind metric.
func (s *Server) SessionCounts() (publishers, listeners int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.sessions {
		if p.listen {
			listeners++
		} else {
			publishers++
		}
	}
	return publishers, listeners
}

// register adds p and starts its session goroutine, unless the server is
// closing.
func (s *Server) register(p *participant) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrServerClosed
	}
	s.sessions[p.session] = p
	s.wg.Go(p.run)
	return nil
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// unregister forgets session id; it reports whether it was there.
func (s *Server) unregister(id string) *participant {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.sessions[id]
	delete(s.sessions, id)
	return p
}

// unregisterIf forgets p's session if it is still registered to p.
func (s *Server) unregisterIf(p *participant) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[p.session] == p {
		delete(s.sessions, p.session)
	}
}

// lookup returns the session id, or nil.
func (s *Server) lookup(id string) *participant {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[id]
}

// Close stops taking sessions, takes every session out of its room, closes
// their PeerConnections and the UDP port, and waits for all goroutines, or
// for ctx. It does not close the room.Manager, which has its own owner.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	open := make([]*participant, 0, len(s.sessions))
	for _, p := range s.sessions {
		open = append(open, p)
	}
	s.mu.Unlock()
	for _, p := range open {
		p.stop(ErrServerClosed)
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("rtc: close: %w", ctx.Err())
	}
	if !already {
		_ = s.mux.Close()
		_ = s.conn.Close()
	}
	return err
}

// pionLogs adapts pion's logging to slog. pion is chatty: info reports
// every ICE state change of every session, and most warnings are the
// normal races of a teardown ("stream is already closed"), so everything
// below its errors goes to debug, and its errors, which are about one
// session, come out as warnings.
type pionLogs struct{ log *slog.Logger }

// NewLogger returns the logger for one pion scope (ice, dtls, pc, ...).
func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) emit(level slog.Level, msg string) {
	l.log.Log(context.Background(), level, msg)
}

func (l pionLogger) emitf(level slog.Level, format string, args ...any) {
	if l.log.Enabled(context.Background(), level) {
		l.emit(level, fmt.Sprintf(format, args...))
	}
}

func (l pionLogger) Trace(msg string)                  { l.emit(slog.LevelDebug-4, msg) }
func (l pionLogger) Tracef(format string, args ...any) { l.emitf(slog.LevelDebug-4, format, args...) }
func (l pionLogger) Debug(msg string)                  { l.emit(slog.LevelDebug, msg) }
func (l pionLogger) Debugf(format string, args ...any) { l.emitf(slog.LevelDebug, format, args...) }
func (l pionLogger) Info(msg string)                   { l.emit(slog.LevelDebug, msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.emitf(slog.LevelDebug, format, args...) }
func (l pionLogger) Warn(msg string)                   { l.emit(slog.LevelDebug, msg) }
func (l pionLogger) Warnf(format string, args ...any)  { l.emitf(slog.LevelDebug, format, args...) }
func (l pionLogger) Error(msg string)                  { l.emit(slog.LevelWarn, msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.emitf(slog.LevelWarn, format, args...) }

// Handler serves the WHIP and WHEP endpoints; api mounts it on "/whip/" and
// "/whep/":
//
//	POST    /whip/{room}            join: SDP offer in, 201 + answer (RFC 9725 §4.2)
//	DELETE  /whip/{room}/{session}  leave (RFC 9725 §4.3)
//	OPTIONS /whip/{room}[/{session}] CORS preflight, Accept-Post (RFC 9725 §4.2)
//	PATCH   /whip/{room}/{session}  405: no trickle ICE or ICE restart
//
// and the same under /whep/ for listeners.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, kind := range []string{"whip", "whep"} {
		listen := kind == "whep"
		mux.HandleFunc("POST /"+kind+"/{room}", func(w http.ResponseWriter, r *http.Request) { s.post(w, r, listen) })
		mux.HandleFunc("OPTIONS /"+kind+"/{room}", s.optionsEndpoint)
		mux.HandleFunc("DELETE /"+kind+"/{room}/{session}", func(w http.ResponseWriter, r *http.Request) { s.delete(w, r, listen) })
		mux.HandleFunc("PATCH /"+kind+"/{room}/{session}", s.patch)
		mux.HandleFunc("OPTIONS /"+kind+"/{room}/{session}", s.optionsSession)
	}
	return s.cors(mux)
}
