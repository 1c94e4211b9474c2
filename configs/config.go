// Package configs holds mediagate's configuration: the defaults, the shipped
// and embedded mediagate.yaml that documents them, and Load, which applies
// defaults → file → MEDIAGATE_* environment → Validate.
package configs

import (
	"errors"
	"os"
	"time"
)

// Config is the whole configuration of one mediagate node. Every field has a
// default (see Default) and a commented entry in mediagate.yaml.
type Config struct {
	Node Node `yaml:"node"`
	Log  Log  `yaml:"log"`
	HTTP HTTP `yaml:"http"`
	Auth Auth `yaml:"auth"`
	SIP  SIP  `yaml:"sip"`
	RTP  RTP  `yaml:"rtp"`
	// Dialin leads phone calls into rooms: dispatch rules by dialed
	// number, prompt language and files.
	Dialin  Dialin  `yaml:"dialin"`
	WebRTC  WebRTC  `yaml:"webrtc"`
	Storage Storage `yaml:"storage"`
	// Recording is how rooms are recorded and how long recordings are
	// kept.
	Recording Recording `yaml:"recording"`
	// Stream is how rooms are pushed live to streaming platforms.
	Stream Stream `yaml:"stream"`
	// Redis joins nodes into a cluster (cluster.go); without an address
	// the node keeps its state in memory.
	Redis Redis `yaml:"redis"`
	// Cluster is how this node behaves in a cluster and how the others
	// reach it.
	Cluster Cluster `yaml:"cluster"`
	// Conference holds what every room gets unless its own entry says
	// otherwise.
	Conference Conference `yaml:"conference"`
	// Rooms are the rooms the operator defines, by room ID (see Room).
	Rooms map[string]Room `yaml:"rooms"`
	// Webhooks are the endpoints that receive the node's events, by name
	// (see Webhook).
	Webhooks map[string]Webhook `yaml:"webhooks"`
}

// Node identifies this gateway and bounds its shutdown.
type Node struct {
	// ID names the node in a cluster; empty means the host name.
	ID string `yaml:"id"`
	// DrainTimeout is how long SIGTERM waits for calls and requests to end
	// before the node stops anyway.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// MaxParticipants is the node's capacity in participants (phone
	// callers, WebRTC participants and listeners of all its rooms
	// together): at or above it /readyz answers 429 so that load
	// balancers send new work elsewhere. It refuses nobody by itself (the
	// hard caps are rooms.<id>.max_participants and sip.guard.max_calls).
	// 0 means no limit.
	MaxParticipants int `yaml:"max_participants"`
}

// Log chooses the level and format of the node's log.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
	// AnonymizeIPs cuts IP addresses in log lines and audit entries to
	// their /24 (IPv4) or /48 (IPv6); false logs them whole.
	AnonymizeIPs bool `yaml:"anonymize_ips"`
}

// HTTP is the listener for pages, WHIP/WHEP, the admin API, metrics and health.
type HTTP struct {
	Listen string `yaml:"listen"`
	// TLSCert and TLSKey are PEM files (the certificate chain, leaf
	// first, and its private key): when set, the listener serves HTTPS
	// only. Both or neither.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// TLSSelfSigned serves HTTPS with a self-signed certificate the node
	// makes at its first start and keeps in storage.dir
	// (SelfSignedCertFile, SelfSignedKeyFile), for development. Not with
	// TLSCert.
	TLSSelfSigned bool `yaml:"tls_self_signed"`
	// PprofListen, when set, serves Go's profiler (net/http/pprof) on a
	// listener of its own at this loopback address, for profiling a
	// node under load. It has no authentication, hence loopback only.
	PprofListen string `yaml:"pprof_listen"`
}

// Files of http.tls_self_signed in storage.dir.
const (
	SelfSignedCertFile = "self-signed.crt"
	SelfSignedKeyFile  = "self-signed.key"
)

// TLS reports whether the HTTP listener serves HTTPS.
func (h HTTP) TLS() bool { return h.TLSCert != "" || h.TLSSelfSigned }

