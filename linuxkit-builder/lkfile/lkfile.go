// Package lkfile reads LinuxKit's YAML files the way LinuxKit does: every
// key it knows and no other, each of the right type, several files merged
// in order. An error names the file, the line and the path to the key.
package lkfile

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"gopkg.in/yaml.v3"

	"github.com/dyad-project/dyad/internal/capname"
	"github.com/dyad-project/dyad/linuxkit-builder/imageconfig"
)

// File is a LinuxKit YAML file, or several merged.
type File struct {
	Kernel     Kernel      `yaml:"kernel,omitempty"`
	Init       []string    `yaml:"init,omitempty"`
	Onboot     []*Image    `yaml:"onboot,omitempty"`
	Onshutdown []*Image    `yaml:"onshutdown,omitempty"`
	Services   []*Image    `yaml:"services,omitempty"`
	Files      []FileEntry `yaml:"files,omitempty"`
	Volumes    []*Volume   `yaml:"volumes,omitempty"`
	// Trust is accepted, as older LinuxKit files have it, and ignored:
	// images are named by digest instead.
	Trust *Trust `yaml:"trust,omitempty"`

	// Sources are the files read, in order.
	Sources []string `yaml:"-"`
	// InitDirs holds, for each init entry, the directory of the file that named
	// it, against which an @pkg: path is read.
	InitDirs []string `yaml:"-"`
}

// Kernel is the kernel section.
type Kernel struct {
	Image   string `yaml:"image,omitempty"`
	Cmdline string `yaml:"cmdline,omitempty"`
	// Binary is the kernel's file in the image (default "kernel").
	Binary string `yaml:"binary,omitempty"`
	// Tar is the tarball of modules in the image (default "kernel.tar",
	// "none" for none).
	Tar *string `yaml:"tar,omitempty"`
	// UCode is a CPU microcode cpio in the image, put before the initrd.
	UCode *string `yaml:"ucode,omitempty"`

	// Dir is the directory of the file that set Image.
	Dir string `yaml:"-"`
}

// Image is a container of onboot, onshutdown or services.
type Image struct {
	Name               string `yaml:"name"`
	Image              string `yaml:"image"`
	imageconfig.Config `yaml:",inline"`

	// Pos is where the entry is, for errors found later.
	Pos Pos `yaml:"-"`
	// Dir is the directory of its file, against which an @pkg: path is
	// read.
	Dir string `yaml:"-"`
}

// Pos is the place of an entry: its file, line and path.
type Pos struct {
	File string
	Line int
	Path string
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Path) }

// Problem makes a problem of the entry at p.
func (p Pos) Problem(format string, args ...any) Problem {
	return Problem{File: p.File, Line: p.Line, Path: p.Path, Msg: fmt.Sprintf(format, args...)}
}

// FileEntry is an entry of files.
type FileEntry struct {
	Path      string          `yaml:"path"`
	Directory bool            `yaml:"directory,omitempty"`
	Symlink   string          `yaml:"symlink,omitempty"`
	Contents  *string         `yaml:"contents,omitempty"`
	Source    string          `yaml:"source,omitempty"`
	Metadata  string          `yaml:"metadata,omitempty"`
	Optional  bool            `yaml:"optional,omitempty"`
	Mode      string          `yaml:"mode,omitempty"`
	UID       *imageconfig.ID `yaml:"uid,omitempty"`
	GID       *imageconfig.ID `yaml:"gid,omitempty"`

	Pos Pos `yaml:"-"`
	// Dir is the directory of its file, against which Source is read.
	Dir string `yaml:"-"`
}

// Volume is an entry of volumes: a directory that containers bind by name,
// empty or filled from an image.
type Volume struct {
	Name      string   `yaml:"name"`
	Image     string   `yaml:"image,omitempty"`
	ReadOnly  bool     `yaml:"readonly,omitempty"`
	Format    string   `yaml:"format,omitempty"`
	Platforms []string `yaml:"platforms,omitempty"`

	Pos Pos    `yaml:"-"`
	Dir string `yaml:"-"`
}

