package pkgbuild

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// debPackage is a Debian package, downloaded and unpacked.
type debPackage struct {
	// Name, Version and Depends are the package's own (its control
	// file's).
	Name, Version, Depends string
	// File is the .deb; Root is where it is unpacked.
	File, Root string
}

// String names the package as apt-get download takes it.
func (d *debPackage) String() string { return d.Name + "=" + d.Version }

// debVersionRE is a Debian version (Debian Policy 5.6.12).
var debVersionRE = regexp.MustCompile(`^([0-9]+:)?[0-9][A-Za-z0-9.+~-]*$`)

// maxMetaDepth bounds a chain of meta-packages.
const maxMetaDepth = 3

// fetchDeb downloads and unpacks the package name (the package of the
// recipe's key) under tmp, or, when name is a meta-package, the package it
// depends on. keep is Options.downloads.
func fetchDeb(ctx context.Context, key, name, tmp, keep string) (*debPackage, error) {
	want := name
	for range maxMetaDepth {
		pkg, err := fetchOne(ctx, want, tmp, keep)
		if err != nil {
			return nil, fmt.Errorf("pkgbuild: %s %s: %w", key, name, err)
		}
		meta, err := onlyDocs(pkg.Root)
		if err != nil {
			return nil, fmt.Errorf("pkgbuild: %s %s: %w", key, name, err)
		}
		if !meta {
			return pkg, nil
		}
		// A meta-package such as linux-image-cloud-amd64 ships nothing
		// but documentation, and depends, at its own version, on the
		// package that is current: that one is meant.
		dep, err := soleDependency(pkg.Depends)
		if err != nil {
			return nil, fmt.Errorf("pkgbuild: %s %s: %s ships nothing but documentation, and %w", key, name, pkg, err)
		}
		want = dep
	}
	return nil, fmt.Errorf("pkgbuild: %s %s: more than %d meta-packages in a row", key, name, maxMetaDepth)
}

// fetchOne downloads and unpacks one package, NAME or NAME=VERSION.
func fetchOne(ctx context.Context, spec, tmp, keep string) (*debPackage, error) {
	file, err := downloadDeb(ctx, spec, tmp, keep)
	if err != nil {
		return nil, err
	}
	fields, err := debFields(ctx, file)
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp(tmp, "deb-")
	if err != nil {
		return nil, err
	}
	if _, err := command(ctx, toolTimeout, "", "dpkg-deb", "-x", file, root); err != nil {
		return nil, err
	}
	return &debPackage{Name: fields["Package"], Version: fields["Version"], Depends: fields["Depends"], File: file, Root: root}, nil
}

// downloadDeb fetches the archive apt's lists name for spec (NAME or
// NAME=VERSION) and checks it against the SHA256 they give. With keep, an
// archive already there with that hash is used as it is, and a new one is
// left there.
func downloadDeb(ctx context.Context, spec, tmp, keep string) (string, error) {
	rec, err := aptRecord(ctx, spec)
	if err != nil {
		return "", err
	}
	// apt-get download's own name for it, ':' of an epoch escaped.
	name := fmt.Sprintf("%s_%s_%s.deb", rec["Package"], strings.ReplaceAll(rec["Version"], ":", "%3a"), rec["Architecture"])
	if keep != "" {
		kept := filepath.Join(keep, name)
		if err := checkSHA256(kept, rec["SHA256"]); err == nil {
			return kept, nil
		}
	}
	dir, err := os.MkdirTemp(tmp, "apt-")
	if err != nil {
		return "", err
	}
	pin := rec["Package"] + "=" + rec["Version"]
	if _, err := command(ctx, downloadTimeout, dir, "apt-get", "download", "-q", pin); err != nil {
		return "", err
	}
	got, err := filepath.Glob(filepath.Join(dir, "*.deb"))
	if err != nil || len(got) != 1 {
		return "", fmt.Errorf("apt-get download %s left %d archives, want 1", pin, len(got))
	}
	if err := checkSHA256(got[0], rec["SHA256"]); err != nil {
		return "", fmt.Errorf("apt-get download %s: %w", pin, err)
	}
	if keep == "" {
		return got[0], nil
	}
	return keepFile(got[0], keep, name)
}

