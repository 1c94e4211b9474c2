package sip

import (
	"context"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSetTrunksAdmission: trunks replaced while the UA runs admit the next
// call by the new rules: 127.0.0.1 is refused with 403 while only a LAN
// trunk is configured, and its call is the new trunk's afterwards.
func TestSetTrunksAdmission(t *testing.T) {
	lan := Trunk{Name: "lan", CIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	local := Trunk{Name: "local", CIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	rec := newRecorder(t)
	rec.answer = answerCall
	rec.after = func(_ context.Context, c *Call) { <-c.Done() }
	u := startUA(t, rec, WithTrunks(lan))
	require.NoError(t, runSipp(t, u, sippRun{scenario: "trunk_forbidden.xml"}))

	require.ErrorIs(t, u.SetTrunks(false, lan, Trunk{Name: "broken"}), ErrConfig, "a trunk that accepts nothing")
	require.NoError(t, runSipp(t, u, sippRun{scenario: "trunk_forbidden.xml"}), "a refused replacement changes nothing")

	require.NoError(t, u.SetTrunks(false, lan, local))
	require.NoError(t, runSipp(t, u, sippRun{scenario: "hold.xml"}))
	rec.wait(t)
	c, err := rec.first()
	require.NoError(t, err)
	require.Equal(t, "local", c.Info().Trunk)
}

// TestSetTrunksRegistration: a registration trunk added while the UA runs
// registers (challenge answered, binding refreshed), one unchanged by a
// further replacement keeps its binding, and removing it un-REGISTERs,
// which the sipp registrar asserts.
func TestSetTrunksRegistration(t *testing.T) {
	reg := startSippUAS(t, sippRun{scenario: "register_uas.xml", keys: registrarKeys})
	u := startUA(t, newRecorder(t))
	require.Empty(t, u.Registrations())
	carrier := Trunk{Name: "carrier", Register: true, Registrar: "sip:127.0.0.1:" + strconv.Itoa(reg.port),
		Username: "gw1", Password: "pw-for-carrier", Realm: "carrier.test"}
	require.NoError(t, u.SetTrunks(false, carrier))
	require.Eventually(t, func() bool {
		r := u.Registrations()
		return len(r) == 1 && r[0].Successes >= 1
	}, 15*time.Second, 20*time.Millisecond, "registered: %+v", u.Registrations())

	lan := Trunk{Name: "lan", CIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	require.NoError(t, u.SetTrunks(true, carrier, lan))
	require.Eventually(t, func() bool { return u.Registrations()[0].Successes >= 2 }, 15*time.Second, 20*time.Millisecond,
		"the kept binding is refreshed by the same loop: %+v", u.Registrations())

	require.NoError(t, u.SetTrunks(false, lan))
	require.Empty(t, u.Registrations())
	require.NoError(t, reg.wait(t), "the registrar saw the un-REGISTER")
}

// TestCallCapacity: the cap of sip.guard.max_calls and the calls counted
// against it; no cap without one.
func TestCallCapacity(t *testing.T) {
	u := startUA(t, newRecorder(t))
	used, limit := u.CallCapacity()
	require.Equal(t, [2]int{0, 0}, [2]int{used, limit})
	g := startUA(t, newRecorder(t), WithGuard(GuardConfig{MaxCalls: 2}))
	used, limit = g.CallCapacity()
	require.Equal(t, [2]int{0, 2}, [2]int{used, limit})
}
