package sip

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Trunks against sipp: as the caller of an unknown, an allowed and a
// digest-authenticated source, and as the registrar of a registration
// trunk (UAS mode, sipp's verifyauth checking our digest answers).

// answerCall is a callRecorder.answer that answers at once.
func answerCall(_ context.Context, in *IncomingCall) (*Call, error) { return in.Answer() }

// TestSippTrunkInbound runs callers against UAs with trunks: sipp asserts
// the exact responses, the test which trunk each call was given.
func TestSippTrunkInbound(t *testing.T) {
	lan := Trunk{Name: "lan", CIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	local := Trunk{Name: "local", CIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	pbx := Trunk{Name: "pbx", Username: "pbx1", Password: "s3cret", Realm: "pbx.test"}
	digestKeys := map[string]string{"USER": "pbx1", "PASS": "s3cret", "REALM": "pbx.test"}
	tests := []struct {
		name     string
		scenario string
		keys     map[string]string
		opts     []Option
		trunk    string // "" means the handler sees no call
	}{
		{"unknown source gets 403", "trunk_forbidden.xml", nil, []Option{WithTrunks(lan)}, ""},
		{"unknown source gets nothing with hide_unknown", "trunk_hidden.xml", nil,
			[]Option{WithTrunks(lan), WithHideUnknown(true)}, ""},
		{"allowed cidr: re-INVITEs and BYE in the dialog pass", "hold.xml", nil,
			[]Option{WithTrunks(lan, local), WithHideUnknown(true)}, "local"},
		{"digest answered", "trunk_digest.xml", digestKeys, []Option{WithTrunks(lan, pbx)}, "pbx"},
		{"digest wrong password gets 403", "trunk_digest_wrong.xml",
			map[string]string{"USER": "pbx1", "PASS": "guess"}, []Option{WithTrunks(lan, pbx)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t)
			rec.answer = answerCall
			rec.after = func(_ context.Context, c *Call) { <-c.Done() }
			u := startUA(t, rec, tt.opts...)
			require.NoError(t, runSipp(t, u, sippRun{scenario: tt.scenario, keys: tt.keys}))
			if tt.trunk == "" {
				rec.mu.Lock()
				defer rec.mu.Unlock()
				require.Empty(t, rec.infos, "the handler never sees a refused call")
				return
			}
			rec.wait(t)
			c, err := rec.first()
			require.NoError(t, err)
			require.Equal(t, tt.trunk, c.Info().Trunk)
			require.ErrorIs(t, c.Err(), ErrRemoteHangup)
		})
	}
}

// sippUAS is sipp running a server scenario on its own port.
type sippUAS struct {
	port int
	done chan error // sipp's exit: nil when the scenario passed
}

// startSippUAS starts sipp as a server (the registrar) on a free port with
// a scenario from testdata, keywords replaced as in runSipp, and kills it
// in t.Cleanup.
func startSippUAS(t *testing.T, r sippRun) *sippUAS {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", r.scenario))
	require.NoError(t, err)
	for k, v := range r.keys {
		src = bytes.ReplaceAll(src, []byte("["+k+"]"), []byte(v))
	}
	dir := t.TempDir()
	sf := filepath.Join(dir, r.scenario)
	require.NoError(t, os.WriteFile(sf, src, 0o600))
	s := &sippUAS{port: freeUDPPort(t), done: make(chan error, 1)}
	errFile := filepath.Join(dir, "errors.log")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	cmd := exec.CommandContext(ctx, "sipp", "-sf", sf, "-i", "127.0.0.1", "-p", strconv.Itoa(s.port),
		"-m", "1", "-timeout", "30", "-timeout_error", "-recv_timeout", "15000", "-nostdin",
		"-trace_err", "-error_file", errFile)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	go func() {
		err := cmd.Wait()
		if err != nil {
			log, _ := os.ReadFile(errFile)
			tail := out.Bytes()[max(0, out.Len()-2000):]
			err = fmt.Errorf("sipp %s: %w\nerrors:\n%s\noutput:\n%s", r.scenario, err, log, tail)
		}
		s.done <- err
	}()
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	return s
}

// wait returns sipp's verdict.
func (s *sippUAS) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err // for t.Cleanup
		return err
	case <-time.After(35 * time.Second):
		t.Fatal("sipp registrar did not finish")
		return nil
	}
}

