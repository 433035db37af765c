package privsep

import (
	"bytes"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// cdcSamples returns one message of every kind in the catalogue, with every
// field set.
func cdcSamples() map[Kind]Message {
	route := Route{Interface: "eth0", Destination: netip.MustParsePrefix("10.0.0.0/8"), Gateway: netip.MustParseAddr("192.0.2.1"),
		Source: netip.MustParseAddr("192.0.2.10"), Metric: 100}
	lease := Lease{
		Interface: "eth0", Address: netip.MustParsePrefix("192.0.2.10/24"), Server: netip.MustParseAddr("192.0.2.1"),
		Routers: []netip.Addr{netip.MustParseAddr("192.0.2.1")}, Routes: []Route{route, {Interface: "eth0", Destination: netip.MustParsePrefix("198.51.100.0/24")}},
		DNS: []netip.Addr{netip.MustParseAddr("192.0.2.53")}, Domain: "example.com", Search: []string{"example.com", "lab.example.com"},
		Hostname: "node-1", NTP: []netip.Addr{netip.MustParseAddr("192.0.2.123")}, MTU: 1500,
		LeaseTime: 3600, RenewTime: 1800, RebindTime: 3150, Acquired: 1767268800,
	}
	list := []Message{
		&Hello{Version: ProtocolVersion, Daemon: "dhcp"},
		&Welcome{Version: ProtocolVersion, Config: []byte{0xa1, 0x01, 0xf5}},
		&Reply{Error: "refused: no", Clock: &ClockState{Time: 1767268800123456789, Frequency: -12 << 16, Slewing: 1500, Synced: true, Leap: 1, MaxError: 16000, EstError: 20, Set: true, Offset: -3}},
		&LinkEvent{Index: 2, Name: "eth0", HardwareAddr: []byte{2, 0, 0, 0, 0, 1}, AdminUp: true, Carrier: true, MTU: 1500, Gone: true},
		&LinkUp{Interface: "eth0"},
		&LinkMTU{Interface: "eth0", MTU: 9000},
		&AddrReplace{Interface: "eth0", Address: netip.MustParsePrefix("192.0.2.10/24"), ValidLifetime: 3600, PreferredLifetime: 1800},
		&AddrRemove{Interface: "eth0", Address: netip.MustParsePrefix("192.0.2.10/24")},
		&RouteReplace{Route: route},
		&RouteRemove{Route: route},
		&ResolvConf{Nameservers: []netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("2001:db8::53")}, Domain: "example.com", Search: []string{"example.com"}},
		&NTPServers{Servers: []netip.Addr{netip.MustParseAddr("192.0.2.123"), netip.MustParseAddr("198.51.100.123")}},
		&Hostname{Name: "node-1"},
		&LeaseSave{Lease: lease},
		&LeaseDrop{Interface: "eth0"},
		&ClockRead{},
		&ClockSlew{Offset: -2_500_000},
		&ClockFrequency{Frequency: 37 << 16},
		&ClockStep{Offset: 2_500_000_000},
		&ClockStatus{Synced: true, Leap: 2, MaxError: 16000, EstError: 20},
	}
	out := map[Kind]Message{}
	for _, m := range list {
		out[m.Kind()] = m
	}
	return out
}

// cdcCatalogueKinds reads every Kind constant declared in catalogue.go, so
// that a kind added later without a sample here fails the test.
func cdcCatalogueKinds(t *testing.T) []Kind {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "catalogue.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []Kind
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			v := s.(*ast.ValueSpec)
			if id, ok := v.Type.(*ast.Ident); !ok || id.Name != "Kind" {
				continue
			}
			for _, val := range v.Values {
				lit, ok := val.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("Kind constant with a value that is not a string literal: %#v", val)
				}
				s, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				kinds = append(kinds, Kind(s))
			}
		}
	}
	if len(kinds) < 15 {
		t.Fatalf("found only %d kinds in catalogue.go", len(kinds))
	}
	return kinds
}

