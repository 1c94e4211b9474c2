package rtc

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/pion/sdp/v3"

	"github.com/mediagate/mediagate/room"
)

// ContentTypeSDP is the media type of WHIP/WHEP offers and answers
// (RFC 9725 §4.2, RFC 8866 §8.3).
const ContentTypeSDP = "application/sdp"

// MaxOfferSize caps an offer's body. A browser offer with audio and video
// is 3 to 8 KiB; 64 KiB leaves room for any real client and none for abuse.
const MaxOfferSize = 64 << 10

// maxRoomIDLen keeps room IDs short enough for URLs, logs and metric labels.
const maxRoomIDLen = 64

// cors adds the CORS headers every answer needs for a WHIP client running in
// a page of another origin to read it (Location, ETag: RFC 9725 §4.2).
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", s.set.AllowOrigin)
		h.Set("Access-Control-Expose-Headers", "Location, ETag, Link, Accept-Post")
		next.ServeHTTP(w, r)
	})
}

// optionsEndpoint answers OPTIONS on /whip/{room}: the CORS preflight and
// Accept-Post, which tells a WHIP client the endpoint takes SDP offers
// (RFC 9725 §4.2).
func (s *Server) optionsEndpoint(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Accept-Post", ContentTypeSDP)
	h.Set("Allow", "POST, OPTIONS")
	preflight(h, "POST, OPTIONS")
	w.WriteHeader(http.StatusNoContent)
}

// optionsSession answers OPTIONS on a session resource.
func (s *Server) optionsSession(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Allow", "DELETE, OPTIONS")
	preflight(h, "DELETE, OPTIONS")
	w.WriteHeader(http.StatusNoContent)
}

func preflight(h http.Header, methods string) {
	h.Set("Access-Control-Allow-Methods", methods)
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
	h.Set("Access-Control-Max-Age", "86400")
}

// patch refuses trickle ICE and ICE restarts (RFC 9725 §4.3.1: a server
// that does not support them answers 405).
func (s *Server) patch(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Allow", "DELETE, OPTIONS")
	writeProblem(w, ErrTrickleUnsupported)
}

// post joins a room: WHIP (listen false) or WHEP (listen true).
func (s *Server) post(w http.ResponseWriter, r *http.Request, listen bool) {
	p, err := s.join(w, r, listen)
	var moved *room.MovedError
	if errors.As(err, &moved) {
		s.redirect(w, r, moved, listen)
		return
	}
	if err != nil {
		prob := writeProblem(w, err)
		s.log.Info("session refused", "room", r.PathValue("room"), "whep", listen,
			"status", prob.Status, "type", prob.Type, "err", err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ContentTypeSDP)
	h.Set("Location", p.location)
	h.Set("ETag", p.etag)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, p.answer)
}

// join runs a POST: authorise, check the offer, join the room, answer. The
// order keeps bad requests cheap and harmless: nothing touches the room
// before the offer proved usable.
func (s *Server) join(w http.ResponseWriter, r *http.Request, listen bool) (*participant, error) {
	if s.isClosed() {
		return nil, ErrServerClosed
	}
	id := room.ID(r.PathValue("room"))
	if !validRoomID(string(id)) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidRoomID, id)
	}
	grant, err := s.auth.Authorize(r, id, listen)
	if err != nil {
		var st interface{ HTTPStatus() int }
		if !errors.As(err, &st) {
			err = fmt.Errorf("%w: %w", ErrUnauthorized, err)
		}
		return nil, err
	}
	if listen && !grant.Listen {
		return nil, fmt.Errorf("%w: no right to listen in %s", ErrForbidden, id)
	}
	if !listen && !grant.Publish {
		return nil, fmt.Errorf("%w: no right to publish in %s", ErrForbidden, id)
	}
	body, err := readOffer(w, r)
	if err != nil {
		return nil, err
	}
	offer, err := parseOffer(body, listen)
	if err != nil {
		return nil, err
	}
	if err := s.openRoom(id); err != nil {
		return nil, err
	}
	p, err := s.newParticipant(id, grant, offer, listen)
	if err != nil {
		return nil, err
	}
	if err := s.register(p); err != nil {
		return nil, err
	}
	if err := p.start(r.Context(), string(body)); err != nil {
		s.unregister(p.session)
		p.stop(err)
		return nil, err
	}
	return p, nil
}

