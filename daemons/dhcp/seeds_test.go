package dhcp_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/daemons/dhcp"
	"github.com/dyad-project/dyad/internal/fuzztargets"
	"github.com/dyad-project/dyad/internal/testnet"
)

const (
	// A one-shot exchange is a handful of frames, IPv6 chatter of the new
	// link included; anything near this bound is not what we think.
	maxCaptured = 200
	// The socket's receive timeout: how late the reader notices a stop.
	captureTick = 200 * time.Millisecond
	// How long a capture may run at all, should nobody stop it.
	captureLimit = 90 * time.Second
	// The separator FuzzClientExchange splits its input at.
	exchangeSep = "\xfe\xed"
)

// seedDir is relative to this package's directory, where go test runs it.
var seedDir = filepath.Join("..", "..", "fuzz", "testdata", "fuzz")

// TestCaptureFuzzSeeds records a real exchange between dyad-dhcp and each
// server, from the wire, and checks that what the engine's parsers will be
// fed in the field is what they accept. With DYAD_FUZZ_SEEDS=1 it also
// stores the frames as seeds of the fuzz corpora: hand-made seeds miss what
// real servers put in their replies (padding, option order, overloads).
func TestCaptureFuzzSeeds(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind testnet.Kind) {
		n := testnet.NewNet(t)
		o := n.DefaultOptions()
		srv := n.ServerAddr.Addr()
		o.MTU = 1400
		o.Search = []string{"dyad.test", "example.test"}
		o.Hostname = "seeded-host"
		o.NTP = append(o.NTP, netip.MustParseAddr("198.51.100.123"))
		o.Routes = []testnet.StaticRoute{
			{Dst: netip.MustParsePrefix("10.99.0.0/16"), Gateway: srv},
			{Dst: netip.MustParsePrefix("172.16.5.128/25"), Gateway: srv},
			{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: srv},
		}
		testnet.StartServer(t, kind, n, o)
		c := newClient(t, n)

		capt := startCapture(t, n.Client, n.ClientIf)
		out, err := c.oneShot(t, 20)
		frames := capt.stop(t)
		if err != nil {
			t.Fatalf("dyad-dhcp -1: %v\n%s", err, out)
		}

		ex := checkExchange(t, n, frames)
		t.Logf("%s: %d frames captured, %d DHCP frames kept (%d from the client, %d from the server): %s",
			kind, len(frames), len(ex.frames), len(ex.frames)-len(ex.server), len(ex.server), ex.summary())

		if os.Getenv("DYAD_FUZZ_SEEDS") != "1" {
			return
		}
		writeSeeds(t, kind, ex)
	})
}

// kept is a DHCP frame of the capture.
type kept struct {
	frame      []byte
	payload    []byte // the UDP payload, as the test's own decoding finds it
	fromServer bool
	msg        *dhcpv4.DHCPv4
}

type exchange struct {
	frames []kept // client's and server's, in the order seen
	server []kept // the server's alone, in the order seen
}

func (ex exchange) summary() string {
	var s []string
	for _, k := range ex.frames {
		who := "client"
		if k.fromServer {
			who = "server"
		}
		s = append(s, fmt.Sprintf("%s %s (%d bytes)", who, k.msg.MessageType(), len(k.payload)))
	}
	return strings.Join(s, ", ")
}

