package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/recorder"
	"github.com/mediagate/mediagate/room"
)

// framesSource is a recorder.Source of n silent frames, then io.EOF.
type framesSource struct{ n, i int }

func (s *framesSource) Read(_ context.Context, dst *room.MixFrame) error {
	if s.i == s.n {
		return io.EOF
	}
	s.i++
	dst.Tick = uint64(s.i)
	return nil
}

func (s *framesSource) Close() {}

// TestEncryptionKeyAtStart: a node whose store holds a recording encrypted
// with another key refuses to start and says which key it needs, without
// printing either; with the right key it starts and says recordings are
// encrypted.
func TestEncryptionKeyAtStart(t *testing.T) {
	dir := t.TempDir()
	receiptKey := bytes.Repeat([]byte("k"), 32)
	keyA, keyB := bytes.Repeat([]byte{0xa}, 32), bytes.Repeat([]byte{0xb}, 32)
	rec, err := recorder.New(recorder.Options{Dir: filepath.Join(dir, "data", "recordings"), ReceiptKey: receiptKey, EncryptionKey: keyA})
	require.NoError(t, err)
	r, err := rec.Start("board", "default", "", &framesSource{n: 100})
	require.NoError(t, err)
	<-r.Done()
	require.NoError(t, r.Err())
	require.NoError(t, rec.Close(context.Background()))
	env := func(key []byte) []string {
		return []string{"MEDIAGATE_RECORDING_RECEIPT_KEY=" + string(receiptKey),
			"MEDIAGATE_RECORDING_ENCRYPTION_KEY=" + base64.StdEncoding.EncodeToString(key)}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "serve")
	cmd.Dir = dir
	cmd.Env = append([]string{"MEDIAGATE_HTTP_LISTEN=127.0.0.1:0", "MEDIAGATE_WEBRTC_UDP_PORT=0", "MEDIAGATE_SIP_LISTEN=127.0.0.1:0"}, env(keyB)...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, ctx.Err(), "mediagate started with the wrong key: %s", out)
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "%s", out)
	require.Equal(t, exitFailed, ee.ExitCode())
	require.Contains(t, string(out), "wrong recording encryption key: recording "+string(r.ID())+
		" needs key id "+recorder.KeyID(keyA)+", the configured key is "+recorder.KeyID(keyB))
	for _, k := range [][]byte{keyA, keyB} {
		require.NotContains(t, string(out), base64.StdEncoding.EncodeToString(k)[:12], "a key is never printed")
	}

	g := startGatewayIn(t, dir, nil, env(keyA)...)
	waitLog(t, g, "key_id="+recorder.KeyID(keyA))
}
