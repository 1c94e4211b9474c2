package configs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestLoadBadFiles loads every testdata/*.bad.yaml and checks the exact error
// text (file, line, key, message) and its category.
func TestLoadBadFiles(t *testing.T) {
	tests := []struct {
		file string
		want string // one line per error
		kind error
	}{
		{"unknown_key", `testdata/unknown_key.bad.yaml:3: http.listn: unknown key`, ErrUnknownKey},
		{"unknown_section", `testdata/unknown_section.bad.yaml:1: htpp: unknown key`, ErrUnknownKey},
		{"unknown_nested_key", `testdata/unknown_nested_key.bad.yaml:7: node.name: unknown key`, ErrUnknownKey},
		{"leaf_is_map", `testdata/leaf_is_map.bad.yaml:3: http.listen: want a string, got a mapping`, ErrType},
		{"section_not_map", `testdata/section_not_map.bad.yaml:1: http: want a mapping, got ":8080"`, ErrType},
		{"wrong_type", `testdata/wrong_type.bad.yaml:5: rtp.port_min: want an integer, got "abc"`, ErrType},
		{"quoted_number", `testdata/quoted_number.bad.yaml:3: rtp.port_max: want an integer, got "30000"`, ErrType},
		{"empty_int", `testdata/empty_int.bad.yaml:2: webrtc.udp_port: want an integer, got an empty value`, ErrType},
		{"list_for_string", `testdata/list_for_string.bad.yaml:2: storage.dir: want a string, got a list`, ErrType},
		{"out_of_range", `testdata/out_of_range.bad.yaml:4: rtp.port_max: 70000 out of range 1024..65535`, ErrInvalid},
		{"port_order", `testdata/port_order.bad.yaml:3: rtp.port_max: 10000 must be above rtp.port_min (20000)`, ErrInvalid},
		{"odd_port", `testdata/odd_port.bad.yaml:2: rtp.port_min: 10001 must be even (RFC 3550 §11)`, ErrInvalid},
		{"bad_level", `testdata/bad_level.bad.yaml:3: log.level: "verbose" is not one of debug, info, warn, error`, ErrInvalid},
		{"bad_format", `testdata/bad_format.bad.yaml:2: log.format: "xml" is not one of text, json`, ErrInvalid},
		{"bad_duration", `testdata/bad_duration.bad.yaml:3: node.drain_timeout: want a duration such as 30s or 1m30s, got "10"`, ErrType},
		{"negative_duration", `testdata/negative_duration.bad.yaml:2: node.drain_timeout: -5s out of range 0s..1h`, ErrInvalid},
		{"long_duration", `testdata/long_duration.bad.yaml:2: node.drain_timeout: 2h0m0s out of range 0s..1h`, ErrInvalid},
		{"bad_node_id", `testdata/bad_node_id.bad.yaml:2: node.id: "gw 1" must be at most 64 characters from A-Z a-z 0-9 . _ -`, ErrInvalid},
		{"node_max_participants", `testdata/node_max_participants.bad.yaml:3: node.max_participants: -1 out of range 0..1000000`, ErrInvalid},
		{"bad_listen", `testdata/bad_listen.bad.yaml:2: http.listen: "8080" is not host:port: missing port in address`, ErrInvalid},
		{"http_pprof_public", `testdata/http_pprof_public.bad.yaml:3: http.pprof_listen: "0.0.0.0:6060": host must be a loopback address such as 127.0.0.1 or [::1] (the profiler has no authentication)`, ErrInvalid},
		{"bad_listen_port", `testdata/bad_listen_port.bad.yaml:2: sip.listen: "127.0.0.1:sip": port "sip" is not a number`, ErrInvalid},
		{"bad_redis", `testdata/bad_redis.bad.yaml:2: redis.addr: "localhost:0": port 0 out of range 1..65535`, ErrInvalid},
		{"empty_dir", `testdata/empty_dir.bad.yaml:2: storage.dir: must not be empty`, ErrInvalid},
		{"duplicate_key", `testdata/duplicate_key.bad.yaml:4: rtp.port_min: duplicate key (first at line 2)`, ErrDuplicateKey},
		{"duplicate_section", `testdata/duplicate_section.bad.yaml:5: http: duplicate key (first at line 1)`, ErrDuplicateKey},
		{"not_a_map", `testdata/not_a_map.bad.yaml:1: want a mapping of sections at the top level, got a list`, ErrType},
		{"two_docs", `testdata/two_docs.bad.yaml:3: want one YAML document, found a second`, ErrMultipleDocuments},
		{"syntax", `testdata/syntax.bad.yaml:3: found character that cannot start any token`, ErrSyntax},
		{"many_errors", strings.Join([]string{
			`testdata/many_errors.bad.yaml:3: http.listn: unknown key`,
			`testdata/many_errors.bad.yaml:5: rtp.port_min: want an integer, got "lots"`,
			`testdata/many_errors.bad.yaml:6: rtp.port_min: duplicate key (first at line 5)`,
			`testdata/many_errors.bad.yaml:9: webrtc.tcp_port: unknown key`,
		}, "\n"), ErrUnknownKey},
		{"rooms_unknown_key", `testdata/rooms_unknown_key.bad.yaml:4: rooms.board.pinn: unknown key`, ErrUnknownKey},
		{"rooms_bad_id", `testdata/rooms_bad_id.bad.yaml:2: rooms.Board: room id "Board" must be 1 to 64 characters from a-z 0-9 _ -, starting with a letter or digit`, ErrInvalid},
		{"rooms_bad_pin", `testdata/rooms_bad_pin.bad.yaml:5: rooms.board.pin: must be 4 to 12 digits`, ErrInvalid},
		{"rooms_short_pin", `testdata/rooms_short_pin.bad.yaml:4: rooms.board.pin: must be 4 to 12 digits`, ErrInvalid},
		{"rooms_duplicate_number", `testdata/rooms_duplicate_number.bad.yaml:6: rooms.sales.number: "1001" is already the number of rooms.board`, ErrInvalid},
		{"rooms_bad_number", `testdata/rooms_bad_number.bad.yaml:3: rooms.board.number: "+49 1001" must be 1 to 15 digits (ITU-T E.164 §6)`, ErrInvalid},
		{"rooms_open_with_pin", `testdata/rooms_open_with_pin.bad.yaml:4: rooms.lobby.pin: must be empty in an open room (rooms.lobby.open: true)`, ErrInvalid},
		{"rooms_entry_not_map", `testdata/rooms_entry_not_map.bad.yaml:2: rooms.board: want a mapping, got "yes"`, ErrType},
		{"rooms_not_map", `testdata/rooms_not_map.bad.yaml:1: rooms: want a mapping, got a list`, ErrType},
		{"rooms_duplicate_room", `testdata/rooms_duplicate_room.bad.yaml:4: rooms.board: duplicate key (first at line 2)`, ErrDuplicateKey},
		{"rooms_negative_max", `testdata/rooms_negative_max.bad.yaml:3: rooms.board.max_participants: -1 must not be negative (0: no limit)`, ErrInvalid},
		{"rooms_wrong_type", `testdata/rooms_wrong_type.bad.yaml:3: rooms.board.max_participants: want an integer, got "many"`, ErrType},
		{"rooms_bad_name", `testdata/rooms_bad_name.bad.yaml:3: rooms.board.name: must be at most 100 printable characters`, ErrInvalid},
		{"rooms_bad_tenant", `testdata/rooms_bad_tenant.bad.yaml:4: rooms.board.tenant: "*" must be 1 to 64 characters from A-Z a-z 0-9 . _ -`, ErrInvalid},
		{"rooms_many", strings.Join([]string{
			`testdata/rooms_many.bad.yaml:4: rooms.zeta.pin: must be 4 to 12 digits`,
			`testdata/rooms_many.bad.yaml:7: rooms.alpha.max_participants: -5 must not be negative (0: no limit)`,
			`testdata/rooms_many.bad.yaml:6: rooms.alpha.number: "x1" must be 1 to 15 digits (ITU-T E.164 §6)`,
		}, "\n"), ErrInvalid},
		{"dialin_unknown_room", `testdata/dialin_unknown_room.bad.yaml:8: dialin.numbers.4930555000.room: "bord" is no room of the rooms section`, ErrInvalid},
		{"dialin_bad_language", `testdata/dialin_bad_language.bad.yaml:2: dialin.language: "fr" is not one of de, en (dialin.prompts_dir can add languages)`, ErrInvalid},
		{"dialin_unknown_key", `testdata/dialin_unknown_key.bad.yaml:4: dialin.numbers.2000.rooom: unknown key`, ErrUnknownKey},
		{"dialin_rule_not_map", `testdata/dialin_rule_not_map.bad.yaml:4: dialin.numbers.2000: want a mapping, got "board"`, ErrType},
		{"dialin_many", strings.Join([]string{
			`testdata/dialin_many.bad.yaml:4: dialin.numbers.030 5550: "030 5550" must be "*" or 1 to 15 digits, optionally after a + (ITU-T E.164 §6)`,
			`testdata/dialin_many.bad.yaml:7: dialin.numbers.+4930.language: "EN" is not one of de, en (dialin.prompts_dir can add languages)`,
		}, "\n"), ErrInvalid},
		{"auth_short_secret", `testdata/auth_short_secret.bad.yaml:2: auth.token_secret: must be at least 32 bytes (RFC 7518 §3.2), got 9`, ErrInvalid},
		{"conference_out_of_range", strings.Join([]string{
			`testdata/conference_out_of_range.bad.yaml:2: conference.empty_timeout: 48h0m0s out of range 0s..24h`,
			`testdata/conference_out_of_range.bad.yaml:3: conference.max_speakers: 17 out of range 1..16`,
		}, "\n"), ErrInvalid},
		{"auth_admin_key_not_hash", "testdata/auth_admin_key_not_hash.bad.yaml:2: auth.admin_keys[1]: must be \"sha256:\" and 64 lower-case hex digits (the hash `mediagate keys new` prints, never the key)", ErrInvalid},
		{"auth_long_lifetime", `testdata/auth_long_lifetime.bad.yaml:2: auth.page_token_lifetime: 48h0m0s out of range 1m..24h`, ErrInvalid},
		{"auth_pin_lockout", strings.Join([]string{
			`testdata/auth_pin_lockout.bad.yaml:3: auth.pin_lockout.failures: 0 out of range 1..100`,
			`testdata/auth_pin_lockout.bad.yaml:4: auth.pin_lockout.window: 500ms out of range 1s..24h`,
			`testdata/auth_pin_lockout.bad.yaml:6: auth.pin_lockout.lockout_max: 5m0s below auth.pin_lockout.lockout (10m0s)`,
		}, "\n"), ErrInvalid},
		{"auth_pin_lockout_range", strings.Join([]string{
			`testdata/auth_pin_lockout_range.bad.yaml:3: auth.pin_lockout.lockout: 0s out of range 1s..168h`,
			`testdata/auth_pin_lockout_range.bad.yaml:4: auth.pin_lockout.lockout_max: 720h0m0s above 168h`,
			`testdata/auth_pin_lockout_range.bad.yaml:5: auth.pin_lockout.room_failures: 20000 out of range 0..10000`,
		}, "\n"), ErrInvalid},
		{"auth_pin_lockout_room", `testdata/auth_pin_lockout_room.bad.yaml:4: auth.pin_lockout.room_failures: 3 below auth.pin_lockout.failures (5)`, ErrInvalid},
		{"sip_unknown_codec", `testdata/sip_unknown_codec.bad.yaml:2: sip.codecs[1]: "G729" is not one of PCMA, PCMU, G722, opus`, ErrInvalid},
		{"sip_repeated_codec", `testdata/sip_repeated_codec.bad.yaml:2: sip.codecs[2]: "PCMA" repeats sip.codecs[0]`, ErrInvalid},
		{"sip_media_timeout", `testdata/sip_media_timeout.bad.yaml:3: sip.media_timeout: 500ms out of range 1s..1h (or 0s for the default)`, ErrInvalid},
		{"sip_trunk_bad_cidr", strings.Join([]string{
			`testdata/sip_trunk_bad_cidr.bad.yaml:4: sip.trunks.carrier.cidrs[0]: "10.0.0.1/8" has host bits set: did you mean 10.0.0.0/8 or 10.0.0.1/32?`,
			`testdata/sip_trunk_bad_cidr.bad.yaml:4: sip.trunks.carrier.cidrs[2]: "carrier.example" is not a CIDR such as 203.0.113.0/24 (one address: 203.0.113.5/32)`,
		}, "\n"), ErrInvalid},
		{"webhooks_bad_url", `testdata/webhooks_bad_url.bad.yaml:4: webhooks.platform.url: must be an absolute http:// or https:// URL`, ErrInvalid},
		{"webhooks_short_secret", `testdata/webhooks_short_secret.bad.yaml:4: webhooks.platform.secret: must be 16 to 256 bytes, got 5`, ErrInvalid},
		{"webhooks_no_secret", "testdata/webhooks_no_secret.bad.yaml:2: webhooks.platform: needs a secret of at least 16 bytes (e.g. `openssl rand -hex 32`)", ErrInvalid},
		{"webhooks_unknown_event", `testdata/webhooks_unknown_event.bad.yaml:5: webhooks.platform.events[1]: "room.ended" is not an event; known: room.started, room.finished, participant.joined, participant.left, call.started, call.ended, recording.started, recording.ended, recording.expiring, recording.deleted, egress.started, egress.updated, egress.ended`, ErrInvalid},
		{"webhooks_bad_name", `testdata/webhooks_bad_name.bad.yaml:2: webhooks.Platform: webhook name "Platform" must be 1 to 64 characters from a-z 0-9 _ -, starting with a letter or digit`, ErrInvalid},
		{"webhooks_timeout", `testdata/webhooks_timeout.bad.yaml:5: webhooks.platform.timeout: 5m0s out of range 1s..1m (or 0s for 10s)`, ErrInvalid},
		{"sip_trunk_bad_name", `testdata/sip_trunk_bad_name.bad.yaml:3: sip.trunks.Carrier: trunk name "Carrier" must be 1 to 64 characters from a-z 0-9 _ -, starting with a letter or digit`, ErrInvalid},
		{"sip_trunk_unknown_key", `testdata/sip_trunk_unknown_key.bad.yaml:5: sip.trunks.pbx.pasword: unknown key`, ErrUnknownKey},
		{"sip_trunk_srtp", `testdata/sip_trunk_srtp.bad.yaml:5: sip.trunks.carrier.srtp: "mandatory" is not off, optional or required`, ErrInvalid},
		{"sip_trunk_accepts_nothing", `testdata/sip_trunk_accepts_nothing.bad.yaml:4: sip.trunks.carrier: needs cidrs, or username and password, or register: true`, ErrInvalid},
		{"sip_trunk_register_incomplete", `testdata/sip_trunk_register_incomplete.bad.yaml:6: sip.trunks.carrier.register: needs sip.trunks.carrier.registrar, sip.trunks.carrier.username and sip.trunks.carrier.password`, ErrInvalid},
		{"sip_trunk_many", strings.Join([]string{
			`testdata/sip_trunk_many.bad.yaml:5: sip.trunks.zeta.username: must be 1 to 128 characters from A-Z a-z 0-9 -_.!~*'()&=+$,;?/`,
			`testdata/sip_trunk_many.bad.yaml:7: sip.trunks.zeta.expires: is only used with sip.trunks.zeta.register: true`,
			`testdata/sip_trunk_many.bad.yaml:10: sip.trunks.alpha.registrar: "sips:carrier.example:5061" uses sips:, which is not supported (only sip:)`,
			`testdata/sip_trunk_many.bad.yaml:13: sip.trunks.alpha.expires: 30s out of range 1m..24h (or 0s for 1h)`,
			`testdata/sip_trunk_many.bad.yaml:16: sip.trunks.beta.password: needs sip.trunks.beta.username`,
			`testdata/sip_trunk_many.bad.yaml:17: sip.trunks.beta.registrar: is only used with sip.trunks.beta.register: true`,
			`testdata/sip_trunk_many.bad.yaml:17: sip.trunks.beta.registrar: "carrier.example:99999" has port "99999", not 1..65535`,
		}, "\n"), ErrInvalid},
		{"sip_session_timer", strings.Join([]string{
			`testdata/sip_session_timer.bad.yaml:2: sip.session_expires: 1m0s out of range 90s..24h`,
			`testdata/sip_session_timer.bad.yaml:3: sip.min_se: 30s below 90s (RFC 4028 §4)`,
		}, "\n"), ErrInvalid},
		{"sip_min_se_above", `testdata/sip_min_se_above.bad.yaml:4: sip.min_se: 1h0m0s above sip.session_expires (10m0s)`, ErrInvalid},
		{"sip_max_call_duration", `testdata/sip_max_call_duration.bad.yaml:2: sip.max_call_duration: 30s below 1m (or 0s for no limit)`, ErrInvalid},
		{"sip_external_address", `testdata/sip_external_address.bad.yaml:2: sip.external_address: "gw.example.com" is not a unicast IP address`, ErrInvalid},
		{"sip_tls_half", `testdata/sip_tls_half.bad.yaml:3: sip.tls.cert: set without sip.tls.key (both or neither)`, ErrInvalid},
		{"sip_guard", strings.Join([]string{
			`testdata/sip_guard.bad.yaml:3: sip.guard.rate: -1 out of range 0..100000`,
			`testdata/sip_guard.bad.yaml:4: sip.guard.window: 10ms out of range 100ms..1h`,
			`testdata/sip_guard.bad.yaml:6: sip.guard.ban_max: 10m0s below sip.guard.ban (1h0m0s)`,
			`testdata/sip_guard.bad.yaml:7: sip.guard.scanner_user_agents[1]: must not be empty`,
			`testdata/sip_guard.bad.yaml:8: sip.guard.max_calls_per_source: -2 out of range 0..1000000`,
			`testdata/sip_guard.bad.yaml:9: sip.guard.max_calls: 2000000 out of range 0..1000000`,
		}, "\n"), ErrInvalid},
		{"sip_guard_ban", strings.Join([]string{
			`testdata/sip_guard_ban.bad.yaml:4: sip.guard.ban: 0s out of range 1s..720h`,
			`testdata/sip_guard_ban.bad.yaml:5: sip.guard.ban_max: 2000h0m0s above 720h`,
		}, "\n"), ErrInvalid},
		{"sip_tls_listen", `testdata/sip_tls_listen.bad.yaml:3: sip.tls.listen: "5061" is not host:port: missing port in address`, ErrInvalid},
		{"stream_out_of_range", "testdata/stream_out_of_range.bad.yaml:3: stream.audio_bitrate: 8000 out of range 32000..320000\n" +
			"testdata/stream_out_of_range.bad.yaml:4: stream.audio_channels: 6 out of range 1..2\n" +
			"testdata/stream_out_of_range.bad.yaml:6: stream.backoff_max: 5s out of range stream.backoff_min (30s)..10m", ErrInvalid},
		{"rooms_auto_stream", "testdata/rooms_auto_stream.bad.yaml:6: rooms.board.auto_stream[0].url: must be an rtmp:// or rtmps:// URL\n" +
			"testdata/rooms_auto_stream.bad.yaml:7: rooms.board.auto_stream[1].url: needs an application and a stream key in the path (or set key)\n" +
			"testdata/rooms_auto_stream.bad.yaml:8: rooms.board.auto_stream[2].name: must be at most 100 printable characters\n" +
			"testdata/rooms_auto_stream.bad.yaml:9: rooms.board.auto_stream[2].url: has no application in the path\n" +
			"testdata/rooms_auto_stream.bad.yaml:11: rooms.board.auto_stream[3].url: must not hold credentials", ErrInvalid},
		{"rooms_auto_stream_type", "testdata/rooms_auto_stream_type.bad.yaml:5: rooms.board.auto_stream[0]: want a mapping, got a string\n" +
			"testdata/rooms_auto_stream_type.bad.yaml:7: rooms.board.auto_stream[1].stream_key: unknown key", ErrType},
		{"recording_format", `testdata/recording_format.bad.yaml:3: recording.format: "mp3" is not one of opus, m4a`, ErrInvalid},
		{"recording_encryption_key", `testdata/recording_encryption_key.bad.yaml:3: recording.encryption_key: must decode to 32 bytes (AES-256), got 16`, ErrInvalid},
		{"http_tls", strings.Join([]string{
			`testdata/http_tls.bad.yaml:3: http.tls_cert: "testdata/no-such-cert.pem": no such file or directory`,
			`testdata/http_tls.bad.yaml:4: http.tls_key: "testdata/no-such-key.pem": no such file or directory`,
		}, "\n"), ErrInvalid},
		{"http_tls_half", `testdata/http_tls_half.bad.yaml:3: http.tls_key: set without http.tls_cert (both or neither)`, ErrInvalid},
		{"http_tls_both", `testdata/http_tls_both.bad.yaml:5: http.tls_self_signed: true beside http.tls_cert (one or the other)`, ErrInvalid},
		{"recording_short_key", `testdata/recording_short_key.bad.yaml:2: recording.receipt_key: must be at least 32 bytes (RFC 2104 §3), got 9`, ErrInvalid},
		{"recording_policies_many", strings.Join([]string{
			`testdata/recording_policies_many.bad.yaml:5: recording.policies.zeta.duration: 0s out of range (0s, 87600h]`,
			`testdata/recording_policies_many.bad.yaml:6: recording.policies.Legal: policy name "Legal" must be 1 to 64 characters from a-z 0-9 _ -, starting with a letter or digit`,
			`testdata/recording_policies_many.bad.yaml:8: recording.policies.Legal.min: 1000h0m0s out of range 0s..720h0m0s (the duration)`,
			`testdata/recording_policies_many.bad.yaml:9: recording.policies.Legal.max: 24h0m0s out of range 720h0m0s..87600h (or 0s for the duration)`,
			`testdata/recording_policies_many.bad.yaml:11: recording.policies.default.duration: 87601h0m0s out of range (0s, 87600h]`,
		}, "\n"), ErrInvalid},
		{"recording_room_policy", `testdata/recording_room_policy.bad.yaml:7: recording.room_policies.sales: "legl" is no policy of recording.policies`, ErrInvalid},
		{"recording_room_policies_type", `testdata/recording_room_policies_type.bad.yaml:3: recording.room_policies.board: want a string, got a list`, ErrType},
		{"recording_lists", strings.Join([]string{
			`testdata/recording_lists.bad.yaml:2: recording.expiry_warnings[1]: -1h0m0s out of range (0s, 87600h]`,
			`testdata/recording_lists.bad.yaml:2: recording.expiry_warnings[2]: 24h0m0s repeats recording.expiry_warnings[0]`,
			`testdata/recording_lists.bad.yaml:3: recording.link_lifetime: 30s out of range 1m..24h`,
		}, "\n"), ErrInvalid},
		{"recording_warning_type", `testdata/recording_warning_type.bad.yaml:2: recording.expiry_warnings[1]: want a duration such as 30s or 1m30s, got "7d"`, ErrType},
		{"redis_sentinel_incomplete", "testdata/redis_sentinel_incomplete.bad.yaml:4: redis.sentinel.master: needs redis.sentinel.addrs", ErrInvalid},
		{"redis_addr_and_sentinel", strings.Join([]string{
			`testdata/redis_addr_and_sentinel.bad.yaml:5: redis.sentinel.addrs[1]: "sentinel.internal" is not host:port: missing port in address`,
			`testdata/redis_addr_and_sentinel.bad.yaml:2: redis.addr: set with redis.sentinel (one or the other)`,
		}, "\n"), ErrInvalid},
		{"redis_needs_token_secret", "testdata/redis_needs_token_secret.bad.yaml:3: redis.addr: needs auth.token_secret: the nodes of a cluster must check each other's join tokens", ErrInvalid},
		{"redis_out_of_range", strings.Join([]string{
			`testdata/redis_out_of_range.bad.yaml:2: redis.db: 16 out of range 0..15`,
			`testdata/redis_out_of_range.bad.yaml:3: redis.timeout: 1m0s out of range 10ms..30s`,
			`testdata/redis_out_of_range.bad.yaml:5: redis.tls.ca_file: is only used with redis.tls.enabled: true`,
			`testdata/redis_out_of_range.bad.yaml:6: redis.tls.server_name: is only used with redis.tls.enabled: true`,
			`testdata/redis_out_of_range.bad.yaml:5: redis.tls.ca_file: "testdata/no-such-ca.pem": no such file or directory`,
		}, "\n"), ErrInvalid},
		{"redis_tls_ca_missing", `testdata/redis_tls_ca_missing.bad.yaml:4: redis.tls.ca_file: "testdata/no-such-ca.pem": no such file or directory`, ErrInvalid},
		{"cluster_out_of_range", strings.Join([]string{
			`testdata/cluster_out_of_range.bad.yaml:3: cluster.lease_ttl: 500ms out of range 1s..60s`,
			`testdata/cluster_out_of_range.bad.yaml:4: cluster.node_ttl: 2m0s out of range 1s..60s`,
			`testdata/cluster_out_of_range.bad.yaml:5: cluster.public_url: "https://gw1.example.org/mediagate" must be an absolute http:// or https:// URL without path, query or fragment, e.g. https://gw1.example.org`,
			`testdata/cluster_out_of_range.bad.yaml:6: cluster.sip_address: "gw1.example.org" is not host:port: missing port in address`,
		}, "\n"), ErrInvalid},
		{"cluster_unknown_key", strings.Join([]string{
			`testdata/cluster_unknown_key.bad.yaml:2: cluster.lease_tll: unknown key`,
			`testdata/cluster_unknown_key.bad.yaml:3: cluster.degraded_local: want true or false, got "yes"`,
		}, "\n"), ErrUnknownKey},
		{"many_invalid", strings.Join([]string{
			`testdata/many_invalid.bad.yaml:3: log.level: "loud" is not one of debug, info, warn, error`,
			`testdata/many_invalid.bad.yaml:5: rtp.port_min: 10001 must be even (RFC 3550 §11)`,
			`testdata/many_invalid.bad.yaml:7: webrtc.udp_port: 99999 out of range 0..65535`,
		}, "\n"), ErrInvalid},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			c, err := Load(filepath.Join("testdata", tt.file+".bad.yaml"), nil)
			require.Error(t, err)
			require.Equal(t, tt.want, err.Error())
			require.ErrorIs(t, err, tt.kind)
			require.Equal(t, Config{}, c)
			for _, secret := range []string{"47a1", "471", "1234", "too short", "s3cret-pw", "sk-secret"} {
				require.NotContains(t, err.Error(), secret, "secrets never appear in errors")
			}
			var e *Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, filepath.Join("testdata", tt.file+".bad.yaml"), e.File)
		})
	}
	// Every bad file must have an expectation above.
	files, err := filepath.Glob(filepath.Join("testdata", "*.bad.yaml"))
	require.NoError(t, err)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".bad.yaml")
		require.True(t, covered[name], "%s has no expected error in TestLoadBadFiles", f)
	}
}

// TestLoadGood covers files that load: what they set and what they leave.
func TestLoadGood(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  []string
		want func(*Config)
	}{
		{"empty file", "", nil, func(*Config) {}},
		{"comments only", "# nothing here\n\n# at all\n", nil, func(*Config) {}},
		{"empty document", "---\n", nil, func(*Config) {}},
		{"null document", "~\n", nil, func(*Config) {}},
		{"empty section keeps defaults", "redis:\nrtp:\n", nil, func(*Config) {}},
		{"partial file overrides only its keys", "rtp:\n  port_max: 30000\nlog:\n  format: json\n", nil,
			func(c *Config) { c.RTP.PortMax = 30000; c.Log.Format = "json" }},
		{"empty string value", "node:\n  id:\nredis:\n  addr: \"\"\n", nil, func(*Config) {}},
		{"string takes a number's text as written", "node:\n  id: 007\n", nil,
			func(c *Config) { c.Node.ID = "007" }},
		{"yaml integer forms", "rtp:\n  port_min: 0x2710\n  port_max: 20_000\n", nil, func(*Config) {}},
		{"anchors and aliases", "http:\n  listen: &addr \"127.0.0.1:0\"\nsip:\n  listen: *addr\n", nil,
			func(c *Config) { c.HTTP.Listen = "127.0.0.1:0"; c.SIP.Listen = "127.0.0.1:0" }},
		{"duration", "node:\n  drain_timeout: 1m30s\n", nil,
			func(c *Config) { c.Node.DrainTimeout = 90 * time.Second }},
		{"zero ports for tests", "http:\n  listen: \"[::1]:0\"\nwebrtc:\n  udp_port: 0\n", nil,
			func(c *Config) { c.HTTP.Listen = "[::1]:0"; c.WebRTC.UDPPort = 0 }},
		{"env overrides file", "rtp:\n  port_min: 12000\n  port_max: 13000\n",
			[]string{"MEDIAGATE_RTP_PORT_MIN=12002", "MEDIAGATE_NODE_DRAIN_TIMEOUT=10s"},
			func(c *Config) { c.RTP.PortMin = 12002; c.RTP.PortMax = 13000; c.Node.DrainTimeout = 10 * time.Second }},
		{"env fixes an invalid file value", "log:\n  level: loud\n", []string{"MEDIAGATE_LOG_LEVEL=debug"},
			func(c *Config) { c.Log.Level = "debug" }},
		{"rooms", "rooms:\n  board:\n    name: Board meeting\n    pin: \"0471\"\n    max_participants: 50\n    number: \"1001\"\n" +
			"  lobby:\n    open: true\n  team_2:\n", nil,
			func(c *Config) {
				c.Rooms = map[string]Room{
					"board":  {Name: "Board meeting", PIN: "0471", MaxParticipants: 50, Number: "1001"},
					"lobby":  {Open: true},
					"team_2": {},
				}
			}},
		{"unquoted pin keeps its digits", "rooms:\n  board:\n    pin: 0471\n", nil,
			func(c *Config) { c.Rooms = map[string]Room{"board": {PIN: "0471"}} }},
		{"empty rooms section keeps none", "rooms:\n", nil, func(*Config) {}},
		{"rooms entries through an alias", "rooms:\n  a: &open {open: true}\n  b: *open\n", nil,
			func(c *Config) { c.Rooms = map[string]Room{"a": {Open: true}, "b": {Open: true}} }},
		{"env key refines a file room", "rooms:\n  board:\n    pin: \"1111\"\n    number: \"7\"\n",
			[]string{"MEDIAGATE_ROOMS_BOARD_PIN=2222"},
			func(c *Config) { c.Rooms = map[string]Room{"board": {PIN: "2222", Number: "7"}} }},
		{"env section replaces the file's rooms", "rooms:\n  board:\n    pin: \"1111\"\n",
			[]string{`MEDIAGATE_ROOMS={"sales-eu": {"open": true}}`},
			func(c *Config) { c.Rooms = map[string]Room{"sales-eu": {Open: true}} }},
		{"empty env section removes the file's rooms", "rooms:\n  board:\n", []string{"MEDIAGATE_ROOMS="},
			func(*Config) {}},
		{"sip timers, limit, nat and tls", "sip:\n  session_expires: 1h\n  min_se: 2m\n  max_call_duration: 4h\n" +
			"  external_address: 2001:db8::7\n  tls:\n    listen: 127.0.0.1:5062\n    cert: /etc/mg/sip.pem\n    key: /etc/mg/sip.key\n", nil,
			func(c *Config) {
				c.SIP.SessionExpires, c.SIP.MinSE, c.SIP.MaxCallDuration = time.Hour, 2*time.Minute, 4*time.Hour
				c.SIP.ExternalAddress = "2001:db8::7"
				c.SIP.TLS = SIPTLS{Listen: "127.0.0.1:5062", Cert: "/etc/mg/sip.pem", Key: "/etc/mg/sip.key"}
			}},
		{"auth", "auth:\n  token_secret: " + testSecret + "\n  page_token_lifetime: 24h\n" +
			"  pin_lockout:\n    failures: 3\n    lockout: 30s\n    room_failures: 0\n", nil,
			func(c *Config) {
				c.Auth = Auth{TokenSecret: testSecret, PageTokenLifetime: 24 * time.Hour, PINLockout: defaultPINLockout()}
				c.Auth.PINLockout.Failures, c.Auth.PINLockout.Lockout = 3, 30*time.Second
				c.Auth.PINLockout.RoomFailures = 0
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "mediagate.yaml")
			require.NoError(t, os.WriteFile(path, []byte(tt.yaml), 0o600))
			got, err := Load(path, tt.env)
			require.NoError(t, err)
			want := Default()
			tt.want(&want)
			require.Equal(t, want, got)
		})
	}
}

// TestLoadNoFile: an empty path means defaults plus environment.
func TestLoadNoFile(t *testing.T) {
	got, err := Load("", []string{"MEDIAGATE_HTTP_LISTEN=127.0.0.1:9000"})
	require.NoError(t, err)
	want := Default()
	want.HTTP.Listen = "127.0.0.1:9000"
	require.Equal(t, want, got)
}

// TestLoadMissingFile: the error names the path and is fs.ErrNotExist.
func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(path, nil)
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.Equal(t, "config file: open "+path+": no such file or directory", err.Error())
}

// TestLoadOrigins: a validation error points at where the bad value came
// from: the file line, the variable, or nothing for a default.
func TestLoadOrigins(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  []string
		want string
	}{
		{"file", "\nrtp:\n  port_min: 80\n", nil,
			"cfg.yaml:3: rtp.port_min: 80 out of range 1024..65535"},
		{"env beats file", "rtp:\n  port_min: 80\n", []string{"MEDIAGATE_RTP_PORT_MIN=90"},
			"env MEDIAGATE_RTP_PORT_MIN: 90 out of range 1024..65535"},
		{"order blames the key that was set", "rtp:\n  port_min: 30000\n", nil,
			"cfg.yaml:2: rtp.port_min: 30000 must be below rtp.port_max (20000)"},
		{"order blames port_max from env", "rtp:\n  port_min: 30000\n", []string{"MEDIAGATE_RTP_PORT_MAX=2000"},
			"env MEDIAGATE_RTP_PORT_MAX: 2000 must be above rtp.port_min (30000)"},
		{"file and env errors together", "log:\n  level: loud\n", []string{"MEDIAGATE_LOG_FORMAT=xml"},
			"cfg.yaml:2: log.level: \"loud\" is not one of debug, info, warn, error\n" +
				"env MEDIAGATE_LOG_FORMAT: \"xml\" is not one of text, json"},
		{"parse errors from file and env", "log:\n  levle: info\n", []string{"MEDIAGATE_RTP_PORT_MIN=x"},
			"cfg.yaml:2: log.levle: unknown key\n" +
				`env MEDIAGATE_RTP_PORT_MIN: want an integer, got "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("cfg.yaml", []byte(tt.yaml), tt.env)
			require.Error(t, err)
			require.Equal(t, tt.want, err.Error())
		})
	}
}

// typesConfig exercises every leaf type the loader supports, and a section
// two levels deep, which Config itself does not yet have.
type typesConfig struct {
	S struct {
		Str  string            `yaml:"str"`
		Int  int               `yaml:"int"`
		I8   int8              `yaml:"i8"`
		U16  uint16            `yaml:"u16"`
		F    float64           `yaml:"f"`
		B    bool              `yaml:"b"`
		D    time.Duration     `yaml:"d"`
		L    []string          `yaml:"l,omitempty"`
		DL   []time.Duration   `yaml:"dl"`
		M    map[string]string `yaml:"m"`
		Deep struct {
			X int `yaml:"x"`
		} `yaml:"deep"`
	} `yaml:"s"`
	Untagged int
	Skipped  int `yaml:"-"`
	hidden   int
}

// loadTypes runs the loader on a typesConfig and returns it and the error
// text ("" for none).
func loadTypes(t *testing.T, data string, environ []string) (typesConfig, string) {
	t.Helper()
	var c typesConfig
	l := loader{file: "t.yaml", origins: map[string]origin{}}
	root := reflect.ValueOf(&c).Elem()
	l.yaml([]byte(data), root)
	l.env(environ, root)
	if err := join(l.errs); err != nil {
		return c, err.Error()
	}
	return c, ""
}

// TestLoaderTypes: every supported type parses from YAML, and wrong values
// are refused with the type named.
func TestLoaderTypes(t *testing.T) {
	c, msg := loadTypes(t, `
s:
  str: hello
  int: -42
  i8: 127
  u16: 65535
  f: 0.25
  b: true
  d: 1.5s
  l: [a, "b c"]
  dl: [1h, 90s]
  m: {a: x, "b-c": "y z"}
  deep:
    x: 7
untagged: 3
`, nil)
	require.Empty(t, msg)
	require.Equal(t, "hello", c.S.Str)
	require.Equal(t, -42, c.S.Int)
	require.Equal(t, int8(127), c.S.I8)
	require.Equal(t, uint16(65535), c.S.U16)
	require.InDelta(t, 0.25, c.S.F, 0)
	require.True(t, c.S.B)
	require.Equal(t, 1500*time.Millisecond, c.S.D)
	require.Equal(t, []string{"a", "b c"}, c.S.L)
	require.Equal(t, []time.Duration{time.Hour, 90 * time.Second}, c.S.DL)
	require.Equal(t, map[string]string{"a": "x", "b-c": "y z"}, c.S.M)
	require.Equal(t, 7, c.S.Deep.X)
	require.Equal(t, 3, c.Untagged)
	require.Zero(t, c.hidden)

	tests := []struct{ yaml, want string }{
		{"s:\n  i8: 128\n", "t.yaml:2: s.i8: 128 out of range for int8"},
		{"s:\n  u16: -1\n", `t.yaml:2: s.u16: want a non-negative integer, got "-1"`},
		{"s:\n  int: 1.5\n", `t.yaml:2: s.int: want an integer, got "1.5"`},
		{"s:\n  f: x\n", `t.yaml:2: s.f: want a number, got "x"`},
		{"s:\n  b: yes\n", `t.yaml:2: s.b: want true or false, got "yes"`},
		{"s:\n  l: a\n", `t.yaml:2: s.l: want a list of strings, got "a"`},
		{"s:\n  l:\n    - a\n    - [b]\n    -\n", "t.yaml:4: s.l[1]: want a string, got a list\n" +
			"t.yaml:5: s.l[2]: want a string, got an empty value"},
		{"s:\n  dl: 1h\n", `t.yaml:2: s.dl: want a list of durations such as [168h, 24h], got "1h"`},
		{"s:\n  dl: [1h, 2, \"\"]\n", "t.yaml:2: s.dl[1]: want a duration such as 30s or 1m30s, got \"2\"\n" +
			`t.yaml:2: s.dl[2]: want a duration such as 30s or 1m30s, got ""`},
		{"s:\n  dl: [~]\n", "t.yaml:2: s.dl[0]: want a duration such as 30s or 1m30s, got an empty value"},
		{"s:\n  m: [a]\n", "t.yaml:2: s.m: want a mapping of strings, got a list"},
		{"s:\n  m:\n    a: {b: c}\n    d: \n    a: e\n", "t.yaml:3: s.m.a: want a string, got a mapping\n" +
			"t.yaml:4: s.m.d: want a string, got an empty value\n" +
			"t.yaml:5: s.m.a: duplicate key (first at line 3)"},
		{"s:\n  deep:\n    y: 1\n", "t.yaml:3: s.deep.y: unknown key"},
		{"s:\n  deep: 1\n", `t.yaml:2: s.deep: want a mapping, got "1"`},
		{"skipped: 1\n", "t.yaml:1: skipped: unknown key"},
		{"hidden: 1\n", "t.yaml:1: hidden: unknown key"},
		{"s:\n  [a]: 1\n", "t.yaml:2: s: want a plain key, got a list"},
		{"<<: {untagged: 1}\n", "t.yaml:1: <<: unknown key"},
	}
	for _, tt := range tests {
		_, msg := loadTypes(t, tt.yaml, nil)
		require.Equal(t, tt.want, msg, "yaml %q", tt.yaml)
	}

	_, msg = loadTypes(t, "s:\n  l: []\n", nil)
	require.Empty(t, msg)
	c, msg = loadTypes(t, "s:\n  l:\n", nil)
	require.Empty(t, msg)
	require.Nil(t, c.S.L)
	c, msg = loadTypes(t, "s:\n  m:\n", nil)
	require.Empty(t, msg)
	require.Equal(t, map[string]string{}, c.S.M, "an empty value empties the mapping")
}

// TestErrorFormat pins the documented formats of Error.
func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  Error
		want string
	}{
		{Error{File: "m.yaml", Line: 12, Key: "http.listn", Msg: "unknown key"}, "m.yaml:12: http.listn: unknown key"},
		{Error{File: "m.yaml", Line: 4, Msg: "want one YAML document, found a second"}, "m.yaml:4: want one YAML document, found a second"},
		{Error{File: "m.yaml", Msg: "unknown anchor 'x' referenced"}, "m.yaml: unknown anchor 'x' referenced"},
		{Error{Env: "MEDIAGATE_RTP_PORT_MIN", Key: "rtp.port_min", Msg: `want an integer, got "x"`}, `env MEDIAGATE_RTP_PORT_MIN: want an integer, got "x"`},
		{Error{Key: "rtp.port_min", Msg: "1 out of range 1024..65535"}, "rtp.port_min: 1 out of range 1024..65535"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, tt.err.Error())
	}
	err := error(&Error{Msg: "x", Err: ErrUnknownKey})
	require.True(t, errors.Is(err, ErrUnknownKey))
	require.False(t, errors.Is(err, ErrType))
}

// TestParseSyntaxWithoutLine: yaml.v3 gives no line for some errors; the
// message still names the file.
func TestParseSyntaxWithoutLine(t *testing.T) {
	_, err := Parse("x.yaml", []byte("http:\n  listen: *nope\n"), nil)
	require.ErrorIs(t, err, ErrSyntax)
	require.Equal(t, "x.yaml: unknown anchor 'nope' referenced", err.Error())
}
