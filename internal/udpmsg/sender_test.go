package udpmsg

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestSender sends from an IPv4 and a dual-stack socket to two receivers
// in turn (the cached sockaddr follows the destination), refuses an IPv6
// destination on the IPv4 socket. (A full send buffer, EAGAIN, cannot be
// made on loopback: it delivers at once and drops what the receiver has
// no room for.)
func TestSender(t *testing.T) {
	for _, network := range []string{"udp4", "udp"} {
		t.Run(network, func(t *testing.T) {
			var s Sender
			if err := s.Init(rawSocket(t, network)); err != nil {
				t.Fatal(err)
			}
			rx := [2]*net.UDPConn{listenUDP4(t), listenUDP4(t)}
			for i := range 6 {
				to := rx[i%2].LocalAddr().(*net.UDPAddr).AddrPort()
				if err := s.Send([]byte{byte(i)}, to); err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
			}
			buf := make([]byte, 16)
			for r := range rx {
				_ = rx[r].SetReadDeadline(time.Now().Add(5 * time.Second))
				for k := range 3 {
					n, err := rx[r].Read(buf)
					if err != nil {
						t.Fatalf("receiver %d, datagram %d: %v", r, k, err)
					}
					if want := byte(2*k + r); n != 1 || buf[0] != want {
						t.Fatalf("receiver %d got %v, want [%d]", r, buf[:n], want)
					}
				}
			}
			err := s.Send([]byte("x"), netip.MustParseAddrPort("[::1]:9"))
			if network == "udp4" && err != ErrFamily {
				t.Fatalf("IPv6 destination on an IPv4 socket: %v, want ErrFamily", err)
			}
		})
	}
}
