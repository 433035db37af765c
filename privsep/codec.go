package privsep

import (
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// MaxMessage is the largest datagram either side accepts. The largest
// legitimate message, a lease with every list full, is a few kilobytes.
const MaxMessage = 16 << 10

// envelope frames every message: the kind says which catalogue type the
// body holds, the ID pairs a request with its reply.
type envelope struct {
	Kind Kind   `cbor:"1,keyasint"`
	ID   uint64 `cbor:"2,keyasint"`
	Body []byte `cbor:"3,keyasint"`
}

// codec encodes canonically and decodes strictly: unknown fields, duplicate
// keys, trailing bytes, indefinite lengths, tags and wrong types are errors.
type codec struct {
	enc cbor.EncMode
	dec cbor.DecMode
}

func newCodec() codec {
	enc, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(fmt.Sprintf("privsep: cbor encoder options: %v", err)) // static options; cannot fail
	}
	dec, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   8,
		MaxArrayElements:  1024,
		MaxMapPairs:       64,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(fmt.Sprintf("privsep: cbor decoder options: %v", err))
	}
	return codec{enc: enc, dec: dec}
}

// marshal encodes one message with its request ID.
func (c codec) marshal(id uint64, m Message) ([]byte, error) {
	body, err := c.enc.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("privsep: encode %s: %w", m.Kind(), err)
	}
	b, err := c.enc.Marshal(envelope{Kind: m.Kind(), ID: id, Body: body})
	if err != nil {
		return nil, fmt.Errorf("privsep: encode %s: %w", m.Kind(), err)
	}
	if len(b) > MaxMessage {
		return nil, fmt.Errorf("privsep: encode %s: %d bytes is over the %d-byte limit", m.Kind(), len(b), MaxMessage)
	}
	return b, nil
}

// ErrMalformed wraps every error about the content of a datagram, as
// opposed to the failure of the socket itself.
var ErrMalformed = errors.New("malformed message")

// ErrUnknownKind is returned for a well-formed envelope whose kind is not in
// the catalogue.
var ErrUnknownKind = errors.New("kind not in the catalogue")

// unmarshal decodes one datagram into its catalogue type.
func (c codec) unmarshal(b []byte) (uint64, Message, error) {
	if len(b) > MaxMessage {
		return 0, nil, fmt.Errorf("privsep: decode: %w: %d bytes is over the %d-byte limit", ErrMalformed, len(b), MaxMessage)
	}
	var env envelope
	if err := c.dec.Unmarshal(b, &env); err != nil {
		return 0, nil, fmt.Errorf("privsep: decode envelope: %w: %w", ErrMalformed, err)
	}
	m := newMessage(env.Kind)
	if m == nil {
		return env.ID, nil, fmt.Errorf("privsep: decode %q: %w: %w", truncate(string(env.Kind), 32), ErrMalformed, ErrUnknownKind)
	}
	if err := c.dec.Unmarshal(env.Body, m); err != nil {
		return env.ID, nil, fmt.Errorf("privsep: decode %s: %w: %w", env.Kind, ErrMalformed, err)
	}
	return env.ID, m, nil
}

// Marshal encodes a message as the pipe would carry it. It exists for tests
// and fuzz targets that play a compromised engine.
func Marshal(id uint64, m Message) ([]byte, error) { return newCodec().marshal(id, m) }

// Unmarshal decodes one datagram as the pipe would.
func Unmarshal(b []byte) (uint64, Message, error) { return newCodec().unmarshal(b) }

// MarshalValue and UnmarshalValue encode daemon-specific payloads (such as
// Welcome.Config) with the same canonical encoding and strict decoding.
func MarshalValue(v any) ([]byte, error) { return newCodec().enc.Marshal(v) }

// UnmarshalValue decodes strictly; see MarshalValue.
func UnmarshalValue(b []byte, v any) error {
	if len(b) > MaxMessage {
		return fmt.Errorf("privsep: decode: %d bytes is over the %d-byte limit", len(b), MaxMessage)
	}
	return newCodec().dec.Unmarshal(b, v)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
