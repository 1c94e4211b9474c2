package sip

import "github.com/emiago/sipgo/sip"

// sipgo refuses to send any UDP message within 200 bytes of its
// UDPMTUSize (1500), returning ErrUDPMTUCongestion. RFC 3261 §18.1.1 asks
// that of requests only (a client switches to TCP); a response must go
// back over the transport its request came on (§18.2.2), so a response
// that echoes a long request (RFC 4475 §3.1.1.7: ~3.5 kB of Via, From, To
// and Call-ID) would be lost, and with it the transaction: sipgo ends a
// server transaction whose 100 Trying cannot be sent. We let sipgo send
// datagrams up to the UDP maximum instead; IP fragments what exceeds the
// path MTU. The requests mediagate itself sends (BYE, re-INVITE, UPDATE,
// REGISTER) stay far below 1300 bytes.
//
// Set once at package initialisation, before any transport runs: the
// variable is sipgo's, global and unsynchronised.
func init() { sip.UDPMTUSize = maxUDPPayload + 200 }

// maxUDPPayload is the largest IPv4 UDP payload (65535 - 8 - 20).
const maxUDPPayload = 65507
