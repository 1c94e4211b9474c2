package configs

import (
	"errors"
	"strconv"
	"strings"
)

// The categories of configuration errors. Every *Error wraps exactly one of
// them, so callers can branch with errors.Is without parsing messages, while
// the message itself stays free to name the key and the offending value.
var (
	// ErrSyntax means the file is not well-formed YAML.
	ErrSyntax = errors.New("yaml syntax error")
	// ErrMultipleDocuments means the file holds more than one YAML document;
	// a second document is almost always a paste accident, so it is refused
	// rather than silently ignored.
	ErrMultipleDocuments = errors.New("more than one yaml document")
	// ErrUnknownKey means a key in the file, or a MEDIAGATE_* variable, names
	// no configuration setting (usually a typo that would otherwise be
	// ignored silently).
	ErrUnknownKey = errors.New("unknown key")
	// ErrDuplicateKey means a mapping in the file sets the same key twice.
	ErrDuplicateKey = errors.New("duplicate key")
	// ErrType means a value has the wrong shape for its key: text where a
	// number is wanted, a list where a section is wanted, and so on.
	ErrType = errors.New("wrong type")
	// ErrInvalid means a value parsed but Validate refused it (out of range,
	// not one of the allowed words, ports in the wrong order, ...).
	ErrInvalid = errors.New("invalid value")
)

// Error is one problem with the configuration, located as precisely as the
// source allows, so an operator can go straight to the line to fix.
//
// Error() formats it as one of
//
//	FILE:LINE: KEY: MSG   a key in the file, e.g. "mediagate.yaml:12: http.listn: unknown key"
//	FILE:LINE: MSG        the file as a whole, e.g. "mediagate.yaml:4: want one YAML document, found a second"
//	FILE: MSG             the file, no line known (some YAML syntax errors)
//	env VAR: MSG          a MEDIAGATE_* variable, e.g. `env MEDIAGATE_RTP_PORT_MIN: want an integer, got "x"`
//	env VAR: KEY: MSG     a key inside a variable that sets a whole map section, e.g.
//	                      "env MEDIAGATE_ROOMS: rooms.board.pinn: unknown key"
//	KEY: MSG              a value not from a file or the environment (a default or set in code)
//
// Load and Validate return several of them joined with errors.Join (one per
// line of the joined message); use errors.As to get at the first, or
// Unwrap() []error on the joined error to get all of them.
type Error struct {
	// File is the config file's path as given to Load (or the name given to
	// Parse); empty when the value did not come from a file.
	File string
	// Line is the 1-based line in File; 0 when not known.
	Line int
	// Env is the environment variable the value came from, e.g.
	// MEDIAGATE_RTP_PORT_MIN; empty when it did not come from the environment.
	Env string
	// Key is the full dotted key, e.g. "rtp.port_min" or "a.list[2]"; empty
	// when the problem concerns the file as a whole or an unknown variable.
	Key string
	// Msg says what is wrong, e.g. `want an integer, got "abc"` or
	// "70000 out of range 1024..65535".
	Msg string
	// Err is the category: one of the Err... values of this package.
	Err error
}

// Error formats the location and message as documented on Error.
func (e *Error) Error() string {
	if e.Env != "" {
		if e.Key != "" && EnvName(e.Key) != e.Env {
			return "env " + e.Env + ": " + e.Key + ": " + e.Msg
		}
		return "env " + e.Env + ": " + e.Msg
	}
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the category, so errors.Is(err, ErrUnknownKey) works.
func (e *Error) Unwrap() error { return e.Err }

// join returns nil, the only error, or all of them joined; a single error is
// returned as is so that its type is visible without errors.As.
func join(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errors.Join(errs...)
}
