package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress shows how far a download is on w (stderr): a bar redrawn in
// place when w is a terminal; otherwise, for logs and pipes, a plain line
// at the start and at every further tenth.
type progress struct {
	w           io.Writer
	tty         bool
	name        string
	done, total int64
	shown       int64     // the percentage (a tenth without a terminal) last shown
	drawn       time.Time // when the bar was last drawn
}

// barWidth is the bar's width in characters.
const barWidth = 30

// redrawEvery bounds how often the bar is redrawn while its percentage
// stays.
const redrawEvery = 200 * time.Millisecond

// newProgress shows a download of total bytes into name that starts at
// done (a resumed one).
func newProgress(w io.Writer, tty bool, name string, done, total int64) *progress {
	p := &progress{w: w, tty: tty, name: name, done: done, total: total, shown: -1}
	p.show(true)
	return p
}

// Write counts b as downloaded.
func (p *progress) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	p.show(false)
	return len(b), nil
}

func (p *progress) percent() int64 {
	if p.total <= 0 {
		return 100
	}
	return min(100, p.done*100/p.total)
}

func (p *progress) show(force bool) {
	pc := p.percent()
	if !p.tty {
		if tenth := pc / 10 * 10; force || tenth != p.shown {
			fmt.Fprintf(p.w, "%s: %d%% (%d of %d bytes)\n", p.name, tenth, p.done, p.total)
			p.shown = tenth
		}
		return
	}
	if !force && pc == p.shown && time.Since(p.drawn) < redrawEvery {
		return
	}
	fill := int(pc * barWidth / 100)
	fmt.Fprintf(p.w, "\r%s [%s%s] %3d%% %s of %s ", p.name, strings.Repeat("#", fill), strings.Repeat("-", barWidth-fill),
		pc, formatBytes(p.done), formatBytes(p.total))
	p.shown, p.drawn = pc, time.Now()
}

// finish draws the last state and ends the bar's line.
func (p *progress) finish() {
	if p.tty {
		p.show(true)
		fmt.Fprintln(p.w)
	}
}
