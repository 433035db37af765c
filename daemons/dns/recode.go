package dns

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The recoder: an upstream's answer written out again by the stub, so that
// what the cache keeps and serves is well-formed whatever the upstream
// sent. Each name is read through its compression pointers (which must
// point back, so they cannot loop) and written again, a name the stub
// wrote before as a pointer to it; the records of RFC 1035 whose data
// hold names are read field by field and their names written the same
// way, as are those of SIG, NXT, RRSIG and NSEC (written uncompressed);
// other record data is copied as it came (RFC 3597 forbids compression in
// it); A and AAAA must have their lengths. The OPT record
// is left out (the stub writes its own). No pointer can then reach into a
// TTL, which the countdown rewrites, nor into bytes that are gone.

// Record types the recoder reads the data of.
const (
	typeA     = 1
	typeNS    = 2
	typeMD    = 3
	typeMF    = 4
	typeCNAME = 5
	typeSOA   = 6
	typeMB    = 7
	typeMG    = 8
	typeMR    = 9
	typePTR   = 12
	typeMINFO = 14
	typeMX    = 15
	typeRP    = 17
	typeAFSDB = 18
	typeRT    = 21
	typeSIG   = 24
	typePX    = 26
	typeAAAA  = 28
	typeNXT   = 30
	typeSRV   = 33
	typeNAPTR = 35
	typeKX    = 36
	typeDNAME = 39
	typeRRSIG = 46
	typeNSEC  = 47
	typeTSIG  = 250
)

// maxPointers bounds the pointers followed to read one name.
const maxPointers = 127

// recoded is an upstream's answer, written again.
type recoded struct {
	msg      []byte // ID 0, without OPT
	question Question
	rrs      []rrPlace
	// answers is how many records the answer section holds.
	answers int
	// soa is the last SOA of the authority section, if any: its TTL and
	// its MINIMUM field (RFC 2308).
	haveSOA        bool
	soaTTL, soaMin uint32
	// signed says a record is TSIG or SIG(0): the answer is one
	// transaction's, not to be kept.
	signed bool
}

// recoder writes a message again.
type recoder struct {
	in  []byte
	out []byte
	// suffixes are where the names written out, and their suffixes,
	// stand: a name written again, or ending as one did, points there.
	suffixes map[string]int
	scratch  [255]byte
}

// recode reads an upstream's answer, with exactly one question, and
// writes it again.
func recode(msg []byte) (*recoded, error) {
	if len(msg) > MaxMessage {
		return nil, fmt.Errorf("dns: message of %d bytes: longer than %d", len(msg), MaxMessage)
	}
	q, err := ParseQuestion(msg)
	if err != nil {
		return nil, err
	}
	counts := [3]int{int(binary.BigEndian.Uint16(msg[6:])), int(binary.BigEndian.Uint16(msg[8:])), int(binary.BigEndian.Uint16(msg[10:]))}
	// Each record takes 11 bytes at least: no count can exceed what the
	// message holds, which bounds the loop and the slices below.
	total := counts[0] + counts[1] + counts[2]
	if total > (len(msg)-headerLen)/11 {
		return nil, fmt.Errorf("dns: %d records in %d bytes", total, len(msg))
	}
	rc := recoder{in: msg, out: make([]byte, 0, len(msg)), suffixes: map[string]int{}}
	rc.out = append(rc.out, 0, 0) // ID 0
	rc.out = append(rc.out, msg[2:headerLen]...)
	rc.writeName(q.Name, false) // the question, whose suffixes names point to
	rc.out = append(rc.out, msg[q.End-4:q.End]...)
	r := &recoded{question: q, rrs: make([]rrPlace, 0, total), answers: counts[0]}
	off := q.End
	sawOPT := false
	for section, n := range counts {
		for i := range n {
			next, err := rc.record(r, off, section, &sawOPT)
			if err != nil {
				return nil, fmt.Errorf("dns: section %d, record %d: %w", section+1, i+1, err)
			}
			// Names written out in full where the upstream pointed
			// could make a message of 64 KiB some megabytes.
			if len(rc.out) > MaxMessage {
				return nil, fmt.Errorf("dns: longer than %d bytes once written again", MaxMessage)
			}
			off = next
		}
	}
	// Bytes after the last record are left out, as resolvers do. Only
	// the additional section may lose a record: the OPT.
	if sawOPT {
		binary.BigEndian.PutUint16(rc.out[10:], uint16(counts[2]-1))
	}
	r.msg = rc.out
	if cap(r.msg) > len(r.msg)+len(r.msg)/8 {
		// The cache keeps it: not the room it did not take.
		r.msg = append([]byte(nil), r.msg...)
	}
	return r, nil
}

