// Package atomicfile replaces small files (manifests, the key store, the
// audit log's rewritten months) so that a crash or power cut leaves either
// the old content or the new, never a mix (DESIGN.md decision 6): write a
// temp file in the same directory, fsync it, rename it over the old one,
// fsync the directory so the rename itself is durable.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Replace atomically replaces path with data. The temp file is named by
// pattern (os.CreateTemp: "*" becomes a random string), so its owner can
// recognise and remove what a crash left behind; it is created readable
// by the owner only, and so is the file it becomes. A failure leaves the
// old file as it was and removes the temp file.
func Replace(path string, data []byte, pattern string) error {
	return ReplaceMode(path, data, pattern, 0o600)
}

// ReplaceMode is Replace for a file that others may read too: the file
// gets mode (before its content is written).
func ReplaceMode(path string, data []byte, pattern string, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	tmp := f.Name()
	if mode != 0o600 {
		err = f.Chmod(mode)
	}
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return SyncDir(dir)
}

// SyncDir fsyncs directory dir, making creates, renames and removals in it
// durable (fsync(2): syncing a file does not sync its directory entry).
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
