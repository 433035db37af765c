// Package imagetest runs an image of dyad's as LinuxKit would, for the
// images' tests: built from its package, unpacked into a root on a tmpfs,
// read-only if its label says so, with the label's binds and capabilities.
package imagetest

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/internal/capname"
	"github.com/dyad-project/dyad/internal/testnet"
	"github.com/dyad-project/dyad/linuxkit-builder/imageconfig"
	"github.com/dyad-project/dyad/linuxkit-builder/pkgbuild"
	"github.com/dyad-project/dyad/sdk/audit"
)

// Hex prints a capability mask as /proc/PID/status does.
func Hex(mask uint64) string { return fmt.Sprintf("%016x", mask) }

// WaitFor polls cond for up to 20 s.
func WaitFor(t testing.TB, r *testnet.Proc, what string, cond func() bool) {
	t.Helper()
	for range 200 {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no %s within 20 s:\n%s", what, r.Output())
}

// Label is what an image's test wants of its label and command.
type Label struct {
	Capabilities []string // exactly these, in order
	Bind         string   // one of the binds
	Command      []string // the entrypoint and the command
}

// CheckLabel checks img and its label against want, and returns the audit
// the image carries, for the test's own checks.
func CheckLabel(t testing.TB, img v1.Image, label *imageconfig.Config, want Label) *audit.Audit {
	t.Helper()
	if label.Capabilities == nil || !slices.Equal(*label.Capabilities, want.Capabilities) {
		t.Errorf("capabilities %v, want %v only", label.Capabilities, want.Capabilities)
	}
	if label.Binds == nil || !slices.Contains(*label.Binds, want.Bind) {
		t.Errorf("binds %v: want %s", label.Binds, want.Bind)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cmd := append(cf.Config.Entrypoint, cf.Config.Cmd...); !slices.Equal(cmd, want.Command) {
		t.Errorf("command %q, want %q", cmd, want.Command)
	}
	a, err := audit.Parse([]byte(cf.Config.Labels[audit.Label]))
	if err != nil {
		t.Fatalf("audit label: %v", err)
	}
	return a
}

// Once builds a package's image once, for every test of a package that
// keeps one in a variable.
type Once struct {
	once  sync.Once
	img   v1.Image
	label *imageconfig.Config
	err   error
}

// Build builds the package in dir the first time it is called, and returns
// the image and its label.
func (o *Once) Build(t testing.TB, dir string) (v1.Image, *imageconfig.Config) {
	t.Helper()
	o.once.Do(func() {
		p, err := pkgbuild.Read(dir)
		if err != nil {
			o.err = err
			return
		}
		var log strings.Builder
		r, err := pkgbuild.Build(context.Background(), p, pkgbuild.Options{Tag: "test", Log: &log})
		if err != nil {
			o.err = fmt.Errorf("%v\n%s", err, log.String())
			return
		}
		o.img, o.label = r.Image, p.Config
	})
	if o.err != nil {
		t.Fatal(o.err)
	}
	return o.img, o.label
}

// Container is an image unpacked as LinuxKit's init would run it: the
// root read-only if the label says so, the label's binds from a private
// host tree, a /proc and a /dev.
type Container struct {
	root, host string
	label      *imageconfig.Config
}

func NewContainer(t testing.TB, img v1.Image, label *imageconfig.Config) *Container {
	t.Helper()
	dir := t.TempDir()
	c := &Container{root: filepath.Join(dir, "root"), host: filepath.Join(dir, "host"), label: label}
	// The root on a tmpfs of its own, without nosuid (the test's
	// temporary directory has it): engine-exec is set-user-ID.
	if err := os.Mkdir(c.root, 0o755); err != nil {
		t.Fatal(err)
	}
	mount(t, "tmpfs", c.root, "tmpfs", 0)
	unpack(t, img, c.root)
	for _, d := range []string{"proc", "dev"} {
		if err := os.MkdirAll(filepath.Join(c.root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mount(t, c.root, c.root, "", unix.MS_BIND)
	if label.Readonly != nil && *label.Readonly {
		mount(t, "", c.root, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY)
	}
	mount(t, "proc", filepath.Join(c.root, "proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC)
	mount(t, "tmpfs", filepath.Join(c.root, "dev"), "tmpfs", unix.MS_NOSUID)
	null := filepath.Join(c.root, "dev/null")
	if err := os.WriteFile(null, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	mount(t, "/dev/null", null, "", unix.MS_BIND)
	if label.Binds != nil {
		for _, b := range *label.Binds {
			src, dst, _ := strings.Cut(b, ":")
			dst, _, _ = strings.Cut(dst, ":")
			// A file of the image is covered by a file of the host
			// tree, anything else by a directory.
			if fi, err := os.Stat(filepath.Join(c.root, dst)); err == nil && fi.Mode().IsRegular() {
				if err := os.MkdirAll(filepath.Dir(c.HostPath(src)), 0o755); err != nil {
					t.Fatal(err)
				}
				f, err := os.OpenFile(c.HostPath(src), os.O_CREATE|os.O_WRONLY, 0o644)
				if err != nil {
					t.Fatal(err)
				}
				f.Close()
			} else if err := os.MkdirAll(c.HostPath(src), 0o755); err != nil {
				t.Fatal(err)
			}
			mount(t, c.HostPath(src), filepath.Join(c.root, dst), "", unix.MS_BIND)
		}
	}
	return c
}

// HostPath is where a host path of the label's binds is, in this test.
func (c *Container) HostPath(p string) string { return filepath.Join(c.host, p) }

// BindFile puts a file of the test over one of the image's.
func (c *Container) BindFile(t testing.TB, src, dst string) {
	t.Helper()
	abs, err := filepath.Abs(src)
	if err != nil {
		t.Fatal(err)
	}
	// A new bind ignores MS_RDONLY: read-only takes a remount.
	mount(t, abs, filepath.Join(c.root, dst), "", unix.MS_BIND)
	mount(t, "", filepath.Join(c.root, dst), "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY)
}

func mount(t testing.TB, src, dst, fstype string, flags uintptr) {
	t.Helper()
	if err := unix.Mount(src, dst, fstype, flags, ""); err != nil {
		t.Fatalf("mount %s on %s: %v", src, dst, err)
	}
	if flags&unix.MS_REMOUNT == 0 {
		t.Cleanup(func() { unix.Unmount(dst, unix.MNT_DETACH) })
	}
}

// Start starts args in the container, in network namespace netns, as root
// with the label's capabilities and no other, as LinuxKit's runc would.
func (c *Container) Start(t testing.TB, netns string, args []string) *testnet.Proc {
	t.Helper()
	var keep []uintptr
	if c.label.Capabilities != nil {
		for _, name := range *c.label.Capabilities {
			v, ok := capname.Number(name)
			if !ok {
				t.Fatalf("the label grants %s, which this test does not know", name)
			}
			keep = append(keep, uintptr(v))
		}
	}
	cmd := &exec.Cmd{
		Path: args[0],
		Args: args,
		Env:  []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Dir:  "/",
		SysProcAttr: &unix.SysProcAttr{
			Chroot:    c.root,
			Pdeathsig: unix.SIGKILL,
			// No supplementary groups, as runc gives a container
			// whose label names none.
			Credential: &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}},
		},
	}
	// The network namespace and the bounding set are the thread's.
	return testnet.StartCommandOn(t, cmd, func() error { return enter(netns, keep) })
}

// Run starts args in the container and waits for them.
func (c *Container) Run(t testing.TB, netns string, args []string, timeout time.Duration) ([]byte, error) {
	t.Helper()
	p := c.Start(t, netns, args)
	err := p.Wait(timeout)
	return p.Output(), err
}

// enter moves the calling thread into a network namespace and drops from
// its bounding set every capability but keep.
func enter(netns string, keep []uintptr) error {
	if err := testnet.EnterNamespace(netns); err != nil {
		return err
	}
	for cap := uintptr(0); cap <= unix.CAP_LAST_CAP; cap++ {
		if slices.Contains(keep, cap) {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, cap, 0, 0, 0); err != nil {
			return fmt.Errorf("dropping capability %d: %w", cap, err)
		}
	}
	return nil
}

// unpack writes the image's files under dir.
func unpack(t testing.TB, img v1.Image, dir string) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for range 1 << 16 {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, hdr.Name)
		if !strings.HasPrefix(p, dir+"/") && p != dir {
			t.Fatalf("image entry %q leaves the root", hdr.Name)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeSymlink:
			err = os.Symlink(hdr.Linkname, p)
		case tar.TypeReg:
			var b []byte
			if b, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(p, b, 0o600)
			}
		default:
			t.Fatalf("image entry %q of type %c", hdr.Name, hdr.Typeflag)
		}
		if err == nil && hdr.Typeflag != tar.TypeSymlink {
			// Chown before chmod: chown clears set-user-ID bits.
			if err = os.Lchown(p, hdr.Uid, hdr.Gid); err == nil {
				err = unix.Chmod(p, uint32(hdr.Mode&0o7777))
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("the image has too many entries")
}
