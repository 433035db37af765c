// Package pkgbuild builds a dyad image from a package directory: it reads
// build.yml in LinuxKit's package format and assembles a one-layer OCI image
// from scratch, the same bytes from the same source.
//
// The recipe is in buildArgs, as KEY=VALUE strings. An image holds one or
// more of: a static Go binary of this module (GO_PACKAGE) or of another
// module at a pinned version (GO_MODULE), files of a Debian package (DEB),
// or else a LinuxKit kernel made of a Debian kernel package (KERNEL), which
// stands alone. The keys:
//
//	GO_PACKAGE   ./PATH or import path: a main package of this module
//	GO_MODULE    MODULE@VERSION: a module at a release or pseudo-version,
//	             whose main package (GO_MAIN) is built with its own go.mod
//	             (and vendor/, if it has one)
//	GO_MAIN      . or ./DIR: the main package in GO_MODULE (default .)
//	GO_TAGS      build tags for GO_MODULE, added to GoBuildFlags' own
//	BINARY       where the Go binary goes, also the entry point
//	CMD          the default arguments (space-separated)
//	LINKS        more names for BINARY (comma-separated paths)
//	ENGINE_USER  NAME:UID:GID, written to /etc/passwd and /etc/group
//	             (without it the image has no /etc); needed by AUDIT and
//	             LAUNCHER
//	FILES        SOURCE:PATH,...: files of the package directory, mode
//	             0755 if the source is executable, else 0644
//	DIRS         empty directories, for mount points
//	AUDIT        arguments with which BINARY prints its audit
//	LAUNCHER     GO_PACKAGE:PATH: engine-exec, set-user-ID to ENGINE_USER
//	DEB          a Debian package, fetched with apt-get download; a
//	             meta-package stands for the one package it depends on,
//	             a virtual package for the one package that provides it
//	DEB_FILES    SOURCE:PATH,...: files of DEB (paths as dpkg -L prints
//	             them) and where they go, each keeping its mode
//	DEB_LINKS    more names for the first of DEB_FILES (busybox's applets)
//	KERNEL       a Debian kernel package (or meta-package, as for DEB):
//	             the image holds /kernel, /kernel.tar (lib/modules/VERSION
//	             with depmod's indexes), /System.map and /config
//
// config: becomes the image's org.mobyproject.config label; a build.yml
// without config: gives an image without the label, as LinuxKit's kernel
// and init images are. What came from outside the module is named in the
// labels [GoModuleLabel] and [DebLabel].
package pkgbuild

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/dyad-project/dyad/linuxkit-builder/imageconfig"
)

// Package is a build.yml. The keys are LinuxKit's; dyad reads its build
// recipe from buildArgs, where LinuxKit passes arguments to the build.
type Package struct {
	Image               string              `yaml:"image"`
	Org                 string              `yaml:"org"`
	Arches              []string            `yaml:"arches"`
	GitRepo             string              `yaml:"gitrepo"`
	Network             bool                `yaml:"network"`
	DisableCache        bool                `yaml:"disable-cache"`
	DisableContentTrust bool                `yaml:"disable-content-trust"`
	Tag                 string              `yaml:"tag"`
	BuildArgs           []string            `yaml:"buildArgs"`
	Annotations         map[string]string   `yaml:"annotations"`
	Config              *imageconfig.Config `yaml:"config"`

	// Recipe is what buildArgs say.
	Recipe Recipe `yaml:"-"`
	// Dir is the package directory.
	Dir string `yaml:"-"`

	// hasConfig says build.yml has a config: key. Without one the image
	// gets no org.mobyproject.config label, as LinuxKit's kernel and init
	// images have none.
	hasConfig bool
}

// Recipe says what goes into the image. See the package documentation
// for the buildArgs keys behind each field.
type Recipe struct {
	// GoPackage is the main package of the daemon (GO_PACKAGE).
	GoPackage string
	// GoModule is the main package of another module (GO_MODULE, GO_MAIN,
	// GO_TAGS), built instead of a GoPackage.
	GoModule *GoModule
	// Binary is where the binary of GoPackage or GoModule goes in the
	// image (BINARY), also the entry point.
	Binary string
	// Cmd is the image's default arguments (CMD, space-separated).
	Cmd []string
	// Links are more names for the binary (LINKS, comma-separated).
	Links []string
	// User is the engine's user, name:uid:gid (ENGINE_USER), written to the
	// image's /etc/passwd and /etc/group.
	User User
	// Files are files of the package directory copied into the image
	// (FILES, comma-separated SOURCE:PATH).
	Files []File
	// Dirs are empty directories made in the image (DIRS,
	// comma-separated), for mount points.
	Dirs []string
	// Launcher is a second program (LAUNCHER, GO_PACKAGE:PATH) put in the
	// image set-user-ID and set-group-ID to the engine's user: engine-exec,
	// by which the daemon starts its engine without CAP_SETUID.
	Launcher *Launcher
	// Audit are the arguments (AUDIT, space-separated) with which the
	// built binary, run in the package directory, prints its audit.Audit;
	// the build embeds what it prints in the image.
	Audit []string
	// Deb is what the image takes from a Debian package (DEB, DEB_FILES,
	// DEB_LINKS).
	Deb *Deb
	// Kernel is a Debian kernel package (KERNEL), or a meta-package that
	// depends on one, made into a LinuxKit kernel image. It goes with no
	// other key.
	Kernel string
}

