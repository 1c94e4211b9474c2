package configs

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestValidate: each rule accepts its edge values and refuses the values just
// outside, with a message naming the key.
func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string // "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"node id 64 chars", func(c *Config) { c.Node.ID = strings.Repeat("a", 64) }, ""},
		{"node id charset", func(c *Config) { c.Node.ID = "gw-1.eu_west" }, ""},
		{"node id 65 chars", func(c *Config) { c.Node.ID = strings.Repeat("a", 65) },
			`node.id: "` + strings.Repeat("a", 65) + `" must be at most 64 characters from A-Z a-z 0-9 . _ -`},
		{"node id slash", func(c *Config) { c.Node.ID = "a/b" },
			`node.id: "a/b" must be at most 64 characters from A-Z a-z 0-9 . _ -`},
		{"drain 0", func(c *Config) { c.Node.DrainTimeout = 0 }, ""},
		{"drain 1h", func(c *Config) { c.Node.DrainTimeout = time.Hour }, ""},
		{"drain over 1h", func(c *Config) { c.Node.DrainTimeout = time.Hour + time.Second },
			"node.drain_timeout: 1h0m1s out of range 0s..1h"},
		{"drain negative", func(c *Config) { c.Node.DrainTimeout = -time.Nanosecond },
			"node.drain_timeout: -1ns out of range 0s..1h"},
		{"level debug", func(c *Config) { c.Log.Level = "debug" }, ""},
		{"level upper case", func(c *Config) { c.Log.Level = "INFO" },
			`log.level: "INFO" is not one of debug, info, warn, error`},
		{"format empty", func(c *Config) { c.Log.Format = "" },
			`log.format: "" is not one of text, json`},
		{"listen ipv6", func(c *Config) { c.HTTP.Listen = "[::1]:8443" }, ""},
		{"pprof ipv4 loopback", func(c *Config) { c.HTTP.PprofListen = "127.0.0.1:6060" }, ""},
		{"pprof ipv6 loopback", func(c *Config) { c.HTTP.PprofListen = "[::1]:0" }, ""},
		{"pprof localhost", func(c *Config) { c.HTTP.PprofListen = "localhost:6060" }, ""},
		{"pprof all interfaces", func(c *Config) { c.HTTP.PprofListen = ":6060" },
			`http.pprof_listen: ":6060": host must be a loopback address such as 127.0.0.1 or [::1] (the profiler has no authentication)`},
		{"pprof host name", func(c *Config) { c.HTTP.PprofListen = "gw.example:6060" },
			`http.pprof_listen: "gw.example:6060": host must be a loopback address such as 127.0.0.1 or [::1] (the profiler has no authentication)`},
		{"pprof bad port", func(c *Config) { c.HTTP.PprofListen = "127.0.0.1:70000" },
			`http.pprof_listen: "127.0.0.1:70000": port 70000 out of range 0..65535`},
		{"pprof no port", func(c *Config) { c.HTTP.PprofListen = "127.0.0.1" },
			`http.pprof_listen: "127.0.0.1" is not host:port: missing port in address`},
		{"listen port 0", func(c *Config) { c.SIP.Listen = "127.0.0.1:0" }, ""},
		{"listen too many colons", func(c *Config) { c.HTTP.Listen = "::1:80" },
			`http.listen: "::1:80" is not host:port: too many colons in address`},
		{"listen port too big", func(c *Config) { c.SIP.Listen = ":65536" },
			`sip.listen: ":65536": port 65536 out of range 0..65535`},
		{"listen empty port", func(c *Config) { c.HTTP.Listen = "localhost:" },
			`http.listen: "localhost:": port "" is not a number`},
		{"rtp smallest range", func(c *Config) { c.RTP = RTP{PortMin: 1024, PortMax: 1025} }, ""},
		{"rtp top", func(c *Config) { c.RTP = RTP{PortMin: 65534, PortMax: 65535} }, ""},
		{"rtp below 1024", func(c *Config) { c.RTP.PortMin = 1022 },
			"rtp.port_min: 1022 out of range 1024..65535"},
		{"rtp equal", func(c *Config) { c.RTP = RTP{PortMin: 20000, PortMax: 20000} },
			"rtp.port_max: 20000 must be above rtp.port_min (20000)"},
		{"rtp odd min", func(c *Config) { c.RTP.PortMin = 10001 },
			"rtp.port_min: 10001 must be even (RFC 3550 §11)"},
		{"webrtc 0", func(c *Config) { c.WebRTC.UDPPort = 0 }, ""},
		{"opus complexity 0", func(c *Config) { c.WebRTC.OpusComplexity = 0 }, ""},
		{"opus complexity 11", func(c *Config) { c.WebRTC.OpusComplexity = 11 },
			"webrtc.opus_complexity: 11 out of range 0..10"},
		{"opus lowdelay", func(c *Config) { c.WebRTC.OpusApplication = "lowdelay" }, ""},
		{"opus celt", func(c *Config) { c.WebRTC.OpusApplication = "celt" },
			`webrtc.opus_application: "celt" is not one of voip, audio, lowdelay`},
		{"webrtc negative", func(c *Config) { c.WebRTC.UDPPort = -1 },
			"webrtc.udp_port: -1 out of range 0..65535"},
		{"storage empty", func(c *Config) { c.Storage.Dir = "" }, "storage.dir: must not be empty"},
		{"session expires 90s", func(c *Config) { c.SIP.SessionExpires = 90 * time.Second }, ""},
		{"session expires 24h", func(c *Config) { c.SIP.SessionExpires = 24 * time.Hour }, ""},
		{"session expires below 90s", func(c *Config) { c.SIP.SessionExpires = 89 * time.Second },
			"sip.session_expires: 1m29s out of range 90s..24h"},
		{"session expires above 24h", func(c *Config) { c.SIP.SessionExpires = 24*time.Hour + time.Second },
			"sip.session_expires: 24h0m1s out of range 90s..24h"},
		{"min-se equals session expires", func(c *Config) { c.SIP.MinSE = 30 * time.Minute }, ""},
		{"min-se above session expires", func(c *Config) { c.SIP.MinSE = 31 * time.Minute },
			"sip.min_se: 31m0s above sip.session_expires (30m0s)"},
		{"min-se below 90s", func(c *Config) { c.SIP.MinSE = 89 * time.Second },
			"sip.min_se: 1m29s below 90s (RFC 4028 §4)"},
		{"max call duration 1m", func(c *Config) { c.SIP.MaxCallDuration = time.Minute }, ""},
		{"max call duration below 1m", func(c *Config) { c.SIP.MaxCallDuration = 59 * time.Second },
			"sip.max_call_duration: 59s below 1m (or 0s for no limit)"},
		{"max call duration negative", func(c *Config) { c.SIP.MaxCallDuration = -time.Minute },
			"sip.max_call_duration: -1m0s below 1m (or 0s for no limit)"},
		{"external ipv4", func(c *Config) { c.SIP.ExternalAddress = "203.0.113.7" }, ""},
		{"external ipv6", func(c *Config) { c.SIP.ExternalAddress = "2001:db8::7" }, ""},
		{"external unspecified", func(c *Config) { c.SIP.ExternalAddress = "0.0.0.0" },
			`sip.external_address: "0.0.0.0" is not a unicast IP address`},
		{"external with port", func(c *Config) { c.SIP.ExternalAddress = "203.0.113.7:5060" },
			`sip.external_address: "203.0.113.7:5060" is not a unicast IP address`},
		{"tls both", func(c *Config) { c.SIP.TLS.Cert, c.SIP.TLS.Key = "c.pem", "k.pem" }, ""},
		{"tls key only", func(c *Config) { c.SIP.TLS.Key = "k.pem" },
			"sip.tls.key: set without sip.tls.cert (both or neither)"},
		{"tls listen port too big", func(c *Config) { c.SIP.TLS.Listen = ":65536" },
			`sip.tls.listen: ":65536": port 65536 out of range 0..65535`},
		{"redis set", func(c *Config) { c.Redis.Addr = "10.0.0.5:6379"; c.Auth.TokenSecret = testSecret }, ""},
		{"redis no port", func(c *Config) { c.Redis.Addr = "redis"; c.Auth.TokenSecret = testSecret },
			`redis.addr: "redis" is not host:port: missing port in address`},
		{"redis without token secret", func(c *Config) { c.Redis.Addr = "10.0.0.5:6379" },
			"redis.addr: needs auth.token_secret: the nodes of a cluster must check each other's join tokens"},
		{"sentinel without token secret", func(c *Config) {
			c.Redis.Sentinel = RedisSentinel{Master: "m", Addrs: []string{"10.0.0.5:26379"}}
		}, "redis.sentinel.master: needs auth.token_secret: the nodes of a cluster must check each other's join tokens"},
		{"sentinel", func(c *Config) {
			c.Redis.Sentinel = RedisSentinel{Master: "m", Addrs: []string{"10.0.0.5:26379", "[2001:db8::5]:26379"}, Password: "pw"}
			c.Redis.Username, c.Redis.Password, c.Auth.TokenSecret = "gw", "pw", testSecret
		}, ""},
		{"sentinel master alone", func(c *Config) { c.Redis.Sentinel.Master = "m"; c.Auth.TokenSecret = testSecret },
			"redis.sentinel.master: needs redis.sentinel.addrs"},
		{"sentinel addrs alone", func(c *Config) { c.Redis.Sentinel.Addrs = []string{"10.0.0.5:26379"} },
			"redis.sentinel.addrs: needs redis.sentinel.master"},
		{"sentinel password alone", func(c *Config) { c.Redis.Sentinel.Password = "pw" },
			"redis.sentinel.password: is only used with redis.sentinel.master"},
		{"sentinel addr without port", func(c *Config) {
			c.Redis.Sentinel = RedisSentinel{Master: "m", Addrs: []string{"10.0.0.5:26379", "sentinel"}}
			c.Auth.TokenSecret = testSecret
		}, `redis.sentinel.addrs[1]: "sentinel" is not host:port: missing port in address`},
		{"addr and sentinel", func(c *Config) {
			c.Redis.Addr, c.Redis.Sentinel = "10.0.0.5:6379", RedisSentinel{Master: "m", Addrs: []string{"10.0.0.5:26379"}}
			c.Auth.TokenSecret = testSecret
		}, "redis.addr: set with redis.sentinel (one or the other)"},
		{"redis db 15", func(c *Config) { c.Redis.DB = 15 }, ""},
		{"redis db 16", func(c *Config) { c.Redis.DB = 16 }, "redis.db: 16 out of range 0..15"},
		{"redis db negative", func(c *Config) { c.Redis.DB = -1 }, "redis.db: -1 out of range 0..15"},
		{"redis timeout 10ms", func(c *Config) { c.Redis.Timeout = 10 * time.Millisecond }, ""},
		{"redis timeout 30s", func(c *Config) { c.Redis.Timeout = 30 * time.Second }, ""},
		{"redis timeout 9ms", func(c *Config) { c.Redis.Timeout = 9 * time.Millisecond },
			"redis.timeout: 9ms out of range 10ms..30s"},
		{"redis timeout 31s", func(c *Config) { c.Redis.Timeout = 31 * time.Second },
			"redis.timeout: 31s out of range 10ms..30s"},
		{"redis tls", func(c *Config) { c.Redis.TLS = RedisTLS{Enabled: true, ServerName: "redis.internal"} }, ""},
		{"redis tls ca file exists", func(c *Config) { c.Redis.TLS = RedisTLS{Enabled: true, CAFile: "mediagate.yaml"} }, ""},
		{"redis tls ca file missing", func(c *Config) { c.Redis.TLS = RedisTLS{Enabled: true, CAFile: "testdata/nope.pem"} },
			`redis.tls.ca_file: "testdata/nope.pem": no such file or directory`},
		{"redis tls ca file is a directory", func(c *Config) { c.Redis.TLS = RedisTLS{Enabled: true, CAFile: "testdata"} },
			`redis.tls.ca_file: "testdata" is a directory`},
		{"redis tls settings while off", func(c *Config) { c.Redis.TLS = RedisTLS{CAFile: "mediagate.yaml", ServerName: "r"} },
			"redis.tls.ca_file: is only used with redis.tls.enabled: true\n" +
				"redis.tls.server_name: is only used with redis.tls.enabled: true"},
		{"lease ttl 1s", func(c *Config) { c.Cluster.LeaseTTL = time.Second }, ""},
		{"lease ttl 60s", func(c *Config) { c.Cluster.LeaseTTL = time.Minute }, ""},
		{"lease ttl 999ms", func(c *Config) { c.Cluster.LeaseTTL = 999 * time.Millisecond },
			"cluster.lease_ttl: 999ms out of range 1s..60s"},
		{"node ttl 61s", func(c *Config) { c.Cluster.NodeTTL = 61 * time.Second },
			"cluster.node_ttl: 1m1s out of range 1s..60s"},
		{"public url https", func(c *Config) { c.Cluster.PublicURL = "https://gw1.example.org" }, ""},
		{"public url http with port", func(c *Config) { c.Cluster.PublicURL = "http://10.0.0.5:8080" }, ""},
		{"public url ipv6", func(c *Config) { c.Cluster.PublicURL = "http://[2001:db8::5]:8080" }, ""},
		{"public url trailing slash", func(c *Config) { c.Cluster.PublicURL = "https://gw1.example.org/" },
			`cluster.public_url: "https://gw1.example.org/" must be an absolute http:// or https:// URL without path, query or fragment, e.g. https://gw1.example.org`},
		{"public url query", func(c *Config) { c.Cluster.PublicURL = "https://gw1.example.org?a=1" },
			`cluster.public_url: "https://gw1.example.org?a=1" must be an absolute http:// or https:// URL without path, query or fragment, e.g. https://gw1.example.org`},
		{"public url relative", func(c *Config) { c.Cluster.PublicURL = "gw1.example.org" },
			`cluster.public_url: "gw1.example.org" must be an absolute http:// or https:// URL without path, query or fragment, e.g. https://gw1.example.org`},
		{"public url other scheme", func(c *Config) { c.Cluster.PublicURL = "ftp://gw1.example.org" },
			`cluster.public_url: "ftp://gw1.example.org" must be an absolute http:// or https:// URL without path, query or fragment, e.g. https://gw1.example.org`},
		{"public url credentials", func(c *Config) { c.Cluster.PublicURL = "https://u:p@gw1.example.org" },
			`cluster.public_url: "https://u:p@gw1.example.org" must be an absolute http:// or https:// URL without path, query or fragment, e.g. https://gw1.example.org`},
		{"sip address", func(c *Config) { c.Cluster.SIPAddress = "gw1.example.org:5060" }, ""},
		{"sip address port 0", func(c *Config) { c.Cluster.SIPAddress = "gw1.example.org:0" },
			`cluster.sip_address: "gw1.example.org:0": port 0 out of range 1..65535`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.edit(&c)
			err := c.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Equal(t, tt.want, err.Error())
			require.ErrorIs(t, err, ErrInvalid)
		})
	}
}

