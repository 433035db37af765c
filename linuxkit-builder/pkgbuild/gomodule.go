package pkgbuild

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// goModuleBuild builds the main package of GO_MODULE into out: the module
// is fetched into the module cache at its pinned version and built there,
// its own go.mod and go.sum (or vendor directory) deciding every
// dependency, with the flags of this module's daemons and the recipe's
// tags. tmp is a scratch directory outside any module.
func goModuleBuild(ctx context.Context, m *GoModule, tmp, out, arch string, log io.Writer) error {
	dir, err := goModDownload(ctx, m, tmp, arch)
	if err != nil {
		return err
	}
	args := append([]string{"build"}, goModuleFlags(m.Tags)...)
	// A module's zip leaves vendor/ out, but a module may still be
	// fetched with one (a replace directive, a GOPROXY=direct fetch of an
	// old module): then its vendored copies are what its authors built.
	if _, err := os.Stat(filepath.Join(dir, "vendor", "modules.txt")); err == nil {
		args = append(args, "-mod=vendor")
	} else {
		args = append(args, "-mod=readonly")
	}
	args = append(args, "-o", out, m.Main)
	if err := runGoBuild(ctx, dir, moduleEnv(arch), args, log); err != nil {
		return fmt.Errorf("%w (GO_MODULE %s@%s)", err, m.Path, m.Version)
	}
	return nil
}

// goModDownload fetches the module into the module cache and returns its
// directory there.
func goModDownload(ctx context.Context, m *GoModule, tmp, arch string) (string, error) {
	ref := m.Path + "@" + m.Version
	ctx, cancel := context.WithTimeout(ctx, downloadTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", ref)
	// Outside every module and workspace, so that only the module itself
	// decides what is fetched.
	cmd.Dir = tmp
	cmd.Env = moduleEnv(arch)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	// On failure go still prints the JSON, with the reason in Error.
	var info struct{ Path, Version, Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil {
		return "", fmt.Errorf("pkgbuild: GO_MODULE %s: go mod download: %v %v\n%s", ref, runErr, err, stderr.String())
	}
	switch {
	case info.Error != "":
		return "", fmt.Errorf("pkgbuild: GO_MODULE %s: go mod download: %s", ref, info.Error)
	case runErr != nil:
		return "", fmt.Errorf("pkgbuild: GO_MODULE %s: go mod download: %w\n%s", ref, runErr, stderr.String())
	case info.Path != m.Path || info.Version != m.Version || info.Dir == "":
		return "", fmt.Errorf("pkgbuild: GO_MODULE %s: go mod download gave %s@%s in %q", ref, info.Path, info.Version, info.Dir)
	}
	return info.Dir, nil
}

// moduleEnv is goEnv for another module: no workspace of the caller's may
// replace its dependencies.
func moduleEnv(arch string) []string {
	return append(goEnv(arch), "GOWORK=off")
}

// goModuleFlags are GoBuildFlags with tags added to theirs.
func goModuleFlags(tags []string) []string {
	flags := slices.Clone(GoBuildFlags)
	i := slices.Index(flags, "-tags")
	if i < 0 || i+1 >= len(flags) {
		// GoBuildFlags always names tags; should they not, the
		// recipe's are all there is.
		return append(flags, "-tags", strings.Join(tags, ","))
	}
	all := strings.Split(flags[i+1], ",")
	for _, t := range tags {
		if !slices.Contains(all, t) {
			all = append(all, t)
		}
	}
	flags[i+1] = strings.Join(all, ",")
	return flags
}