// record recodes the record at off of section, and returns the offset past
// it.
func (rc *recoder) record(r *recoded, off, section int, sawOPT *bool) (int, error) {
	name, end, err := rc.readName(off)
	if err != nil {
		return 0, err
	}
	if end+10 > len(rc.in) {
		return 0, errTruncatedMessage
	}
	rtype := binary.BigEndian.Uint16(rc.in[end:])
	ttl := binary.BigEndian.Uint32(rc.in[end+4:])
	rdlen := int(binary.BigEndian.Uint16(rc.in[end+8:]))
	data := end + 10
	next := data + rdlen
	if next > len(rc.in) {
		return 0, errTruncatedMessage
	}
	if rtype == typeOPT {
		switch {
		case section != 2:
			return 0, errors.New("an OPT record outside the additional section")
		case *sawOPT:
			return 0, errors.New("a second OPT record")
		case len(name) != 1:
			return 0, errors.New("an OPT record not owned by the root")
		}
		*sawOPT = true
		return next, nil
	}
	if rtype == typeTSIG || rtype == typeSIG {
		r.signed = true
	}
	rc.writeName(name, true)
	r.rrs = append(r.rrs, rrPlace{ttlAt: len(rc.out) + 4, ttl: ttl})
	rc.out = append(rc.out, rc.in[end:end+8]...) // type, class, TTL
	lenAt := len(rc.out)
	rc.out = append(rc.out, 0, 0)
	if err := rc.data(rtype, data, next); err != nil {
		return 0, fmt.Errorf("type %d: %w", rtype, err)
	}
	// Longer than 65535 bytes, it makes the message too long: recode
	// refuses it.
	binary.BigEndian.PutUint16(rc.out[lenAt:], uint16(len(rc.out)-lenAt-2))
	if rtype == typeSOA && section == 1 {
		r.haveSOA, r.soaTTL, r.soaMin = true, ttl, binary.BigEndian.Uint32(rc.in[next-4:])
	}
	return next, nil
}

