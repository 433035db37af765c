package dhcp

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

var (
	frmServerMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x67}
	frmServerIP  = netip.MustParseAddr("192.0.2.1")
)

// frmPayload is a real DHCP message, as a server would send it.
func frmPayload(t *testing.T) []byte {
	t.Helper()
	m, err := dhcpv4.New(dhcpv4.WithHwAddr(engMAC), dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer),
		dhcpv4.WithYourIP(engYI.AsSlice()), engOpt(optServerID, frmServerIP.AsSlice()))
	if err != nil {
		t.Fatal(err)
	}
	m.OpCode = dhcpv4.OpcodeBootReply
	return m.ToBytes()
}

// frmBuild serializes the layers of a frame a test describes.
func frmBuild(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	type checksummed interface {
		SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
	}
	for _, l := range ls {
		if c, ok := l.(checksummed); ok {
			for _, n := range ls {
				if nl, ok := n.(gopacket.NetworkLayer); ok {
					if err := c.SetNetworkLayerForChecksum(nl); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(buf.Bytes())
}

// frmServer returns the layers of a server's reply to the client; a test
// changes them before building.
func frmServer() (*layers.Ethernet, *layers.IPv4, *layers.UDP) {
	return &layers.Ethernet{SrcMAC: frmServerMAC, DstMAC: engMAC, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: frmServerIP.AsSlice(), DstIP: engYI.AsSlice()},
		&layers.UDP{SrcPort: serverPort, DstPort: clientPort}
}

func frmChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}

func TestBuildFrame(t *testing.T) {
	payload := frmPayload(t)
	for _, src := range []netip.Addr{{}, netip.IPv4Unspecified(), engYI} {
		t.Run(src.String(), func(t *testing.T) {
			b, err := BuildFrame(engMAC, src, payload)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != 14+20+8+len(payload) {
				t.Fatalf("frame of %d bytes, want %d", len(b), 14+20+8+len(payload))
			}
			p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
			if p.ErrorLayer() != nil {
				t.Fatalf("does not decode: %v", p.ErrorLayer().Error())
			}
			eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			udp := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
			if !bytes.Equal(eth.SrcMAC, engMAC) || eth.DstMAC.String() != "ff:ff:ff:ff:ff:ff" || eth.EthernetType != layers.EthernetTypeIPv4 {
				t.Errorf("ethernet %s → %s type %s", eth.SrcMAC, eth.DstMAC, eth.EthernetType)
			}
			wantSrc := src
			if !wantSrc.IsValid() {
				wantSrc = netip.IPv4Unspecified()
			}
			if got, _ := netip.AddrFromSlice(ip.SrcIP.To4()); got != wantSrc || !ip.DstIP.Equal(net.IPv4bcast) {
				t.Errorf("IP %s → %s, want %s → 255.255.255.255", ip.SrcIP, ip.DstIP, wantSrc)
			}
			if ip.Version != 4 || ip.IHL != 5 || ip.TTL == 0 || ip.Protocol != layers.IPProtocolUDP || int(ip.Length) != 20+8+len(payload) {
				t.Errorf("IP header %+v", ip)
			}
			if ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0 {
				t.Error("IP header says fragment")
			}
			if frmChecksum(b[14:34]) != 0xffff {
				t.Error("bad IP header checksum")
			}
			if udp.SrcPort != clientPort || udp.DstPort != serverPort || int(udp.Length) != 8+len(payload) {
				t.Errorf("UDP %d → %d length %d", udp.SrcPort, udp.DstPort, udp.Length)
			}
			pseudo := frmConcat(ip.SrcIP.To4(), ip.DstIP.To4(), []byte{0, 17}, binary.BigEndian.AppendUint16(nil, udp.Length), b[34:])
			if udp.Checksum == 0 || frmChecksum(pseudo) != 0xffff {
				t.Errorf("bad UDP checksum %#04x", udp.Checksum)
			}
			if !bytes.Equal(udp.Payload, payload) {
				t.Error("payload changed")
			}
		})
	}
}

func frmConcat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// A frame BuildFrame makes, turned around as a server's answer, parses back
// to what went in.
func TestFrameRoundTrip(t *testing.T) {
	payload := frmPayload(t)
	b, err := BuildFrame(frmServerMAC, frmServerIP, payload)
	if err != nil {
		t.Fatal(err)
	}
	// The client does not take its own broadcast for an answer.
	if _, err := ParseFrame(b); err == nil || !strings.Contains(err.Error(), "ports") {
		t.Errorf("ParseFrame of the client's own frame: %v, want a ports error", err)
	}
	// Swap the UDP ports: the checksum stays valid.
	copy(b[34:38], []byte{0, serverPort, 0, clientPort})
	f, err := ParseFrame(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.SrcMAC, frmServerMAC) || f.SrcIP != frmServerIP || !bytes.Equal(f.Payload, payload) {
		t.Errorf("parsed %s %s, payload equal %v", f.SrcMAC, f.SrcIP, bytes.Equal(f.Payload, payload))
	}
	m, err := dhcpv4.FromBytes(f.Payload)
	if err != nil || m.MessageType() != dhcpv4.MessageTypeOffer || !m.YourIPAddr.Equal(engYI.AsSlice()) {
		t.Errorf("payload is not the OFFER: %v %v", m, err)
	}
}

func TestParseFrameAccepts(t *testing.T) {
	payload := frmPayload(t)
	eth, ip, udp := frmServer()
	good := frmBuild(t, eth, ip, udp, gopacket.Payload(payload))
	tests := []struct {
		name string
		b    []byte
		want []byte
	}{
		{"server reply", good, payload},
		{"ethernet padding after the datagram", append(bytes.Clone(good), make([]byte, 30)...), payload},
		{"UDP length shorter than the IP payload", func() []byte {
			b := bytes.Clone(good)
			binary.BigEndian.PutUint16(b[38:], uint16(8+len(payload)-10))
			binary.BigEndian.PutUint16(b[40:], 0) // no checksum: it covered the old length
			return b
		}(), payload[:len(payload)-10]},
		{"empty payload", frmBuild(t, eth, ip, udp), []byte{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParseFrame(tc.b)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(f.Payload, tc.want) || f.SrcIP != frmServerIP || !bytes.Equal(f.SrcMAC, frmServerMAC) {
				t.Errorf("parsed %d payload bytes from %s %s", len(f.Payload), f.SrcMAC, f.SrcIP)
			}
		})
	}
}

func TestParseFrameRefuses(t *testing.T) {
	payload := gopacket.Payload(frmPayload(t))
	type mod func(*layers.Ethernet, *layers.IPv4, *layers.UDP)
	build := func(m mod) []byte {
		eth, ip, udp := frmServer()
		if m != nil {
			m(eth, ip, udp)
		}
		return frmBuild(t, eth, ip, udp, payload)
	}
	patch := func(m mod, off int, v ...byte) []byte {
		b := build(m)
		copy(b[off:], v)
		return b
	}
	tests := []struct {
		name string
		b    []byte
		want string // substring of the error, "" for any
	}{
		{"client to server ports", build(func(_ *layers.Ethernet, _ *layers.IPv4, u *layers.UDP) { u.SrcPort, u.DstPort = clientPort, serverPort }), "ports"},
		{"wrong destination port", build(func(_ *layers.Ethernet, _ *layers.IPv4, u *layers.UDP) { u.DstPort = 69 }), "ports"},
		{"wrong source port", build(func(_ *layers.Ethernet, _ *layers.IPv4, u *layers.UDP) { u.SrcPort = 53 }), "ports"},
		{"more fragments", build(func(_ *layers.Ethernet, ip *layers.IPv4, _ *layers.UDP) { ip.Flags = layers.IPv4MoreFragments }), ""},
		{"fragment offset", build(func(_ *layers.Ethernet, ip *layers.IPv4, _ *layers.UDP) { ip.FragOffset = 185 }), ""},
		{"TCP", frmBuild(t, &layers.Ethernet{SrcMAC: frmServerMAC, DstMAC: engMAC, EthernetType: layers.EthernetTypeIPv4},
			&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: frmServerIP.AsSlice(), DstIP: engYI.AsSlice()},
			&layers.TCP{SrcPort: serverPort, DstPort: clientPort}, payload), "not UDP"},
		{"IPv6", frmBuild(t, &layers.Ethernet{SrcMAC: frmServerMAC, DstMAC: engMAC, EthernetType: layers.EthernetTypeIPv6},
			&layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2")},
			&layers.UDP{SrcPort: serverPort, DstPort: clientPort}, payload), "not IPv4"},
		{"ARP", frmBuild(t, &layers.Ethernet{SrcMAC: frmServerMAC, DstMAC: engMAC, EthernetType: layers.EthernetTypeARP},
			&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
				Operation: layers.ARPReply, SourceHwAddress: frmServerMAC, SourceProtAddress: frmServerIP.AsSlice(),
				DstHwAddress: engMAC, DstProtAddress: engYI.AsSlice()}), "not IPv4"},
		{"VLAN tagged", frmBuild(t, &layers.Ethernet{SrcMAC: frmServerMAC, DstMAC: engMAC, EthernetType: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 7, Type: layers.EthernetTypeIPv4},
			&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: frmServerIP.AsSlice(), DstIP: engYI.AsSlice()},
			&layers.UDP{SrcPort: serverPort, DstPort: clientPort}, payload), "not IPv4"},
		{"IPv4 ethertype, version 6 header", patch(nil, 14, 0x65), ""},
		{"IPv4 ethertype, version 0 header", patch(nil, 14, 0x05), ""},
		{"UDP length beyond the data", func() []byte {
			b := build(nil)
			binary.BigEndian.PutUint16(b[38:], uint16(8+len(payload)+1))
			return b
		}(), "UDP length"},
		{"UDP length 7", patch(nil, 38, 0, 7), ""},
		{"UDP length 0", patch(nil, 38, 0, 0), "UDP length"},
		{"IP header length 4", patch(nil, 14, 0x44), ""},
		{"IP total length 19", patch(nil, 16, 0, 19), ""},
		{"empty", nil, ""},
		{"bad IPv4 header checksum", func() []byte {
			b := build(nil)
			b[24] ^= 0xff
			return b
		}(), "IPv4 header checksum"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParseFrame(tc.b)
			if err == nil {
				t.Fatalf("accepted: %d payload bytes from %s", len(f.Payload), f.SrcIP)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

// Every truncation of a good frame is refused without a panic.
func TestParseFrameTruncated(t *testing.T) {
	eth, ip, udp := frmServer()
	full := frmBuild(t, eth, ip, udp, gopacket.Payload(frmPayload(t)))
	if _, err := ParseFrame(full); err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(full); n++ {
		b := bytes.Clone(full[:n]) // no spare capacity to read into
		if f, err := ParseFrame(b); err == nil {
			t.Errorf("frame cut to %d of %d bytes accepted (%d payload bytes)", n, len(full), len(f.Payload))
		}
	}
}
