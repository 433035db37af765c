package testnet

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ProcStatus reads /proc/PID/status as the kernel words it, each value's
// fields joined by one space ("Uid" is "0 0 0 0"); empty for a process
// that is gone. Tests compare its strings with what they expect.
func ProcStatus(pid int) map[string]string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return map[string]string{}
	}
	st := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		st[k] = strings.Join(strings.Fields(v), " ")
	}
	return st
}

// Children lists the PIDs whose parent is pid.
func Children(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	parent := strconv.Itoa(pid)
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err == nil && ProcStatus(child)["PPid"] == parent {
			out = append(out, child)
		}
	}
	return out
}
