package initd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeSys is a /sys/devices with the devices of a QEMU q35 guest that
// matter here; loading virtio_pci makes the virtio device appear, as the
// kernel does.
func fakeSys(t *testing.T) (sys string, load Loader, loads *[]string) {
	t.Helper()
	sys = t.TempDir()
	dev := filepath.Join(sys, "devices")
	for p, alias := range map[string]string{
		"pci0000:00/0000:00:00.0/modalias":  "pci:v00008086d000029C0sv00001AF4sd00001100bc06sc00i00",
		"pci0000:00/0000:00:02.0/modalias":  "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00",
		"pci0000:00/0000:00:03.0/modalias":  "pci:v00001AF4d00001005sv00001AF4sd00000004bc00scFFi00",
		"system/cpu/modalias":               "cpu:type:x86,ven0000fam0006mod003F:feature:,0000,0001,0099,00E0\n",
		"platform/serial8250/modalias":      "platform:serial8250",
		"platform/serial8250/tty/ttyS0/dev": "4:64",
		"LNXSYSTM:00/modalias":              "acpi:LNXSYSTM:",
		"platform/LNRO0005:00/modalias":     "acpi:LNRO0005:",
		"virtual/empty/modalias":            "",
	} {
		writeFile(t, filepath.Join(dev, p), alias, 0o444)
	}
	// sysfs is full of links back up the tree; following them would loop.
	if err := os.Symlink("../..", filepath.Join(dev, "pci0000:00/0000:00:02.0/subsystem")); err != nil {
		t.Fatal(err)
	}
	loads = new([]string)
	load = func(file string) error {
		*loads = append(*loads, ModuleName(file))
		switch ModuleName(file) {
		case "virtio_pci":
			writeFile(t, filepath.Join(dev, "pci0000:00/0000:00:02.0/virtio0/modalias"), "virtio:d00000001v00001AF4\n", 0o444)
			writeFile(t, filepath.Join(dev, "pci0000:00/0000:00:03.0/virtio1/modalias"), "virtio:d00000004v00001AF4\n", 0o444)
		case "virtio_rng":
			return errors.New("fake: no")
		case "virtio_mmio":
			return fmt.Errorf("finit_module %s: %w", file, unix.ENODEV) // no such device here
		}
		return nil
	}
	return sys, load, loads
}

func TestColdplug(t *testing.T) {
	for _, tc := range []struct {
		name       string
		loaded     []string // /sys/module entries before coldplug
		wantLoaded []string
		wantPasses int
		wantFailed []string
	}{
		{
			name: "from nothing",
			wantLoaded: []string{
				"virtio_ring", "virtio", // for virtio_mmio, which finds no device
				"virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci",
				"failover", "net_failover", "virtio_net",
			},
			wantPasses: 3,
			wantFailed: []string{"virtio_rng"},
		},
		{
			name:   "virtio already loaded",
			loaded: []string{"virtio_ring", "virtio"},
			wantLoaded: []string{
				"virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci",
				"failover", "net_failover", "virtio_net",
			},
			wantPasses: 3,
			wantFailed: []string{"virtio_rng"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sys, load, loads := fakeSys(t)
			for _, m := range tc.loaded {
				writeFile(t, filepath.Join(sys, "module", m, "initstate"), "live\n", 0o444)
			}
			k := NewKmod(testModules(t), load, filepath.Join(sys, "module"))
			res := Coldplug(filepath.Join(sys, "devices"), k)
			if !slices.Equal(res.Loaded, tc.wantLoaded) {
				t.Errorf("loaded %q\nwant   %q", res.Loaded, tc.wantLoaded)
			}
			// virtio_rng fails and virtio_mmio finds no device, each
			// tried once only; the CPU's modalias (aesni_intel) is left
			// alone.
			wantCalls := append(slices.Clone(tc.wantLoaded), "virtio_rng", "virtio_mmio")
			slices.Sort(wantCalls)
			calls := slices.Clone(*loads)
			slices.Sort(calls)
			if !slices.Equal(calls, wantCalls) {
				t.Errorf("loader called for %q\nwant             %q", calls, wantCalls)
			}
			if res.NoDevice != 1 {
				t.Errorf("%d modules without their device, want 1 (virtio_mmio)", res.NoDevice)
			}
			if res.Passes != tc.wantPasses {
				t.Errorf("%d passes, want %d", res.Passes, tc.wantPasses)
			}
			var failed []string
			for m, err := range res.Failed {
				failed = append(failed, m)
				if !strings.Contains(err.Error(), "virtio_rng: fake: no") {
					t.Errorf("failure of %s: %v, want it to name virtio_rng", m, err)
				}
			}
			slices.Sort(failed)
			if !slices.Equal(failed, tc.wantFailed) {
				t.Errorf("failed %q, want %q", failed, tc.wantFailed)
			}
			// A module asked for again is not loaded again.
			before := len(*loads)
			if _, err := k.LoadAlias("virtio:d00000001v00001AF4"); err != nil {
				t.Error(err)
			}
			if len(*loads) != before {
				t.Errorf("virtio_net loaded a second time")
			}
		})
	}
}

func TestModaliases(t *testing.T) {
	sys, _, _ := fakeSys(t)
	got, err := Modaliases(filepath.Join(sys, "devices"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"acpi:LNRO0005:",
		"acpi:LNXSYSTM:",
		"cpu:type:x86,ven0000fam0006mod003F:feature:,0000,0001,0099,00E0",
		"pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00",
		"pci:v00001AF4d00001005sv00001AF4sd00000004bc00scFFi00",
		"pci:v00008086d000029C0sv00001AF4sd00001100bc06sc00i00",
		"platform:serial8250",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Modaliases = %q\nwant %q", got, want)
	}
}

func TestLoadAliasForMount(t *testing.T) {
	var loads []string
	k := NewKmod(testModules(t), func(f string) error { loads = append(loads, ModuleName(f)); return nil }, "")
	for _, tc := range []struct {
		alias   string
		want    []string
		wantErr bool
	}{
		{"fs-overlay", []string{"overlay"}, false},
		{"fs-overlay", nil, false}, // already loaded
		{"fs-ext4", nil, true},     // no alias: built in, the mount's own error stands
		{"rtnl-link-veth", []string{"veth"}, false},
	} {
		got, err := k.LoadAlias(tc.alias)
		if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
			t.Errorf("LoadAlias(%s) = %q, %v; want %q, error %v", tc.alias, got, err, tc.want, tc.wantErr)
		}
	}
	if !slices.Equal(loads, []string{"overlay", "veth"}) {
		t.Errorf("loaded %q", loads)
	}
	none := NewKmod(nil, nil, "")
	if _, err := none.LoadAlias("fs-overlay"); !errors.Is(err, errNoModules) {
		t.Errorf("without modules: %v", err)
	}
}
