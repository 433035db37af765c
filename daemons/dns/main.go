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
	cmds := sdk.Commands{Name: "dyad-dns", RunDir: defaultRunDir, Actuate: actuate, Engine: runEngine, Audit: printAudit}
	if code, ran := cmds.Run(argv[0], args, stdout, stderr); ran {
		return code
	}
	cfg, err := ParseArgs(args, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "dyad-dns:", err)
		return 2
	}
	return supervise(cfg, args)
}
