// Package web holds the browser files mediagate serves, embedded in the
// binary so that one node needs nothing but the binary (DESIGN.md decision
// 9): the join page of /r/{room} (join.html, an html/template, with join.js
// and join.css) and the admin page of /admin (admin.html, with admin.js and
// admin.css: recordings and deletion receipts through the admin REST API,
// signed in with an API key). Nothing is loaded from elsewhere: no CDN, no web fonts, no
// frameworks, so the page works on closed networks and under a strict
// Content-Security-Policy. The api package serves these files; this package
// only holds them.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io"
	"io/fs"
	"maps"
	"mime"
	"path"
	"slices"
)

//go:embed static
var static embed.FS

// Asset is a file served as is under /static/.
type Asset struct {
	// Name is the file name, e.g. "join.js".
	Name string
	// ContentType is the media type with charset, from the extension.
	ContentType string
	// Body is the file's content; callers must not modify it.
	Body []byte
	// ETag is a strong validator (RFC 9110 §8.8.3): the quoted start of the
	// SHA-256 of Body, so browsers revalidate cheaply after an upgrade.
	ETag string
}

// Access says how the join page lets a visitor into a room, which decides
// the form it shows.
type Access string

// Ways into a room, as the join page shows them.
const (
	// AccessOpen: anyone with the link; the form asks only for a name.
	AccessOpen Access = "open"
	// AccessPIN: the form asks for the room's PIN as well.
	AccessPIN Access = "pin"
	// AccessInvite: only a token from the operator's platform, passed in
	// the link's fragment (#token=...), lets the visitor in.
	AccessInvite Access = "invite"
)

// JoinData is what the join page template shows. html/template escapes
// every field for its context, so a room name cannot inject markup.
type JoinData struct {
	// RoomID is the {room} of the URL; the page's scripts call the room's
	// endpoints with it.
	RoomID string
	// RoomName is the display name (the ID when none is configured).
	RoomName string
	// Access is how the visitor gets in.
	Access Access
	// Found is false when the room does not exist; the page then only
	// says so.
	Found bool
}

var (
	assets  = loadAssets()
	version = assetsVersion(assets)
	// pages are the page templates, by file name; each references the
	// assets with ?v={{version}}.
	pages = template.Must(template.New("").Funcs(template.FuncMap{
		"version": func() string { return version },
	}).ParseFS(static, "static/*.html"))
)

// loadAssets reads every embedded file except the templates (*.html),
// which are rendered, never served as they are.
func loadAssets() map[string]Asset {
	out := make(map[string]Asset)
	entries, err := fs.ReadDir(static, "static")
	if err != nil {
		panic(err) // the embedded directory is part of the binary
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || path.Ext(name) == ".html" {
			continue
		}
		body, err := static.ReadFile("static/" + name)
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(body)
		out[name] = Asset{
			Name:        name,
			ContentType: mime.TypeByExtension(path.Ext(name)),
			Body:        body,
			ETag:        `"` + hex.EncodeToString(sum[:12]) + `"`,
		}
	}
	return out
}

// assetsVersion is a short hash over every asset, appended to their URLs
// (?v=) so a browser never mixes a new page with old scripts.
func assetsVersion(a map[string]Asset) string {
	h := sha256.New()
	for _, name := range slices.Sorted(maps.Keys(a)) {
		io.WriteString(h, a[name].ETag)
	}
	return hex.EncodeToString(h.Sum(nil)[:6])
}

// Lookup returns the asset served as /static/name; templates and unknown
// names are not found.
func Lookup(name string) (Asset, bool) {
	a, ok := assets[name]
	return a, ok
}

// RenderJoin writes the join page for d. It renders into a buffer first, so
// a template error never leaves half a page on the wire.
func RenderJoin(w io.Writer, d JoinData) error { return render(w, "join.html", d) }

// RenderAdmin writes the admin page. It holds no data of the node: the
// page's script asks the admin API for everything once signed in, so the
// page itself can be served to anyone.
func RenderAdmin(w io.Writer) error { return render(w, "admin.html", nil) }

// render executes the page template name into a buffer, then writes it.
func render(w io.Writer, name string, d any) error {
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name, d); err != nil {
		return err
	}
	_, err := b.WriteTo(w)
	return err
}
