package fuzztargets

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// corpusHeader starts every file of a go test seed corpus.
const corpusHeader = "go test fuzz v1"

// ReadCorpusFile reads one seed of go test's corpus format (the header,
// then one Go expression per argument, such as []byte("...") or
// uint64(7)) and checks it against the target's argument types.
func ReadCorpusFile(path string, params []string) ([]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	vs, err := ParseCorpus(b, params)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return vs, nil
}

// ParseCorpus parses the contents of a corpus file; see ReadCorpusFile.
func ParseCorpus(b []byte, params []string) ([]any, error) {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if lines[0] != corpusHeader {
		return nil, fmt.Errorf("line 1: want %q", corpusHeader)
	}
	lines = lines[1:]
	if len(lines) != len(params) {
		return nil, fmt.Errorf("%d values for %d arguments (%s)", len(lines), len(params), strings.Join(params, ", "))
	}
	vs := make([]any, len(lines))
	for i, line := range lines {
		v, err := parseValue(line, params[i])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+2, err)
		}
		vs[i] = v
	}
	return vs, nil
}

// parseValue parses TYPE(LITERAL), which must be of type want.
func parseValue(line, want string) (any, error) {
	e, err := parser.ParseExpr(line)
	if err != nil {
		return nil, err
	}
	call, ok := e.(*ast.CallExpr)
	if !ok || len(call.Args) != 1 {
		return nil, fmt.Errorf("%q is not TYPE(VALUE)", line)
	}
	var typ string
	switch fun := call.Fun.(type) {
	case *ast.Ident:
		typ = fun.Name
	case *ast.ArrayType:
		if elt, ok := fun.Elt.(*ast.Ident); ok && fun.Len == nil && (elt.Name == "byte" || elt.Name == "uint8") {
			typ = "[]byte"
		}
	}
	if want == "uint8" && typ == "byte" || want == "byte" && typ == "uint8" {
		typ = want
	}
	if typ != want {
		return nil, fmt.Errorf("%q: want a value of type %s", line, want)
	}
	arg := call.Args[0]
	neg := false
	if u, ok := arg.(*ast.UnaryExpr); ok && u.Op == token.SUB {
		neg, arg = true, u.X
	}
	if id, ok := arg.(*ast.Ident); ok && typ == "bool" && !neg {
		switch id.Name {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	lit, ok := arg.(*ast.BasicLit)
	if !ok {
		return nil, fmt.Errorf("%q: the value is not a literal", line)
	}
	switch typ {
	case "[]byte", "string":
		if lit.Kind != token.STRING || neg {
			return nil, fmt.Errorf("%q: want a quoted string", line)
		}
		s, err := strconv.Unquote(lit.Value)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", line, err)
		}
		if typ == "string" {
			return s, nil
		}
		return []byte(s), nil
	case "bool":
		return nil, fmt.Errorf("%q: want true or false", line)
	}
	// The integers: a number, or a character for byte.
	var n int64
	var u uint64
	switch lit.Kind {
	case token.CHAR:
		r, _, tail, err := strconv.UnquoteChar(lit.Value[1:len(lit.Value)-1], '\'')
		if err != nil || tail != "" {
			return nil, fmt.Errorf("%q: bad character", line)
		}
		u, n = uint64(r), int64(r)
	case token.INT:
		if strings.HasPrefix(typ, "u") || typ == "byte" {
			u, err = strconv.ParseUint(lit.Value, 0, 64)
		} else {
			n, err = strconv.ParseInt(lit.Value, 0, 64)
		}
		if err != nil {
			return nil, fmt.Errorf("%q: %w", line, err)
		}
	default:
		return nil, fmt.Errorf("%q: want a number", line)
	}
	if neg {
		if strings.HasPrefix(typ, "u") || typ == "byte" {
			return nil, fmt.Errorf("%q: negative %s", line, typ)
		}
		n = -n
	}
	return convertInt(typ, n, u, line)
}

func convertInt(typ string, n int64, u uint64, line string) (any, error) {
	fits := func(ok bool, v any) (any, error) {
		if !ok {
			return nil, fmt.Errorf("%q: out of range for %s", line, typ)
		}
		return v, nil
	}
	switch typ {
	case "int":
		return int(n), nil
	case "int8":
		return fits(n == int64(int8(n)), int8(n))
	case "int16":
		return fits(n == int64(int16(n)), int16(n))
	case "int32":
		return fits(n == int64(int32(n)), int32(n))
	case "int64":
		return n, nil
	case "uint":
		return uint(u), nil
	case "uint8", "byte":
		return fits(u == uint64(uint8(u)), uint8(u))
	case "uint16":
		return fits(u == uint64(uint16(u)), uint16(u))
	case "uint32":
		return fits(u == uint64(uint32(u)), uint32(u))
	case "uint64":
		return u, nil
	}
	return nil, fmt.Errorf("%q: unsupported type %s", line, typ)
}

// FormatCorpus writes values in go test's corpus format, for generators
// of seed corpora.
func FormatCorpus(values ...any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(corpusHeader + "\n")
	for _, v := range values {
		switch v := v.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case string:
			fmt.Fprintf(&b, "string(%q)\n", v)
		case bool, int, int8, int16, int32, int64, uint, uint16, uint32, uint64:
			fmt.Fprintf(&b, "%T(%v)\n", v, v)
		case uint8:
			fmt.Fprintf(&b, "byte(%d)\n", v)
		default:
			return nil, fmt.Errorf("corpus value of type %T", v)
		}
	}
	return b.Bytes(), nil
}

