package backend

import (
	"fmt"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// enterNamespaces moves the test's OS thread into new namespaces of the
// kinds in flags, so that what the test changes never reaches the host. The
// goroutine stays locked to that thread for good: when the test ends, the
// thread exits with it instead of going back to the pool in foreign
// namespaces. A new mount namespace gets private propagation, so that its
// mounts are not seen outside. The test fails unless each namespace did
// change.
func enterNamespaces(t *testing.T, flags int) {
	t.Helper()
	runtime.LockOSThread() // never unlocked: see above
	before := nsInodes(t, flags)
	if err := unix.Unshare(flags); err != nil {
		t.Fatalf("unshare(%#x): %v (the tests must run as root)", flags, err)
	}
	after := nsInodes(t, flags)
	for name, ino := range after {
		if ino == before[name] {
			t.Fatalf("still in the host's %s namespace after unshare", name)
		}
	}
	if flags&unix.CLONE_NEWNS != 0 {
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			t.Fatalf("make mounts private: %v", err)
		}
	}
}

// nsInodes returns the inode of each namespace in flags of the calling
// thread.
func nsInodes(t *testing.T, flags int) map[string]uint64 {
	t.Helper()
	namespaces := []struct {
		flag int
		name string // in /proc/thread-self/ns
	}{
		{unix.CLONE_NEWNET, "net"},
		{unix.CLONE_NEWNS, "mnt"},
		{unix.CLONE_NEWUTS, "uts"},
	}
	m := make(map[string]uint64)
	for _, ns := range namespaces {
		if flags&ns.flag == 0 {
			continue
		}
		var st unix.Stat_t
		p := fmt.Sprintf("/proc/thread-self/ns/%s", ns.name)
		if err := unix.Stat(p, &st); err != nil {
			t.Fatalf("stat %s: %v", p, err)
		}
		m[ns.name] = st.Ino
	}
	return m
}

// onHost runs f on another OS thread, one that is in the host's
// namespaces, and returns its result.
func onHost[T any](f func() T) T {
	c := make(chan T)
	go func() { c <- f() }()
	return <-c
}
