package stream

import (
	_ "embed"
	"fmt"
	"sync"
	"time"
)

// slateH264 is the slate: one closed GOP (an IDR and 9 P frames of a
// still picture, 640x360, 5 frames/s) made by scripts/gen-slate.
//
//go:embed slate.h264
var slateH264 []byte

// slateFrameInterval is the slate's frame interval: 5 frames/s, so the
// 10-frame GOP loops every 2 s and a new viewer waits at most that long
// for an IDR (a destination that connects gets one at once).
const slateFrameInterval = 200 * time.Millisecond

// slateVideo is the slate ready to send: its sequence header and each
// frame as a VIDEODATA body.
type slateVideo struct {
	header []byte
	frames [][]byte // frames[0] is the IDR
}

// loadSlate parses the embedded slate once.
var loadSlate = sync.OnceValues(func() (*slateVideo, error) { return parseSlate(slateH264) })

// parseSlate cuts an Annex B GOP into FLV bodies. The first access unit
// must be an IDR with its SPS and PPS.
func parseSlate(stream []byte) (*slateVideo, error) {
	aus := splitAUs(stream)
	if len(aus) == 0 {
		return nil, fmt.Errorf("slate: no access units")
	}
	first := scanAU(aus[0])
	if !first.key || first.sps == nil || first.pps == nil {
		return nil, fmt.Errorf("slate: first access unit is not an IDR with SPS and PPS")
	}
	s := &slateVideo{}
	var err error
	if s.header, err = appendVideoHeader(nil, first.sps, first.pps); err != nil {
		return nil, fmt.Errorf("slate: %w", err)
	}
	for i, au := range aus {
		info := scanAU(au)
		if i > 0 && info.key {
			return nil, fmt.Errorf("slate: access unit %d is a second IDR", i)
		}
		f := appendVideoFrameHeader(nil, i == 0)
		s.frames = append(s.frames, appendAVCC(f, au))
	}
	return s, nil
}
