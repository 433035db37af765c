package dns

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	mdns "github.com/miekg/dns"

	"github.com/dyad-project/dyad/privsep"
)

// Local records: /etc/hosts and the configuration's static records,
// answered by the stub itself and never forwarded. A name they hold is
// answered for every type: with its records of that type, or with no
// record (NODATA), as an authoritative server would.

// maxFile bounds a file the stub reads (hosts, resolv.conf): a blocklist
// of a hundred thousand names fits.
const maxFile = 8 << 20

// Local is a set of local records; it is not changed once built.
type Local struct {
	// names maps a name in wire form, lower case, to its records.
	names map[string][]mdns.RR
}

// NewLocal builds the local records from a hosts file's entries and
// static records, each in presentation form ("printer.lan. 300 IN A
// 192.168.1.9"). Hosts entries answer with TTL hostsTTL, and their
// addresses answer reverse (PTR) queries with their first name.
func NewLocal(hosts []HostsEntry, static []string, hostsTTL uint32) (*Local, error) {
	l := &Local{names: map[string][]mdns.RR{}}
	for i, s := range static {
		rr, err := mdns.NewRR(s)
		if err != nil || rr == nil {
			return nil, fmt.Errorf("dns: local record %d (%q): %v", i+1, s, err)
		}
		if rr.Header().Class != mdns.ClassINET {
			return nil, fmt.Errorf("dns: local record %d (%q): class %s, only IN", i+1, s, mdns.ClassToString[rr.Header().Class])
		}
		l.add(rr)
	}
	ptrs := map[netip.Addr]bool{}
	for _, h := range hosts {
		for _, name := range h.Names {
			hdr := mdns.RR_Header{Name: mdns.Fqdn(name), Class: mdns.ClassINET, Ttl: hostsTTL}
			if h.Addr.Is4() {
				hdr.Rrtype = mdns.TypeA
				l.add(&mdns.A{Hdr: hdr, A: h.Addr.AsSlice()})
			} else {
				hdr.Rrtype = mdns.TypeAAAA
				l.add(&mdns.AAAA{Hdr: hdr, AAAA: h.Addr.AsSlice()})
			}
		}
		if !ptrs[h.Addr] && len(h.Names) > 0 {
			ptrs[h.Addr] = true
			rev, err := mdns.ReverseAddr(h.Addr.String())
			if err != nil {
				return nil, fmt.Errorf("dns: hosts: %s: %w", h.Addr, err)
			}
			l.add(&mdns.PTR{Hdr: mdns.RR_Header{Name: rev, Rrtype: mdns.TypePTR, Class: mdns.ClassINET, Ttl: hostsTTL}, Ptr: mdns.Fqdn(h.Names[0])})
		}
	}
	return l, nil
}

func (l *Local) add(rr mdns.RR) {
	key := wireName(rr.Header().Name)
	for _, have := range l.names[key] {
		if mdns.IsDuplicate(have, rr) {
			return
		}
	}
	l.names[key] = append(l.names[key], rr)
}

// wireName is a name in wire form, lower case, as a map key.
func wireName(name string) string {
	b := make([]byte, 255)
	n, err := mdns.PackDomainName(strings.ToLower(mdns.Fqdn(name)), b, 0, nil, false)
	if err != nil {
		return ""
	}
	return string(b[:n])
}

// Len is how many names the local records hold.
func (l *Local) Len() int { return len(l.names) }

