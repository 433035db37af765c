package initd

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testModules reads testdata/modules: lines copied from the depmod output
// of Debian's linux-image-6.1.0-56-cloud-amd64.
func testModules(t *testing.T) *Modules {
	t.Helper()
	m, err := LoadModules("testdata/modules")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLookup(t *testing.T) {
	m := testModules(t)
	for _, tc := range []struct {
		alias string
		want  []string
	}{
		{"virtio:d00000001v00001AF4", []string{"virtio_net"}},
		{"virtio:d00000002v00001AF4", []string{"virtio_blk"}},
		{"virtio:d00000004v00001AF4", []string{"virtio_rng"}},
		{"virtio:d00000009v00001AF4", nil},
		{"pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00", []string{"virtio_pci"}},
		{"pci:v00008086d00001237sv00001AF4sd00001100bc06sc00i00", nil},
		{"acpi:LNRO0005:", []string{"virtio_mmio"}},
		{"cpu:type:x86,ven0000fam0006mod003F:feature:,0000,0001,0099,00E0", []string{"aesni_intel"}},
		{"cpu:type:x86,ven0000fam0006mod003F:feature:,0000,0001,00E0", nil},
		// Dashes are underscores to kmod, in patterns and aliases alike.
		{"input:b0011v0002p0006e0000-e0,1,2,3,k110,111,112,r0,1,a0,1,m4,lsfw", []string{"mousedev"}},
		{"fs-overlay", []string{"overlay"}},
		{"fs-ext4", nil},
		{"rtnl-link-veth", []string{"veth"}},
		{"crypto-aes", []string{"aesni_intel"}},
		// A module's own name, as modprobe takes it.
		{"virtio_net", []string{"virtio_net"}},
		{"virtio-rng", []string{"virtio_rng"}},
		{"ext4", []string{"ext4"}},
		{"", nil},
	} {
		if got := m.Lookup(tc.alias); !slices.Equal(got, tc.want) {
			t.Errorf("Lookup(%q) = %q, want %q", tc.alias, got, tc.want)
		}
	}
}

func TestLoadOrder(t *testing.T) {
	m := testModules(t)
	for _, tc := range []struct {
		name    string
		want    []string
		wantErr string
	}{
		// The order the kernel needs, as modprobe loads them.
		{name: "virtio_net", want: []string{"virtio_ring", "virtio", "failover", "net_failover", "virtio_net"}},
		{name: "virtio_pci", want: []string{"virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci"}},
		{name: "virtio_scsi", want: []string{"virtio_ring", "virtio", "scsi_common", "scsi_mod", "virtio_scsi"}},
		{name: "aesni_intel", want: []string{"cryptd", "crypto_simd", "aesni_intel"}},
		{name: "overlay", want: []string{"overlay"}},
		{name: "virtio_rng", want: []string{"virtio_ring", "virtio", "virtio_rng"}},
		{name: "af_packet", want: nil}, // built in
		{name: "iosf_mbi", wantErr: "not in modules.dep"},
	} {
		got, err := m.LoadOrder(tc.name)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("LoadOrder(%s) = %q, %v; want an error with %q", tc.name, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("LoadOrder(%s) = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

func TestModulePaths(t *testing.T) {
	m := testModules(t)
	for name, want := range map[string]string{
		"virtio_rng":  "testdata/modules/kernel/drivers/char/hw_random/virtio-rng.ko",
		"aesni_intel": "testdata/modules/kernel/arch/x86/crypto/aesni-intel.ko",
		"virtio_net":  "testdata/modules/kernel/drivers/net/virtio_net.ko",
		"unix":        "", // built in
		"nonesuch":    "",
	} {
		if got := m.Path(name); got != filepath.FromSlash(want) {
			t.Errorf("Path(%s) = %q, want %q", name, got, want)
		}
	}
	if !m.Builtin("amd_uncore") || m.Builtin("virtio") {
		t.Error("Builtin: modules.builtin not read right (amd-uncore.ko is built in, virtio is not)")
	}
}

func TestModuleName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/drivers/char/hw_random/virtio-rng.ko": "virtio_rng",
		"kernel/net/core/failover.ko":                 "failover",
		"kernel/fs/overlayfs/overlay.ko.xz":           "overlay",
		"kernel/fs/overlayfs/overlay.ko.zst":          "overlay",
		"virtio_net":                                  "virtio_net",
	} {
		if got := ModuleName(in); got != want {
			t.Errorf("ModuleName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text, want string
		parse            func(string) error
	}{
		{"alias without module", "alias virtio:d00000001v*\n", "line 1", parseAliasText},
		{"not an alias", "# comment\n\noptions foo bar=1\n", "line 3", parseAliasText},
		{"bad pattern", "alias pci:v[0000 foo\n", "line 1", parseAliasText},
		{"dep without colon", "kernel/a.ko kernel/b.ko\n", "line 1", parseDepText},
	} {
		err := tc.parse(tc.text)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one naming %q", tc.name, err, tc.want)
		}
	}
}

func parseAliasText(s string) error { _, err := parseAlias(strings.NewReader(s)); return err }
func parseDepText(s string) error   { _, _, err := parseDep(strings.NewReader(s)); return err }

func TestDependencyCycle(t *testing.T) {
	paths, deps, err := parseDep(strings.NewReader("a.ko: b.ko\nb.ko: a.ko\n"))
	if err != nil {
		t.Fatal(err)
	}
	m := &Modules{paths: paths, deps: deps, builtin: map[string]bool{}}
	if _, err := m.LoadOrder("a"); err == nil {
		t.Error("LoadOrder of a cycle: no error")
	}
}
