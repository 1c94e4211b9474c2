package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestKeysNew(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, exitOK, run([]string{"keys", "new"}, nil, &out, &errOut))
	m := regexp.MustCompile(`(?s)^API key .*\n  (mgk_\S+)\n.*\n  - "sha256:([0-9a-f]{64})"\n$`).FindStringSubmatch(out.String())
	require.NotNil(t, m, out.String())
	sum := sha256.Sum256([]byte(m[1]))
	require.Equal(t, hex.EncodeToString(sum[:]), m[2], "the line is the key's hash")

	out.Reset()
	require.Equal(t, exitOK, run([]string{"keys", "new"}, nil, &out, &errOut))
	require.NotContains(t, out.String(), m[1], "every key is new")

	require.Equal(t, exitUsage, run([]string{"keys"}, nil, &out, &errOut))
	require.Contains(t, errOut.String(), "usage: mediagate keys new")
}
