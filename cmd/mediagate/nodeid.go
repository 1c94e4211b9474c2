package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/internal/atomicfile"
)

// nodeIDFile keeps a node's generated ID in storage.dir, so that the node
// keeps its name across restarts (recordings, receipts and the cluster's
// leases name it) while identical machines cloned from one image still
// get different names, which host names do not promise.
const nodeIDFile = "node-id"

// nodeID returns node.id when set; otherwise the ID kept in
// storage.dir/node-id, made ("n-" and 16 random base32 characters) and
// stored the first time.
func nodeID(cfg configs.Config) (string, error) {
	if cfg.Node.ID != "" {
		return cfg.Node.ID, nil
	}
	path := filepath.Join(cfg.Storage.Dir, nodeIDFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		id := strings.TrimSpace(string(b))
		if !configs.ValidNodeID(id) {
			return "", fmt.Errorf("%s: %q is not a node id (remove the file to make a new one)", path, id)
		}
		return id, nil
	case !os.IsNotExist(err):
		return "", fmt.Errorf("node id: %w", err)
	}
	if err := os.MkdirAll(cfg.Storage.Dir, 0o700); err != nil {
		return "", fmt.Errorf("node id: %w", err)
	}
	id := "n-" + strings.ToLower(rand.Text()[:16])
	if err := atomicfile.Replace(path, []byte(id+"\n"), ".tmp-"+nodeIDFile+"-*"); err != nil {
		return "", fmt.Errorf("node id: %w", err)
	}
	return id, nil
}