// SeedPath returns where a seed of values belongs in the corpus directory
// dir, named by the hash of its contents as go test names what it finds,
// and those contents.
func SeedPath(dir string, values ...any) (string, []byte, error) {
	b, err := FormatCorpus(values...)
	if err != nil {
		return "", nil, err
	}
	sum := sha256.Sum256(b)
	return filepath.Join(dir, hex.EncodeToString(sum[:8])), b, nil
}

// WriteSeed writes a seed of values into the corpus directory dir,
// creating it if need be, and returns its path.
func WriteSeed(dir string, values ...any) (string, error) {
	path, b, err := SeedPath(dir, values...)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return path, os.WriteFile(path, b, 0o644)
}

// LibFuzzerInput encodes a seed as the input from which go-118-fuzz-build's
// harness (through go-fuzz-headers' consumer) rebuilds the same arguments:
// []byte and string as a 32-bit big-endian length and the bytes; integers
// big-endian, the 16- and 64-bit ones followed by a byte that says "big
// endian" (odd); bool as one byte, even for true. An empty []byte cannot
// be said exactly (the consumer reads length 0 as 30); it comes out as
// whatever bytes follow.
func LibFuzzerInput(values []any) ([]byte, error) {
	var b []byte
	const bigEndian = 1
	for _, v := range values {
		switch v := v.(type) {
		case []byte:
			b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
			b = append(b, v...)
		case string:
			b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
			b = append(b, v...)
		case bool:
			if v {
				b = append(b, 0)
			} else {
				b = append(b, 1)
			}
		case uint8:
			b = append(b, v)
		case int8:
			b = append(b, byte(v))
		case uint16:
			b = append(binary.BigEndian.AppendUint16(b, v), bigEndian)
		case int16:
			b = append(binary.BigEndian.AppendUint16(b, uint16(v)), bigEndian)
		case uint32:
			b = binary.BigEndian.AppendUint32(b, v)
		case int32:
			b = binary.BigEndian.AppendUint32(b, uint32(v))
		case uint64:
			b = append(binary.BigEndian.AppendUint64(b, v), bigEndian)
		case int64:
			b = append(binary.BigEndian.AppendUint64(b, uint64(v)), bigEndian)
		case uint:
			b = append(binary.BigEndian.AppendUint64(b, uint64(v)), bigEndian)
		case int:
			b = append(binary.BigEndian.AppendUint64(b, uint64(v)), bigEndian)
		default:
			return nil, fmt.Errorf("seed value of type %T", v)
		}
	}
	return b, nil
}
