package initd

import (
	"slices"
	"strings"
	"testing"
)

func TestCopyLines(t *testing.T) {
	long := strings.Repeat("x", maxLine+10)
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"lines", "one\ntwo\n", []string{"[c] one", "[c] two"}},
		{"no final newline", "one\ntwo", []string{"[c] one", "[c] two"}},
		{"carriage returns", "one\r\ntwo\r\n", []string{"[c] one", "[c] two"}},
		{"empty line", "one\n\ntwo\n", []string{"[c] one", "[c] ", "[c] two"}},
		{"nothing", "", nil},
		{"a line too long", long + "\n", []string{"[c] " + long[:maxLine], "[c] " + long[maxLine:]}},
	} {
		var buf syncBuffer
		NewConsole(&buf).CopyLines("c", strings.NewReader(tc.in))
		if got := buf.Lines(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestLogf(t *testing.T) {
	var buf syncBuffer
	NewConsole(&buf).Logf("onboot %s: %s", "000-dhcpcd", "exited 0")
	if got := buf.Lines(); !slices.Equal(got, []string{"init: onboot 000-dhcpcd: exited 0"}) {
		t.Errorf("got %q", got)
	}
}
