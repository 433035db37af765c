package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dyad-project/dyad/internal/testnet"
	"github.com/dyad-project/dyad/linuxkit-builder/qemu"
)

const (
	// envBoots overrides the number of timed boots of each image.
	envBoots = "DYAD_BENCH_BOOTS"

	defaultBoots = 5
	minBoots     = 5
	// buildRuns is the number of timed warm builds of examples/dhcp.yml.
	buildRuns = 5
	// vmBootTimeout bounds one boot under software emulation.
	vmBootTimeout = 5 * time.Minute
)

// The udhcpc image exists only here: busybox's udhcpc from Debian's
// busybox-static, with a script that does what dyad-dhcp's actuator does
// (address, default route, resolv.conf), under the dhcp image's grant.
const (
	udhcpcBuildYAML = `image: bench-udhcpc
org: dyad
arches:
  - amd64
buildArgs:
  - DEB=busybox-static
  - DEB_FILES=/bin/busybox:/bin/busybox
  - DEB_LINKS=/bin/sh,/bin/ip,/bin/echo,/sbin/udhcpc
  - FILES=udhcpc.script:/udhcpc.script
  - DIRS=/etc
config:
  binds:
    - /run/resolvconf:/etc
  capabilities:
    - CAP_NET_ADMIN
    - CAP_NET_RAW
    - CAP_NET_BIND_SERVICE
  readonly: true
  runtime:
    mkdir:
      - /run/resolvconf
`
	// udhcpcImageScript runs with udhcpc's environment: $ip, $mask (a prefix
	// length), $router and $dns, lists separated by spaces.
	udhcpcImageScript = `#!/bin/sh
case "$1" in
bound|renew)
	ip -4 addr add "$ip/$mask" dev "$interface"
	if [ -n "$router" ]; then
		set -- $router
		ip -4 route add default via "$1" dev "$interface"
	fi
	: >/etc/resolv.conf
	for ns in $dns; do
		echo "nameserver $ns" >>/etc/resolv.conf
	done
	echo "udhcpc.script: bound $ip/$mask"
	;;
esac
exit 0
`
	// vmCheck is the onboot step after the DHCP client's: it confirms
	// what the client configured, then names busybox's version for the
	// report.
	vmCheck = `if ip -4 addr show dev eth0 | grep -q 'inet 10\.0\.2\.15/24 ' && ip -4 route show default | grep -q 'via 10\.0\.2\.2 '; then ` +
		`echo 'bench: eth0 configured'; else echo 'bench: eth0 NOT configured'; ip -4 addr; ip -4 route; fi; ` +
		`echo "bench: busybox: $(busybox | busybox head -n 1)"`
)

// A vmImage is one of the images compared: examples/dhcp.yml with its
// onboot DHCP step replaced.
type vmImage struct {
	name string
	// image and command are the DHCP step's; shown is the command for
	// the report.
	image   string
	command []string
	// report is the DHCP step's console line saying the address is
	// configured.
	report string

	prefix     string // of the outputs of dyad build
	initrdSize int64
}

// A vmBoot is what one boot's console showed, each as the time from just
// before QEMU started to the host's reading of the line.
type vmBoot struct {
	created time.Duration // init's line about the DHCP step, after runc create
	report  time.Duration // the DHCP step's report of its address
	check   time.Duration // the next step's confirmation
	end     time.Duration // QEMU's exit after the power-off
}