func TestCatalogueComplete(t *testing.T) {
	samples := cdcSamples()
	kinds := cdcCatalogueKinds(t)
	for _, k := range kinds {
		m := newMessage(k)
		if m == nil {
			t.Errorf("newMessage(%q) = nil", k)
			continue
		}
		if m.Kind() != k {
			t.Errorf("newMessage(%q).Kind() = %q", k, m.Kind())
		}
		if samples[k] == nil {
			t.Errorf("no sample of %q in this test", k)
		}
	}
	if len(samples) != len(kinds) {
		t.Errorf("%d samples for %d kinds", len(samples), len(kinds))
	}
	conversation := map[Kind]bool{KindHello: true, KindWelcome: true, KindReply: true, KindLink: true}
	for _, k := range kinds {
		if IsOperation(k) == conversation[k] {
			t.Errorf("IsOperation(%q) = %v", k, IsOperation(k))
		}
	}
	for _, k := range []Kind{"", "reboot", "link.up ", "LINK.UP"} {
		if IsOperation(k) || newMessage(k) != nil {
			t.Errorf("%q is taken for a catalogue kind", k)
		}
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for k, m := range cdcSamples() {
		t.Run(string(k), func(t *testing.T) {
			for _, id := range []uint64{0, 1, 1 << 40, ^uint64(0)} {
				b, err := Marshal(id, m)
				if err != nil {
					t.Fatal(err)
				}
				gotID, got, err := Unmarshal(b)
				if err != nil {
					t.Fatal(err)
				}
				if gotID != id || !reflect.DeepEqual(got, m) {
					t.Errorf("round trip of %d/%+v gave %d/%+v", id, m, gotID, got)
				}
				// Canonical: encoding again gives the same bytes.
				if b2, _ := Marshal(id, got); !bytes.Equal(b, b2) {
					t.Error("encoding is not deterministic")
				}
			}
			// The zero value survives too.
			zero := newMessage(k)
			b, err := Marshal(3, zero)
			if err != nil {
				t.Fatal(err)
			}
			_, got, err := Unmarshal(b)
			if err != nil {
				t.Fatalf("zero %s: %v", k, err)
			}
			if !reflect.DeepEqual(got, zero) {
				t.Errorf("zero %s came back as %+v", k, got)
			}
		})
	}
}

// A tiny CBOR writer, to say exactly which bytes a hostile peer sends.
func cdcHead(major byte, n uint64) []byte {
	switch {
	case n < 24:
		return []byte{major<<5 | byte(n)}
	case n < 1<<8:
		return []byte{major<<5 | 24, byte(n)}
	case n < 1<<16:
		return []byte{major<<5 | 25, byte(n >> 8), byte(n)}
	default:
		return []byte{major<<5 | 27, byte(n >> 56), byte(n >> 48), byte(n >> 40), byte(n >> 32), byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	}
}

func cdcUint(n uint64) []byte  { return cdcHead(0, n) }
func cdcText(s string) []byte  { return append(cdcHead(3, uint64(len(s))), s...) }
func cdcBytes(b []byte) []byte { return append(cdcHead(2, uint64(len(b))), b...) }
func cdcMap(kv ...[]byte) []byte {
	return cdcCat(append([][]byte{cdcHead(5, uint64(len(kv)/2))}, kv...)...)
}
func cdcArray(items ...[]byte) []byte {
	return cdcCat(append([][]byte{cdcHead(4, uint64(len(items)))}, items...)...)
}

func cdcCat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// cdcEnv is an envelope of the given kind and raw body.
func cdcEnv(kind string, body []byte) []byte {
	return cdcMap(cdcUint(1), cdcText(kind), cdcUint(2), cdcUint(7), cdcUint(3), cdcBytes(body))
}

func TestCodecStrict(t *testing.T) {
	hello := cdcMap(cdcUint(1), cdcUint(1), cdcUint(2), cdcText("dhcp"))
	// The hand-made hello is what Marshal makes: the writer is right.
	if b, _ := Marshal(7, &Hello{Version: 1, Daemon: "dhcp"}); !bytes.Equal(b, cdcEnv("hello", hello)) {
		t.Fatalf("hand-made envelope %x differs from Marshal's %x", cdcEnv("hello", hello), b)
	}
	if _, m, err := Unmarshal(cdcEnv("hello", hello)); err != nil || m.(*Hello).Daemon != "dhcp" {
		t.Fatalf("hand-made hello refused: %v", err)
	}
	var nameservers [][]byte
	for range 1025 {
		nameservers = append(nameservers, cdcBytes([]byte{192, 0, 2, 1}))
	}

	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"not a map", cdcUint(1)},
		{"empty map: no kind", cdcMap()},
		{"unknown kind", cdcEnv("reboot", hello)},
		{"empty kind", cdcEnv("", hello)},
		{"unknown field in the envelope", cdcMap(cdcUint(1), cdcText("hello"), cdcUint(2), cdcUint(7), cdcUint(3), cdcBytes(hello), cdcUint(4), cdcUint(0))},
		{"text key in the envelope", cdcMap(cdcText("Kind"), cdcText("hello"), cdcUint(2), cdcUint(7), cdcUint(3), cdcBytes(hello))},
		{"unknown field in the body", cdcEnv("hello", cdcMap(cdcUint(1), cdcUint(1), cdcUint(2), cdcText("dhcp"), cdcUint(9), []byte{0xf5}))},
		{"unknown field in a nested struct", cdcEnv("route.replace", cdcMap(cdcUint(1), cdcMap(cdcUint(1), cdcText("eth0"), cdcUint(99), cdcUint(1))))},
		{"duplicate key in the envelope", cdcMap(cdcUint(1), cdcText("hello"), cdcUint(1), cdcText("hello"), cdcUint(2), cdcUint(7), cdcUint(3), cdcBytes(hello))},
		{"duplicate key in the body", cdcEnv("hello", cdcMap(cdcUint(1), cdcUint(1), cdcUint(2), cdcText("dhcp"), cdcUint(2), cdcText("ntp")))},
		{"trailing bytes after the envelope", append(cdcEnv("hello", hello), 0x00)},
		{"trailing bytes in the body", cdcEnv("hello", append(bytes.Clone(hello), 0xf6))},
		{"a second envelope", append(cdcEnv("hello", hello), cdcEnv("hello", hello)...)},
		{"truncated envelope", cdcEnv("hello", hello)[:10]},
		{"truncated body", cdcEnv("hello", hello[:len(hello)-2])},
		{"kind is a number", cdcMap(cdcUint(1), cdcUint(5), cdcUint(2), cdcUint(7), cdcUint(3), cdcBytes(hello))},
		{"ID is text", cdcMap(cdcUint(1), cdcText("hello"), cdcUint(2), cdcText("7"), cdcUint(3), cdcBytes(hello))},
		{"ID is negative", cdcMap(cdcUint(1), cdcText("hello"), cdcUint(2), cdcHead(1, 0), cdcUint(3), cdcBytes(hello))},
		{"body is text", cdcMap(cdcUint(1), cdcText("hello"), cdcUint(2), cdcUint(7), cdcUint(3), cdcText(string(hello)))},
		{"body is an inline map", cdcMap(cdcUint(1), cdcText("hello"), cdcUint(2), cdcUint(7), cdcUint(3), hello)},
		{"body is an array", cdcEnv("hello", cdcArray(cdcUint(1), cdcText("dhcp")))},
		{"version is text", cdcEnv("hello", cdcMap(cdcUint(1), cdcText("1"), cdcUint(2), cdcText("dhcp")))},
		{"version is a float", cdcEnv("hello", cdcMap(cdcUint(1), []byte{0xf9, 0x3c, 0x00}, cdcUint(2), cdcText("dhcp")))},
		{"version overflows int", cdcEnv("hello", cdcMap(cdcUint(1), cdcUint(^uint64(0)), cdcUint(2), cdcText("dhcp")))},
		{"daemon is bytes", cdcEnv("hello", cdcMap(cdcUint(1), cdcUint(1), cdcUint(2), cdcBytes([]byte("dhcp"))))},
		{"daemon is not UTF-8", cdcEnv("hello", cdcMap(cdcUint(1), cdcUint(1), cdcUint(2), cdcText("\xff\xfe")))},
		{"bool is a number", cdcEnv("link", cdcMap(cdcUint(4), cdcUint(1)))},
		{"address is a number", cdcEnv("addr.remove", cdcMap(cdcUint(1), cdcText("eth0"), cdcUint(2), cdcUint(1)))},
		{"address of 3 bytes", cdcEnv("addr.remove", cdcMap(cdcUint(1), cdcText("eth0"), cdcUint(2), cdcBytes([]byte{192, 0, 2})))},
		{"MTU is negative beyond int64", cdcEnv("link.mtu", cdcMap(cdcUint(1), cdcText("eth0"), cdcUint(2), cdcHead(1, ^uint64(0))))},
		{"lifetime overflows uint32", cdcEnv("addr.replace", cdcMap(cdcUint(3), cdcUint(1<<32)))},
		{"too many array elements", cdcEnv("file.resolvconf", cdcMap(cdcUint(1), cdcArray(nameservers...)))},
		{"indefinite-length envelope", cdcCat([]byte{0xbf}, cdcUint(1), cdcText("hello"), cdcUint(2), cdcUint(7), cdcUint(3), cdcBytes(hello), []byte{0xff})},
		{"indefinite-length body", cdcEnv("hello", cdcCat([]byte{0xbf}, cdcUint(1), cdcUint(1), cdcUint(2), cdcText("dhcp"), []byte{0xff}))},
		{"indefinite-length byte string", cdcMap(cdcUint(1), cdcText("hello"), cdcUint(2), cdcUint(7), cdcUint(3), cdcCat([]byte{0x5f}, cdcBytes(hello), []byte{0xff}))},
		{"indefinite-length text", cdcMap(cdcUint(1), cdcCat([]byte{0x7f}, cdcText("hel"), cdcText("lo"), []byte{0xff}), cdcUint(2), cdcUint(7), cdcUint(3), cdcBytes(hello))},
		{"indefinite-length array", cdcEnv("file.ntpservers", cdcMap(cdcUint(1), cdcCat([]byte{0x9f}, cdcBytes([]byte{192, 0, 2, 1}), []byte{0xff})))},
		{"tagged envelope", cdcCat(cdcHead(6, 55799), cdcEnv("hello", hello))},
		{"tagged kind", cdcMap(cdcUint(1), cdcCat(cdcHead(6, 0), cdcText("hello")), cdcUint(2), cdcUint(7), cdcUint(3), cdcBytes(hello))},
		{"tagged field in the body", cdcEnv("hello", cdcMap(cdcUint(1), cdcCat(cdcHead(6, 2), cdcBytes([]byte{1})), cdcUint(2), cdcText("dhcp")))},
		{"oversize", make([]byte, MaxMessage+1)},
		{"oversize valid prefix", append(cdcEnv("hello", hello), make([]byte, MaxMessage)...)},
		{"reserved additional info", []byte{0x1c}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, m, err := Unmarshal(tc.b)
			if err == nil {
				t.Fatalf("accepted as %T %+v", m, m)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
			if m != nil {
				t.Errorf("a message came back with the error: %+v", m)
			}
		})
	}
	if _, _, err := Unmarshal(cdcEnv("reboot", hello)); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("unknown kind: %v does not wrap ErrUnknownKind", err)
	}
	// Nothing over the limit is encoded either.
	if _, err := Marshal(1, &Welcome{Config: make([]byte, MaxMessage)}); err == nil {
		t.Error("Marshal encoded an oversize message")
	}
}

