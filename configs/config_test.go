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

// TestDefaultYAMLDocumentsMapSections: a map section (rooms,
// dialin.numbers) is shipped empty, so its entries are documented by a
// commented example in the comment above it: the lines from "#   rooms:"
// (the top-level section) on that start with "#   ".
// The example must load and validate, and its first entry must set every
// key of an entry with the key's variable in the comment right above it,
// so adding a field to Room without documenting it fails here.
func TestDefaultYAMLDocumentsMapSections(t *testing.T) {
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal(DefaultYAML(), &doc))
	all := mapSections(reflect.TypeFor[Config](), "", nil)
	require.NotEmpty(t, all)
	for _, ms := range all {
		key := lookup(doc.Content[0], strings.Split(ms.key, "."))
		require.NotNil(t, key, "mediagate.yaml lacks %s", ms.key)
		require.Contains(t, key.HeadComment, "# Env: "+EnvName(ms.key))

		example := commentedExample(key.HeadComment, ms.key)
		top, _, _ := strings.Cut(ms.key, ".")
		require.NotEmpty(t, example, "the comment above %s needs an example starting with \"#   %s:\"", ms.key, top)
		_, err := Parse("example", []byte(example), nil)
		require.NoError(t, err, "the example of %s must load:\n%s", ms.key, example)

		var ex yaml.Node
		require.NoError(t, yaml.Unmarshal([]byte(example), &ex))
		entries := valueOf(ex.Content[0], strings.Split(ms.key, "."))
		require.NotNil(t, entries)
		require.Equal(t, yaml.MappingNode, entries.Kind)
		require.NotEmpty(t, entries.Content)
		first, firstVal := entries.Content[0].Value, entries.Content[1]
		for _, lf := range ms.entryLeaves() {
			k := lookup(firstVal, strings.Split(lf.key, "."))
			require.NotNil(t, k, "the example entry %s.%s lacks %s", ms.key, first, lf.key)
			require.Contains(t, k.HeadComment, "# Env: "+EnvName(ms.key+"."+first+"."+lf.key),
				"the comment above %s.%s.%s in the example must name its variable", ms.key, first, lf.key)
		}
	}
}

// commentedExample returns the example for the map section key from a
// comment: the lines from "#   top:" on that start with "#   ", without
// that prefix, where top is the key's top-level section ("rooms" for rooms,
// "dialin" for dialin.numbers; the example of sip.trunks is a whole file
// from "sip:" down).
func commentedExample(comment, key string) string {
	var b strings.Builder
	in := false
	top, _, _ := strings.Cut(key, ".")
	for line := range strings.SplitSeq(comment, "\n") {
		if line == "#   "+top+":" {
			in = true
		}
		if in && !strings.HasPrefix(line, "#   ") {
			break
		}
		if in {
			b.WriteString(strings.TrimPrefix(line, "#   ") + "\n")
		}
	}
	return b.String()
}

// valueOf returns the value node at path in a tree of mappings, or nil.
func valueOf(n *yaml.Node, path []string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != path[0] {
			continue
		}
		if len(path) == 1 {
			return n.Content[i+1]
		}
		return valueOf(n.Content[i+1], path[1:])
	}
	return nil
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

	// Map sections: entries' leaves are settable, the section's own
	// variable is free, and no entry key is a '_'-suffix of another, which
	// would make MEDIAGATE_<SECTION>_<NAME>_<KEY> ambiguous.
	for _, ms := range mapSections(reflect.TypeFor[Config](), "", nil) {
		name := EnvName(ms.key)
		require.False(t, notConfigEnv(name))
		_, dup := seen[name]
		require.False(t, dup, "%s collides with a leaf's variable", name)
		for _, lf := range ms.entryLeaves() {
			require.NotEmpty(t, describe(lf.typ), "%s.*.%s has unsupported type %s", ms.key, lf.key, lf.typ)
			a := "_" + strings.TrimPrefix(EnvName(lf.key), EnvPrefix)
			for _, other := range ms.entryLeaves() {
				b := "_" + strings.TrimPrefix(EnvName(other.key), EnvPrefix)
				require.False(t, a != b && strings.HasSuffix(b, a),
					"%s.*.%s and %s.*.%s make entry variables ambiguous", ms.key, lf.key, ms.key, other.key)
			}
		}
	}
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

// TestHTTPTLS: HTTPS with configured files or a self-signed certificate.
func TestHTTPTLS(t *testing.T) {
	tests := []struct {
		name string
		edit func(*HTTP)
		tls  bool
		want string // "" means valid
	}{
		{"plain HTTP", func(*HTTP) {}, false, ""},
		{"certificate files", func(h *HTTP) { h.TLSCert, h.TLSKey = "mediagate.yaml", "mediagate.yaml" }, true, ""},
		{"self-signed", func(h *HTTP) { h.TLSSelfSigned = true }, true, ""},
		{"cert only", func(h *HTTP) { h.TLSCert = "mediagate.yaml" }, true, "http.tls_cert: set without http.tls_key (both or neither)"},
		{"key is a missing file", func(h *HTTP) { h.TLSCert, h.TLSKey = "mediagate.yaml", "nope.key" }, true,
			`http.tls_key: "nope.key": no such file or directory`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.edit(&c.HTTP)
			require.Equal(t, tt.tls, c.HTTP.TLS())
			err := c.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.want)
		})
	}
}
