package sip

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// fuzzTx is a server transaction that records the responses instead of
// sending them; it terminates at the first final response, as sipgo's does
// over a reliable transport, so nothing waits for an ACK.
type fuzzTx struct {
	mu    sync.Mutex
	res   []*sip.Response
	done  chan struct{}
	final bool
}

func newFuzzTx() *fuzzTx { return &fuzzTx{done: make(chan struct{})} }

func (tx *fuzzTx) Respond(res *sip.Response) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	tx.res = append(tx.res, res)
	if res.StatusCode >= 200 && !tx.final {
		tx.final = true
		close(tx.done)
	}
	return nil
}

func (tx *fuzzTx) responses() []*sip.Response {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	return append([]*sip.Response(nil), tx.res...)
}

func (tx *fuzzTx) Terminate()                         {}
func (tx *fuzzTx) OnTerminate(sip.FnTxTerminate) bool { return true }
func (tx *fuzzTx) Done() <-chan struct{}              { return tx.done }
func (tx *fuzzTx) Err() error                         { return nil }
func (tx *fuzzTx) Acks() <-chan *sip.Request          { return nil }
func (tx *fuzzTx) OnCancel(sip.FnTxCancel) bool       { return true }

var _ sip.ServerTransaction = (*fuzzTx)(nil)

// offlineUA is a UA without sockets or sipgo stack: enough for the
// request handlers to check, negotiate and answer through a fuzzTx. With
// trunks, requests from outside a dialog must pass the digest check.
func offlineUA(tb testing.TB, trunks ...Trunk) *UA {
	tb.Helper()
	o := options{log: slog.New(slog.DiscardHandler), codecs: DefaultCodecs, name: "mediagate",
		advertise: netip.MustParseAddr("203.0.113.5"), session: defaultSessionOptions(),
		trunk: trunkOptions{trunks: trunks}}
	u := &UA{log: o.log, opts: o, dialogs: map[string]*IncomingCall{}, port: 5060,
		handler: HandlerFunc(func(_ context.Context, in *IncomingCall) { _ = in.Reject(&StatusError{Code: 486}) })}
	tr, err := newTrunking(o.trunk, o.name, nil)
	if err != nil {
		tb.Fatal(err)
	}
	u.trs.Store(tr)
	u.ctx, u.cancel = context.WithCancel(context.Background())
	tb.Cleanup(u.cancel)
	return u
}

// dispatch routes req as startStack registers the handlers with sipgo's
// server.
func (u *UA) dispatch(req *sip.Request, tx sip.ServerTransaction) {
	switch req.Method {
	case sip.INVITE:
		u.onInvite(req, tx)
	case sip.ACK:
		u.onAck(req, tx)
	case sip.BYE:
		u.gated(u.onBye)(req, tx)
	case sip.CANCEL:
		u.gated(u.onCancel)(req, tx)
	case sip.INFO:
		u.gated(u.onInfo)(req, tx)
	case sip.UPDATE:
		u.gated(u.onUpdate)(req, tx)
	case sip.OPTIONS:
		u.gated(u.onOptions)(req, tx)
	default:
		u.gated(u.onNoRoute)(req, tx)
	}
}

