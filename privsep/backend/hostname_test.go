package backend

import (
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestSetHostname(t *testing.T) {
	hostname := func() string {
		name, err := os.Hostname()
		if err != nil {
			return "error: " + err.Error()
		}
		return name
	}
	before := onHost(hostname)
	enterNamespaces(t, unix.CLONE_NEWUTS)
	tests := []struct {
		name string
		ok   bool
	}{
		{"dyad-test", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false}, // longer than the kernel allows
	}
	for _, tt := range tests {
		err := SetHostname(tt.name)
		if tt.ok != (err == nil) {
			t.Errorf("SetHostname(%q) = %v, want success %v", tt.name, err, tt.ok)
			continue
		}
		if !tt.ok {
			continue
		}
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			t.Fatal(err)
		}
		if got := unix.ByteSliceToString(u.Nodename[:]); got != tt.name {
			t.Errorf("nodename %q after SetHostname(%q)", got, tt.name)
		}
	}
	if after := onHost(hostname); after != before {
		t.Errorf("the host's name changed from %q to %q", before, after)
	}
}
