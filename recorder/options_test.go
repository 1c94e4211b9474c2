package recorder

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
)

func TestOptionsAreChecked(t *testing.T) {
	ok := func() Options { return Options{Dir: t.TempDir(), ReceiptKey: testKey} }
	for name, mod := range map[string]func(*Options){
		"no dir":             func(o *Options) { o.Dir = "" },
		"short key":          func(o *Options) { o.ReceiptKey = testKey[:MinReceiptKeyLen-1] },
		"unnamed policy":     func(o *Options) { o.Policies = []Policy{{Duration: time.Hour}} },
		"zero duration":      func(o *Options) { o.Policies = []Policy{{Name: "p"}} },
		"min over duration":  func(o *Options) { o.Policies = []Policy{{Name: "p", Duration: time.Hour, Min: 2 * time.Hour}} },
		"max under duration": func(o *Options) { o.Policies = []Policy{{Name: "p", Duration: time.Hour, Max: time.Minute}} },
		"policy twice": func(o *Options) {
			o.Policies = []Policy{{Name: "p", Duration: time.Hour}, {Name: "p", Duration: 2 * time.Hour}}
		},
		"opus at 16 kHz":  func(o *Options) { o.Opus = media.DefaultOpusConfig(); o.Opus.Rate = media.Rate16k },
		"opus complexity": func(o *Options) { o.Opus = media.DefaultOpusConfig(); o.Opus.Complexity = 11 },
		"sync policy":     func(o *Options) { o.Sync = 7 },
	} {
		o := ok()
		mod(&o)
		_, err := New(o)
		require.ErrorIs(t, err, ErrOptions, name)
	}

	h := newHarness(t, func(o *Options) { o.Policies = []Policy{{Name: "short", Duration: time.Hour}} })
	require.Equal(t, []Policy{{Name: "short", Duration: time.Hour, Max: time.Hour}, DefaultPolicy()}, h.r.Policies())
	require.Equal(t, Policy{Name: "default", Duration: 30 * 24 * time.Hour, Max: 365 * 24 * time.Hour}, DefaultPolicy())
	require.Equal(t, "node-a", h.r.Node())
}
