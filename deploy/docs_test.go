package deploy_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/configs"
)

// docs are the operator documents whose statements these tests check.
var docs = []string{"README.md", "docs/architecture.md", "docs/operations.md", "docs/privacy.md"}

func readDoc(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, name))
	require.NoError(t, err)
	return string(data)
}

// packageDirs lists the module's directories that hold Go files, relative
// to the root with slashes ("cmd/mediagate", "internal/atomicfile").
func packageDirs(t *testing.T) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin" || name == "data") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(name, ".go") {
			rel, err := filepath.Rel(root, filepath.Dir(path))
			if err != nil {
				return err
			}
			if rel = filepath.ToSlash(rel); rel != "." && !slices.Contains(dirs, rel) {
				dirs = append(dirs, rel)
			}
		}
		return nil
	})
	require.NoError(t, err)
	return dirs
}

func TestArchitectureNamesEveryPackage(t *testing.T) {
	doc := readDoc(t, "docs/architecture.md")
	dirs := packageDirs(t)
	require.Contains(t, dirs, "cmd/mediagate")
	for _, d := range dirs {
		require.Contains(t, doc, "| `"+d+"` |", "docs/architecture.md's package table has no row for %s", d)
	}
}

// TestArchitectureKeyFilesExist checks the "key files" column of the
// package table: each file named there is in that package.
func TestArchitectureKeyFilesExist(t *testing.T) {
	doc := readDoc(t, "docs/architecture.md")
	row := regexp.MustCompile("(?m)^\\| `([a-z/]+)` \\|.*\\| (.*) \\|$")
	file := regexp.MustCompile("`([a-z0-9_]+\\.(?:go|json)|[a-z]+/)`")
	rows := row.FindAllStringSubmatch(doc, -1)
	require.NotEmpty(t, rows)
	n := 0
	for _, r := range rows {
		for _, f := range file.FindAllStringSubmatch(r[2], -1) {
			_, err := os.Stat(filepath.Join(root, r[1], f[1]))
			require.NoError(t, err, "docs/architecture.md names %s in package %s", f[1], r[1])
			n++
		}
	}
	require.Greater(t, n, 40)
	// Files named with their package elsewhere on the page: `room/fanout.go`.
	for _, m := range regexp.MustCompile("`((?:[a-z]+/)+[a-z0-9_]+\\.go)`").FindAllStringSubmatch(doc, -1) {
		_, err := os.Stat(filepath.Join(root, m[1]))
		require.NoError(t, err, "docs/architecture.md names %s", m[1])
	}
}

// TestOperationsYAMLLoads loads every YAML example of docs/operations.md
// through the configuration loader, with its validation.
func TestOperationsYAMLLoads(t *testing.T) {
	doc := readDoc(t, "docs/operations.md")
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(doc, -1)
	require.GreaterOrEqual(t, len(blocks), 3, "NAT, IP trunk and registration trunk examples")
	var trunks []configs.Trunk
	for i, b := range blocks {
		cfg, err := configs.Parse("docs/operations.md", []byte(b[1]), nil)
		require.NoError(t, err, "example %d:\n%s", i+1, b[1])
		for _, tr := range cfg.SIP.Trunks {
			trunks = append(trunks, tr)
		}
	}
	// One of each kind of trunk the page promises.
	require.True(t, slices.ContainsFunc(trunks, func(tr configs.Trunk) bool { return !tr.Register && len(tr.CIDRs) > 0 }),
		"an IP-authenticated trunk")
	require.True(t, slices.ContainsFunc(trunks, func(tr configs.Trunk) bool { return tr.Register && tr.Registrar != "" }),
		"a registration trunk")
}

// TestDocsNameRealKeys checks every configuration key the documents name
// (`sip.external_address`, `sip.guard`) against configs.Config.
func TestDocsNameRealKeys(t *testing.T) {
	top := map[string]bool{}
	ct := reflect.TypeFor[configs.Config]()
	for i := range ct.NumField() {
		top[yamlKey(ct.Field(i))] = true
	}
	key := regexp.MustCompile("`([a-z_]+(?:\\.[a-z0-9_<>]+)+)`")
	checked := 0
	for _, name := range docs {
		for _, m := range key.FindAllStringSubmatch(readDoc(t, name), -1) {
			segs := strings.Split(m[1], ".")
			if ext := segs[len(segs)-1]; ext == "go" || ext == "json" || ext == "md" || ext == "yaml" {
				continue // a file
			}
			if !top[segs[0]] {
				continue // a file name, a Go identifier
			}
			if configKey(ct, segs) {
				checked++
				continue
			}
			t.Errorf("%s names `%s`, which is no configuration key", name, m[1])
		}
	}
	require.Greater(t, checked, 50)
}

func yamlKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

// configKey reports whether segs is a section or key of t. Below a map
// section (rooms, sip.trunks, recording.policies) one segment is the
// operator's name (or a placeholder such as <name>).
func configKey(t reflect.Type, segs []string) bool {
	for i := 0; i < len(segs); i++ {
		switch {
		case t.Kind() == reflect.Struct:
			found := false
			for j := range t.NumField() {
				if yamlKey(t.Field(j)) == segs[i] {
					t, found = t.Field(j).Type, true
					break
				}
			}
			if !found {
				return false
			}
		case t.Kind() == reflect.Map && t.Elem().Kind() == reflect.Struct:
			t = t.Elem() // segs[i] names an entry
		case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
			t = t.Elem()
			i-- // a list of sections: the next segment is a key of an element
		default:
			return false // below a leaf
		}
	}
	return true
}

// TestDocsLinkExistingFiles checks the repository paths the documents
// name (`docs/cluster.md`, `configs/cluster.example.yaml`,
// `deploy/mediagate.service`).
func TestDocsLinkExistingFiles(t *testing.T) {
	path := regexp.MustCompile(`(?:docs|configs|deploy|scripts)/[A-Za-z0-9_.-]+\.(?:md|yaml|service)|scripts/bootstrap|Dockerfile`)
	for _, name := range docs {
		for _, p := range slices.Compact(slices.Sorted(slices.Values(path.FindAllString(readDoc(t, name), -1)))) {
			if _, err := os.Stat(filepath.Join(root, p)); err != nil {
				t.Errorf("%s names %s: %v", name, p, err)
			}
		}
	}
}

// TestFuzzingListsEveryTarget: docs/fuzzing.md has a row for every
// `go test -fuzz` target in the module.
func TestFuzzingListsEveryTarget(t *testing.T) {
	doc := readDoc(t, "docs/fuzzing.md")
	fuzz := regexp.MustCompile(`(?m)^func (Fuzz[A-Za-z0-9_]+)\(f \*testing\.F\)`)
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range fuzz.FindAllStringSubmatch(string(src), -1) {
			n++
			require.True(t, strings.Contains(doc, "| `"+m[1]+"` |"), "docs/fuzzing.md has no row for %s (%s)", m[1], path)
		}
		return nil
	})
	require.NoError(t, err)
	require.Greater(t, n, 25)
}
