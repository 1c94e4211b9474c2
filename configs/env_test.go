package configs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// everySIPKey is the SIP section the "every key" case sets.
var everySIPKey = SIP{Listen: "127.0.0.1:5070", SessionExpires: 10 * time.Minute, MinSE: 2 * time.Minute,
	MaxCallDuration: 4 * time.Hour, ExternalAddress: "203.0.113.7",
	TLS:         SIPTLS{Listen: ":5062", Cert: "/etc/mediagate/sip.pem", Key: "/etc/mediagate/sip.key"},
	HideUnknown: true, Trunks: map[string]Trunk{"lan": {CIDRs: []string{"10.0.0.0/8", "192.168.0.0/16"}, SRTP: "required"}},
	Guard: SIPGuard{Enabled: false, Rate: 32, Window: 4 * time.Second, Ban: time.Hour, BanMax: 48 * time.Hour,
		ScannerUserAgents: []string{"friendly-scanner", "evil scan"}, BanScanners: false,
		MaxCallsPerSource: 5, MaxCalls: 200}}

// TestEnvOverrides: each variable sets its key; the rest are left alone.
func TestEnvOverrides(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want func(*Config)
	}{
		{"none", nil, func(*Config) {}},
		{"every key", []string{
			"MEDIAGATE_NODE_ID=gw-2",
			"MEDIAGATE_NODE_DRAIN_TIMEOUT=10s",
			"MEDIAGATE_LOG_LEVEL=debug",
			"MEDIAGATE_LOG_FORMAT=json",
			"MEDIAGATE_LOG_ANONYMIZE_IPS=false",
			"MEDIAGATE_HTTP_LISTEN=127.0.0.1:0",
			"MEDIAGATE_HTTP_TLS_CERT=mediagate.yaml",
			"MEDIAGATE_HTTP_TLS_KEY=mediagate.yaml",
			"MEDIAGATE_HTTP_TLS_SELF_SIGNED=false",
			"MEDIAGATE_SIP_LISTEN=127.0.0.1:5070",
			"MEDIAGATE_SIP_HIDE_UNKNOWN=true",
			"MEDIAGATE_SIP_TRUNKS_LAN_CIDRS=10.0.0.0/8, 192.168.0.0/16",
			"MEDIAGATE_SIP_TRUNKS_LAN_SRTP=required",
			"MEDIAGATE_SIP_SESSION_EXPIRES=10m",
			"MEDIAGATE_SIP_MIN_SE=2m",
			"MEDIAGATE_SIP_MAX_CALL_DURATION=4h",
			"MEDIAGATE_SIP_EXTERNAL_ADDRESS=203.0.113.7",
			"MEDIAGATE_SIP_TLS_LISTEN=:5062",
			"MEDIAGATE_SIP_TLS_CERT=/etc/mediagate/sip.pem",
			"MEDIAGATE_SIP_TLS_KEY=/etc/mediagate/sip.key",
			"MEDIAGATE_SIP_GUARD_ENABLED=false",
			"MEDIAGATE_SIP_GUARD_RATE=32",
			"MEDIAGATE_SIP_GUARD_WINDOW=4s",
			"MEDIAGATE_SIP_GUARD_BAN=1h",
			"MEDIAGATE_SIP_GUARD_BAN_MAX=48h",
			"MEDIAGATE_SIP_GUARD_SCANNER_USER_AGENTS=friendly-scanner, evil scan",
			"MEDIAGATE_SIP_GUARD_BAN_SCANNERS=false",
			"MEDIAGATE_SIP_GUARD_MAX_CALLS_PER_SOURCE=5",
			"MEDIAGATE_SIP_GUARD_MAX_CALLS=200",
			"MEDIAGATE_RTP_PORT_MIN=12000",
			"MEDIAGATE_RTP_PORT_MAX=12999",
			"MEDIAGATE_WEBRTC_UDP_PORT=0",
			"MEDIAGATE_WEBRTC_OPUS_COMPLEXITY=7",
			"MEDIAGATE_WEBRTC_OPUS_APPLICATION=lowdelay",
			"MEDIAGATE_WEBRTC_DIRECT_SRTP=false",
			"MEDIAGATE_STORAGE_DIR=/var/lib/mediagate",
			"MEDIAGATE_STORAGE_AUDIT_INSTRUCTION_YEARS=5",
			"MEDIAGATE_STORAGE_AUDIT_ACCESS_RETENTION=720h",
			"MEDIAGATE_RECORDING_DIR=/srv/recordings",
			"MEDIAGATE_RECORDING_RECEIPT_KEY=" + testSecret,
			"MEDIAGATE_RECORDING_ENCRYPTION_KEY=" + testEncryptionKey,
			"MEDIAGATE_RECORDING_FORMAT=opus",
			`MEDIAGATE_RECORDING_POLICIES={"short": {"duration": "1h"}}`,
			"MEDIAGATE_RECORDING_POLICIES_LEGAL_DURATION=2160h",
			"MEDIAGATE_RECORDING_POLICIES_LEGAL_MIN=720h",
			`MEDIAGATE_RECORDING_ROOM_POLICIES={"board": "legal", "sales-eu": "short"}`,
			"MEDIAGATE_RECORDING_EXPIRY_WARNINGS=48h,1h30m",
			"MEDIAGATE_RECORDING_LINK_LIFETIME=5m",
			"MEDIAGATE_STREAM_AUDIO_BITRATE=96000",
			"MEDIAGATE_STREAM_AUDIO_CHANNELS=2",
			"MEDIAGATE_STREAM_TIMEOUT=5s",
			"MEDIAGATE_STREAM_BACKOFF_MIN=2s",
			"MEDIAGATE_STREAM_BACKOFF_MAX=30s",
			"MEDIAGATE_STREAM_CA_FILE=/etc/mediagate/ingest-ca.pem",
			"MEDIAGATE_STREAM_ALLOW_PRIVATE=true",
			"MEDIAGATE_REDIS_ADDR=redis:6379",
			"MEDIAGATE_REDIS_USERNAME=gw",
			"MEDIAGATE_REDIS_PASSWORD=s3cret-pw",
			"MEDIAGATE_REDIS_DB=3",
			"MEDIAGATE_REDIS_TIMEOUT=500ms",
			"MEDIAGATE_REDIS_TLS_ENABLED=true",
			"MEDIAGATE_REDIS_TLS_CA_FILE=mediagate.yaml",
			"MEDIAGATE_REDIS_TLS_SERVER_NAME=redis.internal",
			"MEDIAGATE_CLUSTER_DEGRADED_LOCAL=true",
			"MEDIAGATE_CLUSTER_LEASE_TTL=10s",
			"MEDIAGATE_CLUSTER_NODE_TTL=3s",
			"MEDIAGATE_CLUSTER_PUBLIC_URL=https://gw2.example.org",
			"MEDIAGATE_CLUSTER_SIP_ADDRESS=gw2.example.org:5060",
			"MEDIAGATE_AUTH_TOKEN_SECRET=" + testSecret,
			"MEDIAGATE_AUTH_PAGE_TOKEN_LIFETIME=1h",
			"MEDIAGATE_HTTP_PPROF_LISTEN=127.0.0.1:6060",
			"MEDIAGATE_AUTH_PIN_LOCKOUT_FAILURES=3",
			"MEDIAGATE_AUTH_PIN_LOCKOUT_WINDOW=10m",
			"MEDIAGATE_AUTH_PIN_LOCKOUT_LOCKOUT=2m",
			"MEDIAGATE_AUTH_PIN_LOCKOUT_LOCKOUT_MAX=6h",
			"MEDIAGATE_AUTH_PIN_LOCKOUT_ROOM_FAILURES=40",
			"MEDIAGATE_ROOMS_BOARD_PIN=4711",
			"MEDIAGATE_ROOMS_BOARD_AUTO_RECORD=true",
			"MEDIAGATE_CONFERENCE_EMPTY_TIMEOUT=2m",
			"MEDIAGATE_CONFERENCE_MAX_SPEAKERS=6",
			"MEDIAGATE_DIALIN_LANGUAGE=de",
			"MEDIAGATE_DIALIN_PROMPTS_DIR=/etc/mediagate/prompts",
			"MEDIAGATE_DIALIN_NUMBERS_4930123450_ROOM=board",
			`MEDIAGATE_WEBHOOKS={"ops": {"url": "https://ops.example/hook", "secret": "0123456789abcdef"}}`,
			"MEDIAGATE_WEBHOOKS_PLATFORM_URL=https://platform.example/hooks",
			"MEDIAGATE_WEBHOOKS_PLATFORM_SECRET=" + testSecret,
			"MEDIAGATE_WEBHOOKS_PLATFORM_EVENTS=room.started, recording.deleted",
			"MEDIAGATE_WEBHOOKS_PLATFORM_TIMEOUT=5s",
		}, func(c *Config) {
			*c = Config{
				Node:    Node{ID: "gw-2", DrainTimeout: 10 * time.Second},
				Log:     Log{Level: "debug", Format: "json"},
				HTTP:    HTTP{Listen: "127.0.0.1:0", TLSCert: "mediagate.yaml", TLSKey: "mediagate.yaml", PprofListen: "127.0.0.1:6060"},
				SIP:     everySIPKey,
				RTP:     RTP{PortMin: 12000, PortMax: 12999},
				WebRTC:  WebRTC{UDPPort: 0, OpusApplication: "lowdelay", OpusComplexity: 7, DirectSRTP: false},
				Storage: Storage{Dir: "/var/lib/mediagate", AuditInstructionYears: 5, AuditAccessRetention: 720 * time.Hour},
				Recording: Recording{Dir: "/srv/recordings", ReceiptKey: testSecret, EncryptionKey: testEncryptionKey, Format: "opus",
					Policies: map[string]RetentionPolicy{
						"short": {Duration: time.Hour},
						"legal": {Duration: 2160 * time.Hour, Min: 720 * time.Hour},
					},
					RoomPolicies:   map[string]string{"board": "legal", "sales-eu": "short"},
					ExpiryWarnings: []time.Duration{48 * time.Hour, 90 * time.Minute},
					LinkLifetime:   5 * time.Minute,
				},
				Stream: Stream{AudioBitrate: 96000, AudioChannels: 2, Timeout: 5 * time.Second,
					BackoffMin: 2 * time.Second, BackoffMax: 30 * time.Second,
					CAFile: "/etc/mediagate/ingest-ca.pem", AllowPrivate: true},
				Redis: Redis{Addr: "redis:6379", Username: "gw", Password: "s3cret-pw", DB: 3, Timeout: 500 * time.Millisecond,
					TLS: RedisTLS{Enabled: true, CAFile: "mediagate.yaml", ServerName: "redis.internal"}},
				Cluster: Cluster{DegradedLocal: true, LeaseTTL: 10 * time.Second, NodeTTL: 3 * time.Second,
					PublicURL: "https://gw2.example.org", SIPAddress: "gw2.example.org:5060"},
				Auth: Auth{TokenSecret: testSecret, PageTokenLifetime: time.Hour,
					PINLockout: PINLockout{Failures: 3, Window: 10 * time.Minute, Lockout: 2 * time.Minute, LockoutMax: 6 * time.Hour,
						RoomFailures: 40}},
				Rooms:      map[string]Room{"board": {PIN: "4711", AutoRecord: true}},
				Conference: Conference{EmptyTimeout: 2 * time.Minute, MaxSpeakers: 6},
				Dialin: Dialin{Language: "de", PromptsDir: "/etc/mediagate/prompts",
					Numbers: map[string]DialinNumber{"4930123450": {Room: "board"}}},
				Webhooks: map[string]Webhook{
					"ops": {URL: "https://ops.example/hook", Secret: "0123456789abcdef"},
					"platform": {URL: "https://platform.example/hooks", Secret: testSecret,
						Events: []string{"room.started", "recording.deleted"}, Timeout: 5 * time.Second},
				},
			}
		}},
		{"sentinel keys", []string{
			"MEDIAGATE_REDIS_SENTINEL_MASTER=gwmaster",
			"MEDIAGATE_REDIS_SENTINEL_ADDRS=10.0.0.5:26379, 10.0.0.6:26379",
			"MEDIAGATE_REDIS_SENTINEL_PASSWORD=s3cret-pw",
			"MEDIAGATE_AUTH_TOKEN_SECRET=" + testSecret,
		}, func(c *Config) {
			c.Redis.Sentinel = RedisSentinel{Master: "gwmaster", Addrs: []string{"10.0.0.5:26379", "10.0.0.6:26379"}, Password: "s3cret-pw"}
			c.Auth.TokenSecret = testSecret
		}},
		{"last of duplicates wins", []string{"MEDIAGATE_LOG_LEVEL=debug", "MEDIAGATE_LOG_LEVEL=warn"},
			func(c *Config) { c.Log.Level = "warn" }},
		{"empty value sets empty string", []string{"MEDIAGATE_REDIS_ADDR="}, func(*Config) {}},
		{"reserved and foreign variables ignored", []string{
			"MEDIAGATE_CONFIG=/etc/mediagate.yaml", "MEDIAGATE_API_KEY=secret", "MEDIAGATE_SERVER=http://x",
			"PATH=/bin", "mediagate_log_level=loud", "MEDIAGATE_LOG_LEVEL", "=x",
		}, func(*Config) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load("", tt.env)
			require.NoError(t, err)
			want := Default()
			tt.want(&want)
			require.Equal(t, want, got)
		})
	}
}

