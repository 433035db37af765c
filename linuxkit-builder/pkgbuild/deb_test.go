package pkgbuild

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseControl(t *testing.T) {
	in := "Package: linux-image-cloud-amd64\nVersion: 6.1.192-2\nDepends: a,\n b (= 1)\nDescription: x\n more\n\nPackage: second\n"
	f := parseControl([]byte(in))
	if f["Package"] != "linux-image-cloud-amd64" || f["Version"] != "6.1.192-2" || f["Depends"] != "a,\nb (= 1)" || f["Description"] != "x\nmore" {
		t.Errorf("parsed %q", f)
	}
}

func TestParseProviders(t *testing.T) {
	out := "Package: awk\nVersions: \n\nReverse Provides: \noriginal-awk 2022-09-12-1 (= )\nmawk 1.3.4 (= )\ngawk 1:5.2.1-2 (= )\nmawk 1.3.5 (= )\n"
	if got := parseProviders([]byte(out)); !slices.Equal(got, []string{"gawk", "mawk", "original-awk"}) {
		t.Errorf("providers %q", got)
	}
	if got := parseProviders([]byte("Package: x\nReverse Provides: \n")); len(got) != 0 {
		t.Errorf("providers %q, want none", got)
	}
}

func TestSoleDependency(t *testing.T) {
	for _, tc := range []struct{ depends, want, err string }{
		{"linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)", "linux-image-6.1.0-56-cloud-amd64=6.1.192-2", ""},
		{"busybox-static", "busybox-static", ""},
		{" foo:any (>= 1.0) ", "foo", ""},
		{"foo (= 1:2.3-4+b1),", "foo=1:2.3-4+b1", ""},
		{"a, b", "", "not on one package"},
		{"a | b", "", "not on one package"},
		{"", "", "not on one package"},
		{"(= 1)", "", "not a package name"},
		{"foo (= 1 2)", "", "not a version"},
		{"-o (= 1)", "", "not a package name"},
	} {
		got, err := soleDependency(tc.depends)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: got %q, %v; want an error with %q", tc.depends, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.depends, got, err, tc.want)
		}
	}
}

func TestOnlyDocs(t *testing.T) {
	meta := t.TempDir()
	writeFile(t, filepath.Join(meta, "usr/share/doc/x/copyright"), "c", 0o644)
	if err := os.Symlink("y", filepath.Join(meta, "usr/share/doc/z")); err != nil {
		t.Fatal(err)
	}
	real := t.TempDir()
	writeFile(t, filepath.Join(real, "usr/share/doc/x/copyright"), "c", 0o644)
	writeFile(t, filepath.Join(real, "bin/x"), "x", 0o755)
	for dir, want := range map[string]bool{meta: true, real: false} {
		if got, err := onlyDocs(dir); err != nil || got != want {
			t.Errorf("%s: got %v, %v; want %v", dir, got, err, want)
		}
	}
}

// TestDebFile: DEB_FILES takes regular files with their modes, and refuses
// links, directories, missing files and executables that need libraries.
func TestDebFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bin/script"), "#!/bin/sh\n", 0o755)
	writeFile(t, filepath.Join(dir, "sbin/suid"), "x", os.ModeSetuid|0o750)
	if err := os.Symlink("script", filepath.Join(dir, "bin/link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../..", filepath.Join(dir, "bin/up")); err != nil {
		t.Fatal(err)
	}
	// A dynamically linked program: the test binary itself, when it
	// is one.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "bin/dynamic"), string(b), 0o755)
	dynamic := checkBinary(self, runtime.GOARCH) != nil

	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, tc := range []struct {
		name string
		mode int64
		err  string
	}{
		{"bin/script", 0o755, ""},
		{"sbin/suid", 0o4750, ""},
		{"bin/link", 0, "a symbolic link to script"},
		{"bin", 0, "not a regular file"},
		{"bin/none", 0, "not in the package"},
		{"bin/up/etc/passwd", 0, "escapes"},
		{"bin/dynamic", 0, "dynamically linked"},
	} {
		if tc.name == "bin/dynamic" && !dynamic {
			continue
		}
		data, mode, err := debFile(root, tc.name, runtime.GOARCH)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: got %v, want an error with %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || mode != tc.mode || len(data) == 0 {
			t.Errorf("%s: mode %o, %d bytes, %v; want mode %o", tc.name, mode, len(data), err, tc.mode)
		}
	}
}

func TestGoModuleFlags(t *testing.T) {
	before := slices.Clone(GoBuildFlags)
	flags := goModuleFlags([]string{"seccomp", "netgo", "osusergo"})
	i := slices.Index(flags, "-tags")
	if i < 0 || flags[i+1] != "netgo,osusergo,seccomp" {
		t.Errorf("flags %q", flags)
	}
	if !slices.Equal(GoBuildFlags, before) {
		t.Errorf("GoBuildFlags changed to %q", GoBuildFlags)
	}
	if len(flags) != len(GoBuildFlags) || !slices.Contains(flags, "-trimpath") {
		t.Errorf("flags %q lost some of GoBuildFlags %q", flags, GoBuildFlags)
	}
}

// TestTree: entries come out sorted, owned by root, stamped with the
// epoch, with the directories above them; a path goes in once, and is a
// directory or not.
func TestTree(t *testing.T) {
	epoch := time.Unix(1700000000, 0)
	tr := newTree()
	for _, err := range []error{
		tr.file("b/z", 0o644, []byte("z")),
		tr.symlink("a", "/b/z"),
		tr.dir("b", 0o700),
		tr.dir("c/d", 0o755),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.file("a", 0o644, nil); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("a twice: %v", err)
	}
	data, err := tr.tar(epoch)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	r := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(epoch) {
			t.Errorf("%s: %d:%d %v", h.Name, h.Uid, h.Gid, h.ModTime)
		}
		if h.Name == "b/" && h.Mode != 0o700 {
			t.Errorf("b/: mode %o, want the 0700 given", h.Mode)
		}
	}
	if want := []string{"a", "b/", "b/z", "c/", "c/d/"}; !slices.Equal(names, want) {
		t.Errorf("entries %q, want %q", names, want)
	}
	again, _ := tr.tar(epoch)
	if !bytes.Equal(data, again) {
		t.Error("the same tree gave other bytes")
	}

	clash := newTree()
	clash.file("x", 0o644, nil)
	clash.file("x/y", 0o644, nil)
	if _, err := clash.tar(epoch); err == nil || !strings.Contains(err.Error(), "both a directory and a file") {
		t.Errorf("x and x/y: %v", err)
	}
}

func writeFile(t *testing.T, name, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode passes through the umask, and drops set-user-ID.
	if err := os.Chmod(name, mode); err != nil {
		t.Fatal(err)
	}
}