// sipSeeds are requests a carrier or a phone sends, and ones it should not.
var sipSeeds = []string{
	"INVITE sip:+15551230000@203.0.113.5 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK776asdhds\r\n" +
		"Max-Forwards: 70\r\nTo: <sip:+15551230000@203.0.113.5>\r\nFrom: \"Alice\" <sip:alice@192.0.2.9>;tag=1928301774\r\n" +
		"Call-ID: a84b4c76e66710@192.0.2.9\r\nCSeq: 314159 INVITE\r\nContact: <sip:alice@192.0.2.9>\r\n" +
		"Session-Expires: 1800;refresher=uac\r\nSupported: timer\r\nContent-Type: application/sdp\r\n" +
		"Content-Length: 144\r\n\r\n" +
		"v=0\r\no=alice 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n" +
		"m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
	"INVITE sip:100@203.0.113.5 SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.9;branch=z9hG4bKx\r\nTo: <sip:100@203.0.113.5>;tag=abc\r\n" +
		"From: <sip:bob@192.0.2.9>;tag=1\r\nCall-ID: reinvite\r\nCSeq: 2 INVITE\r\nContact: <sip:bob@192.0.2.9;transport=tcp>\r\nContent-Length: 0\r\n\r\n",
	"INVITE sips:100@203.0.113.5 SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.9;branch=z9hG4bKy\r\nTo: <sips:100@203.0.113.5>\r\n" +
		"From: <sips:bob@192.0.2.9>;tag=1\r\nCall-ID: req\r\nCSeq: 1 INVITE\r\nContact: <sips:bob@192.0.2.9>\r\nRequire: 100rel, foo\r\nContent-Length: 0\r\n\r\n",
	"INVITE sip:100@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKz\r\nTo: <sip:100@h>\r\nFrom: <sip:a@h>;tag=1\r\n" +
		"Call-ID: se\r\nCSeq: 1 INVITE\r\nContact: <sip:a@h>\r\nSession-Expires: 10\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi",
	"OPTIONS sip:203.0.113.5 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKopt\r\nMax-Forwards: 70\r\n" +
		"To: <sip:203.0.113.5>\r\nFrom: <sip:ping@192.0.2.9>;tag=9\r\nCall-ID: opt1\r\nCSeq: 1 OPTIONS\r\nAccept: application/sdp\r\nContent-Length: 0\r\n\r\n",
	"BYE sip:100@203.0.113.5 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKbye\r\nTo: <sip:100@203.0.113.5>;tag=x\r\n" +
		"From: <sip:a@192.0.2.9>;tag=1\r\nCall-ID: gone\r\nCSeq: 3 BYE\r\nContent-Length: 0\r\n\r\n",
	"INFO sip:100@203.0.113.5 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKinfo\r\nTo: <sip:100@203.0.113.5>;tag=x\r\n" +
		"From: <sip:a@192.0.2.9>;tag=1\r\nCall-ID: info\r\nCSeq: 4 INFO\r\nContent-Type: application/dtmf-relay\r\n" +
		"Content-Length: 24\r\n\r\nSignal=5\r\nDuration=160\r\n",
	"REGISTER sip:203.0.113.5 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKreg\r\nTo: <sip:a@203.0.113.5>\r\n" +
		"From: <sip:a@203.0.113.5>;tag=1\r\nCall-ID: reg\r\nCSeq: 1 REGISTER\r\nContact: <sip:a@192.0.2.9>\r\nExpires: 3600\r\n" +
		"Authorization: Digest username=\"u\", realm=\"mediagate\", nonce=\"n\", uri=\"sip:203.0.113.5\", response=\"00\"\r\nContent-Length: 0\r\n\r\n",
	"CANCEL sip:100@203.0.113.5 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKc\r\nTo: <sip:100@203.0.113.5>\r\n" +
		"From: <sip:a@192.0.2.9>;tag=1\r\nCall-ID: c\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n",
	"ACK sip:100@203.0.113.5 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKa\r\nTo: <sip:100@203.0.113.5>;tag=x\r\n" +
		"From: <sip:a@192.0.2.9>;tag=1\r\nCall-ID: a\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
	// No Call-ID: sipgo's transaction layer needs only Via and CSeq, so
	// this reaches onInvite (refuse dereferenced the missing Call-ID).
	"INVITE sip:100@203.0.113.5 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKnoid\r\nTo: <sip:100@203.0.113.5>\r\n" +
		"From: <sip:a@192.0.2.9>;tag=1\r\nCSeq: 1 INVITE\r\nContact: <sip:a@192.0.2.9>\r\nContent-Length: 0\r\n\r\n",
}

// rfc4475Seeds are torture messages of RFC 4475 (../shared/testdata), also
// committed under testdata/fuzz/FuzzRequest.
var rfc4475Seeds = []string{"wsinv.sip", "esc01.sip", "lwsdisp.sip", "longreq.sip", "dblreq.sip",
	"badinv01.sip", "mpart01.sip", "unksm2.sip", "zeromf.sip", "regaut01.sip"}

