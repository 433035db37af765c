package initd

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/dyad-project/dyad/internal/capname"
	"github.com/dyad-project/dyad/internal/procstatus"
)

// identity is what the status line reports of a container's first
// process, read from /proc/PID/status once runc has created it: by then
// runc has set its user, capabilities and no_new_privs, and the process
// waits to exec the container's command.
type identity procstatus.Status

// readIdentity reads /proc/PID/status under proc.
func readIdentity(proc string, pid int) (identity, error) {
	s, err := procstatus.Read(filepath.Join(proc, strconv.Itoa(pid), "status"))
	return identity(s), err
}

// String is the part of the status line after the pid:
// "uid 0 CapBnd CAP_NET_ADMIN,CAP_NET_RAW CapEff ... NoNewPrivs 0"; the
// uid is the effective one.
func (id identity) String() string {
	nnp := 0
	if id.NoNewPrivs {
		nnp = 1
	}
	return fmt.Sprintf("uid %d CapBnd %s CapEff %s NoNewPrivs %d",
		id.UID[1], capList(id.CapBnd), capList(id.CapEff), nnp)
}

// capList names the capabilities of a mask, sorted by name and joined
// with commas, or "none".
func capList(mask uint64) string {
	names := capname.Mask(mask)
	if len(names) == 0 {
		return "none"
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}
