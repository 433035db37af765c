package fuzz

import (
	"bytes"
	"errors"
	"fmt"
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

// parseFrameSeeds are a frame as the client builds it, and nothing; the
// corpus adds frames captured against dnsmasq and kea
// (TestCaptureFuzzSeeds in daemons/dhcp).
func parseFrameSeeds() [][]byte {
	good, _ := dhcp.BuildFrame(fuzzMAC, netip.Addr{}, []byte("payload"))
	return [][]byte{good, {}}
}

func TestParseFrameSeeds(t *testing.T) {
	if err := syncSeeds("FuzzParseFrame", oneArg(parseFrameSeeds())); err != nil {
		t.Fatal(err)
	}
}

// FuzzParseFrame covers the engine's parser of frames from the packet
// socket: Ethernet, IPv4 and UDP headers as any host on the link may send
// them. It must never panic, and what it accepts must lie inside the frame.
//
// Dictionary: dhcp.dict
func FuzzParseFrame(f *testing.F) {
	for _, s := range parseFrameSeeds() {
		f.Add(s)
	}
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

type clientExchangeSeed struct {
	messages []byte
	seed     uint64
}

// clientExchangeSeeds are an OFFER, and an OFFER then an ACK; the corpus
// adds the exchanges captured against dnsmasq and kea.
func clientExchangeSeeds() []clientExchangeSeed {
	offer, ack := reply(dhcpv4.MessageTypeOffer, dhcpv4.TransactionID{}), reply(dhcpv4.MessageTypeAck, dhcpv4.TransactionID{})
	return []clientExchangeSeed{
		{offer, 1},
		{append(append(append([]byte{}, offer...), 0xfe, 0xed), ack...), 2},
	}
}

func TestClientExchangeSeeds(t *testing.T) {
	var seeds [][]any
	for _, s := range clientExchangeSeeds() {
		seeds = append(seeds, []any{s.messages, s.seed})
	}
	if err := syncSeeds("FuzzClientExchange", seeds); err != nil {
		t.Fatal(err)
	}
}

// dhcpGuard is the actuator's guard with the DHCP grant, on the clock now
// points to.
func dhcpGuard(now *time.Time) *privsep.Guard {
	policy := privsep.Policy{Daemon: "dhcp", Interfaces: []string{"eth0"}, Ops: []privsep.Kind{
		privsep.OpLinkMTU, privsep.OpAddrReplace, privsep.OpAddrRemove, privsep.OpRouteReplace,
		privsep.OpRouteRemove, privsep.OpLeaseSave, privsep.OpLeaseDrop,
	}}.WithDefaultBounds()
	policy.Now = func() time.Time { return *now }
	return privsep.NewGuard(policy)
}

// FuzzClientExchange covers the DHCP engine's handling of server messages:
// the DHCP codec, the option interpreters (classless routes, search list,
// host name, addresses, times) and the state machine, fed a sequence of
// messages split from the input and timer expiries between them. The
// invariant: no panic, and every host change the engine asks for passes
// the actuator's policy, so nothing outside the grant is ever requested.
//
// Dictionary: dhcp.dict
func FuzzClientExchange(f *testing.F) {
	for _, s := range clientExchangeSeeds() {
		f.Add(s.messages, s.seed)
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		now := time.Unix(1_700_000_000, 0)
		guard := dhcpGuard(&now)
		c := dhcp.NewClient(dhcp.ClientConfig{Interface: "eth0", HardwareAddr: fuzzMAC, RapidCommit: seed&1 == 1},
			slog.New(slog.NewTextHandler(io.Discard, nil)), rand.New(rand.NewPCG(seed, 0)), nil)
		c.LinkChanged(now, true)
		var xid dhcpv4.TransactionID // of the exchange in progress
		check := func() {
			if err := drive(c, guard, now, &xid); err != nil {
				t.Fatal(err)
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

// drive carries out the engine's actions as the actuator would, after the
// actuator's guard: it returns the first host change the guard refuses
// (the removal of something not held aside, which the actuator skips).
// xid gets the transaction ID of each message the engine sends.
func drive(c *dhcp.Client, guard *privsep.Guard, now time.Time, xid *dhcpv4.TransactionID) error {
	for _, a := range c.TakeActions() {
		switch a := a.(type) {
		case dhcp.Send:
			*xid = a.Message.TransactionID
		case dhcp.Apply:
			for _, op := range a.Ops {
				err := guard.Check(op)
				if err != nil && !errors.Is(err, privsep.ErrNotHeld) {
					return fmt.Errorf("the engine asked for %s %+v, which the policy refuses: %w", op.Kind(), op, err)
				}
				guard.Record(op)
			}
			if a.Bind {
				c.Applied(now, nil)
			}
		}
	}
	return nil
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

// dhcpMessageSeeds are server messages as the seeds above build them; the
// corpus adds every message captured against dnsmasq and kea, the
// client's and the servers'.
func dhcpMessageSeeds() [][]byte {
	return [][]byte{
		reply(dhcpv4.MessageTypeOffer, dhcpv4.TransactionID{1, 2, 3, 4}),
		reply(dhcpv4.MessageTypeAck, dhcpv4.TransactionID{1, 2, 3, 4}),
		reply(dhcpv4.MessageTypeNak, dhcpv4.TransactionID{1, 2, 3, 4}),
	}
}

func TestDHCPMessageSeeds(t *testing.T) {
	if err := syncSeeds("FuzzDHCPMessage", oneArg(dhcpMessageSeeds())); err != nil {
		t.Fatal(err)
	}
}

// FuzzDHCPMessage covers the DHCP message codec (insomniacslk/dhcp's, which
// the engine runs on every UDP payload from the link): decoding, and
// encoding what was decoded, as the engine does when it echoes a server's
// options back. The invariants: no panic; a message that decodes encodes
// to bytes that decode to the same message, and that encoding is stable.
//
// Dictionary: dhcp.dict
func FuzzDHCPMessage(f *testing.F) {
	for _, s := range dhcpMessageSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		once := m.ToBytes()
		m2, err := dhcpv4.FromBytes(once)
		if err != nil {
			t.Fatalf("a decoded message encodes to bytes that do not decode: %v", err)
		}
		if m2.MessageType() != m.MessageType() || m2.TransactionID != m.TransactionID || !m2.YourIPAddr.Equal(m.YourIPAddr) {
			t.Fatalf("the message changed on a round trip: %s, then %s", m.Summary(), m2.Summary())
		}
		if twice := m2.ToBytes(); !bytes.Equal(once, twice) {
			t.Fatalf("the encoding is not stable:\n%x\n%x", once, twice)
		}
	})
}

// dhcpOptionsSeeds are an OFFER and an ACK with every option the
// interpreters read; the corpus adds those of dnsmasq and kea.
func dhcpOptionsSeeds() [][]byte {
	return [][]byte{
		reply(dhcpv4.MessageTypeOffer, dhcpv4.TransactionID{}),
		reply(dhcpv4.MessageTypeAck, dhcpv4.TransactionID{},
			dhcpv4.WithGeneric(dhcpv4.OptionHostName, []byte("node-1")),
			dhcpv4.WithGeneric(dhcpv4.OptionDomainName, []byte("lab.example")),
			dhcpv4.WithGeneric(dhcpv4.OptionNTPServers, []byte{192, 0, 2, 123}),
			dhcpv4.WithGeneric(dhcpv4.OptionInterfaceMTU, []byte{5, 220}),
			dhcpv4.WithGeneric(dhcpv4.OptionRenewTimeValue, []byte{0, 0, 7, 8}),
			dhcpv4.WithGeneric(dhcpv4.OptionRebindingTimeValue, []byte{0, 0, 12, 0})),
	}
}

func TestDHCPOptionsSeeds(t *testing.T) {
	if err := syncSeeds("FuzzDHCPOptions", oneArg(dhcpOptionsSeeds())); err != nil {
		t.Fatal(err)
	}
}

// FuzzDHCPOptions covers the option interpreters on their own, without
// the state machine in the way: subnet mask, routers, classless static
// routes, DNS servers, domain name and search list (RFC 1035 compression),
// host name, NTP servers, MTU and times, as dhcp.InterpretLease applies
// them to an OFFER or ACK from any host on the link. The invariant: no
// panic; a lease it makes is one the actuator accepts to save, and its
// address one the actuator accepts to configure.
//
// Dictionary: dhcp.dict
func FuzzDHCPOptions(f *testing.F) {
	for _, s := range dhcpOptionsSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		now := time.Unix(1_700_000_000, 0)
		l, _, err := dhcp.InterpretLease("eth0", m, now)
		if err != nil {
			return
		}
		guard := dhcpGuard(&now)
		addr := &privsep.AddrReplace{Interface: "eth0", Address: l.Address, ValidLifetime: l.LeaseTime, PreferredLifetime: l.LeaseTime}
		if err := guard.Check(addr); err != nil {
			t.Fatalf("the lease's address %s is one the actuator refuses: %v", l.Address, err)
		}
		if err := guard.Check(&privsep.LeaseSave{Lease: l}); err != nil {
			t.Fatalf("the lease %+v is one the actuator refuses to save: %v", l, err)
		}
	})
}

// actuatorReplySeeds are the datagrams the actuator sends the engine: a
// Welcome with a saved lease, a reply, a link event.
func actuatorReplySeeds() [][]byte {
	lease := privsep.Lease{Interface: "eth0", Address: netip.MustParsePrefix("192.0.2.10/24"), Server: netip.MustParseAddr("192.0.2.1"),
		Routers: []netip.Addr{netip.MustParseAddr("192.0.2.1")}, LeaseTime: 3600, RenewTime: 1800, RebindTime: 3150, Acquired: 1_700_000_000}
	cfg, _ := privsep.MarshalValue(dhcp.EngineConfig{Leases: []privsep.Lease{lease}, Resolv: true,
		Installed: map[string]netip.Prefix{"eth0": lease.Address}})
	var seeds [][]byte
	for _, m := range []privsep.Message{
		&privsep.Welcome{Version: privsep.ProtocolVersion, Config: cfg},
		&privsep.Reply{Error: "refused"},
		&privsep.LinkEvent{Index: 2, Name: "eth0", HardwareAddr: fuzzMAC, AdminUp: true, Carrier: true, MTU: 1500},
	} {
		if b, err := privsep.Marshal(1, m); err == nil {
			seeds = append(seeds, b)
		}
	}
	return seeds
}

func TestActuatorReplySeeds(t *testing.T) {
	if err := syncSeeds("FuzzActuatorReply", oneArg(actuatorReplySeeds())); err != nil {
		t.Fatal(err)
	}
}

// FuzzActuatorReply covers the engine's decoder of what the actuator
// sends: the typed pipe's codec, the configuration in the Welcome (leases
// saved before a restart and the addresses held among them), and the
// engine's start from a saved lease (INIT-REBOOT, or adopting an address
// still held). The actuator is trusted, but its datagrams are bytes the
// engine parses. The invariants: no panic; a malformed datagram is
// refused as malformed; what the engine asks for from a saved lease
// passes the actuator's policy.
func FuzzActuatorReply(f *testing.F) {
	for _, s := range actuatorReplySeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, m, err := privsep.Unmarshal(b)
		if err != nil {
			if !errors.Is(err, privsep.ErrMalformed) {
				t.Fatalf("decode error %v does not wrap ErrMalformed", err)
			}
			return
		}
		w, ok := m.(*privsep.Welcome)
		if !ok {
			return
		}
		var cfg dhcp.EngineConfig
		if err := privsep.UnmarshalValue(w.Config, &cfg); err != nil {
			return
		}
		now := time.Unix(1_700_000_000, 0)
		for i, l := range cfg.Leases {
			if i >= 4 {
				break
			}
			guard := dhcpGuard(&now)
			c := dhcp.NewClient(dhcp.ClientConfig{Interface: "eth0", HardwareAddr: fuzzMAC, RouteMetric: cfg.RouteMetric},
				slog.New(slog.NewTextHandler(io.Discard, nil)), rand.New(rand.NewPCG(uint64(i), 0)), &l)
			// As the actuator and the engine do at a restart: the
			// actuator holds the saved lease, and the address where
			// the Welcome says it is still installed.
			guard.Record(&privsep.LeaseSave{Lease: l})
			if l.Interface == "eth0" && cfg.Installed["eth0"] == l.Address {
				guard.Record(&privsep.AddrReplace{Interface: "eth0", Address: l.Address})
				c.HoldsSaved()
			}
			c.LinkChanged(now, true)
			var xid dhcpv4.TransactionID
			for step := range 4 {
				if err := drive(c, guard, now, &xid); err != nil {
					t.Fatalf("from saved lease %d, step %d: %v", i, step, err)
				}
				now = now.Add(time.Duration(step+1) * 10 * time.Second)
				c.HandleTimer(now)
			}
		}
	})
}
