package dhcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// The frames of the packet socket: Ethernet, IPv4 and UDP, parsed and built
// here rather than by a DHCP library's raw client, because every byte is
// untrusted and a short frame must be an error, never a panic. The codec is
// our own rather than gopacket's layers package: that package's
// initialisation fills megabyte-sized tables in every process of the
// daemon, which doubled its start-up time and memory for three headers.
// The tests check this codec against gopacket.

const (
	serverPort = 67
	clientPort = 68

	ethHeaderLen  = 14
	ipv4HeaderLen = 20
	udpHeaderLen  = 8
	etherTypeIPv4 = 0x0800
	protoUDP      = 17
)

// Frame is a DHCP payload received from the link, with where it came from.
type Frame struct {
	SrcMAC  net.HardwareAddr
	SrcIP   netip.Addr
	Payload []byte
}

// ParseFrame decodes an Ethernet frame carrying an unfragmented IPv4/UDP
// datagram from the server port to the client port, checking the lengths
// and the IPv4 header checksum.
func ParseFrame(b []byte) (Frame, error) {
	if len(b) < ethHeaderLen {
		return Frame{}, fmt.Errorf("frame: %d bytes is shorter than an Ethernet header", len(b))
	}
	if et := binary.BigEndian.Uint16(b[12:14]); et != etherTypeIPv4 {
		return Frame{}, fmt.Errorf("frame: EtherType %#04x is not IPv4", et)
	}
	ip := b[ethHeaderLen:]
	if len(ip) < ipv4HeaderLen {
		return Frame{}, fmt.Errorf("frame: %d bytes is shorter than an IPv4 header", len(ip))
	}
	if v := ip[0] >> 4; v != 4 {
		return Frame{}, fmt.Errorf("frame: IP version %d in an IPv4 frame", v)
	}
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	switch {
	case ihl < ipv4HeaderLen:
		return Frame{}, fmt.Errorf("frame: IPv4 header length %d", ihl)
	case total < ihl+udpHeaderLen || total > len(ip):
		return Frame{}, fmt.Errorf("frame: IPv4 total length %d does not fit the %d bytes received", total, len(ip))
	case checksum(ip[:ihl], 0) != 0:
		return Frame{}, errors.New("frame: bad IPv4 header checksum")
	case binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0:
		return Frame{}, errors.New("frame: fragmented datagram")
	case ip[9] != protoUDP:
		return Frame{}, fmt.Errorf("frame: IP protocol %d is not UDP", ip[9])
	}
	src := netip.AddrFrom4([4]byte(ip[12:16]))

	udp := ip[ihl:total]
	sport := binary.BigEndian.Uint16(udp[0:2])
	dport := binary.BigEndian.Uint16(udp[2:4])
	ulen := int(binary.BigEndian.Uint16(udp[4:6]))
	switch {
	case sport != serverPort || dport != clientPort:
		return Frame{}, fmt.Errorf("frame: UDP ports %d->%d are not DHCP's", sport, dport)
	case ulen < udpHeaderLen || ulen > len(udp):
		return Frame{}, fmt.Errorf("frame: UDP length %d does not match the %d bytes carried", ulen, len(udp))
	}
	// The UDP checksum is not verified: a frame from a local sender (a
	// veth peer, a virtio guest) reaches a packet socket before the
	// checksum offload has filled it in, as dhcpcd and the kernel's own
	// DHCP client have found. The DHCP layer checks what matters.
	return Frame{
		SrcMAC:  net.HardwareAddr(b[6:12:12]),
		SrcIP:   src,
		Payload: udp[udpHeaderLen:ulen:ulen],
	}, nil
}

// BuildFrame wraps a DHCP message for broadcast on the link: Ethernet
// broadcast, IPv4 from src (zero before a lease) to 255.255.255.255, UDP
// 68 to 67, with checksums.
func BuildFrame(srcMAC net.HardwareAddr, src netip.Addr, payload []byte) ([]byte, error) {
	return buildFrame(srcMAC, broadcastMAC, src, netip.AddrFrom4([4]byte{255, 255, 255, 255}), payload)
}

var broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// BuildUnicastFrame wraps a DHCP message for one server: to dst at the
// next hop dstMAC (the server, or the relay that forwarded its reply).
func BuildUnicastFrame(srcMAC, dstMAC net.HardwareAddr, src, dst netip.Addr, payload []byte) ([]byte, error) {
	if len(dstMAC) != 6 {
		return nil, fmt.Errorf("frame: hardware address %s is not Ethernet's", dstMAC)
	}
	return buildFrame(srcMAC, dstMAC, src, dst, payload)
}

func buildFrame(srcMAC, dstMAC net.HardwareAddr, src, dst netip.Addr, payload []byte) ([]byte, error) {
	if len(srcMAC) != 6 {
		return nil, fmt.Errorf("frame: hardware address %s is not Ethernet's", srcMAC)
	}
	if !src.IsValid() {
		src = netip.IPv4Unspecified()
	}
	if !src.Is4() || !dst.Is4() {
		return nil, fmt.Errorf("frame: %s to %s is not IPv4", src, dst)
	}
	ulen := udpHeaderLen + len(payload)
	total := ipv4HeaderLen + ulen
	if total > 0xffff {
		return nil, fmt.Errorf("frame: %d-byte payload is too long", len(payload))
	}
	b := make([]byte, ethHeaderLen+total)
	copy(b[0:6], dstMAC)
	copy(b[6:12], srcMAC)
	binary.BigEndian.PutUint16(b[12:14], etherTypeIPv4)

	ip := b[ethHeaderLen:]
	ip[0] = 0x45 // version 4, 20-byte header
	ip[1] = 0x10 // low delay, as other clients send
	binary.BigEndian.PutUint16(ip[2:4], uint16(total))
	ip[8] = 64 // TTL
	ip[9] = protoUDP
	s4, d4 := src.As4(), dst.As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	binary.BigEndian.PutUint16(ip[10:12], checksum(ip[:ipv4HeaderLen], 0))

	udp := ip[ipv4HeaderLen:]
	binary.BigEndian.PutUint16(udp[0:2], clientPort)
	binary.BigEndian.PutUint16(udp[2:4], serverPort)
	binary.BigEndian.PutUint16(udp[4:6], uint16(ulen))
	copy(udp[udpHeaderLen:], payload)
	sum := checksum(udp, pseudoHeaderSum(src, dst, ulen))
	if sum == 0 {
		sum = 0xffff // zero means "no checksum" in UDP
	}
	binary.BigEndian.PutUint16(udp[6:8], sum)
	return b, nil
}

// pseudoHeaderSum is the partial sum of UDP's IPv4 pseudo-header.
func pseudoHeaderSum(src, dst netip.Addr, length int) uint32 {
	s, d := src.As4(), dst.As4()
	sum := uint32(binary.BigEndian.Uint16(s[0:2])) + uint32(binary.BigEndian.Uint16(s[2:4]))
	sum += uint32(binary.BigEndian.Uint16(d[0:2])) + uint32(binary.BigEndian.Uint16(d[2:4]))
	return sum + protoUDP + uint32(length)
}

// checksum is the Internet checksum (RFC 1071) of b, starting from a partial
// sum. Over data that carries its own checksum it returns zero.
func checksum(b []byte, sum uint32) uint16 {
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