// TestEnvErrors: unknown variables and bad values name the variable.
func TestEnvErrors(t *testing.T) {
	tests := []struct {
		env  []string
		want string
		kind error
	}{
		{[]string{"MEDIAGATE_HTTP_LISTN=:80"}, "env MEDIAGATE_HTTP_LISTN: matches no config key", ErrUnknownKey},
		{[]string{"MEDIAGATE_RTP=1"}, "env MEDIAGATE_RTP: matches no config key", ErrUnknownKey},
		{[]string{"MEDIAGATE_RTP_PORT_MIN=x"}, `env MEDIAGATE_RTP_PORT_MIN: want an integer, got "x"`, ErrType},
		{[]string{"MEDIAGATE_RTP_PORT_MIN=99999999999999999999"}, `env MEDIAGATE_RTP_PORT_MIN: want an integer, got "99999999999999999999"`, ErrType},
		{[]string{"MEDIAGATE_NODE_DRAIN_TIMEOUT=10"}, `env MEDIAGATE_NODE_DRAIN_TIMEOUT: want a duration such as 30s or 1m30s, got "10"`, ErrType},
		{[]string{"MEDIAGATE_WEBRTC_UDP_PORT=70000"}, "env MEDIAGATE_WEBRTC_UDP_PORT: 70000 out of range 0..65535", ErrInvalid},
		{[]string{"MEDIAGATE_WEBRTC_OPUS_COMPLEXITY=11"}, "env MEDIAGATE_WEBRTC_OPUS_COMPLEXITY: 11 out of range 0..10", ErrInvalid},
		{[]string{"MEDIAGATE_STORAGE_DIR="}, "env MEDIAGATE_STORAGE_DIR: must not be empty", ErrInvalid},
		{[]string{"MEDIAGATE_X=1", "MEDIAGATE_LOG_LEVEL=loud", "MEDIAGATE_RTP_PORT_MAX=y"},
			"env MEDIAGATE_X: matches no config key\n" + `env MEDIAGATE_RTP_PORT_MAX: want an integer, got "y"`, ErrUnknownKey},
	}
	for _, tt := range tests {
		_, err := Load("", tt.env)
		require.Error(t, err, "%v", tt.env)
		require.Equal(t, tt.want, err.Error())
		require.ErrorIs(t, err, tt.kind)
	}
}

