package dhcp

import (
	"encoding/json"
	"flag"
	"fmt"
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
		return status(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "audit" {
		return printAudit(args[1:], stdout, stderr)
	}
	return supervise(args)
}

// status prints what a running daemon's status socket says.
func status(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dyad-dhcp status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	runDir := fs.String("run-dir", defaultRunDir, "run directory of the daemon")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	b, err := sdk.ReadStatus(*runDir)
	if err != nil {
		fmt.Fprintln(stderr, "dyad-dhcp:", err)
		return 1
	}
	// The document comes from the unprivileged engine: print it only as
	// re-encoded JSON, which escapes control bytes, never as it came.
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		fmt.Fprintln(stderr, "dyad-dhcp: status: not JSON:", err)
		return 1
	}
	out, _ := json.MarshalIndent(doc, "", "  ")
	fmt.Fprintf(stdout, "%s\n", out)
	return 0
}
