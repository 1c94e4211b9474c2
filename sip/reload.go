package sip

import (
	"fmt"
	"slices"
)

// trunks returns the trunks in force.
func (u *UA) trunks() *trunking { return u.trs.Load() }

// SetTrunks replaces the trunks and the hide_unknown setting (WithTrunks,
// WithHideUnknown) while the UA runs, for a configuration reload. New
// requests outside a dialog are admitted by the new trunks; calls in
// progress keep going, as in-dialog requests pass as their call's trunk.
// Registration trunks whose settings did not change keep their binding
// and loop; added ones start registering; removed ones, and changed ones
// before their successor registers, remove their binding (REGISTER
// Expires 0) in the background. Challenges sent before stay answerable.
// An invalid trunk is an error wrapping ErrConfig, and nothing changes.
func (u *UA) SetTrunks(hideUnknown bool, trunks ...Trunk) error {
	u.trMu.Lock()
	defer u.trMu.Unlock()
	old := u.trunks()
	tr, err := newTrunking(trunkOptions{trunks: trunks, hide: hideUnknown}, u.opts.name, old)
	if err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closing {
		return fmt.Errorf("sip: set trunks: %w", ErrClosed)
	}
	kept := map[*registration]bool{}
	for _, t := range tr.trunks {
		if t.reg == nil {
			continue
		}
		i := slices.IndexFunc(old.trunks, func(o *trunk) bool { return o.Name == t.Name && o.reg != nil })
		switch {
		case i >= 0 && sameRegistration(old.trunks[i].Trunk, t.Trunk):
			t.reg = old.trunks[i].reg
			kept[t.reg] = true
		case i >= 0:
			u.startRegistration(t, old.trunks[i].reg.done)
		default:
			u.startRegistration(t, nil)
		}
	}
	u.trs.Store(tr)
	for _, t := range old.trunks {
		if t.reg != nil && !kept[t.reg] {
			t.reg.stop()
		}
	}
	u.warnClearKeys()
	return nil
}

// sameRegistration reports whether a registration trunk's binding can be
// kept: nothing that goes into its REGISTERs changed. Trunks compared
// are as newTrunking prepared them.
func sameRegistration(a, b Trunk) bool {
	return a.Username == b.Username && a.Password == b.Password && a.Realm == b.Realm &&
		a.Registrar == b.Registrar && a.Expires == b.Expires
}

// CallCapacity returns the calls counted against sip.guard.max_calls and
// that cap (GuardConfig.MaxCalls), for readiness probes; the limit is 0
// when there is no cap (no guard, or MaxCalls 0), and the count is then
// the UA's calls.
func (u *UA) CallCapacity() (used, limit int) {
	if u.guard == nil || u.guard.cfg.MaxCalls == 0 {
		return u.Calls(), 0
	}
	u.guard.mu.Lock()
	defer u.guard.mu.Unlock()
	return u.guard.total, u.guard.cfg.MaxCalls
}

// CheckTrunks reports whether SetTrunks would take trunks, without
// changing anything: an error wrapping ErrConfig names the first trunk it
// refuses.
func CheckTrunks(trunks ...Trunk) error {
	_, err := newTrunking(trunkOptions{trunks: trunks}, "", nil)
	return err
}
