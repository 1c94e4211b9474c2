package configs

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// TestDefaultYAMLEqualsDefault: the shipped file is the defaults, read both
// by Load's parser and, as a cross-check, by yaml.v3's own strict decoder.
func TestDefaultYAMLEqualsDefault(t *testing.T) {
	got, err := Parse("mediagate.yaml", DefaultYAML(), nil)
	require.NoError(t, err)
	require.Equal(t, Default(), got)

	fromDisk, err := Load("mediagate.yaml", nil)
	require.NoError(t, err)
	require.Equal(t, Default(), fromDisk)

	var plain Config
	dec := yaml.NewDecoder(bytes.NewReader(DefaultYAML()))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&plain))
	require.Equal(t, Default(), plain)

	require.NoError(t, Default().Validate())
}

// TestDefaultYAMLDocumentsEveryKey: every leaf of Config is written out in
// the shipped file, with its environment variable in the comment right above
// it, so adding a field without documenting it fails here.
func TestDefaultYAMLDocumentsEveryKey(t *testing.T) {
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal(DefaultYAML(), &doc))
	require.Len(t, doc.Content, 1)
	all := leaves(reflect.TypeFor[Config](), "", nil)
	require.NotEmpty(t, all)
	for _, lf := range all {
		key := lookup(doc.Content[0], strings.Split(lf.key, "."))
		require.NotNil(t, key, "mediagate.yaml lacks %s", lf.key)
		require.Contains(t, key.HeadComment, "# Env: "+EnvName(lf.key),
			"the comment above %s in mediagate.yaml must name its variable", lf.key)
	}
}

// lookup returns the key node at path in a tree of mappings, or nil.
func lookup(n *yaml.Node, path []string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != path[0] {
			continue
		}
		if len(path) == 1 {
			return n.Content[i]
		}
		return lookup(n.Content[i+1], path[1:])
	}
	return nil
}

// TestSchema: every leaf has a type the loader can set, and every leaf has
// its own environment variable, distinct from the reserved ones.
func TestSchema(t *testing.T) {
	seen := map[string]string{}
	for _, lf := range leaves(reflect.TypeFor[Config](), "", nil) {
		require.NotEmpty(t, describe(lf.typ), "%s has unsupported type %s", lf.key, lf.typ)
		name := EnvName(lf.key)
		require.False(t, notConfigEnv(name), "%s collides with a reserved variable", lf.key)
		other, dup := seen[name]
		require.False(t, dup, "%s and %s share %s", lf.key, other, name)
		seen[name] = lf.key
	}
	require.Equal(t, "MEDIAGATE_NODE_DRAIN_TIMEOUT", EnvName("node.drain_timeout"))
}

// TestDefaultYAMLIsACopy: callers cannot change the embedded file.
func TestDefaultYAMLIsACopy(t *testing.T) {
	b := DefaultYAML()
	b[0] = 'X'
	require.NotEqual(t, b[0], DefaultYAML()[0])
}

// TestNodeID: node.id wins; otherwise the host name.
func TestNodeID(t *testing.T) {
	c := Default()
	c.Node.ID = "gw-1"
	require.Equal(t, "gw-1", c.NodeID())

	host, err := os.Hostname()
	require.NoError(t, err)
	require.Equal(t, host, Default().NodeID())
}
