package dns

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// What the stub reads of a client's query before it answers it from the
// cache or forwards it: the acceptance rules of a recursive server's
// front door (one question, opcode QUERY, EDNS version 0), nothing more.
// Every byte came from a client.

// RCODEs the stub answers with.
const (
	RcodeFormErr  = 1
	RcodeServFail = 2
	RcodeNXDomain = 3
	RcodeNotImp   = 4
	RcodeRefused  = 5
	// RcodeBadVers is 16: 0 in the header, 1 in the OPT's extended RCODE.
	RcodeBadVers = 16
)

// minUDPSize is what a client without EDNS, or offering less, gets
// (RFC 1035; RFC 6891, section 6.2.5).
const minUDPSize = 512

// Question is a message's one question, as it stands in the message.
type Question struct {
	// Name is the name in wire form, uncompressed, in the sender's case.
	Name        []byte
	Type, Class uint16
	// End is the offset just past the question.
	End int
}

// Key is the question's cache key.
func (q Question) Key(dst []byte) []byte { return CacheKey(dst, q.Name, q.Type, q.Class) }

// ParseQuestion reads the one question of a message (a query or a reply).
func ParseQuestion(msg []byte) (Question, error) {
	if len(msg) < headerLen {
		return Question{}, fmt.Errorf("dns: message of %d bytes: shorter than a header", len(msg))
	}
	if qd := binary.BigEndian.Uint16(msg[4:]); qd != 1 {
		return Question{}, fmt.Errorf("dns: %d questions: want 1", qd)
	}
	end, compressed, err := skipName(msg, headerLen)
	if err != nil {
		return Question{}, fmt.Errorf("dns: question: %w", err)
	}
	if compressed {
		return Question{}, errors.New("dns: question: a compressed name")
	}
	if end+4 > len(msg) {
		return Question{}, fmt.Errorf("dns: question: %w", errTruncatedMessage)
	}
	return Question{Name: msg[headerLen:end], Type: binary.BigEndian.Uint16(msg[end:]), Class: binary.BigEndian.Uint16(msg[end+2:]), End: end + 4}, nil
}

// Query is a client's query, accepted.
type Query struct {
	Question
	ID uint16
	RD bool
	// EDNS says the query had an OPT record; UDPSize is then what it
	// offers (at least 512), and DO its DNSSEC OK bit.
	EDNS    bool
	UDPSize uint16
	DO      bool
}

// Refusal is a query the stub does not serve, and the RCODE it answers
// with; a query too broken to answer at all is a plain error.
type Refusal struct {
	Rcode  int
	Reason string
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("dns: query refused (rcode %d): %s", r.Rcode, r.Reason)
}

// ParseQuery accepts a client's query, or says why not: a plain error for
// what cannot be answered (too short, a response, no readable question),
// a *Refusal for what gets an error answer.
func ParseQuery(msg []byte) (Query, error) {
	if len(msg) < headerLen {
		return Query{}, fmt.Errorf("dns: query of %d bytes: shorter than a header", len(msg))
	}
	flags := binary.BigEndian.Uint16(msg[2:])
	if flags&flagQR != 0 {
		return Query{}, errors.New("dns: a response where a query was due")
	}
	q := Query{ID: binary.BigEndian.Uint16(msg), RD: flags&flagRD != 0, UDPSize: minUDPSize}
	question, err := ParseQuestion(msg)
	if err == nil {
		q.Question = question // echoed in a refusal too
	}
	if opcode := flags >> 11 & 0xf; opcode != 0 {
		return q, &Refusal{RcodeNotImp, fmt.Sprintf("opcode %d: only QUERY", opcode)}
	}
	if err != nil {
		if binary.BigEndian.Uint16(msg[4:]) == 0 {
			return q, err // nothing to echo back
		}
		return q, &Refusal{RcodeFormErr, err.Error()}
	}
	an, ns, ar := binary.BigEndian.Uint16(msg[6:]), binary.BigEndian.Uint16(msg[8:]), binary.BigEndian.Uint16(msg[10:])
	if an != 0 || ns != 0 || ar > 1 {
		return q, &Refusal{RcodeFormErr, fmt.Sprintf("%d answers, %d authority and %d additional records in a query", an, ns, ar)}
	}
	rest := msg[question.End:]
	if ar == 1 {
		// Only an OPT record: 11 bytes and its options.
		if len(rest) < 11 || rest[0] != 0 || binary.BigEndian.Uint16(rest[1:]) != typeOPT {
			return q, &Refusal{RcodeFormErr, "an additional record that is not OPT"}
		}
		if rdlen := int(binary.BigEndian.Uint16(rest[9:])); 11+rdlen != len(rest) {
			return q, &Refusal{RcodeFormErr, "an OPT record of the wrong length"}
		}
		q.EDNS = true
		q.UDPSize = max(binary.BigEndian.Uint16(rest[3:]), minUDPSize)
		q.DO = rest[7]&0x80 != 0
		if version := rest[6]; version != 0 {
			return q, &Refusal{RcodeBadVers, fmt.Sprintf("EDNS version %d", version)}
		}
		rest = nil
	}
	if len(rest) != 0 {
		return q, &Refusal{RcodeFormErr, fmt.Sprintf("%d bytes after the question", len(rest))}
	}
	if question.Class != classIN {
		return q, &Refusal{RcodeRefused, fmt.Sprintf("class %d: only IN", question.Class)}
	}
	return q, nil
}
