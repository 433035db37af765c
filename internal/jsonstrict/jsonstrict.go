// Package jsonstrict decodes JSON that came from elsewhere (an image's
// labels) the strict way: one value, no unknown field, nothing after it.
package jsonstrict

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// ErrTrailing is the error for data after the value.
var ErrTrailing = errors.New("trailing data")

// Decode decodes b into v.
func Decode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return ErrTrailing
	}
	return nil
}
