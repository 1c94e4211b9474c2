package configs

import (
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Environment variables override the file, one per leaf key, so containers
// and systemd units can change a setting without shipping a file. The name
// is EnvPrefix plus the upper-cased dotted key with '.' replaced by '_':
// rtp.port_min is MEDIAGATE_RTP_PORT_MIN, node.drain_timeout is
// MEDIAGATE_NODE_DRAIN_TIMEOUT (see EnvName).
//
// Values are written as on a command line: strings as is (an empty value sets
// ""), integers in decimal, booleans as strconv.ParseBool reads them (1, t,
// true, 0, f, false, ...), durations as Go durations (10s), lists as
// comma-separated items (spaces around items trimmed, empty items dropped),
// mappings of strings (recording.room_policies) as a JSON object (any YAML
// flow mapping), e.g. {"board": "legal"}; an empty value empties them.
//
// Map sections (rooms) have entry names chosen by the operator, which may
// hold '_' and '-'; since '-' cannot appear in a variable name and '_' is
// the separator, they are set in two ways:
//
//   - the whole section at once: EnvName("rooms") (MEDIAGATE_ROOMS) holds a
//     JSON object (or any YAML flow mapping) read as strictly as the file,
//     e.g. {"board": {"pin": "4711"}}; it replaces the section, and an
//     empty value empties it. Errors name the variable and the key.
//   - one key of one entry: MEDIAGATE_ROOMS_<NAME>_<KEY>, with the entry
//     name upper-cased, e.g. MEDIAGATE_ROOMS_BOARD_PIN. The key is matched
//     from the end against the entry's keys (no entry key is a '_'-suffix
//     of another, which a test holds), so the name may contain '_'; names
//     with '-' or upper-case letters cannot be reached this way. The entry
//     is created if the file does not define it.
//
// Whole-section variables are applied (and their errors reported) first,
// then everything else in order, so one key can refine a whole section.
//
// Any other variable starting with EnvPrefix is an error, because a misspelt
// override would otherwise be ignored silently — except the few variables
// that are not configuration keys, listed below, which Load leaves alone.
const (
	// EnvPrefix starts every variable Load looks at.
	EnvPrefix = "MEDIAGATE_"
	// EnvConfig is the config file path, for `mediagate serve` when
	// --config is not given.
	EnvConfig = "MEDIAGATE_CONFIG"
	// EnvAPIKey is the admin API key the CLI subcommands send.
	EnvAPIKey = "MEDIAGATE_API_KEY"
	// EnvServer is the admin API base URL the CLI subcommands talk to,
	// when --server is not given.
	EnvServer = "MEDIAGATE_SERVER"
)

// EnvName returns the environment variable that overrides the dotted key,
// e.g. EnvName("http.listen") == "MEDIAGATE_HTTP_LISTEN".
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// notConfigEnv reports whether name is one of the MEDIAGATE_* variables that
// are not configuration keys.
func notConfigEnv(name string) bool {
	switch name {
	case EnvConfig, EnvAPIKey, EnvServer:
		return true
	}
	return false
}

// env applies the MEDIAGATE_* variables of environ to root. When a name
// appears more than once the last value wins, as with exec.Cmd.Env. Errors
// are reported in the order the variables first appear, whole map sections
// first.
func (l *loader) env(environ []string, root reflect.Value) {
	byName := make(map[string]leaf)
	for _, lf := range leaves(root.Type(), "", nil) {
		byName[EnvName(lf.key)] = lf
	}
	sections := make(map[string]mapSection)
	for _, ms := range mapSections(root.Type(), "", nil) {
		sections[EnvName(ms.key)] = ms
	}
	var order []string
	values := make(map[string]string)
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || notConfigEnv(name) {
			continue
		}
		if _, dup := values[name]; !dup {
			order = append(order, name)
		}
		values[name] = value
	}
	for _, name := range order {
		if ms, ok := sections[name]; ok {
			l.envSection(name, values[name], root.FieldByIndex(ms.index), ms.key)
		}
	}
	for _, name := range order {
		if _, ok := sections[name]; ok {
			continue
		}
		lf, ok := byName[name]
		if !ok {
			if !l.envEntry(name, values[name], root, sections) {
				l.errs = append(l.errs, &Error{Env: name, Msg: "matches no config key", Err: ErrUnknownKey})
			}
			continue
		}
		if isStringMap(lf.typ) || isStructList(lf.typ) { // JSON, like a whole map section
			before := len(l.errs)
			l.envSection(name, values[name], root.FieldByIndex(lf.index), lf.key)
			if len(l.errs) == before {
				l.origins[lf.key] = origin{env: name}
			}
			continue
		}
		if msg := setString(root.FieldByIndex(lf.index), values[name]); msg != "" {
			l.errs = append(l.errs, &Error{Env: name, Key: lf.key, Msg: msg, Err: ErrType})
			continue
		}
		l.origins[lf.key] = origin{env: name}
	}
}