// Random and mutated input never panics the decoder.
func TestCodecRandomInput(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 5))
	var seeds [][]byte
	for _, m := range cdcSamples() {
		b, err := Marshal(9, m)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	for i := range 20000 {
		var b []byte
		if i%2 == 0 {
			b = bytes.Clone(seeds[rnd.IntN(len(seeds))])
			for range 1 + rnd.IntN(4) {
				if len(b) > 0 {
					b[rnd.IntN(len(b))] = byte(rnd.Uint32())
				}
			}
			if rnd.IntN(4) == 0 && len(b) > 0 {
				b = b[:rnd.IntN(len(b))]
			}
		} else {
			b = make([]byte, rnd.IntN(64))
			for j := range b {
				b[j] = byte(rnd.Uint32())
			}
		}
		if _, m, err := Unmarshal(b); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("Unmarshal(%x): %v does not wrap ErrMalformed", b, err)
		} else if err == nil && m == nil {
			t.Fatalf("Unmarshal(%x): no message and no error", b)
		}
	}
}

func TestUnmarshalValueStrict(t *testing.T) {
	type cfg struct {
		A int    `cbor:"1,keyasint"`
		B string `cbor:"2,keyasint,omitempty"`
	}
	b, err := MarshalValue(cfg{A: 3, B: "x"})
	if err != nil {
		t.Fatal(err)
	}
	var got cfg
	if err := UnmarshalValue(b, &got); err != nil || got != (cfg{3, "x"}) {
		t.Errorf("UnmarshalValue = %+v, %v", got, err)
	}
	for name, bad := range map[string][]byte{
		"unknown field": cdcMap(cdcUint(1), cdcUint(3), cdcUint(3), cdcUint(1)),
		"duplicate key": cdcMap(cdcUint(1), cdcUint(3), cdcUint(1), cdcUint(4)),
		"trailing":      append(bytes.Clone(b), 0),
		"wrong type":    cdcMap(cdcUint(1), cdcText("3")),
		"oversize":      make([]byte, MaxMessage+1),
	} {
		if err := UnmarshalValue(bad, &got); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

// cdcReceive receives on c, failing the test instead of hanging.
func cdcReceive(t *testing.T, c *Conn) (uint64, Message, []*os.File, error) {
	t.Helper()
	type result struct {
		id    uint64
		m     Message
		files []*os.File
		err   error
	}
	ch := make(chan result, 1)
	go func() {
		id, m, files, err := c.Receive()
		ch <- result{id, m, files, err}
	}()
	select {
	case r := <-ch:
		return r.id, r.m, r.files, r.err
	case <-time.After(5 * time.Second):
		t.Fatal("Receive did not return")
		return 0, nil, nil, nil
	}
}

// cdcRaw writes one datagram on c's socket as a hostile peer would, with
// descriptors when given.
func cdcRaw(t *testing.T, c *Conn, b []byte, fds ...int) {
	t.Helper()
	raw, err := c.File().SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	var serr error
	if err := raw.Write(func(fd uintptr) bool {
		serr = unix.Sendmsg(int(fd), b, oob, nil, 0)
		return serr != unix.EAGAIN
	}); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatalf("sendmsg: %v", serr)
	}
}

// cdcClosedEverywhere checks that r sees end-of-file: every copy of the
// pipe's write end, including any passed over the pipe, has been closed.
func cdcClosedEverywhere(t *testing.T, r *os.File) {
	t.Helper()
	if err := r.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := r.Read(make([]byte, 1))
	if err != io.EOF {
		t.Errorf("read %d bytes, %v: a passed descriptor was left open", n, err)
	}
}

func cdcPair(t *testing.T) (act, eng *Conn) {
	t.Helper()
	act, eng, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { act.Close(); eng.Close() })
	return act, eng
}

