package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"strings"

	"github.com/dyad-project/dyad/linuxkit-builder/qemu"
)

// runQEMU is dyad run qemu: boot what dyad build wrote.
func runQEMU(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("run qemu", flag.ContinueOnError)
	mem := fs.Int("mem", 1024, "memory of the guest, in MiB")
	cpus := fs.Int("cpus", 1, "virtual CPUs")
	timeout := fs.Duration("timeout", 0, "stop the guest after this long (0: wait for it to power off)")
	var netdev, extra stringList
	fs.Var(&netdev, "netdev", "more options for QEMU's user network, such as hostfwd=tcp::2222-:22 (repeatable)")
	fs.Var(&extra, "qemu-arg", "one more argument for QEMU (repeatable)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("run qemu: want NAME, the prefix of NAME-kernel, NAME-initrd.img and NAME-cmdline")
	}
	return qemu.Run(ctx, pos[0], qemu.Options{
		MemoryMiB: *mem, CPUs: *cpus, Timeout: *timeout,
		Netdev: netdev, Extra: extra, Console: stdout,
	})
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