// Trust is the old trust section.
type Trust struct {
	Image []string `yaml:"image,omitempty"`
	Org   []string `yaml:"org,omitempty"`
}

// PkgPrefix starts an image that names a package directory of dyad's
// (build.yml) instead of a reference, as LinuxKit's @pkg: does.
const PkgPrefix = "@pkg:"

// nameRE is what a container or volume name may be: it becomes a
// directory name in the image and runc's container ID.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)

// maxFileSize bounds a YAML file.
const maxFileSize = 4 << 20

// Parse reads one file's bytes. file names it in errors; dir is where its
// relative paths (files' sources, @pkg: paths) are read from.
func Parse(file, dir string, b []byte) (*File, error) {
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("%s: %d bytes is too large for a LinuxKit file", file, len(b))
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Problems{{File: file, Line: extra.Line, Msg: "a second YAML document: put one in each file"}}
	}
	if len(doc.Content) == 0 {
		return &File{Sources: []string{file}}, nil
	}
	root := doc.Content[0]
	var ps Problems
	check(file, "", root, schema(), &ps)
	if len(ps) > 0 {
		return nil, ps
	}
	var f File
	if err := root.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	f.Sources = []string{file}
	f.Kernel.Dir = dir
	for range f.Init {
		f.InitDirs = append(f.InitDirs, dir)
	}
	// Where each entry came from, for the errors found after merging.
	lines := entryLines(root)
	for _, sec := range []struct {
		key  string
		list []*Image
	}{{"onboot", f.Onboot}, {"onshutdown", f.Onshutdown}, {"services", f.Services}} {
		for i, img := range sec.list {
			img.Pos = Pos{file, lines[sec.key][i], fmt.Sprintf("%s[%d]", sec.key, i)}
			img.Dir = dir
		}
	}
	for i := range f.Files {
		f.Files[i].Pos = Pos{file, lines["files"][i], fmt.Sprintf("files[%d]", i)}
		f.Files[i].Dir = dir
	}
	for i, v := range f.Volumes {
		v.Pos = Pos{file, lines["volumes"][i], fmt.Sprintf("volumes[%d]", i)}
		v.Dir = dir
	}
	if err := f.check(file, lines); err != nil {
		return nil, err
	}
	return &f, nil
}

// entryLines returns the line of each entry of each top-level list.
func entryLines(root *yaml.Node) map[string][]int {
	out := map[string][]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		// "services: *a" is the list the anchor names: its entries
		// are where that list is written.
		for v.Kind == yaml.AliasNode && v.Alias != nil {
			v = v.Alias
		}
		for _, item := range v.Content {
			out[k.Value] = append(out[k.Value], item.Line)
		}
	}
	return out
}

// check finds what the schema cannot: names, references, capabilities,
// binds, files.
func (f *File) check(file string, lines map[string][]int) error {
	var ps Problems
	add := func(p Problem) {
		if len(ps) < maxProblems {
			ps = append(ps, p)
		}
	}
	if f.Kernel.Image != "" {
		if err := checkRef(f.Kernel.Image); err != nil {
			add(Pos{file, lineOf(lines, "kernel", 0), "kernel.image"}.Problem("%v", err))
		}
	}
	for i, ref := range f.Init {
		if err := checkRef(ref); err != nil {
			add(Pos{file, lineOf(lines, "init", i), fmt.Sprintf("init[%d]", i)}.Problem("%v", err))
		}
	}
	for _, sec := range [][]*Image{f.Onboot, f.Onshutdown, f.Services} {
		for _, img := range sec {
			if err := img.check(); err != nil {
				add(img.Pos.Problem("%v", err))
			}
		}
	}
	for _, fe := range f.Files {
		if err := fe.check(); err != nil {
			add(fe.Pos.Problem("%v", err))
		}
	}
	for _, v := range f.Volumes {
		if !nameRE.MatchString(v.Name) {
			add(v.Pos.Problem("volume name %q: use lower-case letters, digits, '_', '-' and '.'", v.Name))
		}
		if v.Image != "" {
			if err := checkRef(v.Image); err != nil {
				add(v.Pos.Problem("%v", err))
			}
		}
		if v.Format != "" && v.Format != "oci" && v.Format != "filesystem" {
			add(v.Pos.Problem("volume format %q: want oci or filesystem", v.Format))
		}
	}
	if len(ps) > 0 {
		return ps
	}
	return nil
}

