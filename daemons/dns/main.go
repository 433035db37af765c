package dns

import (
	"fmt"
	"io"

	"github.com/dyad-project/dyad/sdk"
)

// Main runs dyad-dns in whichever stage argv[0] names and returns the exit
// code.
func Main(argv []string, stdout, stderr io.Writer) int {
	args := argv[1:]
	switch sdk.StageOf(argv[0], "dyad-dns") {
	case sdk.StageActuator:
		return actuate(args)
	case sdk.StageEngine:
		return runEngine(args)
	}
	if len(args) > 0 && args[0] == "audit" {
		return printAudit(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "status" {
		return sdk.StatusCommand("dyad-dns", defaultRunDir, args[1:], stdout, stderr)
	}
	cfg, err := ParseArgs(args, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "dyad-dns:", err)
		return 2
	}
	return supervise(cfg, args)
}