// Answer writes the local answer to the query msg, accepted as q, and
// reports whether the local records hold its name.
func (l *Local) Answer(dst, msg []byte, q *Query, limit int) ([]byte, bool) {
	if l == nil || len(l.names) == 0 {
		return dst, false
	}
	var lower [255]byte
	name := lower[:len(q.Name)]
	copy(name, q.Name)
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			name[i] = c + 'a' - 'A'
		}
	}
	rrs, ok := l.names[string(name)]
	if !ok {
		return dst, false
	}
	m := new(mdns.Msg)
	m.Question = []mdns.Question{{Name: rrs[0].Header().Name, Qtype: q.Type, Qclass: q.Class}}
	m.Response, m.Authoritative, m.RecursionAvailable = true, true, true
	for _, rr := range rrs {
		if rr.Header().Rrtype == q.Type || q.Type == mdns.TypeANY {
			m.Answer = append(m.Answer, rr)
		}
	}
	m.Compress = true
	packed, err := m.Pack()
	// The stored question must be the client's bytes but for case: the
	// owner name is the same name, so the same length.
	if err != nil || !bytes.EqualFold(packed[headerLen:headerLen+len(q.Name)], q.Name) {
		return dst, false
	}
	return write(dst, packed, nil, msg, q, 0, false, limit), true
}

// HostsEntry is a line of a hosts file: an address and its names.
type HostsEntry struct {
	Addr  netip.Addr
	Names []string
}

// ReadHosts reads a hosts file (hosts(5)): an address, then names; "#"
// starts a comment. A line that is not that is an error naming it: the
// file is the operator's, and half of it is worse than none.
func ReadHosts(path string) ([]HostsEntry, error) {
	b, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	var entries []HostsEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 64<<10)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		addr, err := netip.ParseAddr(fields[0])
		if err != nil {
			return nil, fmt.Errorf("dns: %s:%d: %q is not an address", path, n, fields[0])
		}
		if len(fields) < 2 {
			return nil, fmt.Errorf("dns: %s:%d: an address with no name", path, n)
		}
		for _, name := range fields[1:] {
			if err := privsep.CheckDomainName(name); err != nil {
				return nil, fmt.Errorf("dns: %s:%d: %w", path, n, err)
			}
		}
		entries = append(entries, HostsEntry{Addr: addr.Unmap().WithZone(""), Names: fields[1:]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("dns: %s: %w", path, err)
	}
	return entries, nil
}

// ResolvConf is what the stub reads of a resolv.conf(5) file, such as the
// one a DHCP client writes: the upstreams it names, and the search list.
type ResolvConf struct {
	Nameservers []netip.Addr
	Search      []string
}

// ReadResolvConf reads a resolv.conf file: nameserver, search and domain
// lines; options and sortlist are not the stub's business; anything else,
// or a nameserver that is not an address, is an error naming the line.
func ReadResolvConf(path string) (ResolvConf, error) {
	b, err := readBounded(path)
	if err != nil {
		return ResolvConf{}, err
	}
	var rc ResolvConf
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "nameserver":
			if len(fields) != 2 {
				return ResolvConf{}, fmt.Errorf("dns: %s:%d: nameserver takes one address", path, n)
			}
			a, err := netip.ParseAddr(fields[1])
			if err != nil || a.IsUnspecified() || a.IsMulticast() || a.Zone() != "" {
				return ResolvConf{}, fmt.Errorf("dns: %s:%d: nameserver %q: not a unicast address", path, n, fields[1])
			}
			rc.Nameservers = append(rc.Nameservers, a.Unmap())
		case "search", "domain":
			// A DHCP server's words: held to what the actuator will
			// write into the consumers' resolv.conf.
			for _, d := range fields[1:] {
				if err := privsep.CheckDomainName(d); err != nil {
					return ResolvConf{}, fmt.Errorf("dns: %s:%d: %s: %w", path, n, fields[0], err)
				}
			}
			rc.Search = fields[1:] // the last one counts, as for the C library
		case "options", "sortlist":
		default:
			return ResolvConf{}, fmt.Errorf("dns: %s:%d: unknown keyword %q", path, n, fields[0])
		}
	}
	return rc, sc.Err()
}

// readBounded reads a file of at most maxFile bytes.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("dns: %s: %w", path, err)
	}
	if len(b) > maxFile {
		return nil, fmt.Errorf("dns: %s: larger than %d bytes", path, maxFile)
	}
	return b, nil
}
