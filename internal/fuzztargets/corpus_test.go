package fuzztargets

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestParseCorpus(t *testing.T) {
	tests := []struct {
		name   string
		file   string
		params []string
		want   []any
		err    string
	}{
		{"bytes and uint64", "go test fuzz v1\n[]byte(\"a\\x00\\xfe\")\nuint64(7)\n", []string{"[]byte", "uint64"}, []any{[]byte("a\x00\xfe"), uint64(7)}, ""},
		{"strings", "go test fuzz v1\nstring(\"x y\")\nstring(\"\")\n", []string{"string", "string"}, []any{"x y", ""}, ""},
		{"ints", "go test fuzz v1\nint(-3)\nint8(-128)\nuint16(0xffff)\nbyte('a')\nbool(true)\n", []string{"int", "int8", "uint16", "byte", "bool"},
			[]any{-3, int8(-128), uint16(0xffff), uint8('a'), true}, ""},
		{"no header", "[]byte(\"a\")\n", []string{"[]byte"}, nil, "line 1"},
		{"too few", "go test fuzz v1\n[]byte(\"a\")\n", []string{"[]byte", "uint64"}, nil, "1 values for 2 arguments"},
		{"wrong type", "go test fuzz v1\nstring(\"a\")\n", []string{"[]byte"}, nil, "want a value of type []byte"},
		{"out of range", "go test fuzz v1\nint8(200)\n", []string{"int8"}, nil, "out of range"},
		{"negative unsigned", "go test fuzz v1\nuint64(-1)\n", []string{"uint64"}, nil, "negative"},
		{"not a literal", "go test fuzz v1\n[]byte(x)\n", []string{"[]byte"}, nil, "not a literal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCorpus([]byte(tc.file), tc.params)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, %v; want an error saying %q", got, err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, %v; want %#v", got, err, tc.want)
			}
		})
	}
}

func TestFormatCorpusReadsBack(t *testing.T) {
	values := []any{[]byte{0, 0xfe, 'x'}, "s\n", uint64(1 << 40), int32(-5), uint8(9), true}
	params := []string{"[]byte", "string", "uint64", "int32", "uint8", "bool"}
	b, err := FormatCorpus(values...)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseCorpus(b, params)
	if err != nil || !reflect.DeepEqual(got, values) {
		t.Fatalf("%s read back as %#v, %v", b, got, err)
	}
}

// TestLibFuzzerInput checks the encoding against what go-fuzz-headers'
// consumer reads: a []byte as a big-endian length and bytes, a uint64 as
// eight bytes and an odd byte for big-endian, a bool as one byte, even
// for true.
func TestLibFuzzerInput(t *testing.T) {
	got, err := LibFuzzerInput([]any{[]byte("ab"), uint64(0x0102), true, false, "c"})
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0, 0, 0, 2, 'a', 'b', 0, 0, 0, 0, 0, 0, 1, 2, 1, 0, 1, 0, 0, 0, 1, 'c'}
	if !bytes.Equal(got, want) {
		t.Fatalf("got % x\nwant % x", got, want)
	}
	if _, err := LibFuzzerInput([]any{1.5}); err == nil {
		t.Error("a float64 encoded, though no target takes one")
	}
}
