package initd

import (
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseMountOptions(t *testing.T) {
	for _, tc := range []struct {
		opts     []string
		flags    uintptr
		prop     uintptr
		data     []string
		propOnly bool
	}{
		{opts: nil},
		{opts: []string{"bind"}, flags: unix.MS_BIND},
		{opts: []string{"rbind", "ro"}, flags: unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY},
		{opts: []string{"nosuid", "nodev", "noexec", "mode=1777", "size=10%"},
			flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, data: []string{"mode=1777", "size=10%"}},
		{opts: []string{"ro", "rw"}},
		{opts: []string{"nosuid", "suid", "exec"}},
		// LinuxKit's entry after the tmpfs of an overlay root.
		{opts: []string{"remount", "private"}, flags: unix.MS_REMOUNT, prop: unix.MS_PRIVATE, propOnly: true},
		{opts: []string{"rshared"}, prop: unix.MS_SHARED | unix.MS_REC, propOnly: true},
		{opts: []string{"bind", "rslave"}, flags: unix.MS_BIND, prop: unix.MS_SLAVE | unix.MS_REC},
		{opts: []string{"remount", "ro"}, flags: unix.MS_REMOUNT | unix.MS_RDONLY},
		{opts: []string{"lowerdir=/a", "upperdir=/b/upper", "workdir=/b/work"},
			data: []string{"lowerdir=/a", "upperdir=/b/upper", "workdir=/b/work"}},
	} {
		o := parseMountOptions(tc.opts)
		if o.flags != tc.flags || o.propagation != tc.prop || !slices.Equal(o.data, tc.data) {
			t.Errorf("%q: flags %#x propagation %#x data %q; want %#x %#x %q",
				tc.opts, o.flags, o.propagation, o.data, tc.flags, tc.prop, tc.data)
		}
		if got := o.propagationOnly(""); got != tc.propOnly {
			t.Errorf("%q: propagationOnly = %v", tc.opts, got)
		}
	}
	if parseMountOptions([]string{"private"}).propagationOnly("tmpfs") {
		t.Error("a mount with a type is not a propagation change alone")
	}
}