// TestValidateReportsAll: every problem is reported, in key order, and each
// is an *Error.
func TestValidateReportsAll(t *testing.T) {
	c := Config{} // nothing set at all; an empty node.id and a 0s drain are valid
	err := c.Validate()
	require.Equal(t, strings.Join([]string{
		`log.level: "" is not one of debug, info, warn, error`,
		`log.format: "" is not one of text, json`,
		`http.listen: "" is not host:port: missing port in address`,
		`auth.page_token_lifetime: 0s out of range 1m..24h`,
		`auth.pin_lockout.failures: 0 out of range 1..100`,
		`auth.pin_lockout.window: 0s out of range 1s..24h`,
		`auth.pin_lockout.lockout: 0s out of range 1s..168h`,
		`sip.listen: "" is not host:port: missing port in address`,
		`sip.session_expires: 0s out of range 90s..24h`,
		`sip.min_se: 0s below 90s (RFC 4028 §4)`,
		`sip.tls.listen: "" is not host:port: missing port in address`,
		`sip.guard.window: 0s out of range 100ms..1h`,
		`sip.guard.ban: 0s out of range 1s..720h`,
		`rtp.port_min: 0 out of range 1024..65535`,
		`rtp.port_max: 0 out of range 1024..65535`,
		`dialin.language: "" is not one of de, en (dialin.prompts_dir can add languages)`,
		`webrtc.opus_application: "" is not one of voip, audio, lowdelay`,
		`storage.dir: must not be empty`,
		`storage.audit_instruction_years: 0 out of range 1..30`,
		`storage.audit_access_retention: 0s out of range 24h..87600h`,
		`recording.format: "" is not one of opus, m4a`,
		`recording.link_lifetime: 0s out of range 1m..24h`,
		`stream.audio_bitrate: 0 out of range 32000..320000`,
		`stream.audio_channels: 0 out of range 1..2`,
		`stream.timeout: 0s out of range 1s..10m`,
		`stream.backoff_min: 0s out of range 100ms..10m`,
		`redis.timeout: 0s out of range 10ms..30s`,
		`cluster.lease_ttl: 0s out of range 1s..60s`,
		`cluster.node_ttl: 0s out of range 1s..60s`,
		`conference.max_speakers: 0 out of range 1..16`,
	}, "\n"), err.Error())

	var all interface{ Unwrap() []error }
	require.ErrorAs(t, err, &all)
	require.Len(t, all.Unwrap(), 30)
	for _, e := range all.Unwrap() {
		var ce *Error
		require.True(t, errors.As(e, &ce))
		require.NotEmpty(t, ce.Key)
		require.Equal(t, ErrInvalid, ce.Err)
	}
}
