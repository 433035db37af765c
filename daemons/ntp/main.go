package ntp

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/dyad-project/dyad/sdk"
)

// Main runs dyad-ntp in whichever stage argv[0] names and returns the exit
// code. Started as ntpd (the ntp image links /usr/sbin/ntpd to it), it
// reads openntpd's command line and ntpd.conf.
func Main(argv []string, stdout, stderr io.Writer) int {
	args := argv[1:]
	if filepath.Base(argv[0]) == "ntpd" {
		args = append([]string{OpenntpdMode}, args...)
	}
	cmds := sdk.Commands{Name: "dyad-ntp", RunDir: defaultRunDir, Actuate: actuate, Engine: runEngine, Audit: printAudit}
	if code, ran := cmds.Run(argv[0], args, stdout, stderr); ran {
		return code
	}
	cfg, err := ParseArgs(args, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "dyad-ntp:", err)
		return 2
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stderr, "dyad-ntp: warning:", w)
	}
	switch {
	case cfg.ConfigTest:
		fmt.Fprintln(stdout, "configuration OK")
		return 0
	case cfg.Mode == ModeQuery:
		return runQuery(cfg, stdout, stderr)
	}
	return supervise(cfg, args)
}