// TestEnvTypes: every supported type parses from a variable.
func TestEnvTypes(t *testing.T) {
	c, msg := loadTypes(t, "", []string{
		"MEDIAGATE_S_STR=a b", "MEDIAGATE_S_INT=-3", "MEDIAGATE_S_I8=-128", "MEDIAGATE_S_U16=8",
		"MEDIAGATE_S_F=1e3", "MEDIAGATE_S_B=1", "MEDIAGATE_S_D=250ms", "MEDIAGATE_S_L= a, b ,,c ",
		"MEDIAGATE_S_DEEP_X=5", "MEDIAGATE_UNTAGGED=9",
		"MEDIAGATE_S_DL=1h, 2m30s,", `MEDIAGATE_S_M={"a": "x", "b-c": "y"}`,
	})
	require.Empty(t, msg)
	require.Equal(t, "a b", c.S.Str)
	require.Equal(t, -3, c.S.Int)
	require.Equal(t, int8(-128), c.S.I8)
	require.Equal(t, uint16(8), c.S.U16)
	require.InDelta(t, 1000.0, c.S.F, 0)
	require.True(t, c.S.B)
	require.Equal(t, 250*time.Millisecond, c.S.D)
	require.Equal(t, []string{"a", "b", "c"}, c.S.L)
	require.Equal(t, 5, c.S.Deep.X)
	require.Equal(t, 9, c.Untagged)
	require.Equal(t, []time.Duration{time.Hour, 150 * time.Second}, c.S.DL)
	require.Equal(t, map[string]string{"a": "x", "b-c": "y"}, c.S.M)

	c, msg = loadTypes(t, "s:\n  l: [x]\n", []string{"MEDIAGATE_S_L="})
	require.Empty(t, msg)
	require.Nil(t, c.S.L)

	tests := []struct{ env, want string }{
		{"MEDIAGATE_S_I8=128", `env MEDIAGATE_S_I8: want an integer, got "128"`},
		{"MEDIAGATE_S_U16=-1", `env MEDIAGATE_S_U16: want a non-negative integer, got "-1"`},
		{"MEDIAGATE_S_F=x", `env MEDIAGATE_S_F: want a number, got "x"`},
		{"MEDIAGATE_S_B=yes", `env MEDIAGATE_S_B: want true or false, got "yes"`},
		{"MEDIAGATE_S_DL=1h,x", `env MEDIAGATE_S_DL: want a list of durations such as [168h, 24h], got "1h,x"`},
		{`MEDIAGATE_S_M={"a": ["x"]}`, "env MEDIAGATE_S_M: s.m.a: want a string, got a list"},
		{`MEDIAGATE_S_M=[a]`, "env MEDIAGATE_S_M: want a mapping of strings, got a list"},
		{`MEDIAGATE_S_M={"a": `, "env MEDIAGATE_S_M: did not find expected node content"},
		{"MEDIAGATE_SKIPPED=1", "env MEDIAGATE_SKIPPED: matches no config key"},
		{"MEDIAGATE_S=1", "env MEDIAGATE_S: matches no config key"},
	}
	for _, tt := range tests {
		_, msg := loadTypes(t, "", []string{tt.env})
		require.Equal(t, tt.want, msg)
	}
}
