package dhcp

import (
	"io"
	"path/filepath"

	"github.com/dyad-project/dyad/sdk"
)

// Main runs dyad-dhcp in whichever stage argv[0] names and returns the exit
// code.
// Started as dhcpcd (the dhcp image links /sbin/dhcpcd to it), it reads
// dhcpcd's command line and dhcpcd.conf.
func Main(argv []string, stdout, stderr io.Writer) int {
	args := argv[1:]
	if filepath.Base(argv[0]) == "dhcpcd" {
		args = append([]string{DhcpcdMode}, args...)
	}
	switch sdk.StageOf(argv[0], "dyad-dhcp") {
	case sdk.StageActuator:
		return actuate(args)
	case sdk.StageEngine:
		return runEngine(args)
	}
	if len(args) > 0 && args[0] == "status" {
		return sdk.StatusCommand("dyad-dhcp", defaultRunDir, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "audit" {
		return printAudit(args[1:], stdout, stderr)
	}
	return supervise(args)
}
