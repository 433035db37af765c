package assemble

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
)

// Formats are the outputs Write knows.
var Formats = []string{"kernel+initrd", "tar"}

// Write writes res in format into dir, named after name, as LinuxKit
// names its outputs: kernel+initrd makes NAME-kernel, NAME-initrd.img (a
// gzip'd newc cpio) and NAME-cmdline; tar makes NAME.tar of the root
// tree. dir is created if need be. Each file is written whole or not
// at all. It returns the paths written.
func Write(res *Result, format, dir, name string) ([]string, error) {
	switch format {
	case "kernel+initrd":
		if res.Kernel == nil {
			return nil, fmt.Errorf("kernel+initrd: no kernel was built")
		}
		files := []string{
			filepath.Join(dir, name+"-kernel"),
			filepath.Join(dir, name+"-initrd.img"),
			filepath.Join(dir, name+"-cmdline"),
		}
		if err := writeFile(files[0], func(w *bufio.Writer) error { _, err := w.Write(res.Kernel); return err }); err != nil {
			return nil, err
		}
		if err := writeFile(files[1], func(w *bufio.Writer) error { return initrd(w, res) }); err != nil {
			return nil, err
		}
		if err := writeFile(files[2], func(w *bufio.Writer) error { _, err := w.WriteString(res.Cmdline); return err }); err != nil {
			return nil, err
		}
		return files, nil
	case "tar":
		file := filepath.Join(dir, name+".tar")
		return []string{file}, writeFile(file, func(w *bufio.Writer) error { return res.Tree.WriteTar(w, Epoch) })
	}
	return nil, fmt.Errorf("unknown output format %q (want one of %v)", format, Formats)
}

// initrd writes the microcode, if any, then the tree as a gzip'd cpio:
// the kernel reads concatenated archives in turn, and the microcode must
// come first and uncompressed.
func initrd(w *bufio.Writer, res *Result) error {
	if _, err := w.Write(res.UCode); err != nil {
		return err
	}
	zw := gzip.NewWriter(w)
	if err := res.Tree.WriteCpio(zw, Epoch); err != nil {
		return err
	}
	return zw.Close()
}

// writeFile writes a file through a temporary file in the same directory
// and renames it into place, so that a failed build leaves no half file.
func writeFile(name string, write func(w *bufio.Writer) error) error {
	// As linuxkit build -dir does, make the output directory.
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 1<<20)
	if err := write(w); err != nil {
		tmp.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return os.Rename(tmp.Name(), name)
}
