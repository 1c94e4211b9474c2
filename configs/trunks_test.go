package configs

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testTrunkPassword must never appear in an error or a printed config.
const testTrunkPassword = "pw-Secret-42"

// TestValidateTrunks: each rule of sip.trunks accepts its edge values and
// refuses the values just outside, naming the key.
func TestValidateTrunks(t *testing.T) {
	reg := Trunk{Register: true, Registrar: "sip:sip.carrier.example", Username: "+4930123456", Password: testTrunkPassword}
	with := func(f func(*Trunk)) Trunk { r := reg; f(&r); return r }
	tests := []struct {
		name  string
		trunk Trunk
		want  string // "" means valid
	}{
		{"cidrs only", Trunk{CIDRs: []string{"203.0.113.0/24", "2001:db8::/32", "198.51.100.7/32", "0.0.0.0/0"}}, ""},
		{"credentials only", Trunk{Username: "pbx", Password: testTrunkPassword, Realm: "pbx.example"}, ""},
		{"registration", reg, ""},
		{"registrar host:port", with(func(r *Trunk) { r.Registrar = "sip.carrier.example:5080" }), ""},
		{"registrar ipv6 tcp", with(func(r *Trunk) { r.Registrar = "sip:[2001:db8::1]:5060;transport=TCP" }), ""},
		{"registrar ipv6 alone", with(func(r *Trunk) { r.Registrar = "[2001:db8::1]" }), ""},
		{"expires 1m", with(func(r *Trunk) { r.Expires = time.Minute }), ""},
		{"expires 24h", with(func(r *Trunk) { r.Expires = 24 * time.Hour }), ""},
		{"expires 59s", with(func(r *Trunk) { r.Expires = 59 * time.Second }),
			"sip.trunks.t.expires: 59s out of range 1m..24h (or 0s for 1h)"},
		{"expires over 24h", with(func(r *Trunk) { r.Expires = 24*time.Hour + time.Second }),
			"sip.trunks.t.expires: 24h0m1s out of range 1m..24h (or 0s for 1h)"},
		{"register without registrar", with(func(r *Trunk) { r.Registrar = "" }),
			"sip.trunks.t.register: needs sip.trunks.t.registrar, sip.trunks.t.username and sip.trunks.t.password"},
		{"registrar with user", with(func(r *Trunk) { r.Registrar = "sip:gw@carrier.example" }),
			`sip.trunks.t.registrar: "sip:gw@carrier.example" must not have a user part (RFC 3261 §10.2: the registrar's URI names the domain)`},
		{"registrar udp param ok, other param not", with(func(r *Trunk) { r.Registrar = "sip:carrier.example;transport=udp;lr" }),
			`sip.trunks.t.registrar: "sip:carrier.example;transport=udp;lr" has parameter "lr"; only transport=udp or transport=tcp is understood`},
		{"registrar tls", with(func(r *Trunk) { r.Registrar = "carrier.example;transport=tls" }),
			`sip.trunks.t.registrar: "carrier.example;transport=tls" has transport "tls"; only udp and tcp are supported`},
		{"registrar empty host", with(func(r *Trunk) { r.Registrar = "sip::5060" }),
			`sip.trunks.t.registrar: "sip::5060" is not a sip: URI or host:port`},
		{"registrar url", with(func(r *Trunk) { r.Registrar = "https://carrier.example/" }),
			`sip.trunks.t.registrar: "https://carrier.example/" is not a sip: URI or host:port`},
		{"ipv6 host bits", Trunk{CIDRs: []string{"2001:db8::1/32"}},
			`sip.trunks.t.cidrs[0]: "2001:db8::1/32" has host bits set: did you mean 2001:db8::/32 or 2001:db8::1/128?`},
		{"bare address", Trunk{CIDRs: []string{"203.0.113.5"}},
			`sip.trunks.t.cidrs[0]: "203.0.113.5" is not a CIDR such as 203.0.113.0/24 (one address: 203.0.113.5/32)`},
		{"username 128", Trunk{Username: strings.Repeat("u", 128), Password: testTrunkPassword}, ""},
		{"username 129", Trunk{Username: strings.Repeat("u", 129), Password: testTrunkPassword},
			"sip.trunks.t.username: must be 1 to 128 characters from A-Z a-z 0-9 -_.!~*'()&=+$,;?/"},
		{"username with @", Trunk{Username: "gw@carrier", Password: testTrunkPassword},
			"sip.trunks.t.username: must be 1 to 128 characters from A-Z a-z 0-9 -_.!~*'()&=+$,;?/"},
		{"username without password", Trunk{Username: "pbx"}, "sip.trunks.t.username: needs sip.trunks.t.password"},
		{"password with a line break", Trunk{Username: "pbx", Password: testTrunkPassword + "\n"},
			"sip.trunks.t.password: must be at most 128 printable characters"},
		{"realm with quote", Trunk{Username: "pbx", Password: testTrunkPassword, Realm: `a"b`},
			`sip.trunks.t.realm: must be at most 128 printable characters without " or \`},
		{"nothing", Trunk{Realm: "x"}, "sip.trunks.t: needs cidrs, or username and password, or register: true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.SIP.Trunks = map[string]Trunk{"t": tt.trunk}
			err := c.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Equal(t, tt.want, err.Error())
			require.ErrorIs(t, err, ErrInvalid)
			require.NotContains(t, err.Error(), testTrunkPassword)
		})
	}
}

// TestTrunksEnv: trunks from the environment, whole section as JSON and
// per key, and their errors naming the variable and key.
func TestTrunksEnv(t *testing.T) {
	got, err := Load("", []string{
		`MEDIAGATE_SIP_TRUNKS={"sbc-eu": {"cidrs": ["198.51.100.10/32"]}, "carrier": {"register": true, "registrar": "sip:sip.carrier.example", "username": "4930123456"}}`,
		"MEDIAGATE_SIP_TRUNKS_CARRIER_PASSWORD=" + testTrunkPassword,
		"MEDIAGATE_SIP_TRUNKS_CARRIER_EXPIRES=30m",
		"MEDIAGATE_SIP_TRUNKS_PBX_2_CIDRS=192.168.10.0/24, 192.168.11.0/24",
		"MEDIAGATE_SIP_HIDE_UNKNOWN=1",
	})
	require.NoError(t, err)
	require.True(t, got.SIP.HideUnknown)
	require.Equal(t, map[string]Trunk{
		"sbc-eu": {CIDRs: []string{"198.51.100.10/32"}},
		"carrier": {Register: true, Registrar: "sip:sip.carrier.example", Username: "4930123456",
			Password: testTrunkPassword, Expires: 30 * time.Minute},
		"pbx_2": {CIDRs: []string{"192.168.10.0/24", "192.168.11.0/24"}},
	}, got.SIP.Trunks)

	for _, tt := range []struct{ env, want string }{
		{`MEDIAGATE_SIP_TRUNKS={"pbx": {"pasword": "x"}}`, "env MEDIAGATE_SIP_TRUNKS: sip.trunks.pbx.pasword: unknown key"},
		{`MEDIAGATE_SIP_TRUNKS={"pbx": {"cidrs": "10.0.0.0/8"}}`, `env MEDIAGATE_SIP_TRUNKS: sip.trunks.pbx.cidrs: want a list of strings, got "10.0.0.0/8"`},
		{`MEDIAGATE_SIP_TRUNKS={"pbx": {"cidrs": ["10.1.0.0/8"]}}`,
			`env MEDIAGATE_SIP_TRUNKS: sip.trunks.pbx.cidrs[0]: "10.1.0.0/8" has host bits set: did you mean 10.0.0.0/8 or 10.1.0.0/32?`},
		{"MEDIAGATE_SIP_TRUNKS_PBX_PASSWORD=" + testTrunkPassword, "env MEDIAGATE_SIP_TRUNKS_PBX_PASSWORD: needs sip.trunks.pbx.username"},
		{"MEDIAGATE_SIP_TRUNKS_PBX_REGISTER=maybe", `env MEDIAGATE_SIP_TRUNKS_PBX_REGISTER: want true or false, got "maybe"`},
		{"MEDIAGATE_SIP_HIDE_UNKNOWN=yes", `env MEDIAGATE_SIP_HIDE_UNKNOWN: want true or false, got "yes"`},
	} {
		_, err := Load("", []string{tt.env})
		require.Error(t, err, tt.env)
		require.Equal(t, tt.want, err.Error())
		require.NotContains(t, err.Error(), testTrunkPassword)
	}
}

// TestTrunksRedacted: passwords are replaced in Redacted's copy and never
// printed by fmt; the original keeps them.
func TestTrunksRedacted(t *testing.T) {
	c := Default()
	c.SIP.Trunks = map[string]Trunk{"pbx": {Username: "pbx", Password: testTrunkPassword}, "lan": {CIDRs: []string{"10.0.0.0/8"}}}
	r := c.Redacted()
	require.Equal(t, Trunk{Username: "pbx", Password: "<redacted>"}, r.SIP.Trunks["pbx"])
	require.Equal(t, Trunk{CIDRs: []string{"10.0.0.0/8"}}, r.SIP.Trunks["lan"])
	require.Equal(t, testTrunkPassword, c.SIP.Trunks["pbx"].Password)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%v", c.SIP)} {
		require.NotContains(t, s, testTrunkPassword)
		require.Contains(t, s, "<redacted>")
	}
}
