package media

import "github.com/mediagate/mediagate/media/mediatest"

// Short names for the shared test signals and measurements in mediatest, as
// this package's tests use them throughout.
var (
	sine    = mediatest.Sine
	toneDB  = mediatest.ToneDB
	rmsDBFS = mediatest.RMSDBFS
	snrDB   = mediatest.SNRDB
	bestLag = mediatest.BestLag
	speech  = mediatest.Speech
)