func lineOf(lines map[string][]int, key string, i int) int {
	if l := lines[key]; i < len(l) {
		return l[i]
	}
	return 0
}

// checkRef checks an image reference, or an @pkg: path.
func checkRef(ref string) error {
	if p, ok := strings.CutPrefix(ref, PkgPrefix); ok {
		if p == "" {
			return errors.New("@pkg: names no package directory")
		}
		return nil
	}
	if _, err := name.ParseReference(ref); err != nil {
		return fmt.Errorf("image %q: %w", ref, err)
	}
	return nil
}

func (img *Image) check() error {
	if !nameRE.MatchString(img.Name) {
		return fmt.Errorf("name %q: use lower-case letters, digits, '_', '-' and '.', starting with a letter or digit", img.Name)
	}
	if err := checkRef(img.Image); err != nil {
		return err
	}
	return checkConfig(img.Config)
}

// checkConfig checks the keys of an image's configuration that have a
// form of their own; it serves the YAML and the labels alike.
func checkConfig(c imageconfig.Config) error {
	for _, list := range []*[]string{c.Capabilities, c.CapabilitiesAdd, c.Ambient} {
		if err := checkCaps(list); err != nil {
			return err
		}
	}
	for _, list := range []*[]string{c.Binds, c.BindsAdd} {
		if list == nil {
			continue
		}
		for _, b := range *list {
			if _, err := parseBind(b); err != nil {
				return err
			}
		}
	}
	if c.Tmpfs != nil {
		for _, t := range *c.Tmpfs {
			if _, err := parseTmpfs(t); err != nil {
				return err
			}
		}
	}
	if c.Rlimits != nil {
		for _, r := range *c.Rlimits {
			if _, err := parseRlimit(r); err != nil {
				return err
			}
		}
	}
	if c.Devices != nil {
		for _, d := range *c.Devices {
			if d.Path == "all" {
				continue
			}
			if _, err := strconv.ParseUint(d.Mode, 8, 32); err != nil {
				return fmt.Errorf("device %s: mode %q is not octal", d.Path, d.Mode)
			}
		}
	}
	for _, ns := range []struct{ key, v string }{{"net", c.Net}, {"pid", c.Pid}, {"ipc", c.Ipc}, {"uts", c.Uts}, {"userns", c.Userns}} {
		switch v := ns.v; {
		case v == "", v == "host", v == "root", v == "new", v == "none" && ns.key == "net", path.IsAbs(v):
		default:
			return fmt.Errorf("%s: %q is not host, new, none or the path of a namespace", ns.key, v)
		}
	}
	return nil
}

// checkCaps checks a list of capabilities: known names, or one of "all"
// or "none" alone.
func checkCaps(list *[]string) error {
	if list == nil {
		return nil
	}
	if len(*list) == 1 {
		switch strings.ToLower((*list)[0]) {
		case "all", "none":
			return nil
		}
	}
	for _, c := range *list {
		if _, ok := capname.Number(c); !ok {
			return fmt.Errorf("unknown capability %q", c)
		}
	}
	return nil
}

