package dhcp

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/dyad-project/dyad/privsep"
)

func TestParseMask(t *testing.T) {
	tests := []struct {
		in      []byte
		want    int
		wantErr string
	}{
		{[]byte{255, 255, 255, 0}, 24, ""},
		{[]byte{255, 255, 255, 255}, 32, ""},
		{[]byte{255, 255, 255, 254}, 31, ""},
		{[]byte{255, 255, 255, 252}, 30, ""},
		{[]byte{255, 128, 0, 0}, 9, ""},
		{[]byte{255, 0, 0, 0}, 8, ""},
		{[]byte{128, 0, 0, 0}, 1, ""},
		{[]byte{0, 0, 0, 0}, 0, ""},
		{[]byte{255, 0, 255, 0}, 0, "not contiguous"},
		{[]byte{0, 0, 0, 255}, 0, "not contiguous"},
		{[]byte{255, 255, 255, 253}, 0, "not contiguous"},
		{[]byte{127, 255, 255, 255}, 0, "not contiguous"},
		{[]byte{255, 255, 0, 1}, 0, "not contiguous"},
		{nil, 0, "0 bytes"},
		{[]byte{255, 255, 255}, 0, "3 bytes"},
		{[]byte{255, 255, 255, 0, 0}, 0, "5 bytes"},
	}
	for _, tc := range tests {
		got, err := parseMask(tc.in)
		switch {
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("parseMask(%v) = %d, %v; want an error with %q", tc.in, got, err, tc.wantErr)
		case tc.wantErr == "" && (err != nil || got != tc.want):
			t.Errorf("parseMask(%v) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	// Every contiguous mask parses to its length, every other value fails.
	for bits := 0; bits <= 32; bits++ {
		m := uint32(0xffffffff) << (32 - bits)
		if bits == 0 {
			m = 0
		}
		b := []byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}
		if got, err := parseMask(b); err != nil || got != bits {
			t.Errorf("parseMask(/%d) = %d, %v", bits, got, err)
		}
	}
}

func TestClassfulBits(t *testing.T) {
	for _, tc := range []struct {
		a    string
		want int
	}{{"1.2.3.4", 8}, {"127.255.0.1", 8}, {"128.0.0.1", 16}, {"191.255.1.1", 16}, {"192.0.0.1", 24}, {"223.255.255.1", 24}} {
		if got := classfulBits(netip.MustParseAddr(tc.a)); got != tc.want {
			t.Errorf("classfulBits(%s) = %d, want %d", tc.a, got, tc.want)
		}
	}
}

func TestParseClasslessRoutes(t *testing.T) {
	gw := []byte{192, 0, 2, 1}
	r := func(b ...byte) []byte { return append(b, gw...) }
	route := func(p string) privsep.Route {
		return privsep.Route{Destination: netip.MustParsePrefix(p), Gateway: netip.MustParseAddr("192.0.2.1")}
	}
	tests := []struct {
		name    string
		in      []byte
		want    []privsep.Route
		wantErr string
	}{
		// The encodings of RFC 3442 section 3.
		{"RFC 3442: 0", r(0), []privsep.Route{route("0.0.0.0/0")}, ""},
		{"RFC 3442: 10.0.0.0/8", r(8, 10), []privsep.Route{route("10.0.0.0/8")}, ""},
		{"RFC 3442: 10.0.0.0/24", r(24, 10, 0, 0), []privsep.Route{route("10.0.0.0/24")}, ""},
		{"RFC 3442: 10.17.0.0/16", r(16, 10, 17), []privsep.Route{route("10.17.0.0/16")}, ""},
		{"RFC 3442: 10.27.129.0/24", r(24, 10, 27, 129), []privsep.Route{route("10.27.129.0/24")}, ""},
		{"RFC 3442: 10.229.0.128/25", r(25, 10, 229, 0, 128), []privsep.Route{route("10.229.0.128/25")}, ""},
		{"RFC 3442: 10.198.122.47/32", r(32, 10, 198, 122, 47), []privsep.Route{route("10.198.122.47/32")}, ""},
		{"several, in order", slices.Concat(r(16, 10, 17), r(0)), []privsep.Route{route("10.17.0.0/16"), route("0.0.0.0/0")}, ""},
		{"zero gateway is on-link", []byte{24, 198, 51, 100, 0, 0, 0, 0},
			[]privsep.Route{{Destination: netip.MustParsePrefix("198.51.100.0/24")}}, ""},
		{"width 33", r(33, 10, 0, 0, 0, 0), nil, "prefix length 33"},
		{"width 255", r(255, 1, 2, 3, 4), nil, "prefix length 255"},
		{"width 33 after a good route", slices.Concat(r(8, 10), r(33, 1, 2, 3, 4, 5)), nil, "prefix length 33"},
		{"truncated gateway", []byte{8, 10, 192, 0, 2}, nil, "truncated"},
		{"truncated destination", []byte{24, 10, 0}, nil, "truncated"},
		{"width only", []byte{32}, nil, "truncated"},
		{"trailing byte", append(r(8, 10), 0), nil, "truncated"},
		{"empty", nil, nil, "empty"},
		{"host bits past the width", r(7, 11), nil, "beyond its prefix"},
		{"host bits in the last octet", r(25, 10, 229, 0, 129), nil, "beyond its prefix"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseClasslessRoutes(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("got %+v, %v; want an error with %q", got, err, tc.wantErr)
				}
				if got != nil {
					t.Errorf("routes %+v returned with an error", got)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestParseSearchList(t *testing.T) {
	// RFC 3397 section 3: "eng.apple.com." and "marketing.apple.com.".
	rfc := []byte{
		3, 'e', 'n', 'g', 5, 'a', 'p', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0,
		9, 'm', 'a', 'r', 'k', 'e', 't', 'i', 'n', 'g', 0xc0, 0x04,
	}
	label63 := strings.Repeat("a", 63)
	long := func(labels int) []byte { // labels of 63 bytes
		var b []byte
		for range labels {
			b = append(b, 63)
			b = append(b, label63...)
		}
		return append(b, 0)
	}
	tests := []struct {
		name    string
		in      []byte
		want    []string
		wantErr string // "*": any error
	}{
		{"RFC 3397 example", rfc, []string{"eng.apple.com", "marketing.apple.com"}, ""},
		{"single name", []byte{7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0}, []string{"example"}, ""},
		{"empty option", nil, nil, ""},
		{"pointer into the middle of an earlier name", []byte{1, 'a', 1, 'b', 0, 1, 'c', 0xc0, 2}, []string{"a.b", "c.b"}, ""},
		{"pointer to a pointer", []byte{1, 'a', 0, 1, 'b', 0xc0, 0, 1, 'c', 0xc0, 3}, []string{"a", "b.a", "c.b.a"}, ""},
		{"longest name", slices.Concat([]byte{63}, []byte(label63), []byte{63}, []byte(label63), []byte{63}, []byte(label63), []byte{61}, []byte(strings.Repeat("b", 61)), []byte{0}),
			[]string{strings.Join([]string{label63, label63, label63, strings.Repeat("b", 61)}, ".")}, ""},
		{"name over 255 bytes", long(5), nil, "longer than 255"},
		{"pointer loop", []byte{3, 'a', 'b', 'c', 0xc0, 0x00}, nil, "*"},
		{"pointer to itself", []byte{0xc0, 0x00}, nil, "backwards"},
		{"forward pointer", []byte{0xc0, 0x02, 3, 'c', 'o', 'm', 0}, nil, "backwards"},
		{"pointer past the end", []byte{1, 'a', 0, 0xc0, 0x40}, nil, "backwards"},
		{"truncated pointer", []byte{1, 'a', 0, 0xc0}, nil, "truncated pointer"},
		{"label past the end", []byte{5, 'a', 'b'}, nil, "past the end"},
		{"missing terminator", []byte{3, 'c', 'o', 'm'}, nil, "past the end"},
		{"empty name", []byte{0}, nil, "empty name"},
		{"empty name after a good one", []byte{1, 'a', 0, 0}, nil, "empty name"},
		{"reserved label type 0x40", []byte{0x41, 'a', 0}, nil, "reserved"},
		{"reserved label type 0x80", []byte{0x81, 'a', 0}, nil, "reserved"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSearchList(tc.in)
			if tc.wantErr != "" {
				if err == nil || (tc.wantErr != "*" && !strings.Contains(err.Error(), tc.wantErr)) {
					t.Errorf("got %q, %v; want an error with %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestParseAddrs(t *testing.T) {
	got, err := parseAddrs("x", []byte{192, 0, 2, 1, 10, 0, 0, 1})
	if err != nil || !slices.Equal(got, []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("10.0.0.1")}) {
		t.Errorf("parseAddrs = %v, %v", got, err)
	}
	for _, n := range []int{0, 1, 3, 5, 7} {
		if got, err := parseAddrs("x", make([]byte, n)); err == nil {
			t.Errorf("parseAddrs of %d bytes = %v, want an error", n, got)
		}
	}
}

func TestParseScalars(t *testing.T) {
	if v, err := parseUint32("t", []byte{0, 0, 0x0e, 0x10}); err != nil || v != 3600 {
		t.Errorf("parseUint32 = %d, %v", v, err)
	}
	for _, n := range []int{0, 2, 3, 5, 8} {
		if _, err := parseUint32("t", make([]byte, n)); err == nil {
			t.Errorf("parseUint32 of %d bytes accepted", n)
		}
	}
	if v, err := parseMTU([]byte{0x05, 0xdc}); err != nil || v != 1500 {
		t.Errorf("parseMTU = %d, %v", v, err)
	}
	for _, n := range []int{0, 1, 3, 4} {
		if _, err := parseMTU(make([]byte, n)); err == nil {
			t.Errorf("parseMTU of %d bytes accepted", n)
		}
	}
	for in, want := range map[string]string{
		"example.com":         "example.com",
		"example.com\x00":     "example.com",
		"example.com\x00\x00": "example.com",
		"a\x00b":              "a\x00b",
		"\x00":                "",
		"":                    "",
	} {
		if got := parseString([]byte(in)); got != want {
			t.Errorf("parseString(%q) = %q, want %q", in, got, want)
		}
	}
}

// Random bytes never panic the option parsers, and what they accept is
// well-formed.
func TestOptionParsersRandomInput(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 11))
	buf := make([]byte, 300)
	for i := range 50000 {
		n := rnd.IntN(len(buf))
		for j := range n {
			buf[j] = byte(rnd.Uint32())
			// Bias towards plausible lengths and pointers.
			if i%2 == 0 && j%5 == 0 {
				buf[j] = byte(rnd.IntN(40))
			}
		}
		b := buf[:n]
		if routes, err := parseClasslessRoutes(b); err == nil {
			for _, r := range routes {
				if !r.Destination.IsValid() || r.Destination != r.Destination.Masked() || (r.Gateway.IsValid() && r.Gateway.IsUnspecified()) {
					t.Fatalf("parseClasslessRoutes(%x) accepted %+v", b, r)
				}
			}
		}
		if names, err := parseSearchList(b); err == nil {
			for _, name := range names {
				if name == "" || len(name) > 255 {
					t.Fatalf("parseSearchList(%x) accepted %q", b, name)
				}
			}
		}
		parseMask(b)
		parseAddrs("x", b)
	}
}