// openRoom makes sure room id is open on this node before a PeerConnection
// is made for it, so that the room manager's open gate (the cluster's
// ownership of rooms) answers first: a room hosted by another node comes
// back as a *room.MovedError, redirected with 307 by post, and a room whose
// owner cannot be known as room.ErrUnavailable (503), both without any
// ICE or DTLS work. It also refuses full and locked rooms early. A room
// opened here and then left empty because the negotiation failed closes
// after its grace period, like any room its last participant left. The
// manager's Join, after the negotiation, consults the gate again only if
// the room closed in between.
func (s *Server) openRoom(id room.ID) error {
	if err := s.rooms.Admits(id); err != nil {
		return err // closed manager, unknown room without auto-create, full, locked
	}
	if _, err := s.rooms.Get(id); err == nil {
		return nil
	}
	_, err := s.rooms.Create(id)
	if errors.Is(err, room.ErrRoomExists) {
		return nil // opened by another join meanwhile
	}
	return err
}

// redirect answers a join for a room another node hosts: 307 Temporary
// Redirect (RFC 9110 §15.4.8: the client repeats the method and the body,
// which RFC 9725's section on load balancing and redirections expects of
// WHIP clients) to the same path and query on the owner's base URL, with
// a short problem+json body for clients that show it.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, moved *room.MovedError, listen bool) {
	target := strings.TrimSuffix(moved.URL, "/") + r.URL.RequestURI()
	h := w.Header()
	h.Set("Location", target)
	h.Set("Content-Type", ContentTypeProblem)
	h.Set("Cache-Control", "no-store")
	body, _ := json.Marshal(Problem{Type: ProblemTypeBase + "room-moved", Title: moved.Error(),
		Status: http.StatusTemporaryRedirect, Detail: "the room is hosted at " + moved.URL})
	w.WriteHeader(http.StatusTemporaryRedirect)
	_, _ = w.Write(append(body, '\n'))
	s.log.Info("session redirected", "room", r.PathValue("room"), "whep", listen, "node", moved.Node)
}

// readOffer checks the Content-Type and reads at most MaxOfferSize bytes.
func readOffer(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || !strings.EqualFold(mt, ContentTypeSDP) {
		return nil, fmt.Errorf("%w: got %q", ErrUnsupportedContentType, ct)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxOfferSize))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, MaxOfferSize)
	case err != nil:
		return nil, fmt.Errorf("%w: reading body: %w", ErrMalformedSDP, err)
	case len(body) == 0:
		return nil, fmt.Errorf("%w: empty body", ErrMalformedSDP)
	}
	return body, nil
}

// delete ends a session (RFC 9725 §4.3): the participant leaves its room
// at once and its PeerConnection is closed in the background. The session
// URL is the capability: it holds 130 random bits and is only ever sent to
// the client that created it.
func (s *Server) delete(w http.ResponseWriter, r *http.Request, listen bool) {
	id, sess := room.ID(r.PathValue("room")), r.PathValue("session")
	p := s.lookup(sess)
	if p == nil || p.roomID != id || p.listen != listen || s.unregister(sess) != p {
		writeProblem(w, fmt.Errorf("%w: %s", ErrSessionNotFound, r.URL.Path))
		return
	}
	p.leave()
	p.stop(nil)
	w.WriteHeader(http.StatusOK)
}