func (fe *FileEntry) check() error {
	p := strings.TrimPrefix(fe.Path, "/")
	if p == "" || path.Clean(p) != p || strings.HasPrefix(p, "../") || p == ".." {
		return fmt.Errorf("path %q must be a clean path inside the image", fe.Path)
	}
	kinds := 0
	for _, set := range []bool{fe.Directory, fe.Symlink != "", fe.Contents != nil, fe.Source != "", fe.Metadata != ""} {
		if set {
			kinds++
		}
	}
	if kinds > 1 {
		return fmt.Errorf("%s: give one of directory, symlink, contents, source and metadata", fe.Path)
	}
	if fe.Metadata != "" && fe.Metadata != "yaml" {
		return fmt.Errorf("%s: metadata %q: the only kind is yaml", fe.Path, fe.Metadata)
	}
	if fe.Optional && fe.Source == "" {
		return fmt.Errorf("%s: optional is for a source", fe.Path)
	}
	if fe.Mode != "" {
		m, err := strconv.ParseUint(fe.Mode, 8, 32)
		if err != nil || m > 0o7777 {
			return fmt.Errorf("%s: mode %q is not an octal mode", fe.Path, fe.Mode)
		}
	}
	return nil
}

// Merge merges files in order, as LinuxKit does: a later kernel key
// replaces an earlier one, and every list is appended to. Service and
// volume names must stay unique.
func Merge(files ...*File) (*File, error) {
	out := &File{}
	for _, f := range files {
		if f.Kernel.Image != "" {
			out.Kernel.Image, out.Kernel.Dir = f.Kernel.Image, f.Kernel.Dir
		}
		if f.Kernel.Cmdline != "" {
			out.Kernel.Cmdline = f.Kernel.Cmdline
		}
		if f.Kernel.Binary != "" {
			out.Kernel.Binary = f.Kernel.Binary
		}
		if f.Kernel.Tar != nil {
			out.Kernel.Tar = f.Kernel.Tar
		}
		if f.Kernel.UCode != nil {
			out.Kernel.UCode = f.Kernel.UCode
		}
		out.Init = append(out.Init, f.Init...)
		out.InitDirs = append(out.InitDirs, f.InitDirs...)
		out.Onboot = append(out.Onboot, f.Onboot...)
		out.Onshutdown = append(out.Onshutdown, f.Onshutdown...)
		out.Services = append(out.Services, f.Services...)
		out.Files = append(out.Files, f.Files...)
		out.Volumes = append(out.Volumes, f.Volumes...)
		out.Sources = append(out.Sources, f.Sources...)
	}
	// An entry's first file and line, to name it in an error.
	services := map[string]string{}
	for _, s := range out.Services {
		if first, dup := services[s.Name]; dup {
			return nil, Problems{s.Pos.Problem("service name %q is taken by %s: services run side by side and need unique names", s.Name, first)}
		}
		services[s.Name] = s.Pos.String()
	}
	volumes := map[string]string{}
	for _, v := range out.Volumes {
		if first, dup := volumes[v.Name]; dup {
			return nil, Problems{v.Pos.Problem("volume name %q is taken by %s", v.Name, first)}
		}
		volumes[v.Name] = v.Pos.String()
	}
	for _, sec := range [][]*Image{out.Onboot, out.Onshutdown, out.Services} {
		for _, img := range sec {
			if err := checkVolumeBinds(img, volumes); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// checkVolumeBinds checks that a bind whose source is not a path names a
// volume.
func checkVolumeBinds(img *Image, volumes map[string]string) error {
	for _, list := range []*[]string{img.Binds, img.BindsAdd} {
		if list == nil {
			continue
		}
		for _, b := range *list {
			bind, _ := parseBind(b)
			if !path.IsAbs(bind.Source) {
				if _, ok := volumes[bind.Source]; !ok {
					return Problems{img.Pos.Problem("bind %q: no volume is called %q", b, bind.Source)}
				}
			}
		}
	}
	return nil
}

// Marshal writes f back as YAML, for a files entry with metadata: yaml.
func (f *File) Marshal() ([]byte, error) { return yaml.Marshal(f) }