// httpTLS checks the TLS keys of the http section: a certificate comes
// with its key, both files exist, and a self-signed certificate is not
// asked for beside them.
func (v *validator) httpTLS(h HTTP) {
	// Blame the key the operator set: the other has no line to point at.
	switch {
	case h.TLSCert != "" && h.TLSKey == "":
		v.fail("http.tls_cert", "set without http.tls_key (both or neither)")
	case h.TLSKey != "" && h.TLSCert == "":
		v.fail("http.tls_key", "set without http.tls_cert (both or neither)")
	case h.TLSCert != "" && h.TLSSelfSigned:
		v.fail("http.tls_self_signed", "true beside http.tls_cert (one or the other)")
	case h.TLSCert != "":
		for _, k := range []struct{ key, path string }{{"http.tls_cert", h.TLSCert}, {"http.tls_key", h.TLSKey}} {
			if _, err := os.Stat(k.path); err != nil {
				var pe *os.PathError
				if errors.As(err, &pe) {
					err = pe.Err
				}
				v.fail(k.key, "%q: %v", k.path, err)
			}
		}
	}
}

// SIP is the SIP user agent: its listeners (UDP and TCP on the same
// address, TLS on its own), the codecs it negotiates, when it gives up on
// a silent or forgotten call, the address it announces behind NAT, and the
// trunks that may call it.
type SIP struct {
	Listen string `yaml:"listen"`
	// Codecs is the audio codec preference order, most preferred first
	// (see SIPCodecs); an offer gets the first it contains. Empty means
	// package sip's built-in order (sip.DefaultCodecs).
	Codecs []string `yaml:"codecs"`
	// MediaTimeout hangs up a call that received no RTP or RTCP for this
	// long while not on hold; 0 means package sip's built-in 30s.
	MediaTimeout time.Duration `yaml:"media_timeout"`
	// HideUnknown sends no response at all to requests that no trunk
	// could accept, instead of 403 Forbidden, so scanners find nothing.
	HideUnknown bool `yaml:"hide_unknown"`
	// Trunks are the carrier connections calls come in on, by name (see
	// Trunk); none means every caller is accepted.
	Trunks map[string]Trunk `yaml:"trunks"`
	// SessionExpires is the session timer interval asked for and accepted
	// at most (RFC 4028): a call nobody refreshes for this long ends.
	SessionExpires time.Duration `yaml:"session_expires"`
	// MinSE is the shortest session interval accepted; callers asking for
	// less get 422 Session Interval Too Small (RFC 4028 §6).
	MinSE time.Duration `yaml:"min_se"`
	// MaxCallDuration ends every call after this long; 0 means no limit.
	MaxCallDuration time.Duration `yaml:"max_call_duration"`
	// ExternalAddress is the IP address put in SDP and Contact instead of
	// the local one, for a node behind a 1:1 NAT; empty means the local
	// address.
	ExternalAddress string `yaml:"external_address"`
	// TLS is the SIP over TLS listener, on when a certificate is set.
	TLS SIPTLS `yaml:"tls"`
	// Guard is the abuse guard (guard.go).
	Guard SIPGuard `yaml:"guard"`
}

// SIPTLS is the SIP over TLS listener (RFC 3261 §26.2): off while Cert
// and Key are empty.
type SIPTLS struct {
	Listen string `yaml:"listen"`
	// Cert is the PEM file with the certificate (chain) the listener
	// presents.
	Cert string `yaml:"cert"`
	// Key is the PEM file with the certificate's private key.
	Key string `yaml:"key"`
}

// Enabled reports whether the TLS listener is configured.
func (t SIPTLS) Enabled() bool { return t.Cert != "" && t.Key != "" }

// RTP is the UDP port range for phone calls' media, and whether calls
// share one pair of it (sip.WithSharedRTP).
type RTP struct {
	PortMin int  `yaml:"port_min"`
	PortMax int  `yaml:"port_max"`
	Shared  bool `yaml:"shared"`
}

