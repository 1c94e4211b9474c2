package main

import (
	"flag"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestParseInterspersed: flags anywhere among the arguments; an ID that
// begins with '-' (random base64url does, one time in 32) is an argument;
// "--" ends the flags; an unknown flag is still an error.
func TestParseInterspersed(t *testing.T) {
	const dashID = "-vHNVd7K06h4e7sQhWleDw" // the form of a recording ID
	for _, tc := range []struct {
		args   []string
		rest   []string
		reason string
		json   bool
		err    string
	}{
		{args: []string{"ID", "--reason", "admin"}, rest: []string{"ID"}, reason: "admin"},
		{args: []string{"--reason=admin", "ID", "--json"}, rest: []string{"ID"}, reason: "admin", json: true},
		{args: []string{dashID, "--reason", "admin"}, rest: []string{dashID}, reason: "admin"},
		{args: []string{"--reason", "admin", dashID, "x"}, rest: []string{dashID, "x"}, reason: "admin"},
		{args: []string{"--reason", "-odd"}, reason: "-odd"},
		{args: []string{"--json", "--", "--reason", "-x"}, rest: []string{"--reason", "-x"}, json: true},
		{args: []string{"ID", "--bogus"}, err: "flag provided but not defined: -bogus"},
		{args: []string{"-vHNVd7K06h4e7sQhWleD"}, err: "flag provided but not defined"}, // 21 characters: no ID
	} {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		reason := fs.String("reason", "", "")
		js := fs.Bool("json", false, "")
		rest, err := parseInterspersed(fs, tc.args)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, "%q", tc.args)
			continue
		}
		require.NoError(t, err, "%q", tc.args)
		require.Equal(t, tc.rest, rest, "%q", tc.args)
		require.Equal(t, tc.reason, *reason, "%q", tc.args)
		require.Equal(t, tc.json, *js, "%q", tc.args)
	}
}