// aptRecord is the package's record in apt's lists for the version apt
// would install: apt-cache show's fields. A virtual package that one
// package provides stands for that package.
func aptRecord(ctx context.Context, spec string) (map[string]string, error) {
	rec, err := aptShow(ctx, spec)
	if err != nil || rec != nil {
		return rec, err
	}
	if strings.Contains(spec, "=") {
		return nil, fmt.Errorf("apt-cache has no %s to download (do the lists need apt-get update?)", spec)
	}
	providers, err := aptProviders(ctx, spec)
	if err != nil {
		return nil, err
	}
	switch len(providers) {
	case 0:
		return nil, fmt.Errorf("apt-cache has no version of %s to download (do the lists need apt-get update?)", spec)
	case 1:
		if rec, err := aptShow(ctx, providers[0]); err != nil || rec != nil {
			return rec, err
		}
		return nil, fmt.Errorf("apt-cache has no version of %s, which provides %s, to download", providers[0], spec)
	default:
		return nil, fmt.Errorf("%s is a virtual package, provided by %s: name one", spec, strings.Join(providers, ", "))
	}
}

// aptShow is apt-cache show's record of spec, nil when it has none.
func aptShow(ctx context.Context, spec string) (map[string]string, error) {
	out, err := command(ctx, toolTimeout, "", "apt-cache", "show", "--no-all-versions", spec)
	if err != nil {
		return nil, err
	}
	rec := parseControl(out)
	for _, f := range []string{"Package", "Version", "Architecture", "SHA256"} {
		if rec[f] == "" {
			return nil, nil
		}
	}
	if !debNameRE.MatchString(rec["Package"]) || !debVersionRE.MatchString(rec["Version"]) || !debNameRE.MatchString(rec["Architecture"]) {
		return nil, fmt.Errorf("apt-cache show %s: odd record %s=%s (%s)", spec, rec["Package"], rec["Version"], rec["Architecture"])
	}
	return rec, nil
}

// aptProviders are the packages that provide a virtual package, from
// apt-cache showpkg's "Reverse Provides:" section.
func aptProviders(ctx context.Context, name string) ([]string, error) {
	out, err := command(ctx, toolTimeout, "", "apt-cache", "showpkg", name)
	if err != nil {
		return nil, err
	}
	return parseProviders(out), nil
}

// parseProviders reads the package names of apt-cache showpkg's "Reverse
// Provides:" section, sorted, each once.
func parseProviders(out []byte) []string {
	_, section, _ := bytes.Cut(out, []byte("\nReverse Provides:"))
	var names []string
	for i, line := range strings.Split(string(section), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) == 0 {
			continue // the rest of the heading's line
		}
		if !debNameRE.MatchString(f[0]) {
			break
		}
		if !slices.Contains(names, f[0]) {
			names = append(names, f[0])
		}
	}
	slices.Sort(names)
	return names
}

// debFields reads the control file of a .deb.
func debFields(ctx context.Context, file string) (map[string]string, error) {
	out, err := command(ctx, toolTimeout, "", "dpkg-deb", "-f", file)
	if err != nil {
		return nil, err
	}
	fields := parseControl(out)
	if !debNameRE.MatchString(fields["Package"]) || !debVersionRE.MatchString(fields["Version"]) {
		return nil, fmt.Errorf("%s: no valid Package and Version in its control file", filepath.Base(file))
	}
	return fields, nil
}

// parseControl reads the first paragraph of a Debian control file: Key:
// value lines, where a line starting with a space continues the value.
func parseControl(b []byte) map[string]string {
	fields := map[string]string{}
	last := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			if len(fields) > 0 {
				return fields
			}
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				fields[last] += "\n" + strings.TrimSpace(line)
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = k
			fields[k] = strings.TrimSpace(v)
		}
	}
	return fields
}