// validRoomID reports whether id is 1 to 64 characters from A-Z a-z 0-9
// . _ - (what node IDs allow too), so it can go into URLs and logs as is.
func validRoomID(id string) bool {
	if id == "" || len(id) > maxRoomIDLen || id == "." || id == ".." {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// newSessionID returns a fresh session ID: 26 base32 characters, 130 bits
// from crypto/rand, unguessable because the session URL is all a DELETE
// needs.
func newSessionID() string { return rand.Text() }

// sessionPath is the Location of a session (RFC 9725 §4.2).
func sessionPath(listen bool, id room.ID, session string) string {
	kind := "whip"
	if listen {
		kind = "whep"
	}
	return "/" + kind + "/" + url.PathEscape(string(id)) + "/" + session
}

// offerInfo is what the checks found in an offer.
type offerInfo struct {
	// fec is true when the offer's Opus takes in-band FEC
	// (useinbandfec=1, RFC 7587 §6.1): the room then encodes with FEC.
	fec bool
	// recvAudio is true when the client wants to receive audio (its audio
	// m-line is sendrecv or recvonly), sendAudio when it sends.
	recvAudio, sendAudio bool
	// sendVideo and recvVideo tell whether an H.264 video m-line sends or
	// receives video (publisher on WHIP, viewer on WHEP).
	sendVideo, recvVideo bool
	// actpass is true when the offer leaves the DTLS role to the answerer
	// (a=setup:actpass, as browsers offer, or no setup attribute; RFC 8842
	// §5.3): the gateway then takes the server's, whose handshake gives it
	// the keys of the direct mix (dtlsKeys).
	actpass bool
}

// offersActpass reports whether d's DTLS setup attribute, the session's
// or else the first media section's that has one, is actpass or absent.
func offersActpass(d sdp.SessionDescription) bool {
	v, ok := d.Attribute("setup")
	for _, m := range d.MediaDescriptions {
		if ok {
			break
		}
		v, ok = m.Attribute("setup")
	}
	return !ok || v == "actpass"
}

// parseOffer checks an offer before pion sees it, so that the common
// mistakes get a precise answer: not SDP, no audio, no Opus. listen is
// true on WHEP, where the audio must reach the client.
func parseOffer(body []byte, listen bool) (offerInfo, error) {
	var d sdp.SessionDescription
	if err := d.Unmarshal(body); err != nil {
		return offerInfo{}, fmt.Errorf("%w: %w", ErrMalformedSDP, err)
	}
	oi := offerInfo{actpass: offersActpass(d)}
	sessionDir := direction(d.Attributes, "sendrecv")
	audio, opus := false, false
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Port.Value == 0 {
			continue // rejected or stopped m-line (RFC 8843 §7.3)
		}
		dir := direction(m.Attributes, sessionDir)
		send, recv := dir == "sendrecv" || dir == "sendonly", dir == "sendrecv" || dir == "recvonly"
		switch m.MediaName.Media {
		case "audio":
			if audio {
				continue // the first audio m-line is the participant's
			}
			audio = true
			pt, ok := findCodec(m, "opus", 48000)
			if !ok {
				continue
			}
			opus = true
			oi.fec = fmtpHas(m, pt, "useinbandfec", "1")
			oi.sendAudio, oi.recvAudio = send, recv
		case "video":
			if _, ok := findCodec(m, "h264", 90000); ok {
				oi.sendVideo = oi.sendVideo || send
				oi.recvVideo = oi.recvVideo || recv
			}
		}
	}
	switch {
	case !audio:
		return offerInfo{}, fmt.Errorf("%w: %d media sections, none is audio", ErrNoAudio, len(d.MediaDescriptions))
	case !opus:
		return offerInfo{}, fmt.Errorf("%w: audio offers only %s", ErrNoOpus, codecNames(d))
	case listen && !oi.recvAudio:
		return offerInfo{}, fmt.Errorf("%w: a whep client must receive audio (sendrecv or recvonly)", ErrNoAudio)
	case !listen && !oi.sendAudio && !oi.recvAudio:
		return offerInfo{}, fmt.Errorf("%w: the audio media section is inactive", ErrNoAudio)
	}
	return oi, nil
}

// direction returns the direction attribute among attrs (RFC 8866 §6.7),
// or def when there is none.
func direction(attrs []sdp.Attribute, def string) string {
	for _, a := range attrs {
		switch a.Key {
		case "sendrecv", "sendonly", "recvonly", "inactive":
			return a.Key
		}
	}
	return def
}

// findCodec returns the payload type of the m-line's first rtpmap for
// name at clock rate (RFC 8866 §6.6; names are case-insensitive), if that
// type is among the m-line's formats.
func findCodec(m *sdp.MediaDescription, name string, rate int) (string, bool) {
	want := strings.ToLower(fmt.Sprintf("%s/%d", name, rate))
	for _, a := range m.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		pt, enc, ok := strings.Cut(a.Value, " ")
		if !ok {
			continue
		}
		enc = strings.ToLower(strings.TrimSpace(enc))
		if (enc == want || strings.HasPrefix(enc, want+"/")) && hasFormat(m, pt) {
			return pt, true
		}
	}
	return "", false
}

func hasFormat(m *sdp.MediaDescription, pt string) bool {
	for _, f := range m.MediaName.Formats {
		if f == pt {
			return true
		}
	}
	return false
}

// fmtpHas reports whether pt's fmtp line sets key=value.
func fmtpHas(m *sdp.MediaDescription, pt, key, value string) bool {
	for _, a := range m.Attributes {
		if a.Key != "fmtp" {
			continue
		}
		p, params, ok := strings.Cut(a.Value, " ")
		if !ok || p != pt {
			continue
		}
		for kv := range strings.SplitSeq(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
			if strings.EqualFold(k, key) && v == value {
				return true
			}
		}
	}
	return false
}

// codecNames lists the encodings of the first audio m-line, for the detail
// of ErrNoOpus.
func codecNames(d sdp.SessionDescription) string {
	var names []string
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Media != "audio" {
			continue
		}
		for _, a := range m.Attributes {
			if a.Key == "rtpmap" {
				if _, enc, ok := strings.Cut(a.Value, " "); ok {
					names = append(names, enc)
				}
			}
		}
		if len(names) == 0 {
			names = m.MediaName.Formats // static payload types without rtpmap
		}
		break
	}
	if len(names) == 0 {
		return "nothing"
	}
	return strings.Join(names, ", ")
}
