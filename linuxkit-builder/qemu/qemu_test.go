package qemu

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestArgs(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "dhcp")
	if _, err := Args(prefix, Options{}); err == nil || !strings.Contains(err.Error(), "dyad build first") {
		t.Errorf("no outputs: %v", err)
	}
	for _, f := range []string{"-kernel", "-initrd.img"} {
		if err := os.WriteFile(prefix+f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(prefix+"-cmdline", []byte("console=ttyS0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args, err := Args(prefix, Options{MemoryMiB: 512, CPUs: 2, Netdev: []string{"hostfwd=udp::5353-:53"}, Extra: []string{"-rtc", "base=2001-01-01"}})
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(args, " ")
	for _, want := range []string{
		"-machine accel=tcg -cpu max", "-m 512 -smp 2",
		"-kernel " + prefix + "-kernel -initrd " + prefix + "-initrd.img -append console=ttyS0 ",
		"-netdev user,id=net0,hostfwd=udp::5353-:53 -device virtio-net-pci,netdev=net0",
		"-serial stdio", "-no-reboot -rtc base=2001-01-01",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("QEMU's command line %q lacks %q", line, want)
		}
	}
	def, err := Args(prefix, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.Index(def, "-m"); i < 0 || def[i+1] != "1024" || def[slices.Index(def, "-smp")+1] != "1" {
		t.Errorf("defaults: %v", def)
	}
}
