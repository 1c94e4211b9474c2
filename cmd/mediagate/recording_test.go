package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/media"
	"github.com/mediagate/mediagate/media/mediatest"
	"github.com/mediagate/mediagate/recorder"
	"github.com/mediagate/mediagate/rtc/rtctest"
)

// recordedRoomEnv is the environment of a gateway with an open room
// "board" and the given storage directory.
func recordedRoomEnv(storage string, extra ...string) []string {
	return append([]string{`MEDIAGATE_ROOMS={"board": {"open": true}, "lobby": {"open": true}}`,
		"MEDIAGATE_STORAGE_DIR=" + storage}, extra...)
}

// TestRecordingSpeechEndToEnd: a pion participant speaks into a room for
// about ten seconds while an admin records it through the API; the
// download is Ogg/Opus whose duration is the recorded time and whose audio
// is the speech (correlation after alignment).
func TestRecordingSpeechEndToEnd(t *testing.T) {
	key, keyEnv := newAdminKey()
	g := startGateway(t, nil, recordedRoomEnv(t.TempDir(), keyEnv)...)
	admin := apiClient{t, g.base, key}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	speech := mediatest.Speech(t, media.Rate48k, 10)
	pion, err := rtctest.Join(ctx, t, g.base, "board", "", rtctest.Options{PCM: speech})
	require.NoError(t, err)
	require.NoError(t, pion.WaitFrames(ctx, 25), "media flows")

	started := admin.manifest(http.MethodPost, "/api/v1/rooms/board/recording/start", "", http.StatusCreated)
	require.Equal(t, recorder.StateRecording, started.State)
	require.Equal(t, recorder.Tenant("default"), started.Tenant)
	// The recorded time is the room's: the mix the participant got
	// meanwhile, one frame per 20 ms tick. (A busy machine can make the
	// room's ticker skip ticks; the wall clock then runs ahead of it.)
	first := pion.Received()
	g.awaitLog(t, 10*time.Second, "event=recording.started", "recording="+string(started.ID))
	require.NoError(t, pion.WaitFrames(ctx, first+500))
	m := admin.manifest(http.MethodPost, "/api/v1/rooms/board/recording/stop", "", http.StatusOK)
	recorded := float64(pion.Received()-first) * media.FrameDuration.Seconds()
	require.NoError(t, pion.Close())
	require.Equal(t, started.ID, m.ID)
	require.Equal(t, recorder.StateComplete, m.State)
	require.Len(t, m.Participants, 1, "the speaker, present when recording started")
	require.Equal(t, "webrtc", m.Participants[0].Kind)
	t.Logf("recorded %.3f s of the room's time (%.3f s by the wall clock), manifest duration %.3f s, %d bytes",
		recorded, m.EndedAt.Sub(m.StartedAt).Seconds(), m.Duration, m.Bytes)

	path, sum := admin.download(m.ID, t.TempDir())
	require.Equal(t, m.SHA256, sum)
	probed := ffprobeDuration(t, path)
	require.InDelta(t, recorded, probed, 0.2, "ffprobe's duration is the recorded time")
	require.InDelta(t, m.Duration, probed, 0.05)
	pcm := mediatest.FFmpegDecode(t, path)
	require.InDelta(t, probed*media.Rate48k, float64(len(pcm)), 0.05*media.Rate48k)
	corr, drift := speechMatch(t, speech, pcm, media.Rate48k, 7*media.Rate48k)
	t.Logf("correlation with the speech sent: %.3f; drift per half second (samples): %v", corr, drift)
	require.GreaterOrEqual(t, corr, 0.8)
	for _, d := range drift {
		require.LessOrEqual(t, max(d, -d), 5*media.FrameSamples, "the room's time stays within 100 ms of the speaker's")
	}

	code, body := admin.do(http.MethodPost, "/api/v1/rooms/board/recording/stop", "")
	require.Equal(t, http.StatusConflict, code, "%s", body)
	require.Contains(t, string(body), "not-recording")
}

// TestRecordingSurvivesKill9: the node is killed with SIGKILL in the middle
// of a recording; after a restart on the same storage the recording is
// interrupted, plays to within 1.5 s of the kill, and its manifest gives
// the file's real duration and SHA-256. The same with the recording
// encrypted at rest (recording.encryption_key): the stored file is not
// the audio, the download is.
func TestRecordingSurvivesKill9(t *testing.T) {
	encKey := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x5e}, 32))
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"plain", nil},
		{"encrypted", []string{"MEDIAGATE_RECORDING_ENCRYPTION_KEY=" + encKey}},
	} {
		t.Run(tc.name, func(t *testing.T) { recordingSurvivesKill9(t, tc.env) })
	}
}