// FuzzRequest feeds raw datagrams through sipgo's parser to the request
// handlers, as the server would, on a UA without sockets: once admitting
// everything, once behind a trunk that challenges (digest). Properties:
// nothing panics; an ACK is never answered; every other request gets
// exactly one final response, after at most provisional ones; every
// response has a status of 100–699, echoes the request's Call-ID and
// CSeq, and ends its status line in our code and a one-line reason.
// Requests without Via or CSeq are left out: sipgo's transaction layer
// answers them 400 itself.
func FuzzRequest(f *testing.F) {
	for _, s := range sipSeeds {
		f.Add([]byte(s))
	}
	for _, name := range rfc4475Seeds {
		if b, err := os.ReadFile(filepath.Join("..", "..", "shared", "testdata", "rfc4475", name)); err == nil {
			f.Add(b)
		}
	}
	open := offlineUA(f)
	gated := offlineUA(f, Trunk{Name: "carrier", Username: "u", Password: "p"})
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := sip.ParseMessage(data)
		if err != nil {
			return
		}
		req, ok := msg.(*sip.Request)
		if !ok || req.Via() == nil || req.CSeq() == nil {
			return // sipgo's transaction layer answers these itself (400)
		}
		for _, u := range []*UA{open, gated} {
			r := req.Clone()
			r.SetSource("192.0.2.9:5060")
			tx := newFuzzTx()
			u.dispatch(r, tx)
			u.wg.Wait()
			checkAnswers(t, u == gated, r, tx.responses())
		}
	})
}

// checkAnswers checks the responses a request got (see FuzzRequest).
func checkAnswers(t *testing.T, gated bool, req *sip.Request, res []*sip.Response) {
	t.Helper()
	if req.IsAck() {
		if len(res) > 0 {
			t.Fatalf("ACK answered with %d", res[0].StatusCode)
		}
		return
	}
	finals := 0
	for _, r := range res {
		if r.StatusCode < 100 || r.StatusCode > 699 {
			t.Fatalf("status %d", r.StatusCode)
		}
		if finals > 0 {
			t.Fatalf("%d after a final response", r.StatusCode)
		}
		if r.StatusCode >= 200 {
			finals++
		}
		if id := req.CallID(); id != nil && (r.CallID() == nil || r.CallID().Value() != id.Value()) {
			t.Fatalf("%d does not echo Call-ID %q", r.StatusCode, id.Value())
		}
		if cs := req.CSeq(); cs != nil && (r.CSeq() == nil || r.CSeq().Value() != cs.Value()) {
			t.Fatalf("%d does not echo CSeq %q", r.StatusCode, cs.Value())
		}
		// Code and reason are ours; the version and the headers echo the
		// request's as sipgo prints them.
		line, _, _ := strings.Cut(r.String(), "\r\n")
		if want := fmt.Sprintf(" %d %s", r.StatusCode, r.Reason); !strings.HasSuffix(line, want) ||
			r.Reason == "" || strings.ContainsAny(r.Reason, "\r\n") {
			t.Fatalf("status line %q, want it to end in %q", line, want)
		}
	}
	if finals != 1 {
		t.Fatalf("%s got %d final responses (gated %v)", req.Method, finals, gated)
	}
}

// TestOfflineUA checks that the seeds of FuzzRequest reach the handlers
// they are meant for: each gets the final response its handler gives.
func TestOfflineUA(t *testing.T) {
	want := []int{486, 481, 420, 415, 200, 481, 481, 405, 481, 0, 400}
	u := offlineUA(t)
	for i, s := range sipSeeds {
		msg, err := sip.ParseMessage([]byte(s))
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		req := msg.(*sip.Request)
		tx := newFuzzTx()
		u.dispatch(req, tx)
		u.wg.Wait()
		got := 0
		if res := tx.responses(); len(res) > 0 {
			got = res[len(res)-1].StatusCode
		}
		if got != want[i] {
			t.Errorf("seed %d (%s): final %d, want %d", i, req.Method, got, want[i])
		}
	}
}
