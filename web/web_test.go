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
		"join.js":   "text/javascript; charset=utf-8",
		"join.css":  "text/css; charset=utf-8",
		"admin.js":  "text/javascript; charset=utf-8",
		"admin.css": "text/css; charset=utf-8",
	} {
		a, ok := Lookup(name)
		require.True(t, ok, name)
		require.Equal(t, ctype, a.ContentType)
		require.NotEmpty(t, a.Body)
		require.Regexp(t, `^"[0-9a-f]{24}"$`, a.ETag)
	}
	for _, name := range []string{"join.html", "admin.html", "../web.go", "", "static/join.js"} {
		_, ok := Lookup(name)
		require.False(t, ok, name)
	}
}

// TestNoExternalResources: nothing the page loads comes from another origin.
func TestNoExternalResources(t *testing.T) {
	script := regexp.MustCompile(`(?i)(https?:|wss?:)?//[a-z0-9-]+\.[a-z0-9.-]+|import\s*\(|importScripts`)
	style := regexp.MustCompile(`(?i)@import|url\(`)
	for name, re := range map[string]*regexp.Regexp{
		"join.js": script, "join.css": style, "admin.js": script, "admin.css": style,
	} {
		a, ok := Lookup(name)
		require.True(t, ok, name)
		require.Empty(t, re.FindAllString(string(a.Body), -1), "%s loads something from elsewhere", name)
	}
	var join, admin bytes.Buffer
	require.NoError(t, RenderJoin(&join, JoinData{RoomID: "board", RoomName: "Board", Access: AccessPIN, Found: true}))
	require.NoError(t, RenderAdmin(&admin))
	for _, b := range []bytes.Buffer{join, admin} {
		require.NotContains(t, b.String(), "http")
		require.NotContains(t, b.String(), "<script>", "no inline scripts: the CSP forbids them")
		require.NotContains(t, b.String(), "style=", "no inline styles: the CSP forbids them")
		require.NotRegexp(t, `(?i) on[a-z]+=`, b.String(), "no inline event handlers: the CSP forbids them")
	}
}

// TestRenderAdmin: the admin page references its versioned assets, every
// form field has a label, and its script keeps the API key in
// sessionStorage only and sends it only as a bearer header.
func TestRenderAdmin(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, RenderAdmin(&b))
	page := b.String()
	require.True(t, strings.HasPrefix(page, "<!doctype html>"))
	require.Contains(t, page, `src="/static/admin.js?v=`+version+`"`)
	require.Contains(t, page, `href="/static/admin.css?v=`+version+`"`)
	require.NotContains(t, page, "{{")
	fields := regexp.MustCompile(`<(?:input|select)[^>]* id="([^"]+)"`).FindAllStringSubmatch(page, -1)
	require.GreaterOrEqual(t, len(fields), 10)
	for _, f := range fields {
		require.Contains(t, page, `<label for="`+f[1]+`">`, "field %s has no label", f[1])
	}
	require.Equal(t, 1, strings.Count(page, `type="password"`), "the key field hides the key")

	js, ok := Lookup("admin.js")
	require.True(t, ok)
	for _, banned := range []string{"localStorage.", "document.cookie", "indexedDB", "?key=", "&key=", "console."} {
		require.False(t, strings.Contains(string(js.Body), banned), "admin.js uses %s", banned)
	}
	for _, want := range []string{`Authorization: 'Bearer ' + st.key`, `sessionStorage.setItem(KEY_STORAGE, key)`} {
		require.True(t, strings.Contains(string(js.Body), want), "admin.js lacks %s", want)
	}
}

// TestRenderJoin: the page escapes the room's name and ID, shows the PIN
// field only for PIN rooms, references versioned assets, and holds the
// recording notice, hidden, in a live region for the script to show.
func TestRenderJoin(t *testing.T) {
	tests := []struct {
		name string
		data JoinData
		want []string
		not  []string
	}{
		{"pin room", JoinData{RoomID: "board", RoomName: "Board & <Co>", Access: AccessPIN, Found: true},
			[]string{`<h1 id="room-name">Board &amp; &lt;Co&gt;</h1>`, `data-room="board"`, `data-access="pin"`,
				`data-found="true"`, `<div id="pin-row" >`, `src="/static/join.js?v=` + version + `"`,
				`<div id="recording-status" role="status">`, `<p id="recording" class="recording" hidden>`,
				`This conference is being recorded</p>`},
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

// TestJoinScriptDoesNotFollowRedirects: the join page never follows a
// redirect (to the node hosting the room, in a cluster): its CSP allows
// only its own origin and browsers drop the Authorization header on the
// way to another. It loads itself again instead, which the server
// redirects, with its token in the fragment.
func TestJoinScriptDoesNotFollowRedirects(t *testing.T) {
	a, ok := Lookup("join.js")
	require.True(t, ok)
	js := string(a.Body)
	require.Contains(t, js, "redirect: 'manual'")
	require.Contains(t, js, "res.type === 'opaqueredirect'")
	require.Contains(t, js, "'room-moved':")
	require.Contains(t, js, "location.reload()")
	require.Equal(t, 1, strings.Count(js, "fetch(url,"), "every fetch but the poll's and the DELETEs goes through request()")
}