// soleDependency reads a meta-package's Depends: one package, which it
// returns as NAME=VERSION when the meta-package pins it to a version.
func soleDependency(depends string) (string, error) {
	var deps []string
	for _, d := range strings.Split(depends, ",") {
		if d = strings.TrimSpace(d); d != "" {
			deps = append(deps, d)
		}
	}
	if len(deps) != 1 || strings.Contains(deps[0], "|") {
		return "", fmt.Errorf("it depends on %q, not on one package: name the package meant", depends)
	}
	name, rel, _ := strings.Cut(deps[0], "(")
	name = strings.TrimSpace(name)
	name, _, _ = strings.Cut(name, ":") // an architecture qualifier
	if !debNameRE.MatchString(name) {
		return "", fmt.Errorf("it depends on %q, not a package name", deps[0])
	}
	rel = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rel), ")"))
	if v, ok := strings.CutPrefix(rel, "="); ok {
		if v = strings.TrimSpace(v); !debVersionRE.MatchString(v) {
			return "", fmt.Errorf("it depends on %q, not a version", deps[0])
		}
		return name + "=" + v, nil
	}
	return name, nil
}

// onlyDocs says whether an unpacked package holds nothing outside
// /usr/share: documentation, as a meta-package ships.
func onlyDocs(root string) (bool, error) {
	only := true
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(rel, "usr/share/") {
			only = false
			return fs.SkipAll
		}
		return nil
	})
	return only, err
}

func checkSHA256(file, want string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, want) {
		return fmt.Errorf("%s has SHA256 %s, and apt's lists say %s", filepath.Base(file), got, want)
	}
	return nil
}

// keepFile copies file into dir as name, through a temporary file and a
// rename, so that a build running beside this one never reads half of it.
func keepFile(file, dir, name string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	src, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer src.Close()
	dst, err := os.CreateTemp(dir, "."+name+"-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(dst.Name())
	_, err = io.Copy(dst, src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(dst.Name(), 0o644)
	}
	kept := filepath.Join(dir, name)
	if err == nil {
		err = os.Rename(dst.Name(), kept)
	}
	if err != nil {
		return "", fmt.Errorf("keeping %s in %s: %w", name, dir, err)
	}
	return kept, nil
}

// deb puts DEB_FILES and DEB_LINKS in the layer.
func (b *builder) deb(ctx context.Context) error {
	d := b.p.Recipe.Deb
	pkg, err := fetchDeb(ctx, "DEB", d.Package, b.tmp, b.opt.downloads)
	if err != nil {
		return err
	}
	b.labels[DebLabel] = pkg.String()
	root, err := os.OpenRoot(pkg.Root)
	if err != nil {
		return fmt.Errorf("pkgbuild: DEB %s: %w", d.Package, err)
	}
	defer root.Close()
	for i, f := range d.Files {
		data, mode, err := debFile(root, f.Source, b.arch)
		if err != nil {
			return fmt.Errorf("pkgbuild: DEB_FILES: /%s of %s: %w", f.Source, pkg, err)
		}
		if i == 0 && b.size == 0 {
			b.size = int64(len(data))
		}
		if err := b.files.file(f.Path, mode, data); err != nil {
			return err
		}
	}
	for _, l := range d.Links {
		if err := b.files.symlink(l, "/"+d.Files[0].Path); err != nil {
			return err
		}
	}
	return nil
}

// debFile reads a regular file of an unpacked package, and its mode; an
// executable must run in an image from scratch, without libraries.
func debFile(root *os.Root, name, arch string) ([]byte, int64, error) {
	fi, err := root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, errors.New("not in the package")
	}
	if err != nil {
		return nil, 0, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, _ := root.Readlink(name)
		return nil, 0, fmt.Errorf("a symbolic link to %s: name the file itself", target)
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("not a regular file (%v)", fi.Mode())
	}
	data, err := root.ReadFile(name)
	if err != nil {
		return nil, 0, err
	}
	if fi.Mode()&0o111 != 0 && bytes.HasPrefix(data, []byte(elf.ELFMAG)) {
		f, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			return nil, 0, err
		}
		if err := checkELF(f, "/"+name, arch); err != nil {
			return nil, 0, err
		}
	}
	return data, tarMode(fi.Mode()), nil
}
