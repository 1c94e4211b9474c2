package media

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDelayEstimatorSortedWindow: the sorted window kept on every add holds
// exactly the ring's delays, through wrap-arounds and rebases, so the
// target is what sorting the window would give.
func TestDelayEstimatorSortedWindow(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	e := delayEstimator{frameTS: 160, minD: 20 * time.Millisecond, initD: 60 * time.Millisecond,
		maxD: 500 * time.Millisecond}
	base := time.Unix(1000, 0)
	e.rebase(base, 0)
	for i := range 5 * jitterWindow {
		// 20 ms apart with up to 40 ms of jitter, ties included, and a
		// clock jump now and then (a rebase).
		ts := int64(i) * 160
		at := base.Add(time.Duration(i)*FrameDuration + time.Duration(rng.IntN(9))*5*time.Millisecond)
		if i%300 == 299 {
			at = at.Add(3 * time.Second)
		}
		e.add(at, ts, false)

		want := slices.Clone(e.win[:e.n])
		slices.Sort(want)
		require.Equal(t, want, e.sorted[:e.n], "after packet %d", i)
		e.update()
		require.Equal(t, want[0], e.dmin)
	}
}