func recordingSurvivesKill9(t *testing.T, extra []string) {
	key, keyEnv := newAdminKey()
	storage := t.TempDir()
	env := recordedRoomEnv(storage, append([]string{keyEnv}, extra...)...)
	g := startGateway(t, nil, env...)
	admin := apiClient{t, g.base, key}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pion, err := rtctest.Join(ctx, t, g.base, "board", "", rtctest.Options{PCM: mediatest.Speech(t, media.Rate48k, 10)})
	require.NoError(t, err)
	require.NoError(t, pion.WaitFrames(ctx, 25))
	started := admin.manifest(http.MethodPost, "/api/v1/rooms/board/recording/start", "", http.StatusCreated)
	first := pion.Received()
	require.NoError(t, pion.WaitFrames(ctx, first+300)) // six seconds of the room's time
	require.NoError(t, g.cmd.Process.Signal(syscall.SIGKILL))
	expected := float64(pion.Received()-first) * media.FrameDuration.Seconds()
	g.wait(t)
	require.NoError(t, pion.Close())

	g2 := startGateway(t, nil, env...)
	admin.base = g2.base
	m := admin.manifest(http.MethodGet, "/api/v1/recordings/"+string(started.ID), "", http.StatusOK)
	t.Logf("killed after %.2f s of recording; recovered %.2f s, %d bytes: %s", expected, m.Duration, m.Bytes, m.Error)
	require.Equal(t, recorder.StateInterrupted, m.State)
	require.Contains(t, m.Error, "recovered at start-up")
	require.GreaterOrEqual(t, m.Duration, expected-1.5, "at most 1.5 s lost")
	require.LessOrEqual(t, m.Duration, expected+0.1)
	require.Len(t, m.Participants, 1)

	path, sum := admin.download(m.ID, t.TempDir())
	require.Equal(t, m.SHA256, sum, "the manifest's hash is the file's")
	probed := ffprobeDuration(t, path)
	require.InDelta(t, m.Duration, probed, 0.05, "the manifest's duration is the file's")
	pcm := mediatest.FFmpegDecode(t, path)
	require.Greater(t, mediatest.RMSDBFS(pcm), -40.0, "speech, not silence")

	if extra == nil {
		return
	}
	require.Equal(t, recorder.EncryptionAESGCM, m.Encryption)
	stored, err := os.ReadFile(filepath.Join(storage, "recordings", string(m.ID)+".opus"))
	require.NoError(t, err)
	require.NotContains(t, string(stored), "OggS", "the stored file is not the audio")
}

