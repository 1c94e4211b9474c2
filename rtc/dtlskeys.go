package rtc

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/prf"
	"github.com/pion/dtls/v3/pkg/protocol/extension"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/srtp/v3"
)

// The room's mix goes to a WHEP listener around pion (see direct.go),
// encrypted with the session's own SRTP keys. pion/webrtc v4 keeps those
// inside its DTLSTransport; what it does give out is the DTLS handshake as
// it happens, through two SettingEngine hooks: the key log (the NSS format
// line "CLIENT_RANDOM <client random> <master secret>") and the server's
// ServerHello (its random, the cipher suite, the SRTP profile of use_srtp).
// With the gateway as the DTLS server, which it is for every browser
// (they offer actpass, RFC 8842 §5.3), those are what the RFC 5705
// exporter needs: RFC 5764 §4.2 derives the SRTP master keys and salts as
// PRF(master secret, "EXTRACTOR-dtls_srtp", client random + server random),
// the PRF's hash being the cipher suite's (RFC 5246 §5).

// exporterLabel is RFC 5764 §4.2's exporter label for DTLS-SRTP.
const exporterLabel = "EXTRACTOR-dtls_srtp"

// keyLogLabel is the key log line of a TLS 1.2 master secret.
const keyLogLabel = "CLIENT_RANDOM"

var errNoKeys = errors.New("rtc: DTLS keys not known")

// dtlsKeys collects one session's DTLS handshake from pion's hooks: it is
// the session's key log writer and ServerHello hook (each PeerConnection
// gets a SettingEngine of its own, Server.sessionAPI). It holds the master
// secret only until srtpKeys has used it, in memory: it is never written
// anywhere (pion calls the hook a key log, for debugging; here it is the
// only way to the keys).
type dtlsKeys struct {
	mu           sync.Mutex
	clientRandom []byte // from the key log
	master       []byte
	serverRandom []byte // from the ServerHello
	suite        dtls.CipherSuiteID
	profile      srtp.ProtectionProfile
	used         bool // srtpKeys ran: the secret is gone
}

// Write takes a key log line (pion writes one per handshake, in one call).
func (k *dtlsKeys) Write(p []byte) (int, error) {
	f := strings.Fields(string(p))
	if len(f) != 3 || f[0] != keyLogLabel {
		return len(p), nil // not a line this needs (a TLS 1.3 label, say)
	}
	cr, err1 := hex.DecodeString(f[1])
	ms, err2 := hex.DecodeString(f[2])
	if err1 != nil || err2 != nil || len(cr) != 32 || len(ms) != 48 {
		return 0, fmt.Errorf("rtc: malformed key log line")
	}
	k.mu.Lock()
	k.clientRandom, k.master = cr, ms
	k.mu.Unlock()
	return len(p), nil
}

// serverHello is the ServerHello hook: it notes the random, the cipher
// suite and the SRTP profile and sends the message unchanged.
func (k *dtlsKeys) serverHello(m handshake.MessageServerHello) handshake.Message {
	r := m.Random.MarshalFixed()
	k.mu.Lock()
	defer k.mu.Unlock()
	k.serverRandom = r[:]
	if m.CipherSuiteID != nil {
		k.suite = dtls.CipherSuiteID(*m.CipherSuiteID)
	}
	for _, e := range m.Extensions {
		if u, ok := e.(*extension.UseSRTP); ok && len(u.ProtectionProfiles) == 1 && len(u.MasterKeyIdentifier) == 0 {
			k.profile = srtp.ProtectionProfile(u.ProtectionProfiles[0])
		}
	}
	return &m
}

// prfHash is the TLS 1.2 PRF hash of a cipher suite: SHA-384 for the
// suites that name it, SHA-256 for every other one pion has (RFC 5246
// §5, RFC 5289 §3).
func prfHash(id dtls.CipherSuiteID) (func() hash.Hash, error) {
	name := dtls.CipherSuiteName(id)
	if !strings.HasPrefix(name, "TLS_") {
		return nil, fmt.Errorf("rtc: unknown DTLS cipher suite %#04x", uint16(id))
	}
	if strings.HasSuffix(name, "_SHA384") {
		return sha512.New384, nil
	}
	return sha256.New, nil
}

// srtpKeys derives the SRTP profile, master key and salt the DTLS server
// protects its packets with (RFC 5764 §4.2: client key, server key, client
// salt, server salt), and forgets the master secret. It fails when the
// handshake was not seen whole (the gateway was the DTLS client, or a hook
// did not run) or named a profile or suite this does not know.
func (k *dtlsKeys) srtpKeys() (profile srtp.ProtectionProfile, key, salt []byte, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.used || k.master == nil || k.serverRandom == nil || k.profile == 0 {
		return 0, nil, nil, errNoKeys
	}
	k.used = true
	master := k.master
	defer clear(master)
	k.master = nil
	keyLen, err := k.profile.KeyLen()
	if err != nil {
		return 0, nil, nil, fmt.Errorf("rtc: SRTP profile %#04x: %w", uint16(k.profile), err)
	}
	saltLen, err := k.profile.SaltLen()
	if err != nil {
		return 0, nil, nil, fmt.Errorf("rtc: SRTP profile %#04x: %w", uint16(k.profile), err)
	}
	h, err := prfHash(k.suite)
	if err != nil {
		return 0, nil, nil, err
	}
	seed := bytes.Join([][]byte{[]byte(exporterLabel), k.clientRandom, k.serverRandom}, nil)
	m, err := prf.PHash(master, seed, 2*(keyLen+saltLen), h)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("rtc: DTLS-SRTP exporter: %w", err)
	}
	key = m[keyLen : 2*keyLen]
	salt = m[2*keyLen+saltLen:]
	return k.profile, key, salt, nil
}
