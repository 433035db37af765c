package initd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Modules is what depmod wrote for one kernel: which modules a modalias
// asks for (modules.alias), which modules each module needs loaded first
// (modules.dep) and which are built into the kernel (modules.builtin).
type Modules struct {
	dir     string
	aliases []aliasRule
	paths   map[string]string   // module name -> path relative to dir
	deps    map[string][]string // module name -> names, as modules.dep lists them
	builtin map[string]bool
}

// aliasRule is one line of modules.alias: a shell pattern and the module
// it names. literal is the pattern up to its first wildcard: a cheap
// prefix test that spares most calls to path.Match.
type aliasRule struct {
	pattern string
	literal string
	module  string
}

// maxDepDepth bounds the walk of modules.dep: real chains are a handful
// of modules long, a longer one is a broken or cyclic file.
const maxDepDepth = 64

// LoadModules reads the depmod files in dir (/lib/modules/RELEASE).
// modules.dep and modules.alias must exist; modules.builtin is optional.
func LoadModules(dir string) (*Modules, error) {
	m := &Modules{dir: dir, builtin: map[string]bool{}}
	err := readWith(filepath.Join(dir, "modules.dep"), func(r io.Reader) (err error) {
		m.paths, m.deps, err = parseDep(r)
		return err
	})
	if err != nil {
		return nil, err
	}
	err = readWith(filepath.Join(dir, "modules.alias"), func(r io.Reader) (err error) {
		m.aliases, err = parseAlias(r)
		return err
	})
	if err != nil {
		return nil, err
	}
	err = readWith(filepath.Join(dir, "modules.builtin"), func(r io.Reader) (err error) {
		m.builtin, err = parseBuiltin(r)
		return err
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return m, nil
}

// readWith opens the file name and hands it to parse.
func readWith(name string, parse func(io.Reader) error) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := parse(f); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// parseDep reads modules.dep: "kernel/a/b.ko: kernel/c.ko kernel/d.ko".
func parseDep(r io.Reader) (map[string]string, map[string][]string, error) {
	paths := map[string]string{}
	deps := map[string][]string{}
	err := eachLine(r, func(n int, line string) error {
		mod, rest, ok := strings.Cut(line, ":")
		if !ok || mod == "" {
			return fmt.Errorf("line %d: no module before ':'", n)
		}
		name := ModuleName(mod)
		paths[name] = mod
		var names []string
		for _, d := range strings.Fields(rest) {
			names = append(names, ModuleName(d))
		}
		deps[name] = names
		return nil
	})
	return paths, deps, err
}

// parseAlias reads modules.alias: "alias PATTERN MODULE".
func parseAlias(r io.Reader) ([]aliasRule, error) {
	var rules []aliasRule
	err := eachLine(r, func(n int, line string) error {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "alias" {
			return fmt.Errorf("line %d: want \"alias PATTERN MODULE\"", n)
		}
		pattern := normalizeAlias(f[1])
		if _, err := path.Match(pattern, ""); err != nil {
			return fmt.Errorf("line %d: pattern %q: %w", n, f[1], err)
		}
		lit := pattern
		if i := strings.IndexAny(pattern, `*?[\`); i >= 0 {
			lit = pattern[:i]
		}
		rules = append(rules, aliasRule{pattern: pattern, literal: lit, module: ModuleName(f[2])})
		return nil
	})
	return rules, err
}

// parseBuiltin reads modules.builtin: one module path per line.
func parseBuiltin(r io.Reader) (map[string]bool, error) {
	b := map[string]bool{}
	err := eachLine(r, func(_ int, line string) error {
		b[ModuleName(line)] = true
		return nil
	})
	return b, err
}

// eachLine calls fn with each line of r that is neither blank nor a
// comment, numbered from 1.
func eachLine(r io.Reader, fn func(n int, line string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := fn(n, line); err != nil {
			return err
		}
	}
	return sc.Err()
}

// compressedExts are the suffixes of compressed module files, which the
// kernel decompresses itself.
var compressedExts = []string{".xz", ".zst", ".gz"}

// ModuleName is the name the kernel knows a module file by: its base name
// without the .ko (and any compression) suffix, dashes made underscores.
func ModuleName(p string) string {
	name := path.Base(p)
	for _, ext := range compressedExts {
		name = strings.TrimSuffix(name, ext)
	}
	return strings.ReplaceAll(strings.TrimSuffix(name, ".ko"), "-", "_")
}

// normalizeAlias makes dashes underscores outside bracket expressions, as
// kmod does with both the patterns and the aliases it looks up.
func normalizeAlias(s string) string {
	if !strings.ContainsRune(s, '-') {
		return s
	}
	b := []byte(s)
	inBracket := false
	for i, c := range b {
		switch {
		case c == '[':
			inBracket = true
		case c == ']':
			inBracket = false
		case c == '-' && !inBracket:
			b[i] = '_'
		}
	}
	return string(b)
}

// Lookup returns the modules whose pattern matches alias (a device's
// modalias, or a name such as "fs-overlay"), once each, in file order.
func (m *Modules) Lookup(alias string) []string {
	alias = normalizeAlias(alias)
	var out []string
	seen := map[string]bool{}
	for _, r := range m.aliases {
		if !strings.HasPrefix(alias, r.literal) || seen[r.module] {
			continue
		}
		if ok, _ := path.Match(r.pattern, alias); ok {
			seen[r.module] = true
			out = append(out, r.module)
		}
	}
	if len(out) == 0 {
		// modprobe also takes a module's own name.
		if name := ModuleName(alias); m.paths[name] != "" || m.builtin[name] {
			out = append(out, name)
		}
	}
	return out
}

// Builtin reports whether module name is built into the kernel.
func (m *Modules) Builtin(name string) bool { return m.builtin[name] }

// Path returns the file of module name, or "" if depmod did not list it.
func (m *Modules) Path(name string) string {
	p := m.paths[name]
	if p == "" {
		return ""
	}
	if !path.IsAbs(p) {
		p = filepath.Join(m.dir, p)
	}
	return p
}

// LoadOrder returns name and everything it needs, dependencies first, as
// modprobe loads them; built-in modules are left out, as there is nothing
// to load.
func (m *Modules) LoadOrder(name string) ([]string, error) {
	var order []string
	state := map[string]int{} // 1: being visited, 2: done
	var visit func(n string, depth int) error
	visit = func(n string, depth int) error {
		switch {
		case state[n] == 2:
			return nil
		case state[n] == 1:
			return fmt.Errorf("modules.dep: %s depends on itself", n)
		case depth > maxDepDepth:
			return fmt.Errorf("modules.dep: dependencies of %s nest deeper than %d", name, maxDepDepth)
		}
		if m.builtin[n] {
			state[n] = 2
			return nil
		}
		if _, ok := m.paths[n]; !ok {
			return fmt.Errorf("module %s: not in modules.dep", n)
		}
		state[n] = 1
		// depmod lists a module's dependencies so that loading them
		// from last to first works; visiting them in that order (each
		// one's own first) gives modprobe's order.
		d := m.deps[n]
		for i := len(d) - 1; i >= 0; i-- {
			if err := visit(d[i], depth+1); err != nil {
				return err
			}
		}
		state[n] = 2
		order = append(order, n)
		return nil
	}
	if err := visit(name, 0); err != nil {
		return nil, err
	}
	return order, nil
}
