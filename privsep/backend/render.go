package backend

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	"github.com/dyad-project/dyad/privsep"
)

// RenderResolvConf renders a resolv.conf(5) for rc: a comment naming the
// daemon that wrote it (writer), a "domain" line, one "search" line with
// the domains separated by spaces, and one "nameserver" line per address.
//
// The values were validated by the policy, but a value that would change
// the file's structure (a newline, another control character, or a space
// inside one name) is still refused with an error rather than written.
func RenderResolvConf(rc privsep.ResolvConf, writer string) ([]byte, error) {
	var b bytes.Buffer
	if err := header(&b, "resolv.conf", writer); err != nil {
		return nil, err
	}
	if rc.Domain != "" {
		if err := checkWord("resolv.conf", "domain", rc.Domain); err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "domain %s\n", rc.Domain)
	}
	if len(rc.Search) > 0 {
		for _, s := range rc.Search {
			if err := checkWord("resolv.conf", "search domain", s); err != nil {
				return nil, err
			}
		}
		fmt.Fprintf(&b, "search %s\n", strings.Join(rc.Search, " "))
	}
	if err := addrLines(&b, "resolv.conf", "nameserver ", rc.Nameservers); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// RenderNTPServers renders the list of NTP servers: a comment naming the
// daemon that wrote it (writer), then one address per line.
func RenderNTPServers(s privsep.NTPServers, writer string) ([]byte, error) {
	var b bytes.Buffer
	if err := header(&b, "ntp servers", writer); err != nil {
		return nil, err
	}
	if err := addrLines(&b, "ntp servers", "", s.Servers); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// header writes the comment that names the writer of a file.
func header(b *bytes.Buffer, file, writer string) error {
	if err := checkWord(file, "writer", writer); err != nil {
		return err
	}
	fmt.Fprintf(b, "# Written by %s; changes will be overwritten.\n", writer)
	return nil
}

// addrLines writes one line per address, after prefix.
func addrLines(b *bytes.Buffer, file, prefix string, addrs []netip.Addr) error {
	for _, a := range addrs {
		if !a.IsValid() {
			return fmt.Errorf("backend: %s: invalid address", file)
		}
		// A zone is free text: check it as any other value.
		if err := checkWord(file, "address", a.String()); err != nil {
			return err
		}
		fmt.Fprintf(b, "%s%s\n", prefix, a)
	}
	return nil
}

// checkWord refuses an empty value, or one with a space or a control
// character, which would break a line or split it into two values.
func checkWord(file, what, v string) error {
	if v == "" {
		return fmt.Errorf("backend: %s: empty %s", file, what)
	}
	for _, r := range v {
		if r <= ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return fmt.Errorf("backend: %s: %s %q: contains a space or control character", file, what, v)
		}
	}
	return nil
}