// GoModule is a main package of a module other than this one.
type GoModule struct {
	// Path and Version name the module (GO_MODULE=PATH@VERSION). The
	// version is a release or a pseudo-version, never a query such as
	// latest or a branch: the same recipe must build the same source.
	Path, Version string
	// Main is the main package's directory in the module as go build
	// takes it, "." or "./DIR" (GO_MAIN, default ".").
	Main string
	// Tags are build tags added to those of GoBuildFlags (GO_TAGS,
	// separated by spaces or commas).
	Tags []string
}

// Deb is what the image takes from a Debian package.
type Deb struct {
	// Package is the package's name (DEB). A meta-package, which ships
	// nothing but documentation, stands for the one package it depends on.
	Package string
	// Files are files of the package and their paths in the image
	// (DEB_FILES, comma-separated SOURCE:PATH, both absolute; held here
	// without the leading slash). Each keeps its mode.
	Files []File
	// Links are more names for the first of Files (DEB_LINKS,
	// comma-separated), as busybox answers to the name of each applet.
	Links []string
}

// Launcher is the program of LAUNCHER.
type Launcher struct {
	GoPackage, Path string
}

// User is a user and group of the same name.
type User struct {
	Name     string
	UID, GID uint32
}

// File is a file of the package directory (or, in Deb, of the Debian
// package) and its path in the image.
type File struct{ Source, Path string }

var (
	nameRE = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*$`)
	userRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	// goPackageRE is a relative package path or an import path.
	goPackageRE = regexp.MustCompile(`^(\./|[a-zA-Z0-9])[a-zA-Z0-9._/-]*$`)
	// modulePathRE is a module path whose first element is a domain name.
	modulePathRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*(\.[a-z0-9-]+)+(/[A-Za-z0-9._~+-]+)*$`)
	// moduleVersionRE is a semantic version: a release, a pre-release or
	// a pseudo-version, which all name one commit for good.
	moduleVersionRE = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+incompatible)?$`)
	// goMainRE is a directory of a module, no element of which reads as
	// a flag.
	goMainRE = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9._-]*(/[A-Za-z0-9_.][A-Za-z0-9._-]*)*$`)
	goTagRE  = regexp.MustCompile(`^[A-Za-z0-9_.]+$`)
	// debNameRE is a Debian package name (Debian Policy 5.6.7); it never
	// reads as an option of apt-get.
	debNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
)

// Read reads and checks dir/build.yml.
func Read(dir string) (*Package, error) {
	file := filepath.Join(dir, "build.yml")
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("pkgbuild: %w", err)
	}
	p, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("pkgbuild: %s: %w", file, err)
	}
	p.Dir = dir
	for _, f := range p.Recipe.Files {
		if _, err := os.Stat(filepath.Join(dir, f.Source)); err != nil {
			return nil, fmt.Errorf("pkgbuild: %s: buildArgs FILES: %w", file, err)
		}
	}
	return p, nil
}

// Parse reads a build.yml strictly; Read also checks the files it names.
func Parse(b []byte) (*Package, error) {
	var p Package
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty")
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document")
	}
	if !nameRE.MatchString(p.Image) {
		return nil, fmt.Errorf("image: %q is not a valid image name", p.Image)
	}
	if p.Org == "" {
		p.Org = "dyad"
	}
	if !nameRE.MatchString(p.Org) {
		return nil, fmt.Errorf("org: %q is not a valid organisation", p.Org)
	}
	for _, a := range p.Arches {
		if a != "amd64" && a != "arm64" {
			return nil, fmt.Errorf("arches: %q is not an architecture dyad builds for", a)
		}
	}
	p.hasConfig = p.Config != nil
	if p.Config == nil {
		p.Config = &imageconfig.Config{}
	}
	if _, ok := p.Annotations[imageconfig.LabelKey]; ok {
		return nil, fmt.Errorf("annotations: %s is written from config:, not set here", imageconfig.LabelKey)
	}
	for _, k := range []string{GoModuleLabel, DebLabel} {
		if _, ok := p.Annotations[k]; ok {
			return nil, fmt.Errorf("annotations: %s is written by the build, not set here", k)
		}
	}
	r, err := parseRecipe(p.BuildArgs)
	if err != nil {
		return nil, err
	}
	p.Recipe = r
	return &p, nil
}

