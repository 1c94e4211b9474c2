package api

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/recorder"
)

// TestRecordingDownloadFormat: a download is served with the media type
// and file name of the recording's format.
func TestRecordingDownloadFormat(t *testing.T) {
	for _, tc := range []struct {
		format, ctype, ext, magic string
	}{
		{recorder.FormatOpus, "audio/ogg; codecs=opus", ".opus", "OggS"},
		{recorder.FormatM4A, "audio/mp4", ".m4a", "ftyp"},
	} {
		t.Run(tc.ext, func(t *testing.T) {
			e := newRecEnvFormat(t, tc.format)
			m := e.record(t, "lobby", "acme", "")
			require.Equal(t, tc.format, m.Format)
			w := e.admin(http.MethodGet, "/api/v1/recordings/"+string(m.ID)+"/download", "")
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			require.Equal(t, tc.ctype, w.Header().Get("Content-Type"))
			require.Equal(t, `attachment; filename="`+string(m.ID)+tc.ext+`"`, w.Header().Get("Content-Disposition"))
			body := w.Body.Bytes()
			require.Equal(t, m.Bytes, int64(len(body)))
			require.Contains(t, string(body[:8]), tc.magic)
		})
	}
}