// TestRecordingReceiptsVerifyCLI: deletions through the API leave receipts
// that `mediagate receipts verify` vouches for offline, with the key the
// node generated; an edited or a removed line makes it fail naming the
// line, with exit code 1.
func TestRecordingReceiptsVerifyCLI(t *testing.T) {
	key, keyEnv := newAdminKey()
	storage := t.TempDir()
	g := startGateway(t, nil, recordedRoomEnv(storage, keyEnv)...)
	admin := apiClient{t, g.base, key}
	var ids []recorder.ID
	for range 3 {
		m := admin.manifest(http.MethodPost, "/api/v1/rooms/lobby/recording/start", "", http.StatusCreated)
		admin.manifest(http.MethodPost, "/api/v1/rooms/lobby/recording/stop", "", http.StatusOK)
		ids = append(ids, m.ID)
	}
	for i, id := range ids {
		reason := []string{"admin", "erasure-request", "admin"}[i]
		m := admin.manifest(http.MethodDelete, "/api/v1/recordings/"+string(id), `{"reason":"`+reason+`"}`, http.StatusOK)
		require.Equal(t, recorder.StateDeleted, m.State)
		g.awaitLog(t, 10*time.Second, "event=recording.deleted", "recording="+string(id))
	}
	require.NoError(t, g.cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 0, g.wait(t))
	st, err := os.Stat(filepath.Join(storage, "receipt.key"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	verify := func(extra ...string) (int, string) {
		cmd := exec.Command(binary, append([]string{"receipts", "verify"}, extra...)...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "MEDIAGATE_STORAGE_DIR=" + storage}
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		require.NoError(t, err)
		return 0, string(out)
	}
	code, out := verify()
	require.Equal(t, 0, code, out)
	log := filepath.Join(storage, "recordings", recorder.ReceiptsFileName)
	require.Equal(t, "OK: 3 receipts verified in "+log+"\n", out)

	orig, err := os.ReadFile(log)
	require.NoError(t, err)
	lines := strings.SplitAfter(string(orig), "\n")
	require.Len(t, lines, 4, "three lines and the empty rest")
	edited := filepath.Join(t.TempDir(), "edited.jsonl")
	for _, tc := range []struct {
		name, content, want string
	}{
		{"reason changed", lines[0] + strings.Replace(lines[1], "erasure-request", "expired", 1) + lines[2], "receipts line 2: bad deletion receipt signature"},
		{"line removed", lines[0] + lines[2], "receipts line 2: broken deletion receipt chain"},
		{"first line removed", lines[1] + lines[2], "receipts line 1: broken deletion receipt chain"},
		{"garbage appended", string(orig) + "{}\n", "receipts line 4: malformed deletion receipt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(edited, []byte(tc.content), 0o600))
			code, out := verify("--file", edited)
			require.Equal(t, exitFailed, code, out)
			require.Contains(t, out, tc.want)
		})
	}
	// With another key nothing verifies.
	cmd := exec.Command(binary, "receipts", "verify")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "MEDIAGATE_STORAGE_DIR=" + storage,
		"MEDIAGATE_RECORDING_RECEIPT_KEY=" + strings.Repeat("k", 32)}
	out2, err := cmd.CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out2), "receipts line 1: bad deletion receipt signature")
	require.NotContains(t, string(out2), strings.Repeat("k", 32), "the key is never printed")
}

