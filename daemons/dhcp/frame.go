package dhcp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// The frames of the packet socket. Parsing is ours, with gopacket, rather
// than a DHCP library's raw client: every byte here is untrusted and a short
// frame must be an error, never a panic.

const (
	serverPort = 67
	clientPort = 68
)

// Frame is a DHCP payload received from the link, with where it came from.
type Frame struct {
	SrcMAC  net.HardwareAddr
	SrcIP   netip.Addr
	Payload []byte
}

// ParseFrame decodes an Ethernet frame carrying IPv4/UDP to the client port.
func ParseFrame(b []byte) (Frame, error) {
	var eth layers.Ethernet
	var ip layers.IPv4
	var udp layers.UDP
	var payload gopacket.Payload
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &ip, &udp, &payload)
	parser.IgnoreUnsupported = true
	decoded := make([]gopacket.LayerType, 0, 4)
	if err := parser.DecodeLayers(b, &decoded); err != nil {
		return Frame{}, fmt.Errorf("frame: %w", err)
	}
	if len(decoded) < 3 || decoded[1] != layers.LayerTypeIPv4 || decoded[2] != layers.LayerTypeUDP {
		return Frame{}, errors.New("frame: not IPv4/UDP")
	}
	if ip.Version != 4 {
		return Frame{}, fmt.Errorf("frame: IP version %d in an IPv4 frame", ip.Version)
	}
	if ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0 {
		return Frame{}, errors.New("frame: fragmented datagram")
	}
	if udp.DstPort != clientPort || udp.SrcPort != serverPort {
		return Frame{}, fmt.Errorf("frame: UDP ports %d->%d are not DHCP's", udp.SrcPort, udp.DstPort)
	}
	if int(udp.Length) < 8 || int(udp.Length)-8 > len(udp.Payload) {
		return Frame{}, fmt.Errorf("frame: UDP length %d does not match the %d bytes carried", udp.Length, len(udp.Payload))
	}
	src, ok := netip.AddrFromSlice(ip.SrcIP.To4())
	if !ok {
		return Frame{}, errors.New("frame: bad source address")
	}
	return Frame{SrcMAC: eth.SrcMAC, SrcIP: src, Payload: udp.Payload[:int(udp.Length)-8]}, nil
}

// BuildFrame wraps a DHCP message for broadcast on the link: Ethernet
// broadcast, IPv4 from src (zero before a lease) to 255.255.255.255, UDP
// 68 to 67, with checksums.
func BuildFrame(srcMAC net.HardwareAddr, src netip.Addr, payload []byte) ([]byte, error) {
	if !src.IsValid() {
		src = netip.IPv4Unspecified()
	}
	eth := &layers.Ethernet{
		SrcMAC:       srcMAC,
		DstMAC:       net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		EthernetType: layers.EthernetTypeIPv4,
	}
	ip := &layers.IPv4{
		Version:  4,
		TTL:      64,
		Protocol: layers.IPProtocolUDP,
		SrcIP:    src.AsSlice(),
		DstIP:    net.IPv4bcast.To4(),
		TOS:      0x10, // low delay, as other clients send
	}
	udp := &layers.UDP{SrcPort: clientPort, DstPort: serverPort}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		return nil, fmt.Errorf("frame: %w", err)
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, ip, udp, gopacket.Payload(payload)); err != nil {
		return nil, fmt.Errorf("frame: %w", err)
	}
	return buf.Bytes(), nil
}