// checkExchange keeps the DHCP frames of a capture and checks them against
// the engine's parser and the DHCP library.
func checkExchange(t *testing.T, n *testnet.Net, frames [][]byte) exchange {
	t.Helper()
	var ex exchange
	for _, f := range frames {
		payload, sport, dport, ok := udpPayload(f)
		if !ok || !isDHCPPort(sport) && !isDHCPPort(dport) {
			continue
		}
		// By the source MAC, not the ports: a frame with the ports the
		// wrong way round is one of the things to catch.
		k := kept{frame: f, payload: payload, fromServer: bytes.Equal(f[6:12], n.ServerMAC)}
		if !k.fromServer && !bytes.Equal(f[6:12], n.ClientMAC) {
			t.Errorf("DHCP frame from %s, neither the server's %s nor the client's %s", net.HardwareAddr(f[6:12]), n.ServerMAC, n.ClientMAC)
			continue
		}

		fr, err := dhcp.ParseFrame(f)
		switch {
		case k.fromServer && err != nil:
			t.Errorf("ParseFrame refuses a frame of the server: %v\n% x", err, f)
		case k.fromServer:
			if !bytes.Equal(fr.Payload, payload) || !bytes.Equal(fr.SrcMAC, n.ServerMAC) || fr.SrcIP != n.ServerAddr.Addr() {
				t.Errorf("ParseFrame read the server's frame as from %s %s with %d payload bytes, want %s %s with %d",
					fr.SrcMAC, fr.SrcIP, len(fr.Payload), n.ServerMAC, n.ServerAddr.Addr(), len(payload))
			}
		// ParseFrame is the receive path's: it takes server-to-client
		// frames only, by design. The client's own must fail on the ports
		// and nothing earlier, which shows their headers pass.
		case err == nil:
			t.Errorf("ParseFrame accepts the client's own frame (ports %d->%d)", sport, dport)
		case !strings.Contains(err.Error(), "UDP ports"):
			t.Errorf("ParseFrame refuses the client's frame before its ports: %v\n% x", err, f)
		}

		k.msg, err = dhcpv4.FromBytes(payload)
		if err != nil {
			t.Errorf("dhcpv4.FromBytes refuses a payload of the %s: %v\n% x", who(k), err, payload)
			continue
		}
		ex.frames = append(ex.frames, k)
		if k.fromServer {
			ex.server = append(ex.server, k)
		}
	}

	var offer, ack *dhcpv4.DHCPv4
	for _, k := range ex.server {
		switch k.msg.MessageType() {
		case dhcpv4.MessageTypeOffer:
			offer = firstOf(offer, k.msg)
		case dhcpv4.MessageTypeAck:
			ack = firstOf(ack, k.msg)
		}
	}
	if ack == nil {
		t.Fatalf("no DHCPACK from the server among %d frames: %s", len(frames), ex.summary())
	}
	if offer == nil && !ack.Options.Has(dhcpv4.OptionRapidCommit) {
		t.Fatalf("neither a DHCPOFFER nor a rapid-commit DHCPACK from the server: %s", ex.summary())
	}
	// The point of capturing is rich seeds: make sure the reply carries
	// what the server was told to send.
	for _, code := range []dhcpv4.OptionCode{
		dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer, dhcpv4.OptionHostName,
		dhcpv4.OptionDomainName, dhcpv4.OptionInterfaceMTU, dhcpv4.OptionNTPServers,
		dhcpv4.OptionDNSDomainSearchList, dhcpv4.OptionClasslessStaticRoute,
	} {
		if !ack.Options.Has(code) {
			t.Errorf("the DHCPACK lacks %s:\n%s", code, ack.Summary())
		}
	}
	return ex
}

func firstOf(a, b *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	if a != nil {
		return a
	}
	return b
}

func who(k kept) string {
	if k.fromServer {
		return "server"
	}
	return "client"
}

func isDHCPPort(p uint16) bool { return p == 67 || p == 68 }

// udpPayload decodes an Ethernet/IPv4/UDP frame independently of
// ParseFrame, so that what ParseFrame refuses is still seen and reported.
func udpPayload(f []byte) (payload []byte, sport, dport uint16, ok bool) {
	if len(f) < 14+20 || be16(f[12:14]) != 0x0800 {
		return nil, 0, 0, false
	}
	ip := f[14:]
	ihl := int(ip[0]&0x0f) * 4
	total := int(be16(ip[2:4]))
	if ip[0]>>4 != 4 || ip[9] != 17 || ihl < 20 || total < ihl+8 || total > len(ip) {
		return nil, 0, 0, false
	}
	udp := ip[ihl:total]
	ulen := int(be16(udp[4:6]))
	if ulen < 8 || ulen > len(udp) {
		return nil, 0, 0, false
	}
	return udp[8:ulen], be16(udp[0:2]), be16(udp[2:4]), true
}

// capture is a packet socket on one interface of a test namespace, read by
// a goroutine until stopped.
type capture struct {
	stopc chan struct{}
	done  chan struct{}
	// Written by the reader alone, read after done.
	frames [][]byte
	err    error
}

// startCapture opens the socket before the client runs, so that its first
// DISCOVER is not missed.
func startCapture(t *testing.T, ns, ifname string) *capture {
	t.Helper()
	fd, err := packetSocketIn(ns, ifname)
	if err != nil {
		t.Fatalf("capture on %s in %s: %v", ifname, ns, err)
	}
	c := &capture{stopc: make(chan struct{}), done: make(chan struct{})}
	go c.read(fd)
	// Should the test fail before stop, the reader still ends and the
	// socket is still closed.
	t.Cleanup(func() { c.halt() })
	return c
}

