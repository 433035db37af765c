package capname

import (
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func TestEveryCapabilityHasAName(t *testing.T) {
	for n := 0; n <= unix.CAP_LAST_CAP; n++ {
		name := Name(n)
		if name == "" {
			t.Fatalf("no name for capability %d", n)
		}
		if got, ok := Number(name); !ok || got != n {
			t.Errorf("Number(%q) = %d, %v; want %d", name, got, ok, n)
		}
	}
	if len(All()) != unix.CAP_LAST_CAP+1 {
		t.Errorf("All() has %d names, want %d", len(All()), unix.CAP_LAST_CAP+1)
	}
}

func TestLookups(t *testing.T) {
	tests := []struct {
		mask uint64
		want []string
	}{
		{0, nil},
		{1<<unix.CAP_NET_ADMIN | 1<<unix.CAP_NET_RAW, []string{"CAP_NET_ADMIN", "CAP_NET_RAW"}},
		{1 << 63, []string{"CAP_63"}},
	}
	for _, tt := range tests {
		if got := Mask(tt.mask); !slices.Equal(got, tt.want) {
			t.Errorf("Mask(%#x) = %v, want %v", tt.mask, got, tt.want)
		}
	}
	for _, bad := range []string{"", "NET_ADMIN", "cap_net_admin", "CAP_63"} {
		if _, ok := Number(bad); ok {
			t.Errorf("Number(%q) found a capability", bad)
		}
	}
	if Name(-1) != "" || Name(64) != "" {
		t.Error("Name of an out-of-range number is not empty")
	}
}
