package configs

import (
	"bytes"
	_ "embed" // for the shipped mediagate.yaml
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

//go:embed mediagate.yaml
var defaultYAML []byte

// DefaultYAML returns the shipped mediagate.yaml: every key at its default,
// each with a comment saying what it does, its units, its allowed values and
// its environment variable. It is what `mediagate` prints for operators to
// start from; a test holds it equal to Default(). The slice is a fresh copy.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Load builds the node's configuration in four steps: start from Default(),
// apply the YAML file at path (skipped when path is ""), apply the MEDIAGATE_*
// variables of environ (in os.Environ form, "NAME=value"; see EnvPrefix for
// names and value syntax), then Validate.
//
// The file is read strictly: unknown keys anywhere in the tree, duplicate
// keys, values of the wrong type, a top level that is not a mapping and more
// than one YAML document are all errors. A key that is absent keeps its
// default; an empty file (or one holding only comments) means all defaults.
// An empty section ("redis:") keeps the section's defaults; an empty value
// sets a string to "" and a list to empty, and is an error for numbers,
// booleans and durations. Anchors and aliases work; merge keys (<<) do not.
// A map section (rooms) in the file replaces its default entries; each
// entry is read as strictly as a section, its unset keys at their zero
// values, and an entry with no value ("lobby:") has every key unset.
//
// All problems found are reported, not just the first: the error is a single
// *Error or several joined with errors.Join, each naming the file, line and
// dotted key (see Error for the formats). Values are only validated once the
// file and environment parsed cleanly. When the file cannot be read, the
// error wraps the *fs.PathError (which names the path), so
// errors.Is(err, fs.ErrNotExist) works. On error the returned Config is the
// zero value.
func Load(path string, environ []string) (Config, error) {
	if path == "" {
		return Parse("", nil, environ)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config file: %w", err)
	}
	return Parse(path, data, environ)
}

// Parse is Load for a file already in memory: name is what errors call the
// file (Load passes the path). With empty data it applies only the defaults
// and the environment.
func Parse(name string, data []byte, environ []string) (Config, error) {
	c := Default()
	l := loader{file: name, origins: map[string]origin{}}
	root := reflect.ValueOf(&c).Elem()
	l.yaml(data, root)
	l.env(environ, root)
	if len(l.errs) > 0 {
		return Config{}, join(l.errs)
	}
	if err := c.validate(name, l.origins); err != nil {
		return Config{}, err
	}
	return c, nil
}

// origin records where a key's final value came from, so Validate's errors
// can point at the line or variable to fix.
type origin struct {
	line int    // 1-based line in the file; 0 if not set by the file
	env  string // variable name; "" if not set by the environment
}

// loader fills a config struct from one file and the environment, collecting
// every problem instead of stopping at the first.
type loader struct {
	file    string
	origins map[string]origin // dotted key → where its value came from
	errs    []error
	// envVar, when set, is the variable whose value (YAML) the loader is
	// reading instead of the file: errors and origins then name it.
	envVar string
}

// fail records a problem with the file (or with the variable envVar).
func (l *loader) fail(line int, key string, kind error, msg string) {
	if l.envVar != "" {
		l.errs = append(l.errs, &Error{Env: l.envVar, Key: key, Msg: msg, Err: kind})
		return
	}
	l.errs = append(l.errs, &Error{File: l.file, Line: line, Key: key, Msg: msg, Err: kind})
}

// at is the origin of a value set on line of the file (or by envVar).
func (l *loader) at(line int) origin {
	if l.envVar != "" {
		return origin{env: l.envVar}
	}
	return origin{line: line}
}

// yaml applies one YAML document to root, which must be a settable struct.
func (l *loader) yaml(data []byte, root reflect.Value) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) { // io.EOF: empty or comments only
			l.syntax(err)
		}
		return
	}
	if len(doc.Content) == 1 {
		top := resolve(doc.Content[0])
		switch {
		case isNull(top): // "---" or "~" alone: nothing set
		case top.Kind != yaml.MappingNode:
			l.fail(top.Line, "", ErrType, "want a mapping of sections at the top level, got "+got(top))
		default:
			l.mapping(top, root, "")
		}
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		l.syntax(err)
	default:
		l.fail(extra.Line, "", ErrMultipleDocuments, "want one YAML document, found a second")
	}
}

