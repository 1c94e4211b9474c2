// Package udpmsg reads UDP datagrams in batches without waiting, each with
// its source and the kernel's receive time: one recvmmsg(2) on a
// non-blocking read, for sockets kept out of Go's network poller (a
// call's RTP socket, the load generator's phone legs). Linux, 64-bit.
package udpmsg

import (
	"net/netip"
	"syscall"
	"time"
	"unsafe"
)

// EnableStamps asks the kernel to stamp each datagram fd receives with
// its arrival time (SO_TIMESTAMPNS).
func EnableStamps(fd uintptr) error {
	return syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
}

// Batch holds the buffers of one recvmmsg: up to Len datagrams of at most
// the size given to NewBatch. After Recv returned n, Data, From and Stamp
// describe datagrams 0..n-1 until the next Recv. A Batch allocates only
// in NewBatch and is not safe for concurrent use.
type Batch struct {
	hdrs  []mmsghdr
	iovs  []syscall.Iovec
	bufs  [][]byte
	oobs  [][oobSize]byte
	names []syscall.RawSockaddrAny
}

// oobSize holds one SCM_TIMESTAMPNS control message with room to spare.
const oobSize = 64

// mmsghdr is struct mmsghdr of recvmmsg(2) on 64-bit Linux.
type mmsghdr struct {
	hdr syscall.Msghdr
	len uint32
	_   [4]byte
}

// NewBatch returns the buffers for n datagrams of up to size bytes each.
func NewBatch(n, size int) *Batch {
	b := &Batch{hdrs: make([]mmsghdr, n), iovs: make([]syscall.Iovec, n), bufs: make([][]byte, n),
		oobs: make([][oobSize]byte, n), names: make([]syscall.RawSockaddrAny, n)}
	for i := range n {
		b.bufs[i] = make([]byte, size)
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(size)
		h := &b.hdrs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Iov, h.Iovlen = &b.iovs[i], 1
		h.Control = &b.oobs[i][0]
	}
	return b
}

// Len is how many datagrams one Recv reads at most.
func (b *Batch) Len() int { return len(b.hdrs) }

// Recv reads the datagrams waiting on fd, up to Len, without waiting
// (MSG_DONTWAIT; EINTR is retried): their number, or the error, EAGAIN
// when none waited. Fewer than Len means none more waited.
func (b *Batch) Recv(fd uintptr) (int, error) {
	for i := range b.hdrs { // the kernel shortened them last time
		h := &b.hdrs[i].hdr
		h.Namelen = uint32(syscall.SizeofSockaddrAny)
		h.SetControllen(oobSize)
	}
	for {
		n, _, errno := syscall.Syscall6(syscall.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])),
			uintptr(len(b.hdrs)), syscall.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			return int(n), nil
		case syscall.EINTR:
			continue
		}
		return 0, errno
	}
}

// Data is datagram i's payload.
func (b *Batch) Data(i int) []byte { return b.bufs[i][:b.hdrs[i].len] }

// From is datagram i's source; IPv4-mapped IPv6 addresses come back as
// IPv4.
func (b *Batch) From(i int) netip.AddrPort {
	switch sa := &b.names[i]; sa.Addr.Family {
	case syscall.AF_INET:
		p := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(p.Addr), ntohs(p.Port))
	case syscall.AF_INET6:
		p := (*syscall.RawSockaddrInet6)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom16(p.Addr).Unmap(), ntohs(p.Port))
	}
	return netip.AddrPort{}
}

// Stamp is datagram i's kernel receive time, or false when it carries
// none (EnableStamps not called or refused).
func (b *Batch) Stamp(i int) (time.Time, bool) {
	if int(b.hdrs[i].hdr.Controllen) >= syscall.SizeofCmsghdr+int(unsafe.Sizeof(syscall.Timespec{})) {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&b.oobs[i][0]))
		if h.Level == syscall.SOL_SOCKET && h.Type == syscall.SCM_TIMESTAMPNS {
			ts := (*syscall.Timespec)(unsafe.Pointer(&b.oobs[i][syscall.SizeofCmsghdr]))
			return time.Unix(ts.Sec, ts.Nsec), true
		}
	}
	return time.Time{}, false
}

func ntohs(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}
