package backend

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/dyad-project/dyad/privsep"
)

func addrs(ss ...string) []netip.Addr {
	var as []netip.Addr
	for _, s := range ss {
		as = append(as, netip.MustParseAddr(s))
	}
	return as
}

func TestRenderResolvConf(t *testing.T) {
	const head = "# Written by dyad-dhcp; changes will be overwritten.\n"
	tests := []struct {
		name   string
		rc     privsep.ResolvConf
		writer string
		want   string // "" when an error is expected
	}{
		{
			name:   "full",
			rc:     privsep.ResolvConf{Nameservers: addrs("192.0.2.53", "2001:db8::53"), Domain: "example.com", Search: []string{"example.com", "corp.example"}},
			writer: "dyad-dhcp",
			want:   head + "domain example.com\nsearch example.com corp.example\nnameserver 192.0.2.53\nnameserver 2001:db8::53\n",
		},
		{
			name:   "nameservers only",
			rc:     privsep.ResolvConf{Nameservers: addrs("192.0.2.53")},
			writer: "dyad-dhcp",
			want:   head + "nameserver 192.0.2.53\n",
		},
		{
			name:   "empty",
			writer: "dyad-dhcp",
			want:   head,
		},
		{
			name:   "link-local with zone",
			rc:     privsep.ResolvConf{Nameservers: addrs("fe80::1%eth0")},
			writer: "dyad-dhcp",
			want:   head + "nameserver fe80::1%eth0\n",
		},
		{name: "newline in domain", rc: privsep.ResolvConf{Domain: "example.com\nnameserver 203.0.113.66"}, writer: "dyad-dhcp"},
		{name: "carriage return in domain", rc: privsep.ResolvConf{Domain: "example.com\r"}, writer: "dyad-dhcp"},
		{name: "newline in search", rc: privsep.ResolvConf{Search: []string{"a.example", "b.example\noptions ndots:15"}}, writer: "dyad-dhcp"},
		{name: "space in search domain", rc: privsep.ResolvConf{Search: []string{"a.example b.example"}}, writer: "dyad-dhcp"},
		{name: "empty search domain", rc: privsep.ResolvConf{Search: []string{""}}, writer: "dyad-dhcp"},
		{name: "NUL in domain", rc: privsep.ResolvConf{Domain: "example.com\x00"}, writer: "dyad-dhcp"},
		{name: "zero address", rc: privsep.ResolvConf{Nameservers: []netip.Addr{{}}}, writer: "dyad-dhcp"},
		{name: "newline in zone", rc: privsep.ResolvConf{Nameservers: addrs("fe80::1%eth0\nsearch evil")}, writer: "dyad-dhcp"},
		{name: "newline in writer", writer: "dyad-dhcp\nnameserver 203.0.113.66"},
		{name: "empty writer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RenderResolvConf(tt.rc, tt.writer)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("rendered %q, want an error", got)
				}
				if !strings.HasPrefix(err.Error(), "backend: resolv.conf: ") {
					t.Errorf("error %q lacks context", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestRenderNTPServers(t *testing.T) {
	const head = "# Written by dyad-dhcp; changes will be overwritten.\n"
	tests := []struct {
		name   string
		s      privsep.NTPServers
		writer string
		want   string // "" when an error is expected
	}{
		{"two", privsep.NTPServers{Servers: addrs("192.0.2.123", "2001:db8::123")}, "dyad-dhcp", head + "192.0.2.123\n2001:db8::123\n"},
		{"none", privsep.NTPServers{}, "dyad-dhcp", head},
		{"zero address", privsep.NTPServers{Servers: []netip.Addr{{}}}, "dyad-dhcp", ""},
		{"newline in zone", privsep.NTPServers{Servers: addrs("fe80::1%a\nb")}, "dyad-dhcp", ""},
		{"newline in writer", privsep.NTPServers{}, "dyad\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RenderNTPServers(tt.s, tt.writer)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("rendered %q, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}