func TestPairSendReceive(t *testing.T) {
	act, eng := cdcPair(t)
	for k, m := range cdcSamples() {
		// Either way round: the pipe itself does not know who may say what.
		for _, dir := range [][2]*Conn{{eng, act}, {act, eng}} {
			if err := dir[0].Send(42, m); err != nil {
				t.Fatalf("send %s: %v", k, err)
			}
			id, got, files, err := cdcReceive(t, dir[1])
			if err != nil || id != 42 || len(files) != 0 || !reflect.DeepEqual(got, m) {
				t.Errorf("%s: received %d %+v %v, %v", k, id, got, files, err)
			}
		}
	}
	if err := eng.Send(1, &Welcome{Config: make([]byte, MaxMessage)}); err == nil {
		t.Error("sent an oversize message")
	}
}

func TestPairDescriptors(t *testing.T) {
	t.Run("to the engine", func(t *testing.T) {
		act, eng := cdcPair(t)
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
		if err := act.Send(5, &LinkEvent{Index: 2, Name: "eth0"}, w); err != nil {
			t.Fatal(err)
		}
		id, m, files, err := cdcReceive(t, eng)
		if err != nil || id != 5 || m.Kind() != KindLink || len(files) != 1 {
			t.Fatalf("received %d %v %v, %v", id, m, files, err)
		}
		if _, err := files[0].Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		files[0].Close()
		b := make([]byte, 1)
		if _, err := io.ReadFull(r, b); err != nil || b[0] != 'x' {
			t.Errorf("the passed descriptor does not reach the pipe: %q %v", b, err)
		}
	})
	t.Run("to the actuator are refused and closed", func(t *testing.T) {
		act, eng := cdcPair(t)
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if err := eng.Send(6, &Hello{Version: ProtocolVersion, Daemon: "dhcp"}, w); err != nil {
			t.Fatal(err)
		}
		w.Close()
		_, m, files, err := cdcReceive(t, act)
		if !errors.Is(err, ErrMalformed) || m != nil || files != nil {
			t.Fatalf("received %v %v, %v; want ErrMalformed", m, files, err)
		}
		cdcClosedEverywhere(t, r)
		// Still usable.
		if err := eng.Send(7, &Hello{Version: 1, Daemon: "dhcp"}); err != nil {
			t.Fatal(err)
		}
		if id, m, _, err := cdcReceive(t, act); err != nil || id != 7 || m.Kind() != KindHello {
			t.Errorf("after the refusal: %d %v %v", id, m, err)
		}
	})
	t.Run("with a malformed message are closed", func(t *testing.T) {
		act, eng := cdcPair(t)
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		cdcRaw(t, act, []byte("garbage"), int(w.Fd()))
		w.Close()
		if _, _, files, err := cdcReceive(t, eng); !errors.Is(err, ErrMalformed) || files != nil {
			t.Fatalf("received %v, %v; want ErrMalformed", files, err)
		}
		cdcClosedEverywhere(t, r)
	})
	t.Run("too many for the control buffer are refused and closed", func(t *testing.T) {
		act, eng := cdcPair(t)
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		b, _ := Marshal(8, &LinkUp{Interface: "eth0"})
		fds := make([]int, 12)
		for i := range fds {
			fds[i] = int(w.Fd())
		}
		cdcRaw(t, act, b, fds...)
		w.Close()
		if _, _, files, err := cdcReceive(t, eng); !errors.Is(err, ErrMalformed) || files != nil {
			t.Fatalf("received %v, %v; want ErrMalformed", files, err)
		}
		cdcClosedEverywhere(t, r)
	})
}

