package api

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/recorder"
)

// TestEncryptedRecordingDownload: a recording encrypted at rest downloads
// as the audio, whole and in ranges (each decrypting only the chunks it
// needs), with the manifest's hash of the audio as ETag; the stored file is
// not the audio.
func TestEncryptedRecordingDownload(t *testing.T) {
	e := newRecEnvOptions(t, func(o *recorder.Options) { o.EncryptionKey = bytes.Repeat([]byte{7}, recorder.EncryptionKeyLen) })
	m := e.record(t, "board", "acme", "")
	require.Equal(t, recorder.EncryptionAESGCM, e.manifest(t, m.ID).Encryption)
	full := e.download(t, m.ID)
	require.Greater(t, len(full), 4096+100, "more than one chunk")
	require.Equal(t, "OggS", string(full[:4]))
	require.Equal(t, m.Bytes, int64(len(full)))
	stored, err := os.ReadFile(filepath.Join(e.dir, string(m.ID)+".opus"))
	require.NoError(t, err)
	require.NotContains(t, string(stored), "OggS")

	path := "/api/v1/recordings/" + string(m.ID) + "/download"
	auth := "Bearer " + e.key
	n := len(full)
	for _, r := range [][2]int{{0, 0}, {100, 199}, {4090, 4200}, {n - 10, n - 1}, {4096, n - 1}} {
		w := e.doURL(http.MethodGet, path, "Authorization", auth, "Range", fmt.Sprintf("bytes=%d-%d", r[0], r[1]))
		require.Equal(t, http.StatusPartialContent, w.Code)
		require.True(t, bytes.Equal(full[r[0]:r[1]+1], w.Body.Bytes()), "range %v", r)
		require.Equal(t, fmt.Sprintf("bytes %d-%d/%d", r[0], r[1], n), w.Header().Get("Content-Range"))
	}
	w := e.doURL(http.MethodGet, path, "Authorization", auth, "Range", "bytes=-50")
	require.Equal(t, http.StatusPartialContent, w.Code)
	require.True(t, bytes.Equal(full[n-50:], w.Body.Bytes()))
}