// TestRecordingDiskFull: the recordings store is a small tmpfs (mounted in
// the gateway's own mount namespace) that fills up during a recording. The
// recording stops interrupted, with an error event, keeping every complete
// page; both rooms go on; the recordings and receipts stored before are
// intact.
func TestRecordingDiskFull(t *testing.T) {
	key, keyEnv := newAdminKey()
	mnt := t.TempDir()
	wrapper := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs -o size=1m,mode=0750 mediagate-test "$1" && shift && exec "$@"`, "sh", mnt, binary)
	g := startCommand(t, wrapper, recordedRoomEnv(mnt, keyEnv)...)
	admin := apiClient{t, g.base, key}
	// The gateway's view of the store, from outside its namespace.
	store := filepath.Join("/proc", strconv.Itoa(g.cmd.Process.Pid), "root", mnt)
	out, err := exec.Command("nsenter", "-t", strconv.Itoa(g.cmd.Process.Pid), "-m", "findmnt", "-n", "-o", "FSTYPE,SIZE", mnt).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Equal(t, "tmpfs 1M", strings.Join(strings.Fields(string(out)), " "))

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	board, err := rtctest.Join(ctx, t, g.base, "board", "", rtctest.Options{Tone: 440, Amp: 0.3})
	require.NoError(t, err)
	lobby, err := rtctest.Join(ctx, t, g.base, "lobby", "", rtctest.Options{Tone: 880, Amp: 0.3})
	require.NoError(t, err)

	// Stored before: a complete recording and a receipt for a deleted one.
	record := func() recorder.Manifest {
		m := admin.manifest(http.MethodPost, "/api/v1/rooms/board/recording/start", "", http.StatusCreated)
		require.NoError(t, board.WaitFrames(ctx, board.Received()+50))
		done := admin.manifest(http.MethodPost, "/api/v1/rooms/board/recording/stop", "", http.StatusOK)
		require.Equal(t, m.ID, done.ID)
		return done
	}
	kept, gone := record(), record()
	admin.manifest(http.MethodDelete, "/api/v1/recordings/"+string(gone.ID), `{"reason":"admin"}`, http.StatusOK)
	_, keptSum := admin.download(kept.ID, t.TempDir())
	require.Equal(t, kept.SHA256, keptSum)

	full := admin.manifest(http.MethodPost, "/api/v1/rooms/board/recording/start", "", http.StatusCreated)
	require.NoError(t, board.WaitFrames(ctx, board.Received()+50))
	fillLeaving(t, filepath.Join(store, "filler"), 4<<10)
	g.awaitLog(t, 60*time.Second, "event=recording.interrupted", "recording="+string(full.ID), "no space left on device")
	g.awaitLog(t, 10*time.Second, "room recording ended", "room=board", "state=interrupted")

	// Both rooms go on.
	for _, c := range []*rtctest.Client{board, lobby} {
		require.NoError(t, c.WaitFrames(ctx, c.Received()+100))
	}
	m := admin.manifest(http.MethodGet, "/api/v1/recordings/"+string(full.ID), "", http.StatusOK)
	t.Logf("interrupted after %.2f s, %d bytes: %s", m.Duration, m.Bytes, m.Error)
	require.Equal(t, recorder.StateInterrupted, m.State)
	require.Contains(t, m.Error, "no space left on device")
	require.Greater(t, m.Duration, 1.0)
	path, sum := admin.download(full.ID, t.TempDir())
	require.Equal(t, m.SHA256, sum, "cut back to its last complete page")
	require.InDelta(t, m.Duration, ffprobeDuration(t, path), 0.05)
	pcm := mediatest.FFmpegDecode(t, path)
	require.Greater(t, mediatest.ToneDB(pcm, 440, media.Rate48k), -20.0, "the room's tone")

	// What was stored before is intact.
	_, sum = admin.download(kept.ID, t.TempDir())
	require.Equal(t, keptSum, sum)
	require.Equal(t, recorder.StateComplete, admin.manifest(http.MethodGet, "/api/v1/recordings/"+string(kept.ID), "", http.StatusOK).State)
	cmd := exec.Command(binary, "receipts", "verify")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "MEDIAGATE_STORAGE_DIR=" + store}
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "OK: 1 receipts verified")

	// Recording works again once there is room.
	require.NoError(t, os.Remove(filepath.Join(store, "filler")))
	again := record()
	require.Equal(t, recorder.StateComplete, again.State)
}

// fillLeaving writes path until the file system is full, then gives back
// about free bytes: a disk that fills up within seconds of recording.
func fillLeaving(t *testing.T, path string, free int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	require.NoError(t, err)
	defer f.Close()
	chunk := make([]byte, 64<<10)
	var size int64
	for i := 0; ; i++ {
		require.Less(t, i, 1000, "a 1 MB file system did not fill up")
		n, err := f.Write(chunk)
		size += int64(n)
		if err != nil {
			require.ErrorIs(t, err, syscall.ENOSPC)
			break
		}
	}
	require.NoError(t, f.Truncate(size-free))
	t.Logf("store filled, %d bytes left", free)
}

// TestRecordingCompletesOnSIGTERM: a node told to stop completes its
// recordings (last page written, manifest final) instead of leaving them
// for crash recovery.
func TestRecordingCompletesOnSIGTERM(t *testing.T) {
	key, keyEnv := newAdminKey()
	storage := t.TempDir()
	g := startGateway(t, nil, recordedRoomEnv(storage, keyEnv, "MEDIAGATE_NODE_DRAIN_TIMEOUT=0s")...)
	admin := apiClient{t, g.base, key}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pion, err := rtctest.Join(ctx, t, g.base, "lobby", "", rtctest.Options{Tone: 500})
	require.NoError(t, err)
	started := admin.manifest(http.MethodPost, "/api/v1/rooms/lobby/recording/start", "", http.StatusCreated)
	g.awaitLog(t, 10*time.Second, "event=recording.started", "recording="+string(started.ID))
	require.NoError(t, pion.WaitFrames(ctx, pion.Received()+100))
	require.NoError(t, g.cmd.Process.Signal(syscall.SIGTERM))
	g.awaitLog(t, 10*time.Second, "event=recording.completed", "recording="+string(started.ID))
	require.Equal(t, 0, g.wait(t))

	g2 := startGateway(t, nil, recordedRoomEnv(storage, keyEnv)...)
	admin.base = g2.base
	m := admin.manifest(http.MethodGet, "/api/v1/recordings/"+string(started.ID), "", http.StatusOK)
	require.Equal(t, recorder.StateComplete, m.State, "%s", m.Error)
	require.NotEmpty(t, m.SHA256)
	path, sum := admin.download(m.ID, t.TempDir())
	require.Equal(t, m.SHA256, sum)
	require.InDelta(t, m.Duration, ffprobeDuration(t, path), 0.05)
	require.Greater(t, m.Duration, 1.5)
	require.Greater(t, mediatest.ToneDB(mediatest.FFmpegDecode(t, path), 500, media.Rate48k), -20.0)
}