func TestPairMalformed(t *testing.T) {
	act, eng := cdcPair(t)
	hello, _ := Marshal(1, &Hello{Version: 1, Daemon: "dhcp"})
	tests := []struct {
		name string
		b    []byte
	}{
		{"oversize datagram", make([]byte, MaxMessage+100)},
		{"oversize datagram with a valid start", append(bytes.Clone(hello), make([]byte, MaxMessage)...)},
		{"garbage", []byte{0xff, 0x00, 0x13}},
		{"unknown kind", cdcEnv("reboot", nil)},
		{"trailing bytes", append(bytes.Clone(hello), 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Both ends refuse it, and stay usable.
			for _, dir := range [][2]*Conn{{eng, act}, {act, eng}} {
				cdcRaw(t, dir[0], tc.b)
				if _, m, _, err := cdcReceive(t, dir[1]); !errors.Is(err, ErrMalformed) || m != nil {
					t.Fatalf("received %v, %v; want ErrMalformed", m, err)
				}
				if err := dir[0].Send(2, &Reply{}); err != nil {
					t.Fatal(err)
				}
				if id, m, _, err := cdcReceive(t, dir[1]); err != nil || id != 2 || m.Kind() != KindReply {
					t.Fatalf("after the malformed message: %d %v %v", id, m, err)
				}
			}
		})
	}
}

