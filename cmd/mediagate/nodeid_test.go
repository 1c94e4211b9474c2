package main

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/configs"
)

// readyNode is the node attribute of a gateway's ready line.
func readyNode(t *testing.T, g *gateway) string {
	t.Helper()
	m := regexp.MustCompile(`node=(\S+)`).FindStringSubmatch(g.ready)
	require.NotNil(t, m, "ready line without node: %s", g.ready)
	return m[1]
}

// TestNodeIDKept: without node.id the binary makes an id, keeps it in
// storage.dir/node-id and goes by it again after a restart; another
// storage directory gets another id; node.id, when set, wins.
func TestNodeIDKept(t *testing.T) {
	dir := t.TempDir()
	g := startGatewayIn(t, dir, nil)
	first := readyNode(t, g)
	require.Regexp(t, `^n-[a-z0-9]{16}$`, first)
	b, err := os.ReadFile(filepath.Join(dir, "data", "node-id"))
	require.NoError(t, err)
	require.Equal(t, first+"\n", string(b))
	require.NoError(t, g.cmd.Process.Kill())
	<-g.done

	again := startGatewayIn(t, dir, nil)
	require.Equal(t, first, readyNode(t, again), "the id survives a restart")
	other := startGateway(t, nil)
	require.NotEqual(t, first, readyNode(t, other), "another storage dir, another id")
	named := startGateway(t, nil, "MEDIAGATE_NODE_ID=gw-7")
	require.Equal(t, "gw-7", readyNode(t, named))
}

// TestNodeIDFileDamaged: a node-id file that holds no valid id stops the
// start with an error naming the file, instead of a node with a bad name.
func TestNodeIDFileDamaged(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "node-id"), []byte("not an id\n"), 0o600))
	_, err := nodeID(configs.Config{Storage: configs.Storage{Dir: dir}})
	require.ErrorContains(t, err, filepath.Join(dir, "node-id"))
	id, err := nodeID(configs.Config{Storage: configs.Storage{Dir: filepath.Join(dir, "new")}})
	require.NoError(t, err)
	require.True(t, configs.ValidNodeID(id))
}
