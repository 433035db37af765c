// Package procstatus reads what the kernel reports, in /proc/PID/status,
// of a process's credentials and confinement. It links no cgo, so that
// the init of dyad's VM images can use it as the sandbox does.
package procstatus

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Status is what the kernel reports, in /proc/PID/status, of the
// credentials and confinement of a process (or of one of its threads:
// these attributes are per thread).
type Status struct {
	UID, GID [4]uint32 // real, effective, saved, filesystem
	Groups   []uint32  // supplementary groups

	CapInh, CapPrm, CapEff, CapBnd, CapAmb uint64

	NoNewPrivs bool
	Seccomp    int // 0 disabled, 1 strict, 2 filter
}

// Seccomp modes as /proc/PID/status reports them.
const (
	SeccompDisabled = 0
	SeccompStrict   = 1
	SeccompFilter   = 2
)

// Read reads and parses the status file at path.
func Read(path string) (Status, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Status{}, fmt.Errorf("read status: %w", err)
	}
	s, err := Parse(b)
	if err != nil {
		return Status{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Parse parses the text of a /proc/PID/status file. Every field
// Status holds must be present: a kernel that does not report one cannot be
// checked, and a check that cannot be made must fail.
func Parse(b []byte) (Status, error) {
	var s Status
	const (
		fUID = 1 << iota
		fGID
		fGroups
		fCapInh
		fCapPrm
		fCapEff
		fCapBnd
		fCapAmb
		fNoNewPrivs
		fSeccomp
		fAll = 1<<iota - 1
	)
	seen := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		var err error
		switch key {
		case "Uid":
			s.UID, err = parseIDs(val)
			seen |= fUID
		case "Gid":
			s.GID, err = parseIDs(val)
			seen |= fGID
		case "Groups":
			s.Groups, err = parseGroups(val)
			seen |= fGroups
		case "CapInh":
			s.CapInh, err = strconv.ParseUint(val, 16, 64)
			seen |= fCapInh
		case "CapPrm":
			s.CapPrm, err = strconv.ParseUint(val, 16, 64)
			seen |= fCapPrm
		case "CapEff":
			s.CapEff, err = strconv.ParseUint(val, 16, 64)
			seen |= fCapEff
		case "CapBnd":
			s.CapBnd, err = strconv.ParseUint(val, 16, 64)
			seen |= fCapBnd
		case "CapAmb":
			s.CapAmb, err = strconv.ParseUint(val, 16, 64)
			seen |= fCapAmb
		case "NoNewPrivs":
			var n int
			n, err = strconv.Atoi(val)
			s.NoNewPrivs = n != 0
			seen |= fNoNewPrivs
		case "Seccomp":
			s.Seccomp, err = strconv.Atoi(val)
			seen |= fSeccomp
		default:
			continue
		}
		if err != nil {
			return Status{}, fmt.Errorf("field %s: %w", key, err)
		}
	}
	if err := sc.Err(); err != nil {
		return Status{}, err
	}
	if missing := fAll &^ seen; missing != 0 {
		names := []string{"Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"}
		var m []string
		for i, n := range names {
			if missing&(1<<i) != 0 {
				m = append(m, n)
			}
		}
		return Status{}, fmt.Errorf("missing fields %s", strings.Join(m, ", "))
	}
	return s, nil
}

func parseIDs(val string) ([4]uint32, error) {
	var ids [4]uint32
	f := strings.Fields(val)
	if len(f) != 4 {
		return ids, fmt.Errorf("want 4 IDs, got %q", val)
	}
	for i, x := range f {
		n, err := strconv.ParseUint(x, 10, 32)
		if err != nil {
			return ids, err
		}
		ids[i] = uint32(n)
	}
	return ids, nil
}

func parseGroups(val string) ([]uint32, error) {
	f := strings.Fields(val)
	groups := make([]uint32, 0, len(f))
	for _, x := range f {
		n, err := strconv.ParseUint(x, 10, 32)
		if err != nil {
			return nil, err
		}
		groups = append(groups, uint32(n))
	}
	return groups, nil
}