func TestPairClose(t *testing.T) {
	for _, closeEngine := range []bool{false, true} {
		act, eng, err := Pair()
		if err != nil {
			t.Fatal(err)
		}
		closed, open := act, eng
		if closeEngine {
			closed, open = eng, act
		}
		// A message sent before the close is still delivered.
		if err := closed.Send(1, &Reply{}); err != nil {
			t.Fatal(err)
		}
		closed.Close()
		if _, m, _, err := cdcReceive(t, open); err != nil || m.Kind() != KindReply {
			t.Fatalf("pending message: %v %v", m, err)
		}
		if _, _, _, err := cdcReceive(t, open); !errors.Is(err, ErrClosed) {
			t.Errorf("Receive after the peer closed: %v, want ErrClosed", err)
		}
		if err := open.Send(2, &Reply{}); err == nil {
			t.Error("Send to a closed peer succeeded")
		}
		open.Close()
	}
}

func TestConnWrap(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	act, err := ActuatorConn(os.NewFile(uintptr(fds[0]), "a"))
	if err != nil {
		t.Fatal(err)
	}
	defer act.Close()
	eng, err := EngineConn(os.NewFile(uintptr(fds[1]), "e"))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if err := eng.Send(1, &Hello{Version: 1, Daemon: "dhcp"}); err != nil {
		t.Fatal(err)
	}
	if _, m, _, err := cdcReceive(t, act); err != nil || m.Kind() != KindHello {
		t.Fatalf("%v %v", m, err)
	}
	// The wrapped actuator end refuses descriptors as Pair's does.
	r, w, _ := os.Pipe()
	defer r.Close()
	if err := eng.Send(2, &Reply{}, w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if _, _, _, err := cdcReceive(t, act); !errors.Is(err, ErrMalformed) {
		t.Errorf("descriptor to a wrapped actuator end: %v", err)
	}

	// Anything but a SOCK_SEQPACKET socket is refused.
	pr, pw, _ := os.Pipe()
	defer pr.Close()
	defer pw.Close()
	if _, err := EngineConn(pr); err == nil {
		t.Error("EngineConn accepted a pipe")
	}
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: "", Net: "unixgram"})
	if err == nil {
		defer l.Close()
		f, _ := l.File()
		defer f.Close()
		if _, err := ActuatorConn(f); err == nil || !strings.Contains(err.Error(), "SOCK_SEQPACKET") {
			t.Errorf("ActuatorConn of a datagram socket: %v", err)
		}
	}
}