// syntax records a yaml.v3 parse error, moving its "line N" into Error.Line.
// yaml.v3 reports the line where it noticed the problem, which can be the
// start of the enclosing construct, and reports no line for some problems
// on line 1.
func (l *loader) syntax(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				line, msg = n, text
			}
		}
	}
	l.fail(line, "", ErrSyntax, msg)
}

// mapping applies the YAML mapping n to the struct v whose dotted key is
// prefix.
func (l *loader) mapping(n *yaml.Node, v reflect.Value, prefix string) {
	l.pairs(n, prefix, func(k, val *yaml.Node, key string) {
		idx, ok := fieldIndex(v.Type(), k.Value)
		if !ok {
			l.fail(k.Line, key, ErrUnknownKey, "unknown key")
			return
		}
		l.value(k.Line, val, v.Field(idx), key)
	})
}

// pairs calls f for each key of the YAML mapping n whose dotted key is
// prefix, with aliases resolved, after refusing keys that are not plain
// scalars and keys seen before.
func (l *loader) pairs(n *yaml.Node, prefix string, f func(k, val *yaml.Node, key string)) {
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode || isNull(k) {
			l.fail(k.Line, prefix, ErrType, "want a plain key, got "+got(k))
			continue
		}
		key := joinKey(prefix, k.Value)
		if first, dup := seen[k.Value]; dup {
			l.fail(k.Line, key, ErrDuplicateKey, fmt.Sprintf("duplicate key (first at line %d)", first))
			continue
		}
		seen[k.Value] = k.Line
		f(k, val, key)
	}
}

// entries replaces the map section v, whose dotted key is prefix, with the
// entries of the YAML mapping n. Each entry starts from the zero value of
// the entry type and is read like a section; an empty value leaves it at
// that. Only entries that parsed cleanly are kept.
func (l *loader) entries(n *yaml.Node, v reflect.Value, prefix string) {
	t := v.Type()
	out := reflect.MakeMapWithSize(t, len(n.Content)/2)
	l.pairs(n, prefix, func(k, val *yaml.Node, key string) {
		e := reflect.New(t.Elem()).Elem()
		before := len(l.errs)
		switch {
		case isNull(val):
		case val.Kind != yaml.MappingNode:
			l.fail(val.Line, key, ErrType, "want a mapping, got "+got(val))
		default:
			l.mapping(val, e, key)
		}
		if len(l.errs) == before {
			out.SetMapIndex(reflect.ValueOf(k.Value).Convert(t.Key()), e)
			l.origins[key] = l.at(k.Line)
		}
	})
	v.Set(out)
}

// value applies the YAML value n, found under the key on line keyLine, to
// the field v.
func (l *loader) value(keyLine int, n *yaml.Node, v reflect.Value, key string) {
	t := v.Type()
	switch {
	case isSection(t), isMapSection(t):
		switch {
		case isNull(n): // empty section: keep its defaults
		case n.Kind != yaml.MappingNode:
			l.fail(n.Line, key, ErrType, "want a mapping, got "+got(n))
		case isMapSection(t):
			l.entries(n, v, key)
		default:
			l.mapping(n, v, key)
		}
		return
	case describe(t) == "":
		l.fail(keyLine, key, ErrType, "unsupported field type "+t.String())
		return
	case t.Kind() == reflect.Slice:
		if !l.list(n, v, key) {
			return
		}
	case isStringMap(t):
		if !l.stringMap(n, v, key) {
			return
		}
	default:
		if msg := setNode(v, n); msg != "" {
			l.fail(n.Line, key, ErrType, msg)
			return
		}
	}
	l.origins[key] = l.at(keyLine)
}

