package web

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAssets: the scripts and styles are served with their types and
// validators; the template is not an asset.
func TestAssets(t *testing.T) {
	for name, ctype := range map[string]string{
		"join.js":  "text/javascript; charset=utf-8",
		"join.css": "text/css; charset=utf-8",
	} {
		a, ok := Lookup(name)
		require.True(t, ok, name)
		require.Equal(t, ctype, a.ContentType)
		require.NotEmpty(t, a.Body)
		require.Regexp(t, `^"[0-9a-f]{24}"$`, a.ETag)
	}
	for _, name := range []string{"join.html", "../web.go", "", "static/join.js"} {
		_, ok := Lookup(name)
		require.False(t, ok, name)
	}
}

// TestNoExternalResources: nothing the page loads comes from another origin.
func TestNoExternalResources(t *testing.T) {
	external := map[string]*regexp.Regexp{
		"join.js":  regexp.MustCompile(`(?i)(https?:|wss?:)?//[a-z0-9-]+\.[a-z0-9.-]+|import\s*\(|importScripts`),
		"join.css": regexp.MustCompile(`(?i)@import|url\(`),
	}
	for name, re := range external {
		a, _ := Lookup(name)
		require.Empty(t, re.FindAllString(string(a.Body), -1), "%s loads something from elsewhere", name)
	}
	var b bytes.Buffer
	require.NoError(t, RenderJoin(&b, JoinData{RoomID: "board", RoomName: "Board", Access: AccessPIN, Found: true}))
	require.NotContains(t, b.String(), "http")
	require.NotContains(t, b.String(), "<script>", "no inline scripts: the CSP forbids them")
	require.NotContains(t, b.String(), "style=", "no inline styles: the CSP forbids them")
}

// TestRenderJoin: the page escapes the room's name and ID, shows the PIN
// field only for PIN rooms, and references versioned assets.
func TestRenderJoin(t *testing.T) {
	tests := []struct {
		name string
		data JoinData
		want []string
		not  []string
	}{
		{"pin room", JoinData{RoomID: "board", RoomName: "Board & <Co>", Access: AccessPIN, Found: true},
			[]string{`<h1 id="room-name">Board &amp; &lt;Co&gt;</h1>`, `data-room="board"`, `data-access="pin"`,
				`data-found="true"`, `<div id="pin-row" >`, `src="/static/join.js?v=` + version + `"`},
			[]string{"<Co>"}},
		{"open room hides the pin", JoinData{RoomID: "lobby", RoomName: "lobby", Access: AccessOpen, Found: true},
			[]string{`<div id="pin-row" hidden>`, `data-access="open"`}, nil},
		{"script in the name", JoinData{RoomID: "x", RoomName: `</title><script>alert(1)</script>`, Access: AccessOpen, Found: true},
			[]string{"&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;"}, []string{"<script>alert"}},
		{"quote in an attribute", JoinData{RoomID: `x" onload="alert(1)`, Found: false},
			[]string{`data-room="x&#34; onload=&#34;alert(1)"`, `data-found="false"`, "Room not found"}, []string{`" onload="`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			require.NoError(t, RenderJoin(&b, tt.data))
			for _, w := range tt.want {
				require.Contains(t, b.String(), w)
			}
			for _, n := range tt.not {
				require.NotContains(t, b.String(), n)
			}
			require.True(t, strings.HasPrefix(b.String(), "<!doctype html>"))
		})
	}
}
