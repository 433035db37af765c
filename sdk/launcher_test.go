package sdk

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/internal/testnet"
)

func TestMain(m *testing.M) { os.Exit(testnet.Isolate(m)) }

// TestCheckLauncher: the supervisor runs engine-exec only if it is owned
// by the engine's user, set-user-ID and set-group-ID, written by nobody
// else, on a read-only file system that honours set-ID bits.
func TestCheckLauncher(t *testing.T) {
	testnet.RequireIsolated(t)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "mode=0755"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	file := func(name string, uid int, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/false\n"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	setID := os.ModeSetuid | os.ModeSetgid
	good := file("good", 2101, 0o755|setID)
	other := file("other", 2102, 0o755|setID)
	plain := file("plain", 2101, 0o755)
	writable := file("writable", 2101, 0o777|setID)
	check := func(path string) error {
		s := &Supervisor{EngineLauncher: path, EngineUID: 2101, EngineGID: 2101}
		return s.checkLauncher()
	}
	if err := check(good); err == nil || !strings.Contains(err.Error(), "writable file system") {
		t.Errorf("on a writable file system: %v", err)
	}
	// Read-only from here on, as the images' root.
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, want string
	}{
		{good, ""},
		{other, "owned by 2102:2102"},
		{plain, "not set-user-ID"},
		{writable, "written by others"},
		{filepath.Join(dir, "missing"), "no such file"},
	} {
		err := check(tc.path)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", filepath.Base(tc.path), err, tc.want)
		}
	}
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID, ""); err != nil {
		t.Fatal(err)
	}
	if err := check(good); err == nil || !strings.Contains(err.Error(), "nosuid") {
		t.Errorf("on a nosuid file system: %v", err)
	}
}
