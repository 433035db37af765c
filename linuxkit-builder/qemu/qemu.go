// Package qemu boots a kernel+initrd that dyad build wrote in QEMU, with
// the serial console on the caller's output, and returns when the guest
// powers off.
package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Options tune a boot.
type Options struct {
	// MemoryMiB is the guest's memory (default 1024: the root file system
	// lives in it, twice while the init copies it out of the initramfs).
	MemoryMiB int
	// CPUs is the number of virtual CPUs (default 1).
	CPUs int
	// Timeout stops the guest if it has not powered off by then (0: none).
	Timeout time.Duration
	// Netdev is appended to QEMU's user network options, such as
	// "hostfwd=udp::5353-:53".
	Netdev []string
	// Extra are more arguments for QEMU, such as "-rtc", "base=2001-01-01".
	Extra []string
	// Console receives the guest's serial console.
	Console io.Writer
}

// ErrTimeout is the error of a guest that did not power off in time.
var ErrTimeout = errors.New("qemu: the guest did not power off in time")

// Args returns QEMU's command line for the outputs of dyad build at
// prefix (PREFIX-kernel, PREFIX-initrd.img, PREFIX-cmdline).
func Args(prefix string, opt Options) ([]string, error) {
	cmdline, err := os.ReadFile(prefix + "-cmdline")
	if err != nil {
		return nil, fmt.Errorf("qemu: %w (build it with dyad build first)", err)
	}
	for _, f := range []string{prefix + "-kernel", prefix + "-initrd.img"} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("qemu: %w", err)
		}
	}
	mem, cpus := opt.MemoryMiB, opt.CPUs
	if mem == 0 {
		mem = 1024
	}
	if cpus == 0 {
		cpus = 1
	}
	netdev := strings.Join(append([]string{"user", "id=net0"}, opt.Netdev...), ",")
	args := []string{
		// KVM does not work on the machines dyad is built on; -cpu max
		// gives the guest RDRAND, without which its crypto/rand waits for
		// minutes for entropy.
		"-machine", "accel=tcg", "-cpu", "max",
		"-m", strconv.Itoa(mem), "-smp", strconv.Itoa(cpus),
		"-kernel", prefix + "-kernel", "-initrd", prefix + "-initrd.img",
		"-append", strings.TrimSpace(string(cmdline)),
		"-netdev", netdev, "-device", "virtio-net-pci,netdev=net0",
		"-device", "virtio-rng-pci",
		"-display", "none", "-vga", "none", "-serial", "stdio", "-monitor", "none",
		// A reboot ends the run as a power-off does.
		"-no-reboot",
	}
	return append(args, opt.Extra...), nil
}

// Run boots the outputs at prefix and waits for the guest to power off.
func Run(ctx context.Context, prefix string, opt Options) error {
	args, err := Args(prefix, opt)
	if err != nil {
		return err
	}
	if opt.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opt.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	cmd.Stdout, cmd.Stderr = opt.Console, opt.Console
	// QEMU ends on SIGTERM as on a power-off: the guest is gone either way.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return ErrTimeout
	}
	if err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	return nil
}
