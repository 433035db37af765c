package dns

import (
	"errors"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

func TestParseQuery(t *testing.T) {
	pack := func(f func(m *mdns.Msg)) []byte {
		m := new(mdns.Msg)
		m.SetQuestion("Name.Example.", mdns.TypeAAAA)
		m.Id = 7
		f(m)
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	plain := pack(func(*mdns.Msg) {})
	edit := func(b []byte, f func(b []byte) []byte) []byte { return f(append([]byte(nil), b...)) }
	for _, tc := range []struct {
		name  string
		msg   []byte
		rcode int // of the refusal; -1 for a plain error, 0 for accepted
		check func(q Query) bool
	}{
		{"plain", plain, 0, func(q Query) bool {
			return q.ID == 7 && q.RD && !q.EDNS && q.UDPSize == 512 && q.Type == mdns.TypeAAAA && string(q.Name) == "\x04Name\x07Example\x00"
		}},
		{"EDNS with DO", pack(func(m *mdns.Msg) { m.SetEdns0(4096, true) }), 0, func(q Query) bool { return q.EDNS && q.UDPSize == 4096 && q.DO }},
		{"EDNS offering less than 512", pack(func(m *mdns.Msg) { m.SetEdns0(100, false) }), 0, func(q Query) bool { return q.UDPSize == 512 }},
		{"short", plain[:11], -1, nil},
		{"a response", edit(plain, func(b []byte) []byte { b[2] |= 0x80; return b }), -1, nil},
		{"no question", edit(plain[:12], func(b []byte) []byte { b[5] = 0; return b }), -1, nil},
		{"NOTIFY", pack(func(m *mdns.Msg) { m.Opcode = mdns.OpcodeNotify }), RcodeNotImp, nil},
		{"two questions", edit(plain, func(b []byte) []byte { b[5] = 2; return b }), RcodeFormErr, nil},
		{"an answer in a query", pack(func(m *mdns.Msg) { rr, _ := mdns.NewRR("x. 1 IN A 192.0.2.1"); m.Answer = []mdns.RR{rr} }), RcodeFormErr, nil},
		{"a compressed question", edit(plain, func(b []byte) []byte { b[12], b[13] = 0xc0, 12; return b }), RcodeFormErr, nil},
		{"a name cut short", plain[:16], RcodeFormErr, nil},
		{"trailing bytes", append(append([]byte(nil), plain...), 0, 0), RcodeFormErr, nil},
		{"additional that is not OPT", pack(func(m *mdns.Msg) { rr, _ := mdns.NewRR("x. 1 IN A 192.0.2.1"); m.Extra = []mdns.RR{rr} }), RcodeFormErr, nil},
		{"EDNS version 1", pack(func(m *mdns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) }), RcodeBadVers, nil},
		{"class CH", pack(func(m *mdns.Msg) { m.Question[0].Qclass = mdns.ClassCHAOS }), RcodeRefused, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := ParseQuery(tc.msg)
			var r *Refusal
			switch {
			case tc.rcode == 0 && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.rcode == 0 && !tc.check(q):
				t.Errorf("accepted as %+v", q)
			case tc.rcode == -1 && (err == nil || errors.As(err, &r)):
				t.Errorf("%v: want a plain error", err)
			case tc.rcode > 0 && (!errors.As(err, &r) || r.Rcode != tc.rcode || r.Reason == ""):
				t.Errorf("%v: want a refusal with rcode %d and a reason", err, tc.rcode)
			}
			if tc.rcode > 0 && q.ID != 7 {
				t.Errorf("refused with ID %d: the answer must carry the query's", q.ID)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "dns: ") {
				t.Errorf("error %q does not say where it comes from", err)
			}
		})
	}
}
