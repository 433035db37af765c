package backend

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// SetHostname sets the kernel's host name in the actuator's UTS namespace.
// The kernel refuses names longer than 64 bytes.
func SetHostname(name string) error {
	if err := unix.Sethostname([]byte(name)); err != nil {
		return fmt.Errorf("backend: set hostname %q: %w", name, err)
	}
	return nil
}