// TestBenchVM boots examples/dhcp.yml's image, and the same image with
// busybox udhcpc as its onboot DHCP step, interleaved, and reads from the
// serial console how long each took to configure the address; it also
// times warm builds of examples/dhcp.yml. Without DYAD_BENCH=1 it is a
// smoke test: one boot of each, one build.
func TestBenchVM(t *testing.T) {
	testnet.RequireRoot(t)
	testnet.RequireTools(t, "qemu-system-x86_64", "depmod", "apt-get", "dpkg-deb")
	full := os.Getenv(envBench) == "1"
	boots, builds := 1, 1
	if full {
		boots, builds = vmBoots(t), buildRuns
	}
	dyad := binary(t, "dyad", "github.com/dyad-project/dyad/linuxkit-builder/cmd/dyad")
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	env := append(os.Environ(), "DYAD_CACHE="+filepath.Join(work, "cache"))

	udhcpcPkg := filepath.Join(work, "udhcpc")
	if err := os.Mkdir(udhcpcPkg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(udhcpcPkg, "build.yml"), []byte(udhcpcBuildYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(udhcpcPkg, "udhcpc.script"), []byte(udhcpcImageScript), 0o755); err != nil {
		t.Fatal(err)
	}
	images := []*vmImage{
		{
			name:  "dyad",
			image: "@pkg:" + filepath.Join(repo, "images/dhcp"),
			// examples/dhcp.yml's, LinuxKit's.
			command: []string{"/sbin/dhcpcd", "--nobackground", "-f", "/dhcpcd.conf", "-1"},
			report:  "msg=bound",
		},
		{
			name:  "udhcpc",
			image: "@pkg:" + udhcpcPkg,
			// udhcpc does not bring the link up (busybox 1.35 runs
			// no deconfig at start), and its sends fail while it is
			// down; dyad-dhcp brings it up itself.
			command: []string{"/bin/sh", "-c", "ip link set dev eth0 up && exec /sbin/udhcpc -i eth0 -f -q -n -s /udhcpc.script"},
			report:  "udhcpc.script: bound",
		},
	}
	for _, img := range images {
		img.prefix = buildVMImage(t, dyad, env, repo, work, img)
	}

	// Boots: round-robin, the order alternating, after an untimed round
	// that warms the host's page cache.
	times := map[string][]vmBoot{}
	var busybox string
	rounds := boots
	if full {
		rounds++
	}
	for round := range rounds {
		for i := range images {
			img := images[(i+round)%len(images)]
			b, console, err := bootVM(img)
			if err != nil {
				t.Fatalf("boot %d of %s: %v\nconsole:\n%s", round, img.name, err, console)
			}
			if v := consoleValue(console, "bench: busybox: "); v != "" {
				busybox, _, _ = strings.Cut(v, " multi-call")
			}
			if full && round == 0 {
				continue
			}
			times[img.name] = append(times[img.name], b)
		}
	}

	build := warmBuilds(t, dyad, env, repo, work, builds)
	report := renderVM(full, images, times, build, busybox)
	fmt.Print(report)
	if full {
		if err := os.WriteFile("RESULTS-vm.md", []byte(report), 0o644); err != nil {
			t.Errorf("writing RESULTS-vm.md: %v", err)
		}
	}
}

func vmBoots(t *testing.T) int {
	t.Helper()
	v := os.Getenv(envBoots)
	if v == "" {
		return defaultBoots
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < minBoots || n > 100 {
		t.Fatalf("%s=%q: want a number of boots from %d to 100", envBoots, v, minBoots)
	}
	return n
}

// buildVMImage writes img's LinuxKit file, builds it (and the images it
// names, into the cache), and returns the prefix of the outputs.
func buildVMImage(t *testing.T, dyad string, env []string, repo, work string, img *vmImage) string {
	t.Helper()
	pkg := func(name string) string { return strconv.Quote("@pkg:" + filepath.Join(repo, "images", name)) }
	quoted := func(args []string) string {
		q := make([]string, len(args))
		for i, a := range args {
			q[i] = strconv.Quote(a)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	yml := fmt.Sprintf(`kernel:
  image: %s
  cmdline: "console=ttyS0 console=ttyAMA0"
init:
  - %s
  - %s
onboot:
  - name: dhcp
    image: %s
    command: %s
  - name: check
    image: %s
    command: %s
  - name: poweroff
    image: %s
`, pkg("kernel"), pkg("init"), pkg("runc"), strconv.Quote(img.image), quoted(img.command),
		pkg("check"), quoted([]string{"/bin/sh", "-c", vmCheck}), pkg("poweroff"))
	file := filepath.Join(work, "bench-"+img.name+".yml")
	if err := os.WriteFile(file, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(work, "out")
	cmd := exec.Command(dyad, "build", "-dir", out, file)
	cmd.Env = env
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dyad build %s: %v\n%s", file, err, b)
	}
	prefix := filepath.Join(out, "bench-"+img.name)
	fi, err := os.Stat(prefix + "-initrd.img")
	if err != nil {
		t.Fatal(err)
	}
	img.initrdSize = fi.Size()
	return prefix
}

// bootVM boots img once and returns the times its console showed, and the
// console.
func bootVM(img *vmImage) (vmBoot, string, error) {
	w := &consoleClock{start: time.Now(), marks: map[string]time.Duration{}, watch: []string{
		"init: onboot 000-dhcp: pid ", img.report, "bench: eth0 configured",
	}}
	err := qemu.Run(context.Background(), img.prefix, qemu.Options{Timeout: vmBootTimeout, Console: w})
	end := time.Since(w.start)
	console := w.String()
	if err != nil {
		return vmBoot{}, console, err
	}
	b := vmBoot{end: end}
	for _, m := range []struct {
		pattern string
		into    *time.Duration
	}{{w.watch[0], &b.created}, {w.watch[1], &b.report}, {w.watch[2], &b.check}} {
		d, ok := w.mark(m.pattern)
		if !ok {
			return vmBoot{}, console, fmt.Errorf("the console has no line with %q", m.pattern)
		}
		*m.into = d
	}
	if !(b.created < b.report && b.report < b.check) {
		return vmBoot{}, console, fmt.Errorf("console lines out of order: container created %v, address reported %v, checked %v", b.created, b.report, b.check)
	}
	return b, console, nil
}

// consoleClock keeps a console and the time at which each watched string
// first appeared in a complete line of it.
type consoleClock struct {
	start time.Time
	watch []string

	mu      sync.Mutex
	buf     bytes.Buffer
	partial []byte
	marks   map[string]time.Duration
}

func (c *consoleClock) Write(p []byte) (int, error) {
	now := time.Since(c.start)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		line := string(c.partial[:i])
		c.partial = c.partial[i+1:]
		for _, w := range c.watch {
			if _, seen := c.marks[w]; !seen && strings.Contains(line, w) {
				c.marks[w] = now
			}
		}
	}
	return len(p), nil
}

func (c *consoleClock) mark(w string) (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.marks[w]
	return d, ok
}

func (c *consoleClock) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// consoleValue returns the rest of the last console line that starts with
// prefix (after init's "[NAME] " prefix, if any).
func consoleValue(console, prefix string) string {
	var v string
	sc := bufio.NewScanner(strings.NewReader(console))
	for sc.Scan() {
		if _, rest, ok := strings.Cut(sc.Text(), prefix); ok {
			v = strings.TrimSpace(rest)
		}
	}
	return v
}

// buildFigures are the warm builds of examples/dhcp.yml.
type buildFigures struct {
	times      []time.Duration
	maxRSSKB   int64
	initrdSize int64
	kernelSize int64
}

// warmBuilds builds examples/dhcp.yml n times with the cache the images'
// builds filled, after one untimed build (which builds nothing new: the
// example names the same packages).
func warmBuilds(t *testing.T, dyad string, env []string, repo, work string, n int) buildFigures {
	t.Helper()
	var f buildFigures
	out := filepath.Join(work, "example")
	for i := range n + 1 {
		cmd := exec.Command(dyad, "build", "-dir", out, filepath.Join(repo, "examples/dhcp.yml"))
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stderr, &stderr
		start := time.Now()
		err := cmd.Run()
		d := time.Since(start)
		if err != nil {
			t.Fatalf("dyad build examples/dhcp.yml: %v\n%s", err, stderr.Bytes())
		}
		if strings.Contains(stderr.String(), "building ") && i > 0 {
			t.Fatalf("a warm build of examples/dhcp.yml built an image:\n%s", stderr.Bytes())
		}
		if i == 0 {
			continue
		}
		f.times = append(f.times, d)
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			f.maxRSSKB = max(f.maxRSSKB, ru.Maxrss)
		}
	}
	for _, s := range []struct {
		suffix string
		into   *int64
	}{{"-initrd.img", &f.initrdSize}, {"-kernel", &f.kernelSize}} {
		fi, err := os.Stat(filepath.Join(out, "dhcp"+s.suffix))
		if err != nil {
			t.Fatal(err)
		}
		*s.into = fi.Size()
	}
	return f
}

// renderVM formats the results as Markdown.
func renderVM(full bool, images []*vmImage, times map[string][]vmBoot, build buildFigures, busybox string) string {
	var b strings.Builder
	switch cmd := os.Getenv(envCmd); {
	case cmd != "":
		fmt.Fprintf(&b, "Command: `%s` (that is, `%s`)\n\n", cmd, goTestCmd)
	case full:
		fmt.Fprintf(&b, "Command: `%s`\n\n", goTestCmd)
	default:
		b.WriteString("Command: `go test -run TestBenchVM ./bench/` (smoke run: one boot of each; `make bench` for figures)\n\n")
	}
	b.WriteString("# The one-line swap in QEMU: boot to address, build time, initrd size\n\n")
	var uts, qemuVersion string
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		uts = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("qemu-system-x86_64", "--version").Output(); err == nil {
		qemuVersion, _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
	}
	fmt.Fprintf(&b, "- %s, %s, %d CPUs, %s; %s\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), uts, runtime.NumCPU(), runtime.Version(), qemuVersion)
	b.WriteString("- Images: `examples/dhcp.yml`'s kernel, init, runc and onboot steps, with only the first onboot step (the DHCP client) differing, then a check and an immediate power-off. " +
		"**dyad**: `images/dhcp` with the example's command (LinuxKit's). " +
		"**udhcpc**: busybox's udhcpc (" + busybox + ", Debian's busybox-static) in an image built by the benchmark with the dhcp image's capabilities and binds; " +
		"its script adds the address and default route with `ip` and writes resolv.conf, as dyad-dhcp's actuator does.\n")
	b.WriteString("- QEMU as `dyad run qemu` starts it: TCG, `-cpu max`, 1 CPU, 1024 MiB, virtio-net on user networking (QEMU's DHCP server).\n")
	fmt.Fprintf(&b, "- Times: from just before QEMU starts to the host's reading of a serial console line. "+
		"*Address*: the DHCP step's own report that the address is set (dyad-dhcp's `bound`, logged once its actuator has set address and route; the udhcpc script's echo after `ip addr add` and `ip route add`). "+
		"*Checked*: the next onboot container's confirmation that eth0 has 10.0.2.15/24 and the default route via 10.0.2.2. "+
		"*DHCP step*: from init's line about the DHCP container (logged after `runc create`, before `runc start`) to its report. "+
		"*Power-off*: QEMU's exit. %d boots of each image, interleaved, the order alternating", len(times[images[0].name]))
	if full {
		b.WriteString(", after one untimed warm-up boot of each")
	}
	b.WriteString(".\n\n")

	b.WriteString("| image | DHCP step | address (median) | min | max | / dyad's | checked | DHCP step | / dyad's | power-off |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	pick := func(bs []vmBoot, f func(vmBoot) time.Duration) []time.Duration {
		ds := make([]time.Duration, len(bs))
		for i, x := range bs {
			ds[i] = f(x)
		}
		return ds
	}
	address := func(x vmBoot) time.Duration { return x.report }
	step := func(x vmBoot) time.Duration { return x.report - x.created }
	base := times[images[0].name]
	for _, img := range images {
		bs := times[img.name]
		as := pick(bs, address)
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s | %.2f | %s | %s | %.2f | %s |\n", img.name, strings.Join(img.command, " "),
			secs(median(as)), secs(slices.Min(as)), secs(slices.Max(as)), ratio(median(as), median(pick(base, address))),
			secs(median(pick(bs, func(x vmBoot) time.Duration { return x.check }))),
			secs(median(pick(bs, step))), ratio(median(pick(bs, step)), median(pick(base, step))),
			secs(median(pick(bs, func(x vmBoot) time.Duration { return x.end }))))
	}
	b.WriteString("\nInitrd of each (`dyad build`, kernel+initrd):\n\n| image | initrd bytes | MiB |\n|---|---:|---:|\n")
	for _, img := range images {
		fmt.Fprintf(&b, "| %s | %d | %.2f |\n", img.name, img.initrdSize, float64(img.initrdSize)/(1<<20))
	}

	fmt.Fprintf(&b, "\n## Building examples/dhcp.yml\n\n"+
		"`dyad build -dir DIR examples/dhcp.yml` with a warm cache (every image already built into it; one untimed build first), %d builds: "+
		"median %s, min %s, max %s; peak RSS of the build %.1f MiB (getrusage). Outputs: `dhcp-initrd.img` %d bytes (%.2f MiB), `dhcp-kernel` %d bytes (%.2f MiB).\n",
		len(build.times), secs(median(build.times)), secs(slices.Min(build.times)), secs(slices.Max(build.times)), float64(build.maxRSSKB)/1024,
		build.initrdSize, float64(build.initrdSize)/(1<<20), build.kernelSize, float64(build.kernelSize)/(1<<20))
	return b.String()
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
