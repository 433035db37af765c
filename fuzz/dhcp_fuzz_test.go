package fuzz

import (
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/dyad-project/dyad/daemons/dhcp"
	"github.com/dyad-project/dyad/privsep"
)

var fuzzMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}

// FuzzParseFrame covers the engine's parser of frames from the packet
// socket: Ethernet, IPv4 and UDP headers as any host on the link may send
// them. It must never panic, and what it accepts must lie inside the frame.
func FuzzParseFrame(f *testing.F) {
	good, _ := dhcp.BuildFrame(fuzzMAC, netip.Addr{}, []byte("payload"))
	f.Add(good)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := dhcp.ParseFrame(b)
		if err != nil {
			return
		}
		if len(fr.Payload) > len(b) || len(fr.SrcMAC) != 6 || !fr.SrcIP.Is4() {
			t.Fatalf("accepted an impossible frame: %d payload bytes of %d", len(fr.Payload), len(b))
		}
	})
}

// reply builds a server message for the seeds.
func reply(t dhcpv4.MessageType, xid dhcpv4.TransactionID, opts ...dhcpv4.Modifier) []byte {
	m, _ := dhcpv4.New(append([]dhcpv4.Modifier{
		dhcpv4.WithTransactionID(xid),
		dhcpv4.WithHwAddr(fuzzMAC),
		dhcpv4.WithMessageType(t),
		func(d *dhcpv4.DHCPv4) { d.OpCode = dhcpv4.OpcodeBootReply },
		dhcpv4.WithYourIP(net.IPv4(192, 0, 2, 10)),
		dhcpv4.WithGeneric(dhcpv4.OptionServerIdentifier, []byte{192, 0, 2, 1}),
		dhcpv4.WithGeneric(dhcpv4.OptionIPAddressLeaseTime, []byte{0, 0, 14, 16}),
		dhcpv4.WithGeneric(dhcpv4.OptionSubnetMask, []byte{255, 255, 255, 0}),
		dhcpv4.WithGeneric(dhcpv4.OptionRouter, []byte{192, 0, 2, 1}),
		dhcpv4.WithGeneric(dhcpv4.OptionDomainNameServer, []byte{192, 0, 2, 53}),
		dhcpv4.WithGeneric(dhcpv4.OptionDNSDomainSearchList, []byte{3, 'l', 'a', 'b', 0, 1, 'x', 0xc0, 0}),
		dhcpv4.WithGeneric(dhcpv4.OptionClasslessStaticRoute, []byte{24, 10, 0, 0, 192, 0, 2, 1, 0, 192, 0, 2, 1}),
	}, opts...)...)
	return m.ToBytes()
}

// FuzzClientExchange covers the DHCP engine's handling of server messages:
// the DHCP codec, the option interpreters (classless routes, search list,
// host name, addresses, times) and the state machine, fed a sequence of
// messages split from the input and timer expiries between them. The
// invariant: no panic, and every host change the engine asks for passes
// the actuator's policy, so nothing outside the grant is ever requested.
func FuzzClientExchange(f *testing.F) {
	f.Add(reply(dhcpv4.MessageTypeOffer, dhcpv4.TransactionID{}), uint64(1))
	f.Add(append(append(reply(dhcpv4.MessageTypeOffer, dhcpv4.TransactionID{}), 0xfe, 0xed), reply(dhcpv4.MessageTypeAck, dhcpv4.TransactionID{})...), uint64(2))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		now := time.Unix(1_700_000_000, 0)
		policy := privsep.Policy{Daemon: "dhcp", Interfaces: []string{"eth0"}, Ops: []privsep.Kind{
			privsep.OpLinkMTU, privsep.OpAddrReplace, privsep.OpAddrRemove, privsep.OpRouteReplace,
			privsep.OpRouteRemove, privsep.OpLeaseSave, privsep.OpLeaseDrop,
		}}.WithDefaultBounds()
		policy.Now = func() time.Time { return now }
		guard := privsep.NewGuard(policy)
		c := dhcp.NewClient(dhcp.ClientConfig{Interface: "eth0", HardwareAddr: fuzzMAC, RapidCommit: seed&1 == 1},
			slog.New(slog.NewTextHandler(io.Discard, nil)), rand.New(rand.NewPCG(seed, 0)), nil)
		c.LinkChanged(now, true)
		var xid dhcpv4.TransactionID // of the exchange in progress
		check := func() {
			for _, a := range c.TakeActions() {
				switch a := a.(type) {
				case dhcp.Send:
					xid = a.Message.TransactionID
				case dhcp.Apply:
					for _, op := range a.Ops {
						err := guard.Check(op)
						if err != nil && !errors.Is(err, privsep.ErrNotHeld) {
							t.Fatalf("the engine asked for %s %+v, which the policy refuses: %v", op.Kind(), op, err)
						}
						guard.Record(op)
					}
					if a.Bind {
						c.Applied(now, nil)
					}
				}
			}
		}
		check()
		for i, chunk := range split(data) {
			if i >= 16 {
				break
			}
			m, err := dhcpv4.FromBytes(chunk)
			if err == nil {
				// Answer the exchange in progress, so the fuzzer gets past
				// the transaction ID check.
				m.TransactionID = xid
				c.HandleMessage(now, m)
				check()
			}
			now = now.Add(time.Duration(seed>>uint(i%8)&0xfff) * time.Second)
			c.HandleTimer(now)
			check()
		}
	})
}

// split cuts data into messages at each 0xfe 0xed pair.
func split(data []byte) [][]byte {
	var out [][]byte
	start := 0
	for i := 0; i+1 < len(data); i++ {
		if data[i] == 0xfe && data[i+1] == 0xed {
			out = append(out, data[start:i])
			start = i + 2
			i++
		}
	}
	return append(out, data[start:])
}
