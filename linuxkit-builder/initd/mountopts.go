package initd

import (
	"strings"

	"golang.org/x/sys/unix"
)

// mountOptions is a list of fstab-style options split the way mount(2)
// wants them: flags, a propagation change (which needs a call of its
// own) and the file system's data string.
type mountOptions struct {
	flags       uintptr
	propagation uintptr
	data        []string
}

// mountFlag is what one option does to the flags: set them, or clear them.
type mountFlag struct {
	clear bool
	flag  uintptr
}

// mountFlags are the options mount(8) turns into flags; the rest are data.
func mountFlags() map[string]mountFlag {
	return map[string]mountFlag{
		"async":         {true, unix.MS_SYNCHRONOUS},
		"atime":         {true, unix.MS_NOATIME},
		"bind":          {false, unix.MS_BIND},
		"defaults":      {false, 0},
		"dev":           {true, unix.MS_NODEV},
		"diratime":      {true, unix.MS_NODIRATIME},
		"dirsync":       {false, unix.MS_DIRSYNC},
		"exec":          {true, unix.MS_NOEXEC},
		"loud":          {true, unix.MS_SILENT},
		"mand":          {false, unix.MS_MANDLOCK},
		"noatime":       {false, unix.MS_NOATIME},
		"nodev":         {false, unix.MS_NODEV},
		"nodiratime":    {false, unix.MS_NODIRATIME},
		"noexec":        {false, unix.MS_NOEXEC},
		"nomand":        {true, unix.MS_MANDLOCK},
		"norelatime":    {true, unix.MS_RELATIME},
		"nostrictatime": {true, unix.MS_STRICTATIME},
		"nosuid":        {false, unix.MS_NOSUID},
		"rbind":         {false, unix.MS_BIND | unix.MS_REC},
		"relatime":      {false, unix.MS_RELATIME},
		"remount":       {false, unix.MS_REMOUNT},
		"ro":            {false, unix.MS_RDONLY},
		"rw":            {true, unix.MS_RDONLY},
		"silent":        {false, unix.MS_SILENT},
		"strictatime":   {false, unix.MS_STRICTATIME},
		"suid":          {true, unix.MS_NOSUID},
		"sync":          {false, unix.MS_SYNCHRONOUS},
	}
}

// propagationFlags are the options that change a mount's propagation.
func propagationFlags() map[string]uintptr {
	return map[string]uintptr{
		"private":     unix.MS_PRIVATE,
		"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
		"shared":      unix.MS_SHARED,
		"rshared":     unix.MS_SHARED | unix.MS_REC,
		"slave":       unix.MS_SLAVE,
		"rslave":      unix.MS_SLAVE | unix.MS_REC,
		"unbindable":  unix.MS_UNBINDABLE,
		"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
	}
}

// bindRemountFlags are the flags a bind mount ignores when it is made and
// takes only from a remount.
const bindRemountFlags = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC |
	unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME | unix.MS_STRICTATIME

func parseMountOptions(opts []string) mountOptions {
	var o mountOptions
	flags, props := mountFlags(), propagationFlags()
	for _, opt := range opts {
		if f, ok := flags[opt]; ok {
			if f.clear {
				o.flags &^= f.flag
			} else {
				o.flags |= f.flag
			}
			continue
		}
		if p, ok := props[opt]; ok {
			o.propagation |= p
			continue
		}
		o.data = append(o.data, opt)
	}
	return o
}

// propagationOnly reports whether the options ask for nothing but a
// change of propagation, as LinuxKit's {"options": ["remount",
// "private"]} does: mount(2) would take MS_REMOUNT|MS_PRIVATE as a
// remount that resets the mount's flags, which is not what is meant.
func (o mountOptions) propagationOnly(fstype string) bool {
	return o.propagation != 0 && o.flags&^unix.MS_REMOUNT == 0 && fstype == "" && len(o.data) == 0
}

// dataString is the data argument of mount(2).
func (o mountOptions) dataString() string { return strings.Join(o.data, ",") }
