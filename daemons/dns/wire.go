package dns

import (
	"errors"
	"fmt"
)

// The wire format's constants, and the step over a name that the readers
// of queries and answers share. Every byte they read came from a client
// or an upstream.

const (
	headerLen = 12
	// MaxMessage bounds a message over TCP, and so any message.
	MaxMessage = 65535

	typeOPT = 41
	classIN = 1

	flagQR = 1 << 15
	flagTC = 1 << 9
	flagRD = 1 << 8
	flagRA = 1 << 7
)

// rrPlace is one resource record of a message: where its TTL is, and what
// it says.
type rrPlace struct {
	ttlAt int
	ttl   uint32
}

var errTruncatedMessage = errors.New("message ends inside a record")

// skipName returns the offset just past the name at off, and whether it
// ends in a compression pointer.
func skipName(msg []byte, off int) (end int, compressed bool, err error) {
	length := 0
	for {
		if off >= len(msg) {
			return 0, false, errTruncatedMessage
		}
		c := int(msg[off])
		switch c & 0xc0 {
		case 0x00:
			if c == 0 {
				return off + 1, false, nil
			}
			length += c + 1
			if length > 254 {
				return 0, false, errors.New("a name longer than 255 bytes")
			}
			off += c + 1
		case 0xc0:
			if off+2 > len(msg) {
				return 0, false, errTruncatedMessage
			}
			return off + 2, true, nil
		default:
			return 0, false, fmt.Errorf("label type %#x: not a length nor a pointer", c&0xc0)
		}
	}
}
