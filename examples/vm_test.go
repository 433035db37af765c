// Package examples holds LinuxKit YAML files that use dyad's images, and
// the VM tests that build each one with dyad build, boot it with dyad run
// qemu, and read what the guest prints on its serial console.
package examples

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dyad-project/dyad/internal/testnet"
	"github.com/dyad-project/dyad/linuxkit-builder/pkgbuild"
)

// bootTimeout bounds one boot under software emulation, modules, DHCP and
// the checks included.
const bootTimeout = 8 * time.Minute

// shared is what every VM test of the package uses: the dyad binary and
// one image cache, so that the images are built once.
var shared struct {
	once      sync.Once
	dyad, dir string
	err       error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

func setup(t *testing.T) (dyad, cacheDir string) {
	t.Helper()
	testnet.RequireRoot(t)
	testnet.RequireTools(t, "qemu-system-x86_64", "depmod", "apt-get", "dpkg-deb")
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "dyad-vm-test-")
		if shared.err != nil {
			return
		}
		if bin := os.Getenv("DYAD_BIN"); bin != "" {
			shared.dyad = filepath.Join(bin, "dyad")
			_, shared.err = os.Stat(shared.dyad)
			return
		}
		shared.dyad = filepath.Join(shared.dir, "dyad")
		out, err := exec.Command("go", "build", "-o", shared.dyad, "github.com/dyad-project/dyad/linuxkit-builder/cmd/dyad").CombinedOutput()
		if err != nil {
			shared.err = fmt.Errorf("go build dyad: %v\n%s", err, out)
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.dyad, filepath.Join(shared.dir, "cache")
}

// boot builds example into a kernel+initrd and boots it, returning the
// console.
func boot(t *testing.T, example string) string {
	t.Helper()
	return bootWith(t, example, nil, nil)
}

// bootWith is boot with more arguments for dyad run qemu, and a function
// told of each line of the console as it arrives.
func bootWith(t *testing.T, example string, runArgs []string, onLine func(line string, at time.Time)) string {
	t.Helper()
	dyad, cacheDir := setup(t)
	out := t.TempDir()
	name := strings.TrimSuffix(example, ".yml")
	cmd := exec.Command(dyad, "build", "-dir", out, example)
	cmd.Env = append(os.Environ(), "DYAD_CACHE="+cacheDir)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dyad build %s: %v\n%s", example, err, b)
	}
	var console bytes.Buffer
	args := append(append([]string{"run", "qemu", "-timeout", bootTimeout.String()}, runArgs...), filepath.Join(out, name))
	run := exec.Command(dyad, args...)
	run.Stdout, run.Stderr = &console, &console
	if onLine != nil {
		lw := &lineWriter{onLine: onLine}
		run.Stdout = io.MultiWriter(&console, lw)
		run.Stderr = run.Stdout
	}
	err := run.Run()
	t.Logf("console of %s:\n%s", example, console.String())
	if err != nil {
		t.Fatalf("dyad run qemu %s: %v (the guest must power off by itself)", name, err)
	}
	return console.String()
}

// labelCaps are the capabilities the dhcp image's label grants, as init
// prints them: sorted, comma-separated.
func labelCaps(t *testing.T) string {
	t.Helper()
	p, err := pkgbuild.Read("../images/dhcp")
	if err != nil {
		t.Fatal(err)
	}
	caps := slices.Clone(*p.Config.Capabilities)
	slices.Sort(caps)
	return strings.Join(caps, ",")
}

// containerLine finds init's line about a container it started, such as
// "init: onboot 000-dhcpcd: pid 123 uid 0 CapBnd A,B CapEff A,B NoNewPrivs 0".
func containerLine(t *testing.T, console, kind, name string) (bnd, eff string) {
	t.Helper()
	re := regexp.MustCompile(`init: ` + kind + ` ` + regexp.QuoteMeta(name) + `: pid \d+ uid (\d+) CapBnd (\S+) CapEff (\S+)`)
	m := re.FindStringSubmatch(console)
	if m == nil {
		t.Fatalf("the console has no line from init about %s %s", kind, name)
	}
	return m[2], m[3]
}

// TestDhcpExample boots LinuxKit's dhcpcd test with dyad's images: the
// onboot dhcpcd entry leases QEMU's address, and the check that follows
// finds it configured.
func TestDhcpExample(t *testing.T) {
	console := boot(t, "dhcp.yml")
	if !strings.Contains(console, "dhcp test suite PASSED") {
		t.Error("the check did not pass (see the console)")
	}
	for _, want := range []string{"inet 10.0.2.15/24", "default via 10.0.2.2", "nameserver 10.0.2.3"} {
		if !strings.Contains(console, want) {
			t.Errorf("the console does not show %q", want)
		}
	}
	bnd, eff := containerLine(t, console, "onboot", "000-dhcpcd")
	if want := labelCaps(t); bnd != want || eff != want {
		t.Errorf("the dhcpcd container held CapBnd %s CapEff %s; its label grants %s", bnd, eff, want)
	}
}

// TestDhcpServiceExample boots the one-shot dhcpcd plus the service: the
// service still holds the lease when the check runs.
func TestDhcpServiceExample(t *testing.T) {
	console := boot(t, "dhcp-service.yml")
	if !strings.Contains(console, "dhcp service test suite PASSED") {
		t.Error("the check did not pass (see the console)")
	}
	want := labelCaps(t)
	for _, c := range []struct{ kind, name string }{{"onboot", "000-dhcpcd"}, {"service", "dhcpcd"}} {
		if bnd, eff := containerLine(t, console, c.kind, c.name); bnd != want || eff != want {
			t.Errorf("%s %s held CapBnd %s CapEff %s; its label grants %s", c.kind, c.name, bnd, eff, want)
		}
	}
}

// lineWriter calls onLine with each complete line written to it, and the
// time it arrived.
type lineWriter struct {
	buf    []byte
	onLine func(string, time.Time)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	at := time.Now()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.onLine(strings.TrimRight(string(w.buf[:i]), "\r"), at)
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}