// recipeKeys are the buildArgs keys, in the order errors list them.
var recipeKeys = []string{"GO_PACKAGE", "GO_MODULE", "GO_MAIN", "GO_TAGS", "BINARY", "CMD", "LINKS", "ENGINE_USER",
	"FILES", "DIRS", "AUDIT", "LAUNCHER", "DEB", "DEB_FILES", "DEB_LINKS", "KERNEL"}

func parseRecipe(args []string) (Recipe, error) {
	var r Recipe
	seen := map[string]bool{}
	var goMain string
	var goTags []string
	var deb Deb
	for _, a := range args {
		key, value, ok := strings.Cut(a, "=")
		if !ok {
			return r, fmt.Errorf("buildArgs: %q is not KEY=VALUE", a)
		}
		if seen[key] {
			return r, fmt.Errorf("buildArgs: %s given twice", key)
		}
		seen[key] = true
		var err error
		switch key {
		case "GO_PACKAGE":
			// Handed to go build: it must not read as a flag.
			if !goPackageRE.MatchString(value) {
				err = fmt.Errorf("%q is not ./PATH or an import path", value)
			}
			r.GoPackage = value
		case "GO_MODULE":
			r.GoModule, err = parseGoModule(value)
		case "GO_MAIN":
			goMain, err = parseGoMain(value)
		case "GO_TAGS":
			goTags, err = parseGoTags(value)
		case "BINARY":
			r.Binary, err = imagePath(value)
		case "CMD":
			r.Cmd = strings.Fields(value)
		case "LINKS":
			r.Links, err = imagePaths(value)
		case "ENGINE_USER":
			r.User, err = parseUser(value)
		case "FILES":
			for _, f := range strings.Split(value, ",") {
				src, dst, ok := strings.Cut(f, ":")
				if !ok || src == "" || !filepath.IsLocal(src) {
					err = fmt.Errorf("%q is not SOURCE:PATH with SOURCE inside the package", f)
					break
				}
				if dst, err = imagePath(dst); err != nil {
					break
				}
				r.Files = append(r.Files, File{Source: src, Path: dst})
			}
		case "DIRS":
			r.Dirs, err = imagePaths(value)
		case "AUDIT":
			r.Audit = strings.Fields(value)
		case "LAUNCHER":
			pkg, dst, ok := strings.Cut(value, ":")
			if !ok || !goPackageRE.MatchString(pkg) {
				err = fmt.Errorf("%q is not GO_PACKAGE:PATH", value)
				break
			}
			r.Launcher = &Launcher{GoPackage: pkg}
			r.Launcher.Path, err = imagePath(dst)
		case "DEB":
			deb.Package, err = debName(value)
		case "DEB_FILES":
			deb.Files, err = parseDebFiles(value)
		case "DEB_LINKS":
			deb.Links, err = imagePaths(value)
		case "KERNEL":
			r.Kernel, err = debName(value)
		default:
			err = fmt.Errorf("unknown (%s)", strings.Join(recipeKeys, ", "))
		}
		if err != nil {
			return r, fmt.Errorf("buildArgs %s: %w", key, err)
		}
	}
	if r.GoModule != nil {
		if goMain != "" {
			r.GoModule.Main = goMain
		}
		r.GoModule.Tags = goTags
	}
	if seen["DEB"] || seen["DEB_FILES"] || seen["DEB_LINKS"] {
		r.Deb = &deb
	}
	return r, checkRecipe(r, seen)
}

