package initd

import (
	"strings"
	"testing"
)

func TestRootFSType(t *testing.T) {
	for _, tc := range []struct {
		name, mountinfo, want string
		wantErr               bool
	}{
		{
			name: "the initramfs",
			mountinfo: "1 1 0:2 / / rw - rootfs rootfs rw,size=1004480k,nr_inodes=251120\n" +
				"14 1 0:5 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n",
			want: "rootfs",
		},
		{
			name: "after the switch, the tmpfs on top",
			mountinfo: "1 1 0:2 / / rw - rootfs rootfs rw,size=1004480k,nr_inodes=251120\n" +
				"13 1 0:20 / / rw shared:1 - tmpfs tmpfs rw,mode=755\n" +
				"14 13 0:5 / /proc rw,nosuid,nodev,noexec,relatime shared:2 - proc proc rw\n",
			want: "tmpfs",
		},
		{
			name:      "a disk root",
			mountinfo: "21 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n",
			want:      "ext4",
		},
		{name: "nothing at /", mountinfo: "14 1 0:5 / /proc rw - proc proc rw\n", wantErr: true},
		{name: "no separator", mountinfo: "1 1 0:2 / / rw rootfs rootfs rw\n", wantErr: true},
		{name: "short", mountinfo: "1 1 / - rootfs rootfs rw\n", wantErr: true},
	} {
		got, err := rootFSType(strings.NewReader(tc.mountinfo))
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%s: %q, %v; want %q (error %v)", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}