// data writes the record data in[start:end] of a record of type rtype.
func (rc *recoder) data(rtype uint16, start, end int) error {
	rd := rc.in[start:end]
	// fixed copies n bytes; name reads a name and writes it, compressed
	// for the types of RFC 1035 (RFC 3597, section 4); rest copies what
	// is left; strings copies character-strings.
	at := start
	fixed := func(n int) error {
		if at+n > end {
			return errTruncatedMessage
		}
		rc.out = append(rc.out, rc.in[at:at+n]...)
		at += n
		return nil
	}
	name := func(compress bool) error {
		n, next, err := rc.readName(at)
		if err != nil {
			return err
		}
		if next > end {
			return errors.New("a name past the record's data")
		}
		rc.writeName(n, compress)
		at = next
		return nil
	}
	rest := func() error { return fixed(end - at) }
	strings := func(count int) error {
		for range count {
			if at >= end {
				return errTruncatedMessage
			}
			if err := fixed(1 + int(rc.in[at])); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	switch rtype {
	case typeA:
		if len(rd) != 4 {
			return fmt.Errorf("%d bytes of data: want 4", len(rd))
		}
		err = fixed(4)
	case typeAAAA:
		if len(rd) != 16 {
			return fmt.Errorf("%d bytes of data: want 16", len(rd))
		}
		err = fixed(16)
	case typeNS, typeMD, typeMF, typeCNAME, typeMB, typeMG, typeMR, typePTR:
		err = name(true)
	case typeDNAME:
		err = name(false)
	case typeSOA:
		err = errors.Join(name(true), name(true), fixed(20))
	case typeMINFO:
		err = errors.Join(name(true), name(true))
	case typeRP:
		err = errors.Join(name(false), name(false))
	case typeMX:
		err = errors.Join(fixed(2), name(true))
	case typeAFSDB, typeRT, typeKX:
		err = errors.Join(fixed(2), name(false))
	case typeSRV:
		err = errors.Join(fixed(6), name(false))
	case typePX:
		err = errors.Join(fixed(2), name(false), name(false))
	case typeNAPTR:
		err = errors.Join(fixed(4), strings(3), name(false))
	case typeSIG, typeRRSIG:
		// The signer's name, after 18 bytes, then the signature; a
		// pointer there would be read by some clients.
		err = errors.Join(fixed(18), name(false), rest())
	case typeNXT, typeNSEC:
		err = errors.Join(name(false), rest())
	default:
		at = end
		rc.out = append(rc.out, rd...)
	}
	if err != nil {
		return err
	}
	if at != end {
		return fmt.Errorf("%d bytes after the record's fields", end-at)
	}
	return nil
}

// readName reads the name at off, through its compression pointers, into
// rc.scratch, and returns it (valid until the next readName) and the
// offset past it where it stands. A pointer must point before itself.
func (rc *recoder) readName(off int) ([]byte, int, error) {
	name := rc.scratch[:0]
	end := -1
	hops := 0
	for {
		if off >= len(rc.in) {
			return nil, 0, errTruncatedMessage
		}
		c := int(rc.in[off])
		switch c & 0xc0 {
		case 0x00:
			if off+1+c > len(rc.in) {
				return nil, 0, errTruncatedMessage
			}
			if c > 0 && len(name)+1+c > 254 { // 255 with the root's byte
				return nil, 0, errors.New("a name longer than 255 bytes")
			}
			name = append(name, rc.in[off:off+1+c]...)
			if c == 0 {
				if end < 0 {
					end = off + 1
				}
				return name, end, nil
			}
			off += 1 + c
		case 0xc0:
			if off+2 > len(rc.in) {
				return nil, 0, errTruncatedMessage
			}
			target := int(binary.BigEndian.Uint16(rc.in[off:]) & 0x3fff)
			if target >= off {
				return nil, 0, errors.New("a compression pointer that does not point back")
			}
			// A name has at most 127 labels, so it needs no more
			// pointers; a chain of them would only cost time.
			if hops++; hops > maxPointers {
				return nil, 0, fmt.Errorf("more than %d compression pointers in a name", maxPointers)
			}
			if end < 0 {
				end = off + 2
			}
			off = target
		default:
			return nil, 0, fmt.Errorf("label type %#x: not a length nor a pointer", c&0xc0)
		}
	}
}

// writeName writes name (wire form); with compress, its longest suffix
// written before (its whole self included) as a pointer to it.
func (rc *recoder) writeName(name []byte, compress bool) {
	cut := len(name) - 1 // the root label: never a pointer
	pointer := -1
	if compress {
		for i := 0; i < len(name)-1; i += int(name[i]) + 1 {
			if at, ok := rc.suffixes[string(name[i:])]; ok {
				cut, pointer = i, at
				break
			}
		}
	}
	// The labels written out, and each suffix they start, for the names
	// after.
	start := len(rc.out)
	for i := 0; i < cut; i += int(name[i]) + 1 {
		if start+i <= 0x3fff {
			rc.suffixes[string(name[i:])] = start + i
		}
	}
	rc.out = append(rc.out, name[:cut]...)
	if pointer >= 0 {
		rc.out = binary.BigEndian.AppendUint16(rc.out, 0xc000|uint16(pointer))
	} else {
		rc.out = append(rc.out, 0)
	}
}
