package dhcp

import (
	"bytes"
	"testing"
)

func TestClientID(t *testing.T) {
	hw := []byte{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
	tests := []struct {
		mode string
		want []byte
	}{
		// RFC 2132: hardware type 1 and the address.
		{"hwaddr", []byte{1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56}},
		// RFC 4361: 255, IAID (the last four bytes of the address), then a
		// DUID-LL (type 3, hardware type 1, the address).
		{"duid", []byte{0xff, 0x00, 0x12, 0x34, 0x56, 0, 3, 0, 1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56}},
		{"none", nil},
	}
	for _, tc := range tests {
		if got := clientID(tc.mode, hw); !bytes.Equal(got, tc.want) {
			t.Errorf("clientID(%q) = % x, want % x", tc.mode, got, tc.want)
		}
	}
}
