package dns

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The wire walker: what the cache needs to know of an upstream's answer
// without decoding it, so that a hit is served as the bytes that were
// stored with only the ID, the question's case, the flags the query sets
// and the TTLs rewritten. Every byte it reads came from an upstream.

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

// layout is where things are in a message.
type layout struct {
	question Question
	// rrs are the resource records after the question, in order.
	rrs []rrPlace
}

// rrPlace is one resource record of a message: where its TTL is, and what
// it says.
type rrPlace struct {
	ttlAt int
	ttl   uint32
}

var errTruncatedMessage = errors.New("message ends inside a record")

// walk reads the layout of a message with exactly one question. It
// follows no compression pointer: it only steps over names, so a loop of
// pointers costs nothing, and the question's name must be written out.
func walk(msg []byte) (*layout, error) {
	if len(msg) > MaxMessage {
		return nil, fmt.Errorf("dns: message of %d bytes: longer than %d", len(msg), MaxMessage)
	}
	q, err := ParseQuestion(msg)
	if err != nil {
		return nil, err
	}
	counts := [3]int{int(binary.BigEndian.Uint16(msg[6:])), int(binary.BigEndian.Uint16(msg[8:])), int(binary.BigEndian.Uint16(msg[10:]))}
	// Each record takes 11 bytes at least: no count can exceed what the
	// message holds, which bounds the walk and the slice below.
	total := counts[0] + counts[1] + counts[2]
	if total > (len(msg)-headerLen)/11 {
		return nil, fmt.Errorf("dns: %d records in %d bytes", total, len(msg))
	}
	l := &layout{question: q, rrs: make([]rrPlace, 0, total)}
	off := q.End
	for section, n := range counts {
		for i := range n {
			end, _, err := skipName(msg, off)
			if err != nil {
				return nil, fmt.Errorf("dns: section %d, record %d: %w", section+1, i+1, err)
			}
			if end+10 > len(msg) {
				return nil, fmt.Errorf("dns: section %d, record %d: %w", section+1, i+1, errTruncatedMessage)
			}
			rdlen := int(binary.BigEndian.Uint16(msg[end+8:]))
			if end+10+rdlen > len(msg) {
				return nil, fmt.Errorf("dns: section %d, record %d: %w", section+1, i+1, errTruncatedMessage)
			}
			l.rrs = append(l.rrs, rrPlace{ttlAt: end + 4, ttl: binary.BigEndian.Uint32(msg[end+4:])})
			off = end + 10 + rdlen
		}
	}
	if off != len(msg) {
		return nil, fmt.Errorf("dns: %d bytes after the last record", len(msg)-off)
	}
	return l, nil
}

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