// envSection replaces the map section, mapping of strings or list of
// mappings v (dotted key) with the YAML flow value (JSON) in the variable
// name's value s; an empty value empties it.
func (l *loader) envSection(name, s string, v reflect.Value, key string) {
	if strings.TrimSpace(s) == "" {
		if v.Kind() == reflect.Map {
			v.Set(reflect.MakeMap(v.Type()))
		} else {
			v.Set(reflect.Zero(v.Type()))
		}
		return
	}
	sub := loader{origins: l.origins, envVar: name}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(s), &doc); err != nil {
		sub.syntax(err)
	} else if len(doc.Content) == 1 {
		sub.value(0, doc.Content[0], v, key)
	}
	l.errs = append(l.errs, sub.errs...)
}

// envEntry sets one key of one entry of a map section from the variable
// name, e.g. MEDIAGATE_ROOMS_BOARD_PIN, and reports whether name is such a
// variable at all.
func (l *loader) envEntry(name, value string, root reflect.Value, sections map[string]mapSection) bool {
	for prefix, ms := range sections {
		rest, ok := strings.CutPrefix(name, prefix+"_")
		if !ok {
			continue
		}
		for _, lf := range ms.entryLeaves() {
			upper, ok := strings.CutSuffix(rest, "_"+strings.TrimPrefix(EnvName(lf.key), EnvPrefix))
			if !ok || upper == "" || strings.ToUpper(upper) != upper {
				continue
			}
			l.setEntry(name, value, root.FieldByIndex(ms.index), ms.key, strings.ToLower(upper), lf)
			return true
		}
	}
	return false
}

// setEntry sets the leaf lf of entry id of the map section m (dotted key
// prefix) from the variable name's value, creating the entry if needed.
func (l *loader) setEntry(name, value string, m reflect.Value, prefix, id string, lf leaf) {
	if m.IsNil() {
		m.Set(reflect.MakeMap(m.Type()))
	}
	k := reflect.ValueOf(id).Convert(m.Type().Key())
	e := reflect.New(m.Type().Elem()).Elem()
	existing := m.MapIndex(k)
	if existing.IsValid() {
		e.Set(existing)
	}
	entryKey := joinKey(prefix, id)
	key := joinKey(entryKey, lf.key)
	if isStructList(lf.typ) { // JSON, like a whole map section
		before := len(l.errs)
		l.envSection(name, value, e.FieldByIndex(lf.index), key)
		if len(l.errs) > before {
			return
		}
	} else if msg := setString(e.FieldByIndex(lf.index), value); msg != "" {
		l.errs = append(l.errs, &Error{Env: name, Key: key, Msg: msg, Err: ErrType})
		return
	}
	m.SetMapIndex(k, e)
	l.origins[key] = origin{env: name}
	if !existing.IsValid() {
		l.origins[entryKey] = origin{env: name}
	}
}

// setString sets the leaf v from the text s and returns "" or what is wrong.
func setString(v reflect.Value, s string) string {
	t := v.Type()
	bad := "want " + describe(t) + ", got " + strconv.Quote(s)
	switch k := t.Kind(); {
	case t == durationType:
		d, err := time.ParseDuration(s)
		if err != nil {
			return bad
		}
		v.SetInt(int64(d))
	case k == reflect.String:
		v.SetString(s)
	case k == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return bad
		}
		v.SetBool(b)
	case k >= reflect.Int && k <= reflect.Int64:
		i, err := strconv.ParseInt(s, 10, t.Bits())
		if err != nil {
			return bad
		}
		v.SetInt(i)
	case k >= reflect.Uint && k <= reflect.Uint64:
		u, err := strconv.ParseUint(s, 10, t.Bits())
		if err != nil {
			return bad
		}
		v.SetUint(u)
	case k == reflect.Float32 || k == reflect.Float64:
		f, err := strconv.ParseFloat(s, t.Bits())
		if err != nil {
			return bad
		}
		v.SetFloat(f)
	case k == reflect.Slice && (t.Elem().Kind() == reflect.String || t.Elem() == durationType):
		out := reflect.Zero(t)
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item == "" {
				continue
			}
			e := reflect.New(t.Elem()).Elem()
			if msg := setString(e, item); msg != "" {
				return bad
			}
			out = reflect.Append(out, e)
		}
		v.Set(out)
	default:
		return "unsupported field type " + t.String()
	}
	return ""
}
