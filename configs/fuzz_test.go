package configs

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// errorsOf flattens err into its *Error parts, failing on anything else.
func errorsOf(t *testing.T, err error) []*Error {
	t.Helper()
	var out []*Error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, errorsOf(t, e)...)
		}
		return out
	}
	var e *Error
	if !errors.As(err, &e) || e != err {
		t.Fatalf("not a *configs.Error: %T %v", err, err)
	}
	return append(out, e)
}

// FuzzParse parses arbitrary bytes as the config file. Properties: nothing
// panics; the result is a Config that validates, or the zero Config and
// errors that are all *Error of one of the package's categories, each
// naming the file (with a line when it names no key) or a key, with a
// message; and parsing is deterministic (same Config, same error text).
// Seeds: the shipped files and every testdata/*.bad.yaml.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	files = append(files, "mediagate.yaml", "cluster.example.yaml")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("a: &a [*a, *a]\nb: *a\n"))
	f.Add([]byte("rtp:\n  port_min: 0x10\n  port_max: !!int 1e3\n"))
	f.Add([]byte("rooms:\n  ? [a]\n  : x\n"))
	kinds := []error{ErrSyntax, ErrMultipleDocuments, ErrUnknownKey, ErrDuplicateKey, ErrType, ErrInvalid}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data, nil)
		c2, err2 := Parse("f.yaml", data, nil)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) || !reflect.DeepEqual(c, c2) {
			t.Fatalf("not deterministic: %v / %v", err, err2)
		}
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("parsed a config that does not validate: %v", verr)
			}
			return
		}
		if !reflect.DeepEqual(c, Config{}) {
			t.Fatal("config returned with an error")
		}
		for _, e := range errorsOf(t, err) {
			known := false
			for _, k := range kinds {
				known = known || e.Err == k
			}
			if !known {
				t.Fatalf("%q: category %v", e, e.Err)
			}
			if e.Msg == "" || strings.ContainsAny(e.Error(), "\n") {
				t.Fatalf("message %q", e.Error())
			}
			if e.Key == "" && (e.File != "f.yaml" || (e.Line == 0 && e.Err != ErrSyntax)) {
				t.Fatalf("%q names neither a key nor a file line", e)
			}
		}
	})
}
