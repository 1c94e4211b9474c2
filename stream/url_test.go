package stream

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestParseTarget: good URLs give the application, key, tcUrl and masked
// form platforms need; bad ones fail with the right error, which never
// contains the key.
func TestParseTarget(t *testing.T) {
	good := []struct {
		url, key                 string
		host, addr, app, wantKey string
		tcURL                    string
		tls                      bool
	}{
		{"rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl", "", "a.rtmp.youtube.com", "a.rtmp.youtube.com:1935", "live2", "abcd-efgh-ijkl", "rtmp://a.rtmp.youtube.com/live2", false},
		{"rtmps://live-api-s.facebook.com:443/rtmp/", "FB-123-abc", "live-api-s.facebook.com", "live-api-s.facebook.com:443", "rtmp", "FB-123-abc", "rtmps://live-api-s.facebook.com:443/rtmp", true},
		{"rtmps://ingest.example/live", "k1", "ingest.example", "ingest.example:443", "live", "k1", "rtmps://ingest.example/live", true},
		{"rtmp://live.twitch.tv/app/live_123_abc?bandwidthtest=true", "", "live.twitch.tv", "live.twitch.tv:1935", "app", "live_123_abc?bandwidthtest=true", "rtmp://live.twitch.tv/app", false},
		{"RTMP://h.example:1936/app/inst/key", "", "h.example", "h.example:1936", "app/inst", "key", "rtmp://h.example:1936/app/inst", false},
		{"rtmp://[2001:db8::1]:1937/live/k%20x", "", "2001:db8::1", "[2001:db8::1]:1937", "live", "k x", "rtmp://[2001:db8::1]:1937/live", false},
	}
	for _, g := range good {
		tg, err := parseTarget(g.url, g.key)
		require.NoError(t, err, g.url)
		require.Equal(t, g.host, tg.host, g.url)
		require.Equal(t, g.addr, tg.addr(), g.url)
		require.Equal(t, g.app, tg.app, g.url)
		require.Equal(t, g.wantKey, tg.key, g.url)
		require.Equal(t, g.tcURL, tg.tcURL, g.url)
		require.Equal(t, g.tcURL, tg.masked, g.url)
		require.Equal(t, g.tls, tg.tls, g.url)
	}

	const key = "SECRETKEY99"
	bad := []struct {
		url, key string
		want     error
	}{
		{"http://h.example/live/" + key, "", ErrUnsupportedScheme},
		{"rtmpt://h.example/live/" + key, "", ErrUnsupportedScheme},
		{"srt://h.example:9000?streamid=" + key, "", ErrUnsupportedScheme},
		{"h.example/live/" + key, "", ErrUnsupportedScheme},
		{"rtmp:///live/" + key, "", ErrInvalidURL},
		{"rtmp://h.example/", "", ErrInvalidURL},
		{"rtmp://h.example/" + key, "", ErrInvalidURL}, // no application
		{"rtmp://h.example/live/", "", ErrInvalidURL},  // no key
		{"rtmp://h.example:0/live/" + key, "", ErrInvalidURL},
		{"rtmp://h.example:70000/live/" + key, "", ErrInvalidURL},
		{"rtmp://user:pw@h.example/live/" + key, "", ErrInvalidURL},
		{"rtmp://h.example/live/" + key + "#x", "", ErrInvalidURL},
		{"rtmp://h.example/live/%zz" + key, "", ErrInvalidURL},
		{"rtmp://h.example/live?x=1", key, ErrInvalidURL},
		{"rtmp://h.example/live/a%0Ab" + key, "", ErrInvalidURL},
		{"rtmp://h.example/live/" + strings.Repeat("k", 3000), "", ErrInvalidURL},
	}
	for _, b := range bad {
		_, err := parseTarget(b.url, b.key)
		require.ErrorIs(t, err, b.want, b.url)
		require.NotContains(t, err.Error(), key, b.url)
	}
	_, err := parseTarget("http://h.example:8080/live/"+key, "")
	require.EqualError(t, err, "unsupported destination scheme: http://h.example:8080/live (want rtmp or rtmps)")
}

// fakeResolver answers from a table.
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	addrs, ok := f[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, a := range addrs {
		out = append(out, netip.MustParseAddr(a))
	}
	return out, nil
}