// list sets the []string, []time.Duration or list-of-mappings field v
// from n, reporting each bad element under key[i] (and a mapping's keys
// under key[i].name). An empty list or an empty value leaves v nil.
func (l *loader) list(n *yaml.Node, v reflect.Value, key string) bool {
	if isNull(n) {
		v.Set(reflect.Zero(v.Type()))
		return true
	}
	if n.Kind != yaml.SequenceNode {
		l.fail(n.Line, key, ErrType, "want "+describe(v.Type())+", got "+got(n))
		return false
	}
	out := reflect.Zero(v.Type())
	ok := true
	for i, e := range n.Content {
		e = resolve(e)
		item := reflect.New(v.Type().Elem()).Elem()
		if isStructList(v.Type()) {
			before := len(l.errs)
			switch itemKey := fmt.Sprintf("%s[%d]", key, i); {
			case e.Kind == yaml.ScalarNode: // not quoted: it may be a URL with its key
				l.fail(e.Line, itemKey, ErrType, "want a mapping, got a string")
			case e.Kind != yaml.MappingNode:
				l.fail(e.Line, itemKey, ErrType, "want a mapping, got "+got(e))
			default:
				l.mapping(e, item, itemKey)
				l.origins[itemKey] = l.at(e.Line)
			}
			if len(l.errs) > before {
				ok = false
				continue
			}
			out = reflect.Append(out, item)
			continue
		}
		msg := setNode(item, e)
		if isNull(e) { // setNode would take it as ""
			msg = "want " + describe(item.Type()) + ", got " + got(e)
		}
		if msg != "" {
			l.fail(e.Line, fmt.Sprintf("%s[%d]", key, i), ErrType, msg)
			ok = false
			continue
		}
		out = reflect.Append(out, item)
	}
	if ok {
		v.Set(out)
	}
	return ok
}

// stringMap sets the map[string]string field v from the YAML mapping n,
// reporting each bad value under key.name. An empty value empties it.
// Each entry's origin is recorded, so Validate can point at its line.
func (l *loader) stringMap(n *yaml.Node, v reflect.Value, key string) bool {
	out := reflect.MakeMap(v.Type())
	if isNull(n) {
		v.Set(out)
		return true
	}
	if n.Kind != yaml.MappingNode {
		l.fail(n.Line, key, ErrType, "want "+describe(v.Type())+", got "+got(n))
		return false
	}
	before := len(l.errs)
	l.pairs(n, key, func(k, val *yaml.Node, entry string) {
		if val.Kind != yaml.ScalarNode || isNull(val) {
			l.fail(val.Line, entry, ErrType, "want a string, got "+got(val))
			return
		}
		out.SetMapIndex(reflect.ValueOf(k.Value), reflect.ValueOf(val.Value))
		l.origins[entry] = l.at(k.Line)
	})
	if len(l.errs) > before {
		return false
	}
	v.Set(out)
	return true
}

// setNode sets the scalar leaf v from n and returns "" or what is wrong.
// Strings take any scalar's text as written; numbers and booleans need an
// untagged YAML number or boolean (a quoted "12000" is a string, not a
// number); durations are Go durations such as 30s.
func setNode(v reflect.Value, n *yaml.Node) string {
	t := v.Type()
	bad := "want " + describe(t) + ", got " + got(n)
	if n.Kind != yaml.ScalarNode {
		return bad
	}
	if isNull(n) {
		if t.Kind() == reflect.String {
			v.SetString("")
			return ""
		}
		return bad
	}
	switch k := t.Kind(); {
	case t == durationType:
		d, err := time.ParseDuration(n.Value)
		if err != nil {
			return bad
		}
		v.SetInt(int64(d))
	case k == reflect.String:
		v.SetString(n.Value)
	case k == reflect.Bool:
		var b bool
		if n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			return bad
		}
		v.SetBool(b)
	case k >= reflect.Int && k <= reflect.Int64:
		var i int64
		if n.ShortTag() != "!!int" || n.Decode(&i) != nil {
			return bad
		}
		if v.OverflowInt(i) {
			return fmt.Sprintf("%s out of range for %s", n.Value, t)
		}
		v.SetInt(i)
	case k >= reflect.Uint && k <= reflect.Uint64:
		var u uint64
		if n.ShortTag() != "!!int" || n.Decode(&u) != nil {
			return bad
		}
		if v.OverflowUint(u) {
			return fmt.Sprintf("%s out of range for %s", n.Value, t)
		}
		v.SetUint(u)
	case k == reflect.Float32 || k == reflect.Float64:
		var f float64
		if (n.ShortTag() != "!!float" && n.ShortTag() != "!!int") || n.Decode(&f) != nil {
			return bad
		}
		v.SetFloat(f)
	default:
		return "unsupported field type " + t.String()
	}
	return ""
}

// resolve follows YAML aliases (*name) to the anchored node.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is an empty value ("key:", "~" or "null").
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// got describes n for "want X, got Y" messages.
func got(n *yaml.Node) string {
	switch {
	case isNull(n):
		return "an empty value"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}
