package dhcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/dyad-project/dyad/privsep"
)

// The option interpreters turn untrusted option bytes into values, refusing
// what is malformed with a reason. They run in the engine; the actuator
// checks the results again.

// DHCP option codes this client reads or sends.
const (
	optSubnetMask      = 1
	optRouter          = 3
	optDNS             = 6
	optHostname        = 12
	optDomainName      = 15
	optMTU             = 26
	optNTP             = 42
	optRequestedIP     = 50
	optLeaseTime       = 51
	optMessageType     = 53
	optServerID        = 54
	optParamRequest    = 55
	optMaxMessageSize  = 57
	optRenewalTime     = 58
	optRebindingTime   = 59
	optClientID        = 61
	optRapidCommit     = 80
	optDomainSearch    = 119
	optClasslessRoutes = 121
)

// parseMask reads option 1 and returns the prefix length it encodes.
func parseMask(b []byte) (int, error) {
	if len(b) != 4 {
		return 0, fmt.Errorf("subnet mask: %d bytes, want 4", len(b))
	}
	m := binary.BigEndian.Uint32(b)
	ones := 0
	for ones < 32 && m&(1<<(31-ones)) != 0 {
		ones++
	}
	if ones < 32 && m<<ones != 0 {
		return 0, fmt.Errorf("subnet mask %d.%d.%d.%d is not contiguous", b[0], b[1], b[2], b[3])
	}
	return ones, nil
}

// classfulBits is the prefix length RFC 791 implies when a server sends no
// mask, as dhcpcd does.
func classfulBits(a netip.Addr) int {
	switch b := a.As4()[0]; {
	case b < 128:
		return 8
	case b < 192:
		return 16
	default:
		return 24
	}
}

// parseAddrs reads a list of IPv4 addresses (options 3, 6, 42).
func parseAddrs(what string, b []byte) ([]netip.Addr, error) {
	if len(b) == 0 || len(b)%4 != 0 {
		return nil, fmt.Errorf("%s: length %d is not a non-zero multiple of 4", what, len(b))
	}
	out := make([]netip.Addr, 0, len(b)/4)
	for i := 0; i < len(b); i += 4 {
		out = append(out, netip.AddrFrom4([4]byte(b[i:i+4])))
	}
	return out, nil
}

// parseUint32 reads a 4-byte time option.
func parseUint32(what string, b []byte) (uint32, error) {
	if len(b) != 4 {
		return 0, fmt.Errorf("%s: %d bytes, want 4", what, len(b))
	}
	return binary.BigEndian.Uint32(b), nil
}

// parseMTU reads option 26.
func parseMTU(b []byte) (int, error) {
	if len(b) != 2 {
		return 0, fmt.Errorf("interface MTU: %d bytes, want 2", len(b))
	}
	return int(binary.BigEndian.Uint16(b)), nil
}

// parseString reads a text option (12, 15). Servers often end it with NULs;
// anything else that is not a valid name is refused by the caller.
func parseString(b []byte) string {
	return strings.TrimRight(string(b), "\x00")
}

// parseClasslessRoutes reads option 121 (RFC 3442): for each route, the
// prefix length, the significant octets of the destination, then the
// gateway; a zero gateway means the destination is on-link.
func parseClasslessRoutes(b []byte) ([]privsep.Route, error) {
	var out []privsep.Route
	for i := 0; i < len(b); {
		width := int(b[i])
		if width > 32 {
			return nil, fmt.Errorf("classless routes: prefix length %d at byte %d", width, i)
		}
		n := (width + 7) / 8
		if i+1+n+4 > len(b) {
			return nil, fmt.Errorf("classless routes: truncated route at byte %d", i)
		}
		var dst [4]byte
		copy(dst[:], b[i+1:i+1+n])
		gw := netip.AddrFrom4([4]byte(b[i+1+n : i+1+n+4]))
		p := netip.PrefixFrom(netip.AddrFrom4(dst), width)
		if p != p.Masked() {
			return nil, fmt.Errorf("classless routes: destination %s has bits beyond its prefix length", p)
		}
		r := privsep.Route{Destination: p}
		if !gw.IsUnspecified() {
			r.Gateway = gw
		}
		out = append(out, r)
		i += 1 + n + 4
	}
	if len(out) == 0 {
		return nil, errors.New("classless routes: empty option")
	}
	return out, nil
}

// parseSearchList reads option 119 (RFC 3397): names in DNS wire format,
// with compression pointers that may only point backwards into the option.
func parseSearchList(b []byte) ([]string, error) {
	var names []string
	for off := 0; off < len(b); {
		name, next, err := readName(b, off)
		if err != nil {
			return nil, fmt.Errorf("search list: %w", err)
		}
		names = append(names, name)
		off = next
	}
	return names, nil
}

// readName decodes one name at off and returns it with the offset after it
// in the uncompressed stream.
func readName(b []byte, off int) (string, int, error) {
	var labels []string
	next := -1
	total := 0
	for jumps := 0; ; {
		if off >= len(b) {
			return "", 0, fmt.Errorf("name runs past the end at byte %d", off)
		}
		l := int(b[off])
		switch {
		case l == 0:
			if next < 0 {
				next = off + 1
			}
			if len(labels) == 0 {
				return "", 0, fmt.Errorf("empty name at byte %d", off)
			}
			return strings.Join(labels, "."), next, nil
		case l&0xc0 == 0xc0:
			if off+1 >= len(b) {
				return "", 0, fmt.Errorf("truncated pointer at byte %d", off)
			}
			ptr := (l&0x3f)<<8 | int(b[off+1])
			if ptr >= off {
				return "", 0, fmt.Errorf("pointer at byte %d does not point backwards", off)
			}
			if jumps++; jumps > 64 {
				return "", 0, errors.New("too many compression pointers")
			}
			if next < 0 {
				next = off + 2
			}
			off = ptr
		case l&0xc0 != 0:
			return "", 0, fmt.Errorf("reserved label type %#x at byte %d", l&0xc0, off)
		default:
			if off+1+l > len(b) {
				return "", 0, fmt.Errorf("label runs past the end at byte %d", off)
			}
			labels = append(labels, string(b[off+1:off+1+l]))
			if total += l + 1; total > 255 {
				return "", 0, errors.New("name longer than 255 bytes")
			}
			off += 1 + l
		}
	}
}
