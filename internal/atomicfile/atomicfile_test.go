package atomicfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReplace: the new content replaces the old, owner-only, with no temp
// file left; a failing rename (the target is a directory) leaves the old
// content alone and removes its temp file.
func TestReplace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.json")
	require.NoError(t, os.WriteFile(path, []byte("old\n"), 0o600))
	require.NoError(t, Replace(path, []byte("new\n"), ".tmp-keys-*"))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "new\n", string(b))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temp file left")

	target := filepath.Join(dir, "sub")
	require.NoError(t, os.MkdirAll(filepath.Join(target, "x"), 0o700))
	err = Replace(target, []byte("data"), ".tmp-sub-*")
	require.ErrorContains(t, err, "replace "+target)
	entries, err = os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 2, "the failed temp file is removed")

	require.Error(t, Replace(filepath.Join(dir, "missing", "f"), nil, "*"))
	require.Error(t, SyncDir(filepath.Join(dir, "missing")))
}