// WebRTC holds the ICE settings for browser participants (package rtc).
type WebRTC struct {
	// UDPPort is the single UDP port all WebRTC media is multiplexed on.
	UDPPort int `yaml:"udp_port"`
	// PublicIPs are the addresses announced in ICE host candidates instead
	// of the interface addresses, for a node behind a 1:1 NAT (a cloud VM
	// with an elastic IP). Empty announces the interface addresses.
	PublicIPs []string `yaml:"public_ips"`
	// OpusApplication is libopus's tuning for the mixes the rooms encode
	// for WebRTC participants: voip, audio or lowdelay (CELT only, no FEC).
	OpusApplication string `yaml:"opus_application"`
	// OpusComplexity (0..10) is libopus's complexity for those mixes: CPU
	// against quality per bit.
	OpusComplexity int `yaml:"opus_complexity"`
	// DirectSRTP sends the room mix to browsers around pion, encrypted
	// with each session's own SRTP keys (about 15 % less CPU per listener);
	// false sends it through pion's track.
	DirectSRTP bool `yaml:"direct_srtp"`
}

// Storage is where recordings, manifests and receipts are kept, and how
// long the audit log keeps each class of entries.
type Storage struct {
	Dir string `yaml:"dir"`
	// AuditInstructionYears is how many full calendar years after their
	// year instruction entries (changes) are kept.
	AuditInstructionYears int `yaml:"audit_instruction_years"`
	// AuditAccessRetention is how long access entries (reads) are kept.
	AuditAccessRetention time.Duration `yaml:"audit_access_retention"`
}

// Conference is how rooms behave: when an empty room closes and how many
// voices are mixed at once.
type Conference struct {
	// EmptyTimeout is how long a room that nobody is in stays open
	// before it closes. Configured rooms (the rooms section) stay open.
	EmptyTimeout time.Duration `yaml:"empty_timeout"`
	// MaxSpeakers is how many voices are mixed at once, the loudest win.
	MaxSpeakers int `yaml:"max_speakers"`
}

// Default returns the built-in configuration: one node, no Redis, data under
// ./data. It equals the shipped mediagate.yaml (a test holds them together).
func Default() Config {
	return Config{
		Node:       Node{DrainTimeout: 30 * time.Second},
		Log:        Log{Level: "info", Format: "text", AnonymizeIPs: true},
		HTTP:       HTTP{Listen: ":8080"},
		SIP:        defaultSIP(),
		RTP:        RTP{PortMin: 10000, PortMax: 20000},
		Dialin:     Dialin{Language: "en", Numbers: map[string]DialinNumber{}},
		WebRTC:     WebRTC{UDPPort: 7882, OpusApplication: "voip", OpusComplexity: 1, DirectSRTP: true}, // rtc.DefaultOpusComplexity
		Storage:    Storage{Dir: "./data", AuditInstructionYears: 3, AuditAccessRetention: 180 * 24 * time.Hour},
		Recording:  defaultRecording(),
		Stream:     defaultStream(),
		Auth:       Auth{PageTokenLifetime: 10 * time.Minute, PINLockout: defaultPINLockout()},
		Rooms:      map[string]Room{},
		Webhooks:   map[string]Webhook{},
		Conference: Conference{EmptyTimeout: 30 * time.Second, MaxSpeakers: 4},
		Redis:      Redis{Timeout: 2 * time.Second},
		Cluster:    Cluster{LeaseTTL: 5 * time.Second, NodeTTL: 5 * time.Second},
	}
}

// defaultSIP is the SIP section's defaults: the standard ports (RFC 3261
// §19.1.2), and session timers of 30 minutes with the RFC 4028 §4 minimum.
func defaultSIP() SIP {
	return SIP{Listen: ":5060", SessionExpires: 30 * time.Minute, MinSE: 90 * time.Second,
		TLS: SIPTLS{Listen: ":5061"}, Trunks: map[string]Trunk{}, Guard: defaultSIPGuard()}
}

// NodeID returns node.id when set, otherwise the host name (or
// "mediagate" without one). `mediagate serve` sets node.id before anything
// asks, from storage.dir/node-id when it is empty (cmd/mediagate/nodeid.go),
// so this fallback serves only code that runs without a node.
func (c Config) NodeID() string {
	if c.Node.ID != "" {
		return c.Node.ID
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "mediagate"
}