// startRegisteringUA starts a UA whose only trunk registers at reg, closing
// it in t.Cleanup if the test has not.
func startRegisteringUA(t *testing.T, h Handler, reg *sippUAS) *UA {
	t.Helper()
	base := 20000 + 2*rand.IntN(10000)
	u, err := New("127.0.0.1:0", h, WithLogger(testLog(t)), WithRTPPorts(base, base+99),
		WithTrunks(Trunk{Name: "carrier", Register: true, Registrar: "sip:127.0.0.1:" + strconv.Itoa(reg.port),
			Username: "gw1", Password: "pw-for-carrier", Realm: "carrier.test"}))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, u.Close(ctx))
	})
	return u
}

var registrarKeys = map[string]string{"USER": "gw1", "PASS": "pw-for-carrier", "REALM": "carrier.test", "EXPIRES": "3600"}

// TestSippRegistrar: the registrar challenges, verifies and grants 4 s;
// the UA refreshes at 2 s and un-REGISTERs when it closes.
func TestSippRegistrar(t *testing.T) {
	reg := startSippUAS(t, sippRun{scenario: "register_uas.xml", keys: registrarKeys})
	u := startRegisteringUA(t, newRecorder(t), reg)
	start := time.Now()
	require.Eventually(t, func() bool { return u.Registrations()[0].Successes >= 2 }, 15*time.Second, 20*time.Millisecond,
		"registered and refreshed: %+v", u.Registrations())
	require.Greater(t, time.Since(start), 1500*time.Millisecond, "the refresh waits for half the lifetime")
	r := u.Registrations()[0]
	require.Equal(t, "carrier", r.Trunk)
	require.Equal(t, RegRegistered, r.State)
	require.Equal(t, 4*time.Second, r.Expires, "granted in the Contact's expires parameter")
	require.WithinDuration(t, time.Now().Add(2*time.Second), r.Next, 500*time.Millisecond)
	require.NoError(t, r.Err)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, u.Close(ctx))
	require.NoError(t, reg.wait(t), "the registrar saw the un-REGISTER")
	require.Equal(t, RegUnregistered, u.Registrations()[0].State)
}

// TestSippRegistrarRetry: a registrar answering 503 first gets the
// REGISTER again after the backoff; once registered, an INVITE from the
// registrar's address is the trunk's call, without a challenge.
func TestSippRegistrarRetry(t *testing.T) {
	reg := startSippUAS(t, sippRun{scenario: "register_retry.xml", keys: registrarKeys})
	rec := newRecorder(t)
	rec.answer = answerCall
	rec.after = func(_ context.Context, c *Call) { <-c.Done() }
	before := time.Now()
	u := startRegisteringUA(t, rec, reg)
	require.Eventually(t, func() bool { return u.Registrations()[0].State == RegFailed }, 10*time.Second, 5*time.Millisecond)
	failed := u.Registrations()[0]
	require.ErrorIs(t, failed.Err, ErrRegisterRefused)
	require.ErrorContains(t, failed.Err, "503 Service Unavailable")
	require.Equal(t, 1, failed.Failures)
	// The failure came after before and before now; the retry 1 to 2 s
	// after it.
	require.WithinRange(t, failed.Next, before.Add(time.Second), time.Now().Add(2*time.Second), "backoff 1..2 s")

	require.Eventually(t, func() bool { return u.Registrations()[0].State == RegRegistered }, 10*time.Second, 20*time.Millisecond)
	r := u.Registrations()[0]
	require.Equal(t, time.Hour, r.Expires, "granted in the Expires header")
	require.Zero(t, r.Failures)

	require.NoError(t, runSipp(t, u, sippRun{scenario: "hold.xml"}))
	rec.wait(t)
	c, err := rec.first()
	require.NoError(t, err)
	require.Equal(t, "carrier", c.Info().Trunk, "127.0.0.1 is the registrar's address")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, u.Close(ctx))
	require.NoError(t, reg.wait(t))
}

// TestSippRegistrarRefused: a registrar that challenges our answer again
// leaves the trunk failed with ErrRegisterAuth, and the UA, never bound,
// closes without un-REGISTER.
func TestSippRegistrarRefused(t *testing.T) {
	keys := map[string]string{"USER": "gw1", "PASS": "not-our-password", "REALM": "carrier.test"}
	reg := startSippUAS(t, sippRun{scenario: "register_refused.xml", keys: keys})
	u := startRegisteringUA(t, newRecorder(t), reg)
	require.Eventually(t, func() bool { return u.Registrations()[0].State == RegFailed }, 10*time.Second, 5*time.Millisecond)
	r := u.Registrations()[0]
	require.ErrorIs(t, r.Err, ErrRegisterAuth)
	require.Equal(t, "sip: registrar refused our credentials: 401 Unauthorized", r.Err.Error())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, u.Close(ctx))
	require.NoError(t, reg.wait(t))
	require.Equal(t, RegUnregistered, u.Registrations()[0].State)
}
