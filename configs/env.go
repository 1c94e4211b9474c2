package configs

import (
	"reflect"
	"strconv"
	"strings"
	"time"
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
// comma-separated items (spaces around items trimmed, empty items dropped).
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
// are reported in the order the variables first appear.
func (l *loader) env(environ []string, root reflect.Value) {
	byName := make(map[string]leaf)
	for _, lf := range leaves(root.Type(), "", nil) {
		byName[EnvName(lf.key)] = lf
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
		lf, ok := byName[name]
		if !ok {
			l.errs = append(l.errs, &Error{Env: name, Msg: "matches no config key", Err: ErrUnknownKey})
			continue
		}
		if msg := setString(root.FieldByIndex(lf.index), values[name]); msg != "" {
			l.errs = append(l.errs, &Error{Env: name, Key: lf.key, Msg: msg, Err: ErrType})
			continue
		}
		l.origins[lf.key] = origin{env: name}
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
	case k == reflect.Slice && t.Elem().Kind() == reflect.String:
		out := reflect.Zero(t)
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = reflect.Append(out, reflect.ValueOf(item).Convert(t.Elem()))
			}
		}
		v.Set(out)
	default:
		return "unsupported field type " + t.String()
	}
	return ""
}