func (c *capture) halt() {
	select {
	case <-c.stopc:
	default:
		close(c.stopc)
	}
	<-c.done // within captureTick: the socket's receive timeout
}

// stop ends the capture and returns the frames, in the order seen.
func (c *capture) stop(t *testing.T) [][]byte {
	t.Helper()
	c.halt()
	if c.err != nil {
		t.Fatalf("capture: %v", c.err)
	}
	if len(c.frames) >= maxCaptured {
		t.Fatalf("capture: %d frames or more, the bound: not a single exchange", maxCaptured)
	}
	return c.frames
}

func (c *capture) read(fd int) {
	defer close(c.done)
	defer unix.Close(fd)
	deadline := time.Now().Add(captureLimit)
	buf := make([]byte, 1<<16)
	stopping := false
	for len(c.frames) < maxCaptured && time.Now().Before(deadline) {
		if !stopping {
			select {
			case <-c.stopc:
				// What arrived before the stop is queued: drain it,
				// up to the next timeout.
				stopping = true
			default:
			}
		}
		nr, _, err := unix.Recvfrom(fd, buf, 0)
		switch {
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
			if stopping {
				return
			}
			continue
		case err != nil:
			c.err = err
			return
		}
		c.frames = append(c.frames, bytes.Clone(buf[:nr]))
	}
	if !stopping {
		c.err = fmt.Errorf("no stop within %v or %d frames", captureLimit, maxCaptured)
	}
}

// packetSocketIn opens an AF_PACKET socket bound to ifname in network
// namespace ns. A socket stays in the namespace it was created in, so only
// its creation needs a thread there (see testnet.EnterNamespace).
func packetSocketIn(ns, ifname string) (int, error) {
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := func() (int, error) {
			if err := testnet.EnterNamespace(ns); err != nil {
				return -1, err
			}
			ifi, err := net.InterfaceByName(ifname)
			if err != nil {
				return -1, err
			}
			proto := int(htons(unix.ETH_P_ALL))
			fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
			if err != nil {
				return -1, fmt.Errorf("socket: %w", err)
			}
			tv := unix.NsecToTimeval(captureTick.Nanoseconds())
			if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
				unix.Close(fd)
				return -1, fmt.Errorf("SO_RCVTIMEO: %w", err)
			}
			if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
				unix.Close(fd)
				return -1, fmt.Errorf("bind: %w", err)
			}
			return fd, nil
		}()
		ch <- result{fd, err}
	}()
	r := <-ch
	return r.fd, r.err
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// writeSeeds stores the exchange in the corpora of the fuzz targets.
func writeSeeds(t *testing.T, kind testnet.Kind, ex exchange) {
	t.Helper()
	var exchangeParts [][]byte
	seeds := map[string][][]any{} // target: each seed's arguments
	for _, k := range ex.frames {
		seeds["FuzzParseFrame"] = append(seeds["FuzzParseFrame"], []any{k.frame})
		seeds["FuzzDHCPMessage"] = append(seeds["FuzzDHCPMessage"], []any{k.payload})
		if k.fromServer {
			seeds["FuzzDHCPOptions"] = append(seeds["FuzzDHCPOptions"], []any{k.payload})
			exchangeParts = append(exchangeParts, k.payload)
			if bytes.Contains(k.payload, []byte(exchangeSep)) {
				// FuzzClientExchange will cut this message in two:
				// the seed still runs, only less deep.
				t.Logf("the server's %s contains the separator %q", k.msg.MessageType(), exchangeSep)
			}
		}
	}
	seeds["FuzzClientExchange"] = [][]any{{bytes.Join(exchangeParts, []byte(exchangeSep)), uint64(1)}}

	for _, target := range []string{"FuzzParseFrame", "FuzzDHCPMessage", "FuzzDHCPOptions", "FuzzClientExchange"} {
		dir := filepath.Join(seedDir, target)
		names := map[string]bool{}
		for _, s := range seeds[target] {
			path, err := fuzztargets.WriteSeed(dir, s...)
			if err != nil {
				t.Fatal(err)
			}
			names[path] = true
		}
		t.Logf("%s: wrote %d seeds of %s to %s", kind, len(names), target, dir)
	}
}

// be16 reads a network-order uint16. (encoding/binary cannot be imported
// here: the package's binary function takes its name.)
func be16(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }
