package fuzz

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// memFile is a file in memory that a target rewrites for each input,
// named through /proc so that the parser under test opens it as it opens
// any: rewriting a file on this disk took 130 µs and a new directory
// 800 µs an input, against 11 µs for a parse of dhcpcd.conf. It takes no
// *testing.F or *testing.T: OSS-Fuzz's build gives the targets another
// package's.
type memFile struct {
	f *os.File
	// Path is the name the parser opens.
	Path string
}

func newMemFile(name string) (*memFile, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	return &memFile{f: os.NewFile(uintptr(fd), name), Path: fmt.Sprintf("/proc/self/fd/%d", fd)}, nil
}

// Set makes data the file's whole content.
func (m *memFile) Set(data string) error {
	if err := m.f.Truncate(0); err != nil {
		return err
	}
	_, err := m.f.WriteAt([]byte(data), 0)
	return err
}

func (m *memFile) Close() error { return m.f.Close() }
