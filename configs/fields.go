package configs

import (
	"reflect"
	"strings"
	"time"
)

// The loader reads Config by reflection over its yaml tags, so a section or
// key added to Config is picked up by the file loader, the environment
// overrides and the drift tests without further code. A nested struct is a
// section (a YAML mapping); a map from string to struct is a map section,
// whose entries the operator names (rooms.board) and whose values are read
// like sections; every other exported field is a leaf and must have one of
// the types settable below.

var durationType = reflect.TypeFor[time.Duration]()

// stringMapType is the one map type that is a leaf rather than a map
// section: a mapping from names the operator chooses to plain strings
// (recording.room_policies).
var stringMapType = reflect.TypeFor[map[string]string]()

// isStringMap reports whether a leaf of type t is a mapping of strings.
func isStringMap(t reflect.Type) bool { return t == stringMapType }

// isStructList reports whether a leaf of type t is a list of mappings,
// each read like a section (rooms.<id>.auto_stream). Such a leaf is set
// from the environment as a JSON list, like a whole map section.
func isStructList(t reflect.Type) bool {
	return t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct
}

// leaf is one settable value of a config struct.
type leaf struct {
	key   string       // full dotted YAML path, e.g. "rtp.port_min"
	index []int        // reflect field index path from the root struct
	typ   reflect.Type // the field's type
}

// yamlName returns the key a struct field has in YAML, or "" if the field is
// not part of the configuration (unexported or tagged "-"). Like yaml.v3, an
// untagged field is known by its lower-cased name. Tag options such as
// ",inline" are not supported.
func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	switch name {
	case "-":
		return ""
	case "":
		return strings.ToLower(f.Name)
	}
	return name
}

// isSection reports whether a field of type t is a nested mapping rather
// than a leaf value.
func isSection(t reflect.Type) bool { return t.Kind() == reflect.Struct }

// isMapSection reports whether a field of type t is a map section: a mapping
// from names the operator chooses to sections of one struct type.
func isMapSection(t reflect.Type) bool {
	return t.Kind() == reflect.Map && t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.Struct
}

// mapSection is one map section of a config struct.
type mapSection struct {
	key   string       // full dotted YAML path, e.g. "rooms"
	index []int        // reflect field index path from the root struct
	typ   reflect.Type // the map type
}

// entryLeaves lists the leaves of one entry of the map section, keys
// relative to the entry (e.g. "pin").
func (m mapSection) entryLeaves() []leaf { return leaves(m.typ.Elem(), "", nil) }

// mapSections lists every map section of struct type t in declaration
// order, keys prefixed with prefix (empty at the root).
func mapSections(t reflect.Type, prefix string, index []int) []mapSection {
	var out []mapSection
	walk(t, prefix, index, func(key string, idx []int, typ reflect.Type) {
		if isMapSection(typ) {
			out = append(out, mapSection{key: key, index: idx, typ: typ})
		}
	})
	return out
}

// fieldIndex finds the field of struct type t whose YAML key is name.
func fieldIndex(t reflect.Type, name string) (int, bool) {
	for i := range t.NumField() {
		if n := yamlName(t.Field(i)); n != "" && n == name {
			return i, true
		}
	}
	return 0, false
}

// leaves lists every leaf of struct type t in declaration order, keys
// prefixed with prefix (empty at the root). Map sections are not leaves;
// see mapSections.
func leaves(t reflect.Type, prefix string, index []int) []leaf {
	var out []leaf
	walk(t, prefix, index, func(key string, idx []int, typ reflect.Type) {
		if !isMapSection(typ) {
			out = append(out, leaf{key: key, index: idx, typ: typ})
		}
	})
	return out
}

// walk calls visit, in declaration order, for every field of struct type
// t that has a YAML key and is not itself a section, descending into
// sections; keys are prefixed with prefix and indexes with index.
func walk(t reflect.Type, prefix string, index []int, visit func(key string, idx []int, typ reflect.Type)) {
	for i := range t.NumField() {
		f := t.Field(i)
		name := yamlName(f)
		if name == "" {
			continue
		}
		key := joinKey(prefix, name)
		idx := append(append([]int(nil), index...), i)
		if isSection(f.Type) {
			walk(f.Type, key, idx, visit)
			continue
		}
		visit(key, idx, f.Type)
	}
}

// joinKey appends name to a dotted prefix.
func joinKey(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// describe names what a value of type t must look like, for "want X, got Y"
// messages; it returns "" for types the loader cannot set.
func describe(t reflect.Type) string {
	if t == durationType {
		return "a duration such as 30s or 1m30s"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		switch {
		case t.Elem() == durationType:
			return "a list of durations such as [168h, 24h]"
		case t.Elem().Kind() == reflect.String:
			return "a list of strings"
		case isStructList(t):
			return "a list of mappings"
		}
	case reflect.Map:
		if isStringMap(t) {
			return "a mapping of strings"
		}
	}
	return ""
}
