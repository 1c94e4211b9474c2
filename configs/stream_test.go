package configs

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAutoStream: rooms.<id>.auto_stream from the file, from the room's
// variable and from the whole rooms section; Redacted and fmt never show
// a key, nor a URL's last segment that may be one.
func TestAutoStream(t *testing.T) {
	file := []byte(`
rooms:
  board:
    auto_stream:
      - name: YouTube
        url: rtmp://a.rtmp.example.com/live2/sk-in-url
      - name: Facebook
        url: rtmps://live-api-s.example.com:443/rtmp/
        key: sk-apart
`)
	c, err := Parse("test.yaml", file, nil)
	require.NoError(t, err)
	require.Equal(t, []StreamDestination{
		{Name: "YouTube", URL: "rtmp://a.rtmp.example.com/live2/sk-in-url"},
		{Name: "Facebook", URL: "rtmps://live-api-s.example.com:443/rtmp/", Key: "sk-apart"},
	}, c.Rooms["board"].AutoStream)

	r := c.Redacted()
	require.Equal(t, []StreamDestination{
		{Name: "YouTube", URL: "rtmp://a.rtmp.example.com/live2"},
		{Name: "Facebook", URL: "rtmps://live-api-s.example.com:443/rtmp", Key: "<redacted>"},
	}, r.Rooms["board"].AutoStream)
	require.Equal(t, "sk-apart", c.Rooms["board"].AutoStream[1].Key, "the original is untouched")
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%v", c.Rooms), fmt.Sprint(r)} {
		require.NotContains(t, s, "sk-in-url")
		require.NotContains(t, s, "sk-apart")
	}

	// One room's variable (JSON), replacing the file's list.
	c, err = Parse("test.yaml", file, []string{
		`MEDIAGATE_ROOMS_BOARD_AUTO_STREAM=[{"name": "Twitch", "url": "rtmp://live.example.net/app", "key": "sk-env"}]`,
		`MEDIAGATE_ROOMS_LOBBY_AUTO_STREAM=[{"url": "rtmps://ingest.example.org/live/sk-env-2"}]`,
	})
	require.NoError(t, err)
	require.Equal(t, []StreamDestination{{Name: "Twitch", URL: "rtmp://live.example.net/app", Key: "sk-env"}}, c.Rooms["board"].AutoStream)
	require.Equal(t, []StreamDestination{{URL: "rtmps://ingest.example.org/live/sk-env-2"}}, c.Rooms["lobby"].AutoStream)
	c, err = Parse("test.yaml", file, []string{"MEDIAGATE_ROOMS_BOARD_AUTO_STREAM="})
	require.NoError(t, err)
	require.Nil(t, c.Rooms["board"].AutoStream, "an empty variable empties the list")

	// The whole section.
	c, err = Parse("test.yaml", nil, []string{
		`MEDIAGATE_ROOMS={"sales-eu": {"auto_stream": [{"url": "rtmp://live.example.net/app/sk-section"}]}}`,
	})
	require.NoError(t, err)
	require.Equal(t, []StreamDestination{{URL: "rtmp://live.example.net/app/sk-section"}}, c.Rooms["sales-eu"].AutoStream)

	// Errors name the variable and the key, never the key's value.
	for env, want := range map[string]string{
		`MEDIAGATE_ROOMS_BOARD_AUTO_STREAM=[{"url": "http://x.example/app/sk-bad"}]`:  "env MEDIAGATE_ROOMS_BOARD_AUTO_STREAM: rooms.board.auto_stream[0].url: must be an rtmp:// or rtmps:// URL",
		`MEDIAGATE_ROOMS_BOARD_AUTO_STREAM=[{"urll": "rtmp://x.example/app/sk-bad"}]`: "env MEDIAGATE_ROOMS_BOARD_AUTO_STREAM: rooms.board.auto_stream[0].urll: unknown key",
		`MEDIAGATE_ROOMS_BOARD_AUTO_STREAM=["rtmp://x.example/app/sk-bad"]`:           "env MEDIAGATE_ROOMS_BOARD_AUTO_STREAM: rooms.board.auto_stream[0]: want a mapping, got a string",
		`MEDIAGATE_ROOMS_BOARD_AUTO_STREAM={"url": "rtmp://x.example/app/sk-bad"}`:    "env MEDIAGATE_ROOMS_BOARD_AUTO_STREAM: want a list of mappings, got a mapping",
	} {
		_, err := Parse("test.yaml", nil, []string{env})
		require.Error(t, err, env)
		require.Equal(t, want, err.Error(), env)
		require.NotContains(t, err.Error(), "sk-bad")
		var ce *Error
		require.True(t, errors.As(err, &ce))
	}
}