// TestAddRefusesPrivate: without AllowPrivate, destinations that are or
// resolve to loopback, private, link-local, shared, multicast or
// unspecified addresses are refused by Add, naming the destination
// without its key; public ones are taken. The default dialer refuses them
// again at connect time.
func TestAddRefusesPrivate(t *testing.T) {
	dialed := make(chan string, 10)
	opts := Options{
		Resolver: fakeResolver{
			"intranet.example": {"10.0.0.5"},
			"mixed.example":    {"203.0.113.7", "192.168.1.1"},
			"public.example":   {"203.0.113.7", "2001:db8::7"},
		},
		Dial: func(_ context.Context, _, addr string) (net.Conn, error) {
			dialed <- addr
			return nil, errors.New("test: no network")
		},
		BackoffMin: DefaultBackoffMax,
	}
	eg, err := New(newMixFeed(), nil, opts)
	require.NoError(t, err)
	defer eg.Close()
	const key = "SECRETKEY42"
	for _, host := range []string{
		"127.0.0.1", "127.8.9.10", "[::1]", "10.1.2.3", "172.16.0.1", "192.168.0.1", "169.254.169.254",
		"[fe80::1]", "[fc00::1]", "100.64.0.1", "0.0.0.0", "224.0.0.1", "[::ffff:127.0.0.1]",
		"intranet.example", "mixed.example",
	} {
		_, err := eg.Add(context.Background(), Destination{URL: "rtmp://" + host + "/live/" + key})
		require.ErrorIs(t, err, ErrPrivateAddress, host)
		require.Contains(t, err.Error(), "rtmp://"+host+"/live", host)
		require.NotContains(t, err.Error(), key, host)
	}
	_, err = eg.Add(context.Background(), Destination{URL: "rtmp://nowhere.example/live/" + key})
	require.ErrorIs(t, err, ErrResolve)
	require.NotContains(t, err.Error(), key)

	id, err := eg.Add(context.Background(), Destination{URL: "rtmp://public.example/live/" + key})
	require.NoError(t, err)
	require.Equal(t, "public.example:1935", <-dialed)
	require.Len(t, eg.Status().Destinations, 1)
	_, err = eg.Add(context.Background(), Destination{URL: "rtmp://public.example/live/" + key})
	require.ErrorIs(t, err, ErrDuplicate)
	_, err = eg.Add(context.Background(), Destination{ID: id, URL: "rtmp://public.example/live/other"})
	require.ErrorIs(t, err, ErrDuplicate)
	for _, bad := range []DestinationID{"a/b", "x y", DestinationID(strings.Repeat("i", 65)), "ü"} {
		_, err = eg.Add(context.Background(), Destination{ID: bad, URL: "rtmp://public.example/live/other"})
		require.ErrorIs(t, err, ErrInvalidID, bad)
	}

	// The default dialer checks the address it connects to.
	def, err := Options{}.withDefaults()
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	_, err = def.Dial(context.Background(), "tcp", l.Addr().String())
	require.ErrorIs(t, err, ErrPrivateAddress)
	require.NoError(t, refusePrivate(context.Background(), "tcp4", "203.0.113.7:1935", nil))
}

// TestOptionsAndLifecycle: bad options fail with ErrOptions, errors carry
// their HTTP status, a closed egress takes no destinations.
func TestOptionsAndLifecycle(t *testing.T) {
	for _, o := range []Options{
		{AudioChannels: 3}, {Queue: 4}, {BackoffMin: 2 * DefaultBackoffMax, BackoffMax: DefaultBackoffMax},
		{Timeout: -1}, {AudioBitrate: 1},
	} {
		_, err := New(newMixFeed(), nil, o)
		require.ErrorIs(t, err, ErrOptions, "%+v", o)
	}
	var hs interface{ HTTPStatus() int }
	require.ErrorAs(t, error(ErrNotFound), &hs)
	require.Equal(t, http.StatusNotFound, hs.HTTPStatus())

	eg, err := New(newMixFeed(), newVideoFeed(), Options{})
	require.NoError(t, err)
	require.ErrorIs(t, eg.Remove("nope"), ErrNotFound)
	_, err = eg.Destination("nope")
	require.ErrorIs(t, err, ErrNotFound)
	require.NoError(t, eg.Close())
	require.NoError(t, eg.Close())
	_, err = eg.Add(context.Background(), Destination{URL: "rtmp://203.0.113.7/live/k"})
	require.ErrorIs(t, err, ErrClosed)
	require.True(t, eg.Status().Ended)
}
