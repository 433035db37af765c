package initd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
)

// maxLine is the longest line copied from a container as one line: longer
// ones are cut into pieces of this size, so that one runaway writer cannot
// make init buffer without bound.
const maxLine = 4096

// Console writes whole lines to the console. Init's own lines start with
// "init: ", a container's with "[name] "; lines from different writers
// never interleave within a line.
type Console struct {
	mu sync.Mutex
	w  io.Writer
}

// NewConsole returns a console that writes to w.
func NewConsole(w io.Writer) *Console { return &Console{w: w} }

// Logf writes one line of init's own, prefixed "init: ".
func (c *Console) Logf(format string, args ...any) {
	c.writeLine("init: " + fmt.Sprintf(format, args...))
}

// writeLine writes s and a newline in one write. A console that fails has
// nowhere to report it: the error is dropped.
func (c *Console) writeLine(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, _ = io.WriteString(c.w, s+"\n")
}

// CopyLines copies r to the console until EOF or a read error, each line
// prefixed "[name] ". A last line without a newline is written too.
func (c *Console) CopyLines(name string, r io.Reader) {
	br := bufio.NewReaderSize(r, maxLine)
	prefix := "[" + name + "] "
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			line = bytes.TrimSuffix(line, []byte("\n"))
			line = bytes.TrimSuffix(line, []byte("\r"))
			c.writeLine(prefix + string(line))
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}