// checkRecipe checks that the keys given make one image together.
func checkRecipe(r Recipe, seen map[string]bool) error {
	if r.Kernel != "" {
		for _, k := range recipeKeys {
			if seen[k] && k != "KERNEL" {
				return fmt.Errorf("buildArgs KERNEL: a kernel image holds the kernel and its modules only: %s does not go with it", k)
			}
		}
		return nil
	}
	program := r.GoPackage != "" || r.GoModule != nil
	switch {
	case r.GoPackage != "" && r.GoModule != nil:
		return errors.New("buildArgs: GO_PACKAGE and GO_MODULE both name BINARY's program: give one")
	case r.GoModule == nil && seen["GO_MAIN"]:
		return errors.New("buildArgs GO_MAIN: a package of GO_MODULE, and there is no GO_MODULE")
	case r.GoModule == nil && seen["GO_TAGS"]:
		return errors.New("buildArgs GO_TAGS: tags for GO_MODULE, and there is no GO_MODULE (GO_PACKAGE builds with GoBuildFlags' tags)")
	case !program && r.Binary != "":
		return fmt.Errorf("buildArgs: GO_PACKAGE missing: BINARY /%s needs a program, from GO_PACKAGE or GO_MODULE", r.Binary)
	case program && r.Binary == "":
		return errors.New("buildArgs: BINARY missing: where does the Go program go?")
	case !program && len(r.Links) > 0:
		return errors.New("buildArgs LINKS: names for BINARY, and there is none (DEB_LINKS name a file of DEB)")
	case !program && len(r.Audit) > 0:
		return errors.New("buildArgs AUDIT: arguments for BINARY, and there is none")
	case r.User.Name == "" && len(r.Audit) > 0:
		return errors.New("buildArgs: ENGINE_USER missing: AUDIT checks the engine's user against it")
	case r.User.Name == "" && r.Launcher != nil:
		return errors.New("buildArgs: ENGINE_USER missing: LAUNCHER is set-user-ID to it")
	case !program && r.Deb == nil:
		return errors.New("buildArgs: nothing to build: give GO_PACKAGE, GO_MODULE, DEB or KERNEL")
	}
	if d := r.Deb; d != nil {
		switch {
		case d.Package == "":
			return errors.New("buildArgs: DEB missing: DEB_FILES and DEB_LINKS name files of a Debian package")
		case len(d.Files) == 0:
			return fmt.Errorf("buildArgs: DEB_FILES missing: which files of %s go into the image?", d.Package)
		}
	}
	return nil
}

// parseGoModule reads MODULE@VERSION.
func parseGoModule(s string) (*GoModule, error) {
	mod, version, ok := strings.Cut(s, "@")
	if !ok {
		return nil, fmt.Errorf("%q is not MODULE@VERSION", s)
	}
	if !modulePathRE.MatchString(mod) || path.Clean(mod) != mod || strings.Contains(mod, "/.") {
		return nil, fmt.Errorf("%q is not a module path", mod)
	}
	if !moduleVersionRE.MatchString(version) {
		return nil, fmt.Errorf("%q is not a release or pseudo-version (vX.Y.Z...): a query or a branch would build other source another day", version)
	}
	return &GoModule{Path: mod, Version: version, Main: "."}, nil
}

// parseGoMain reads a directory of the module and returns it as go build
// takes a package: "." or "./DIR".
func parseGoMain(s string) (string, error) {
	dir := strings.TrimPrefix(s, "./")
	if s == "." || dir == "" {
		return ".", nil
	}
	if !goMainRE.MatchString(dir) || !filepath.IsLocal(dir) || path.Clean(dir) != dir {
		return "", fmt.Errorf("%q is not . or a directory inside the module", s)
	}
	return "./" + dir, nil
}

// parseGoTags reads build tags separated by spaces or commas.
func parseGoTags(s string) ([]string, error) {
	tags := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	if len(tags) == 0 {
		return nil, errors.New("no tags")
	}
	for _, t := range tags {
		if !goTagRE.MatchString(t) {
			return nil, fmt.Errorf("%q is not a build tag", t)
		}
	}
	return tags, nil
}

func debName(s string) (string, error) {
	if !debNameRE.MatchString(s) {
		return "", fmt.Errorf("%q is not a Debian package name", s)
	}
	return s, nil
}

// parseDebFiles reads SOURCE:PATH,... with both paths absolute.
func parseDebFiles(s string) ([]File, error) {
	var files []File
	for _, f := range strings.Split(s, ",") {
		src, dst, ok := strings.Cut(f, ":")
		if !ok {
			return nil, fmt.Errorf("%q is not SOURCE:PATH (a path in the package, a path in the image)", f)
		}
		src, err := imagePath(src)
		if err != nil {
			return nil, fmt.Errorf("%q: in the package: %w", f, err)
		}
		if dst, err = imagePath(dst); err != nil {
			return nil, fmt.Errorf("%q: in the image: %w", f, err)
		}
		files = append(files, File{Source: src, Path: dst})
	}
	return files, nil
}

// imagePath checks an absolute, clean path in the image and returns it
// without its leading slash, as a tar entry names it.
func imagePath(p string) (string, error) {
	if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
		return "", fmt.Errorf("%q is not a clean absolute path", p)
	}
	return p[1:], nil
}

// imagePaths checks a comma-separated list of paths in the image.
func imagePaths(list string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(list, ",") {
		p, err := imagePath(p)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func parseUser(s string) (User, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 || !userRE.MatchString(parts[0]) {
		return User{}, fmt.Errorf("%q is not NAME:UID:GID", s)
	}
	uid, err1 := strconv.ParseUint(parts[1], 10, 32)
	gid, err2 := strconv.ParseUint(parts[2], 10, 32)
	if err1 != nil || err2 != nil || uid == 0 || gid == 0 {
		return User{}, fmt.Errorf("%q: the uid and gid must be numbers other than 0", s)
	}
	return User{Name: parts[0], UID: uint32(uid), GID: uint32(gid)}, nil
}
