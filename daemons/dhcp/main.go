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
	cmds := sdk.Commands{Name: "dyad-dhcp", RunDir: defaultRunDir, Actuate: actuate, Engine: runEngine, Audit: printAudit}
	if code, ran := cmds.Run(argv[0], args, stdout, stderr); ran {
		return code
	}
	return supervise(args)
}
