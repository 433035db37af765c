// Package fuzztargets finds the native Go fuzz targets of dyad's fuzz
// package and checks that each can be built the way OSS-Fuzz builds Go
// targets (compile_native_go_fuzzer, which runs go-118-fuzz-build): so
// that a new target is found by every build without being listed
// anywhere, and one that such a build would miss or mangle fails a test
// instead. It also reads and writes their seed corpora.
package fuzztargets

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// A Target is one fuzz target.
type Target struct {
	Name string
	// File is the _test.go file that declares it.
	File string
	// Params are the types of the fuzz function's arguments after the
	// *testing.T, as written: "[]byte", "uint64".
	Params []string
	// Dict is the dictionary the doc comment names on a line
	// "Dictionary: NAME.dict" (a file of the dict directory), or "".
	Dict string
	// Doc is the doc comment.
	Doc string
}

// CorpusDir is where go test keeps a target's seed corpus, relative to the
// package directory.
func (t Target) CorpusDir() string { return filepath.Join("testdata", "fuzz", t.Name) }

// Plain are the argument types go-118-fuzz-build can fill from libFuzzer's
// input, and the corpus encoder writes.
var Plain = []string{"[]byte", "string", "bool", "byte", "int", "int8", "int16", "int32", "int64",
	"uint", "uint8", "uint16", "uint32", "uint64"}

var dictLine = regexp.MustCompile(`(?m)^Dictionary: (\S+\.dict)$`)

// Find returns the targets declared in the _test.go files of dir, sorted
// by name.
func Find(dir string) ([]Target, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil {
		return nil, err
	}
	var out []Target
	for _, file := range files {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, file, nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "Fuzz") || !takesF(fn) {
				continue
			}
			t := Target{Name: fn.Name.Name, File: file, Doc: fn.Doc.Text()}
			if m := dictLine.FindStringSubmatch(t.Doc); m != nil {
				t.Dict = m[1]
			}
			t.Params, err = fuzzParams(fset, fn)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", file, t.Name, err)
			}
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// takesF reports whether fn is func(x *testing.F).
func takesF(fn *ast.FuncDecl) bool {
	ps := fn.Type.Params.List
	if len(ps) != 1 || len(ps[0].Names) > 1 {
		return false
	}
	star, ok := ps[0].Type.(*ast.StarExpr)
	if !ok {
		return false
	}
	sel, ok := star.X.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	pkg, ok := sel.X.(*ast.Ident)
	return ok && pkg.Name == "testing" && sel.Sel.Name == "F"
}

// fuzzParams returns the argument types of the function given to f.Fuzz.
func fuzzParams(fset *token.FileSet, fn *ast.FuncDecl) ([]string, error) {
	var lit *ast.FuncLit
	var calls int
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "Fuzz" || len(call.Args) != 1 {
			return true
		}
		calls++
		lit, _ = call.Args[0].(*ast.FuncLit)
		return true
	})
	if calls != 1 || lit == nil {
		return nil, errors.New("want exactly one f.Fuzz call with a function literal")
	}
	var types []string
	for i, field := range lit.Type.Params.List {
		var b bytes.Buffer
		if err := printer.Fprint(&b, fset, field.Type); err != nil {
			return nil, err
		}
		n := max(len(field.Names), 1)
		for range n {
			types = append(types, b.String())
		}
		if i == 0 && b.String() != "*testing.T" {
			return nil, fmt.Errorf("the fuzz function's first argument is %s, not *testing.T", b.String())
		}
	}
	if len(types) < 2 {
		return nil, errors.New("the fuzz function takes no input")
	}
	return types[1:], nil
}

// Check returns what would break a target in OSS-Fuzz's build, or leave
// it without seeds there. dir is the package directory; dictDir holds the
// dictionaries.
func Check(dir, dictDir string, ts []Target) []error {
	var errs []error
	bad := func(t Target, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s (%s): %s", t.Name, filepath.Base(t.File), fmt.Sprintf(format, args...)))
	}
	// Every file under dir, which the build greps.
	var all []string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			all = append(all, path)
		}
		return nil
	})
	contents := map[string][]byte{}
	for _, p := range all {
		b, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		contents[p] = b
	}
	for _, t := range ts {
		var holders []string
		for _, p := range all {
			if bytes.Contains(contents[p], []byte(t.Name)) {
				rel, _ := filepath.Rel(dir, p)
				holders = append(holders, rel)
			}
		}
		if len(holders) != 1 {
			bad(t, "its name appears in %d files (%s); the build greps for it and needs exactly its own", len(holders), strings.Join(holders, ", "))
		}
		src := contents[t.File]
		var decls int
		for _, line := range strings.Split(string(src), "\n") {
			if strings.Contains(line, "func "+t.Name) && strings.Contains(line, "testing.F") {
				decls++
			}
		}
		if decls != 1 {
			bad(t, "%d lines hold \"func %s\" and \"testing.F\"; the build wants one", decls, t.Name)
		}
		if !bytes.HasPrefix(bytes.TrimLeft(src, "\n"), []byte("package fuzz\n")) && !bytes.Contains(src, []byte("\npackage fuzz\n")) {
			bad(t, "not in package fuzz: the build compiles the target's file into the package")
		}
		if !strings.HasPrefix(t.Doc, t.Name+" covers ") {
			bad(t, "its doc comment must start %q and name the attack surface", t.Name+" covers ")
		}
		for _, p := range t.Params {
			if !slices.Contains(Plain, p) {
				bad(t, "argument type %s: go-118-fuzz-build fills only %s", p, strings.Join(Plain, ", "))
			}
		}
		if t.Dict != "" {
			if _, err := os.Stat(filepath.Join(dictDir, t.Dict)); err != nil {
				bad(t, "its dictionary: %v", err)
			}
		}
		seeds, _ := filepath.Glob(filepath.Join(dir, t.CorpusDir(), "*"))
		if len(seeds) == 0 {
			bad(t, "no seed corpus in %s", t.CorpusDir())
		}
		for _, s := range seeds {
			if _, err := ReadCorpusFile(s, t.Params); err != nil {
				bad(t, "%v", err)
			}
		}
	}
	return errs
}
