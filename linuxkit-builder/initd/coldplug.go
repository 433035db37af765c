package initd

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

const (
	// maxColdplugPasses bounds the rescans of /sys/devices: each pass
	// loads the drivers of the devices the previous one made appear
	// (virtio_pci makes the virtio devices that need virtio_net); two or
	// three passes are the norm.
	maxColdplugPasses = 10
	// maxSysEntries bounds one walk of /sys/devices, which holds a few
	// thousand entries on a small VM.
	maxSysEntries = 500000
)

// errTooManyEntries stops a walk that went over maxSysEntries.
var errTooManyEntries = errors.New("too many entries")

// ColdplugResult is what Coldplug did.
type ColdplugResult struct {
	Loaded  []string // modules loaded, in load order
	Devices int      // distinct modaliases seen
	Passes  int
	Failed  map[string]error // module -> why it was not loaded
	// NoDevice counts modules that loaded no driver for lack of their
	// hardware (ENODEV): a modalias matched, the device is not theirs,
	// as with cpufreq drivers in a VM. modprobe is quiet about them too.
	NoDevice int
}

// Coldplug loads the modules for the devices present under devices
// (/sys/devices): every modalias file (but the CPU's, see skipModalias) is
// looked up in modules.alias and each module found is loaded with its
// dependencies. It scans again
// while a pass loads something, at most maxColdplugPasses times. A
// modalias no module matches is the common case (built-in drivers, or no
// driver at all) and not an error.
func Coldplug(devices string, k *Kmod) ColdplugResult {
	res := ColdplugResult{Failed: map[string]error{}}
	if k.mods == nil {
		res.Failed["modules"] = errNoModules
		return res
	}
	seen := map[string]bool{}
	for res.Passes < maxColdplugPasses {
		res.Passes++
		aliases, err := Modaliases(devices)
		if err != nil {
			res.Failed[devices] = err
		}
		before := len(res.Loaded)
		for _, a := range aliases {
			if seen[a] || skipModalias(a) {
				continue
			}
			seen[a] = true
			for _, name := range k.mods.Lookup(a) {
				loaded, err := k.Load(name)
				res.Loaded = append(res.Loaded, loaded...)
				switch {
				case errors.Is(err, unix.ENODEV):
					res.NoDevice++
				case err != nil:
					res.Failed[name] = err
				}
			}
		}
		if len(res.Loaded) == before {
			break
		}
	}
	res.Devices = len(seen)
	return res
}

// skipModalias reports whether coldplug leaves a modalias alone. The
// CPU's ("cpu:type:x86,...:feature:,...") selects no driver the machine
// needs, only accelerators (crypto, checksums, kvm, cpufreq, uncore), and
// loading them costs some 4 s of a 10 s boot under QEMU's software
// emulation, mostly for checking module signatures; the crypto API asks
// the kernel's modprobe helper (init) for the algorithms it is used with.
func skipModalias(a string) bool { return strings.HasPrefix(a, "cpu:") }

// Modaliases returns the distinct contents of the modalias files under
// dir, sorted. Symbolic links are not followed: /sys/devices is a tree,
// the links lead back into it.
func Modaliases(dir string) ([]string, error) {
	set := map[string]bool{}
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if n++; n > maxSysEntries {
			return errTooManyEntries
		}
		if err != nil {
			// A directory that vanished or will not list: skip it.
			if d != nil && d.IsDir() && p != dir {
				return fs.SkipDir
			}
			return nil
		}
		if d.Name() != "modalias" || !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil // some devices refuse the read; there is nothing to load for them
		}
		if a := strings.TrimSpace(string(b)); a != "" {
			set[a] = true
		}
		return nil
	})
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out, err
}
