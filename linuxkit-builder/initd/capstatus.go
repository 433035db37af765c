package initd

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/dyad-project/dyad/internal/capname"
)

// procIdentity is what the status line reports of a container's first
// process, read from /proc/PID/status once runc has created it: by then
// runc has set its user, capabilities and no_new_privs, and the process
// waits to exec the container's command.
type procIdentity struct {
	UID        string // effective uid
	CapBnd     uint64
	CapEff     uint64
	NoNewPrivs string
}

// readIdentity reads /proc/PID/status under proc.
func readIdentity(proc string, pid int) (procIdentity, error) {
	f, err := os.Open(filepath.Join(proc, strconv.Itoa(pid), "status"))
	if err != nil {
		return procIdentity{}, err
	}
	defer f.Close()
	return parseIdentity(f)
}

// parseIdentity reads the fields of a /proc/PID/status text (proc(5)).
func parseIdentity(r io.Reader) (procIdentity, error) {
	var id procIdentity
	have := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		var err error
		switch key {
		case "Uid": // real, effective, saved, file system
			f := strings.Fields(val)
			if len(f) < 2 {
				return id, fmt.Errorf("status: Uid: %q", val)
			}
			id.UID = f[1]
		case "CapBnd":
			id.CapBnd, err = strconv.ParseUint(val, 16, 64)
		case "CapEff":
			id.CapEff, err = strconv.ParseUint(val, 16, 64)
		case "NoNewPrivs":
			id.NoNewPrivs = val
		default:
			continue
		}
		if err != nil {
			return id, fmt.Errorf("status: %s: %w", key, err)
		}
		have[key] = true
	}
	if err := sc.Err(); err != nil {
		return id, err
	}
	for _, k := range []string{"Uid", "CapBnd", "CapEff", "NoNewPrivs"} {
		if !have[k] {
			return id, fmt.Errorf("status: no %s", k)
		}
	}
	return id, nil
}

// String is the part of the status line after the pid:
// "uid 0 CapBnd CAP_NET_ADMIN,CAP_NET_RAW CapEff ... NoNewPrivs 0".
func (id procIdentity) String() string {
	return fmt.Sprintf("uid %s CapBnd %s CapEff %s NoNewPrivs %s",
		id.UID, capList(id.CapBnd), capList(id.CapEff), id.NoNewPrivs)
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
