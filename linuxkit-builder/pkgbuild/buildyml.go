// Package pkgbuild builds a dyad image from a package directory: it reads
// build.yml in LinuxKit's package format, builds the daemon as one static
// binary, and assembles a one-layer OCI image from scratch, the same bytes
// from the same source.
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
}

// Recipe says what goes into the image.
type Recipe struct {
	// GoPackage is the main package of the daemon (GO_PACKAGE).
	GoPackage string
	// Binary is where the binary goes in the image (BINARY), also the
	// entry point.
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

// File is a file of the package directory and its path in the image.
type File struct{ Source, Path string }

var (
	nameRE = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*$`)
	userRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	// goPackageRE is a relative package path or an import path.
	goPackageRE = regexp.MustCompile(`^(\./|[a-zA-Z0-9])[a-zA-Z0-9._/-]*$`)
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
	if p.Config == nil {
		p.Config = &imageconfig.Config{}
	}
	if _, ok := p.Annotations[imageconfig.LabelKey]; ok {
		return nil, fmt.Errorf("annotations: %s is written from config:, not set here", imageconfig.LabelKey)
	}
	r, err := parseRecipe(p.BuildArgs)
	if err != nil {
		return nil, err
	}
	p.Recipe = r
	return &p, nil
}

func parseRecipe(args []string) (Recipe, error) {
	var r Recipe
	seen := map[string]bool{}
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
		default:
			err = errors.New("unknown (GO_PACKAGE, BINARY, CMD, LINKS, ENGINE_USER, FILES, DIRS, AUDIT, LAUNCHER)")
		}
		if err != nil {
			return r, fmt.Errorf("buildArgs %s: %w", key, err)
		}
	}
	switch {
	case r.GoPackage == "":
		return r, errors.New("buildArgs: GO_PACKAGE missing")
	case r.Binary == "":
		return r, errors.New("buildArgs: BINARY missing")
	case r.User.Name == "":
		return r, errors.New("buildArgs: ENGINE_USER missing")
	}
	return r, nil
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
