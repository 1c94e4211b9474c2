package stream

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/mediagate/mediagate/room"
)

// Defaults of Options; the admin config documents them.
const (
	// DefaultAudioBitrate is the AAC bitrate: 128 kbit/s, what YouTube and
	// Twitch recommend for stereo and more than mono speech needs, so the
	// platforms' own re-encode has clean input.
	DefaultAudioBitrate = 128000
	// DefaultAudioChannels is mono: the room's mix is mono.
	DefaultAudioChannels = 1
	// DefaultTimeout bounds each connection step (dial with TLS, RTMP
	// handshake, connect, createStream, publish) and each write: platforms
	// answer in well under a second; 10 s rides out a slow link.
	DefaultTimeout = 10 * time.Second
	// DefaultBackoffMin is the first wait before a reconnect: it doubles
	// after each failure up to DefaultBackoffMax, with ±20 % jitter so
	// that many egresses cut off at once do not come back at once.
	DefaultBackoffMin = time.Second
	// DefaultBackoffMax caps the wait: a platform that is down for long
	// is tried once a minute.
	DefaultBackoffMax = 60 * time.Second
	// DefaultQueue is each destination's queue, in FLV tags: 512 is about
	// 6 s of 30 fps video plus audio (77 tags a second), enough to ride
	// out a stalled TCP window without dropping.
	DefaultQueue = 512
	// RecommendedMixBuffer is the ring size (frames) to subscribe to a
	// room's mix with for an egress: 1 s. The egress reads it at once; the
	// ring only has to cover scheduling delays.
	RecommendedMixBuffer = 50
	// RecommendedVideoBuffer is the ring size (RTP packets) to subscribe
	// to a presenter's video with: about a second of 720p keyframe.
	RecommendedVideoBuffer = 512
	// DefaultFenceInterval is how often a live destination asks
	// Options.Fence whether the node still owns the room, besides before
	// every connection: a node that lost the room pushes at most about a
	// second more.
	DefaultFenceInterval = time.Second
)

// Options configure an Egress. Zero fields take the defaults named on them.
type Options struct {
	// Room names the egress's room in logs, events and status.
	Room room.ID
	// AudioBitrate is the AAC-LC bitrate in bit/s; default
	// DefaultAudioBitrate.
	AudioBitrate int
	// AudioChannels is 1 (default) or 2; stereo carries the mono mix on
	// both channels, for platforms that insist on stereo.
	AudioChannels int
	// Timeout bounds each connection step and each write; default
	// DefaultTimeout.
	Timeout time.Duration
	// BackoffMin and BackoffMax bound the reconnect backoff; defaults
	// DefaultBackoffMin and DefaultBackoffMax.
	BackoffMin, BackoffMax time.Duration
	// Queue is each destination's queue length in FLV tags; default
	// DefaultQueue.
	Queue int
	// ExtraRootCAs are trusted for rtmps besides the system roots: a
	// private CA in front of an in-house ingest, or a test's.
	ExtraRootCAs []*x509.Certificate
	// AllowPrivate lets destinations resolve to loopback, private,
	// link-local and shared addresses. Off by default: an admin API that
	// connects anywhere is a way into the operator's own network. Tests
	// set it.
	AllowPrivate bool
	// Dial opens TCP connections; default a net.Dialer that refuses
	// non-public addresses (unless AllowPrivate) at connect time, so a
	// host name that resolves differently after Add is caught too. Tests
	// inject their own.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Resolver looks up host names when a destination is added; default
	// net.DefaultResolver.
	Resolver Resolver
	// Epoch is the fencing epoch of the room's lease this egress pushes
	// under (decision 4); Fence is asked about it.
	Epoch uint64
	// Fence tells whether this node still owns Room at Epoch: New and Add
	// refuse a stale epoch, every connection and reconnect of every
	// destination asks first, and live destinations ask every
	// FenceInterval. The zero Fence is one node, owning every room.
	Fence Fence
	// FenceInterval is how often a live destination asks Fence; default
	// DefaultFenceInterval.
	FenceInterval time.Duration
	// Now is the clock for timestamps, status times and bitrates; default
	// time.Now.
	Now func() time.Time
	// Logger gets the egress's logs (component=stream, room); default
	// discards. Destinations appear by ID and masked URL, never by key.
	Logger *slog.Logger
	// OnEvent, when set, is called for every Event from the goroutine that
	// caused it, with no lock held. It must return quickly and must not
	// call Remove or Close, which wait for that goroutine.
	OnEvent func(Event)
}

// withDefaults checks o and fills in the defaults.
func (o Options) withDefaults() (Options, error) {
	if o.AudioBitrate == 0 {
		o.AudioBitrate = DefaultAudioBitrate
	}
	if o.AudioChannels == 0 {
		o.AudioChannels = DefaultAudioChannels
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.BackoffMin == 0 {
		o.BackoffMin = DefaultBackoffMin
	}
	if o.BackoffMax == 0 {
		o.BackoffMax = max(DefaultBackoffMax, o.BackoffMin)
	}
	if o.Queue == 0 {
		o.Queue = DefaultQueue
	}
	if o.FenceInterval <= 0 {
		o.FenceInterval = DefaultFenceInterval
	}
	switch {
	case o.AudioChannels != 1 && o.AudioChannels != 2:
		return o, fmt.Errorf("%w: AudioChannels %d, want 1 or 2", ErrOptions, o.AudioChannels)
	case o.Timeout < 0:
		return o, fmt.Errorf("%w: Timeout must be positive", ErrOptions)
	case o.BackoffMin < 0 || o.BackoffMax < o.BackoffMin:
		return o, fmt.Errorf("%w: BackoffMin must be positive and not above BackoffMax", ErrOptions)
	case o.Queue < 16:
		return o, fmt.Errorf("%w: Queue %d, want at least 16", ErrOptions, o.Queue)
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Dial == nil {
		d := &net.Dialer{KeepAlive: 15 * time.Second}
		if !o.AllowPrivate {
			d.ControlContext = refusePrivate
		}
		o.Dial = d.DialContext
	}
	return o, nil
}

// refusePrivate is the default dialer's check of the address it is about
// to connect to, after resolution: see ErrPrivateAddress.
func refusePrivate(_ context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !publicAddr(ap.Addr()) {
		return fmt.Errorf("%w (%s)", ErrPrivateAddress, address)
	}
	return nil
}

// rootPool is the system roots plus extra.
func rootPool(extra []*x509.Certificate) *x509.CertPool {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, c := range extra {
		pool.AddCert(c)
	}
	return pool
}
