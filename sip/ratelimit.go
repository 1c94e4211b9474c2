package sip

import (
	"sync"
	"time"
)

// refusalBurst is how many refusals a minute are logged at Info: enough to
// see a misconfigured carrier, too few for a scanner to flood the log.
const refusalBurst = 10

// logLimiter lets burst records per window through at their level; the
// rest go to Debug, and the first record of the next window learns how
// many were held back. Safe for concurrent use.
type logLimiter struct {
	burst  int
	window time.Duration

	mu    sync.Mutex
	start time.Time
	n     int // records in this window
	held  int // of them over burst
}

func newLogLimiter(burst int, window time.Duration) *logLimiter {
	return &logLimiter{burst: burst, window: window}
}

// allow reports whether a record at now may be logged at its level, and
// how many were held back in the window that now ended (0 when none
// ended).
func (l *logLimiter) allow(now time.Time) (ok bool, held int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= l.window || now.Before(l.start) {
		held = l.held
		l.start, l.n, l.held = now, 0, 0
	}
	l.n++
	if l.n > l.burst {
		l.held++
		return false, held
	}
	return true, held
}
