package initd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
)

// Loader puts one module file into the kernel. Tests pass a fake.
type Loader func(file string) error

// FinitModule loads file with finit_module(2). A module that is already
// loaded (EEXIST) is not an error. A compressed file is handed to the
// kernel to decompress, which works only if it was built to.
func FinitModule(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	flags := 0
	if slices.Contains(compressedExts, filepath.Ext(file)) {
		flags |= unix.MODULE_INIT_COMPRESSED_FILE
	}
	err = unix.FinitModule(int(f.Fd()), "", flags)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("finit_module %s: %w", file, err)
	}
	return nil
}

// errNoModules is the error for a module asked of a kernel whose modules
// directory could not be read.
var errNoModules = errors.New("no modules directory")

// Kmod loads modules, each with what it depends on, and remembers what it
// tried, so that each module is loaded (or fails) once. It is safe for
// concurrent use: services start concurrently, and their mounts may need
// a file system module.
type Kmod struct {
	mods      *Modules // nil: no modules directory, nothing loadable
	load      Loader
	sysModule string // /sys/module; a module listed there is loaded

	mu   sync.Mutex
	done map[string]error // module name -> nil once loaded, or why not
}

// NewKmod returns a Kmod for mods (which may be nil), loading with load
// and looking in sysModule (/sys/module, or "") for modules already there.
func NewKmod(mods *Modules, load Loader, sysModule string) *Kmod {
	return &Kmod{mods: mods, load: load, sysModule: sysModule, done: map[string]error{}}
}

// LoadAlias loads every module that alias (a modalias, or a name such as
// "fs-overlay") resolves to, and returns those it loaded now.
func (k *Kmod) LoadAlias(alias string) ([]string, error) {
	if k.mods == nil {
		return nil, errNoModules
	}
	names := k.mods.Lookup(alias)
	if len(names) == 0 {
		return nil, fmt.Errorf("no module for %q", alias)
	}
	var loaded []string
	var errs []error
	for _, n := range names {
		l, err := k.Load(n)
		loaded = append(loaded, l...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return loaded, errors.Join(errs...)
}

// Load loads module name after its dependencies and returns the modules
// it loaded now; built-in modules and modules already loaded are skipped.
func (k *Kmod) Load(name string) ([]string, error) {
	if k.mods == nil {
		return nil, errNoModules
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	order, err := k.mods.LoadOrder(name)
	if err != nil {
		return nil, err
	}
	var loaded []string
	for _, n := range order {
		if err, tried := k.done[n]; tried {
			if err != nil {
				return loaded, fmt.Errorf("module %s: %w", n, err)
			}
			continue
		}
		if k.isLoaded(n) {
			k.done[n] = nil
			continue
		}
		err := k.load(k.mods.Path(n))
		k.done[n] = err
		if err != nil {
			return loaded, fmt.Errorf("module %s: %w", n, err)
		}
		loaded = append(loaded, n)
	}
	return loaded, nil
}

// isLoaded reports whether the kernel lists module n in /sys/module.
func (k *Kmod) isLoaded(n string) bool {
	if k.sysModule == "" {
		return false
	}
	_, err := os.Stat(filepath.Join(k.sysModule, n, "initstate"))
	return err == nil
}
