package lkfile

import (
	"cmp"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/dyad-project/dyad/internal/capname"
	"github.com/dyad-project/dyad/linuxkit-builder/imageconfig"
)

// ImageDefaults is what an image's own configuration (its Dockerfile's
// ENTRYPOINT, CMD, ENV and WORKDIR) gives a container, under the label and
// the YAML.
type ImageDefaults struct {
	Args []string
	Env  []string
	Cwd  string
}

// IDs maps the user and group names of an image to their numbers; nil
// maps stand for an image not seen.
type IDs struct {
	Users, Groups map[string]uint32
}

// Spec is what the YAML entry img, laid over its image's label and
// defaults, makes: the OCI runtime spec runc runs and the runtime
// configuration the init applies around it. LinuxKit's rules: a key of
// the YAML replaces the label's; binds.add and capabilities.add add to
// the label's binds and capabilities; net, ipc and uts default to the
// host's namespaces and pid to a new one; a container always gets its
// own mount and cgroup namespaces.
func Spec(img *Image, label imageconfig.Config, def ImageDefaults, ids IDs) (*specs.Spec, imageconfig.Runtime, error) {
	if err := checkConfig(label); err != nil {
		return nil, imageconfig.Runtime{}, fmt.Errorf("the image's label: %w", err)
	}
	y := img.Config
	args := pick(def.Args, label.Command, y.Command)
	env := pick(def.Env, label.Env, y.Env)
	cwd := cmp.Or(y.Cwd, label.Cwd, def.Cwd, "/")
	readonly := img.ReadonlyRoot(label)

	mounts, err := mounts(label, y, readonly)
	if err != nil {
		return nil, imageconfig.Runtime{}, err
	}
	namespaces := namespaces(label, y)

	caps := pick(nil, addUnique(label.Capabilities, y.CapabilitiesAdd), y.Capabilities)
	caps = expandCaps(caps)
	ambient := expandCaps(pick(nil, label.Ambient, y.Ambient))
	bounding := addUnique(&caps, &ambient)
	slices.Sort(*bounding)

	var rlimits []specs.POSIXRlimit
	for _, r := range pick(nil, label.Rlimits, y.Rlimits) {
		rl, err := parseRlimit(r)
		if err != nil {
			return nil, imageconfig.Runtime{}, err
		}
		rlimits = append(rlimits, rl)
	}

	uid, err := ResolveID(pickPtr(label.UID, y.UID), ids.Users, "user")
	if err != nil {
		return nil, imageconfig.Runtime{}, err
	}
	gid, err := ResolveID(pickPtr(label.GID, y.GID), ids.Groups, "group")
	if err != nil {
		return nil, imageconfig.Runtime{}, err
	}
	var groups []uint32
	for _, g := range pick(nil, label.AdditionalGids, y.AdditionalGids) {
		n, err := ResolveID(&g, ids.Groups, "group")
		if err != nil {
			return nil, imageconfig.Runtime{}, err
		}
		groups = append(groups, n)
	}

	resources := specs.LinuxResources{}
	if r := pickPtr(label.Resources, y.Resources); r != nil {
		resources = *r
	}
	var devices []specs.LinuxDevice
	for _, d := range pick(nil, label.Devices, y.Devices) {
		if d.Path == "all" {
			// A whole class of devices, for the device cgroup only.
			resources.Devices = append(resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Access: "rwm"})
			continue
		}
		mode, err := strconv.ParseUint(d.Mode, 8, 32)
		if err != nil {
			return nil, imageconfig.Runtime{}, fmt.Errorf("device %s: mode %q is not octal", d.Path, d.Mode)
		}
		fm := os.FileMode(mode)
		devices = append(devices, specs.LinuxDevice{Path: d.Path, Type: d.Type, Major: d.Major, Minor: d.Minor, FileMode: &fm})
		major, minor := d.Major, d.Minor
		resources.Devices = append(resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Major: &major, Minor: &minor, Access: "rwm"})
	}

	spec := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			User: specs.User{UID: uid, GID: gid, AdditionalGids: groups},
			Args: args,
			Env:  env,
			Cwd:  cwd,
			Capabilities: &specs.LinuxCapabilities{
				Bounding:    *bounding,
				Effective:   caps,
				Permitted:   *bounding,
				Inheritable: *bounding,
				Ambient:     ambient,
			},
			Rlimits:         rlimits,
			NoNewPrivileges: pickBool(label.NoNewPrivileges, y.NoNewPrivileges),
			OOMScoreAdj:     pickPtr(label.OOMScoreAdj, y.OOMScoreAdj),
		},
		Root:        &specs.Root{Path: "rootfs", Readonly: readonly},
		Hostname:    cmp.Or(y.Hostname, label.Hostname),
		Mounts:      mounts,
		Annotations: pickMap(label.Annotations, y.Annotations),
		Linux: &specs.Linux{
			UIDMappings:       pick(nil, label.UIDMappings, y.UIDMappings),
			GIDMappings:       pick(nil, label.GIDMappings, y.GIDMappings),
			Sysctl:            pickMap(label.Sysctl, y.Sysctl),
			Resources:         &resources,
			CgroupsPath:       derefOr(pickPtr(label.CgroupsPath, y.CgroupsPath), ""),
			Namespaces:        namespaces,
			Devices:           devices,
			RootfsPropagation: derefOr(pickPtr(label.RootfsPropagation, y.RootfsPropagation), ""),
			MaskedPaths:       pick(nil, label.MaskedPaths, y.MaskedPaths),
			ReadonlyPaths:     pick(nil, label.ReadonlyPaths, y.ReadonlyPaths),
		},
	}
	return spec, runtimeOf(label.Runtime, y.Runtime), nil
}

// ReadonlyRoot says whether the container's root is read-only: the
// YAML's readonly if set, else its image's label's.
func (img *Image) ReadonlyRoot(label imageconfig.Config) bool {
	return pickBool(label.Readonly, img.Readonly)
}

// mounts are the container's mounts, sorted by destination so that /dev
// comes before /dev/pts: the defaults (as Docker's), then tmpfs, binds and
// mounts, each replacing a mount at the same destination.
func mounts(label, y imageconfig.Config, readonly bool) ([]specs.Mount, error) {
	dev := []string{"nosuid", "strictatime", "mode=755", "size=65536k"}
	sys := []string{"nosuid", "noexec", "nodev"}
	if readonly {
		dev = append(dev, "ro")
		sys = append(sys, "ro")
	}
	byDest := map[string]specs.Mount{
		"/proc":          {Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "nodev", "noexec", "relatime"}},
		"/dev":           {Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: dev},
		"/dev/pts":       {Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		"/sys":           {Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sys},
		"/sys/fs/cgroup": {Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
	for _, t := range pick(nil, label.Tmpfs, y.Tmpfs) {
		m, err := parseTmpfs(t)
		if err != nil {
			return nil, err
		}
		byDest[m.Destination] = m
	}
	for _, b := range pick(nil, addUnique(label.Binds, y.BindsAdd), y.Binds) {
		m, err := parseBind(b)
		if err != nil {
			return nil, err
		}
		byDest[m.Destination] = m
	}
	for _, m := range pick(nil, label.Mounts, y.Mounts) {
		m, err := completeMount(m)
		if err != nil {
			return nil, err
		}
		byDest[m.Destination] = m
	}
	out := make([]specs.Mount, 0, len(byDest))
	for _, m := range byDest {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b specs.Mount) int { return strings.Compare(a.Destination, b.Destination) })
	return out, nil
}

// completeMount fills in the type, source and destination a mount entry
// may leave out.
func completeMount(m specs.Mount) (specs.Mount, error) {
	if m.Type == "" {
		switch m.Source {
		case "mqueue", "devpts", "proc", "sysfs", "cgroup":
			m.Type = m.Source
		}
	}
	if m.Type == "" && m.Destination == "/dev" {
		m.Type = "tmpfs"
	}
	if m.Type == "" {
		return m, fmt.Errorf("mount on %q: no type", m.Destination)
	}
	if m.Source == "" {
		m.Source = m.Type
	}
	if m.Destination == "" {
		m.Destination = map[string]string{"proc": "/proc", "devpts": "/dev/pts", "sysfs": "/sys", "cgroup": "/sys/fs/cgroup", "mqueue": "/dev/mqueue"}[m.Type]
	}
	if m.Destination == "" {
		return m, fmt.Errorf("mount of type %s: no destination", m.Type)
	}
	return m, nil
}

// parseBind reads SOURCE:DESTINATION[:OPTIONS]; without options a bind is
// read-write, recursive and shared, as LinuxKit makes it.
func parseBind(b string) (specs.Mount, error) {
	parts := strings.Split(b, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return specs.Mount{}, fmt.Errorf("bind %q: want SOURCE:DESTINATION[:OPTIONS]", b)
	}
	if !strings.HasPrefix(parts[1], "/") {
		return specs.Mount{}, fmt.Errorf("bind %q: the destination must be an absolute path", b)
	}
	opts := []string{"rw", "rbind", "rshared"}
	if len(parts) == 3 {
		opts = append(strings.Split(parts[2], ","), "rbind")
	}
	return specs.Mount{Destination: parts[1], Type: "bind", Source: parts[0], Options: opts}, nil
}

// parseTmpfs reads DESTINATION[:OPTIONS].
func parseTmpfs(t string) (specs.Mount, error) {
	dest, opts, hasOpts := strings.Cut(t, ":")
	if !strings.HasPrefix(dest, "/") || strings.Contains(opts, ":") {
		return specs.Mount{}, fmt.Errorf("tmpfs %q: want /DESTINATION[:OPTIONS]", t)
	}
	m := specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs"}
	if hasOpts {
		m.Options = strings.Split(opts, ",")
	}
	return m, nil
}

var rlimitNames = []string{"RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE",
	"RLIMIT_RSS", "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS",
	"RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME"}

// parseRlimit reads NAME,SOFT,HARD, where a limit may be "unlimited".
func parseRlimit(s string) (specs.POSIXRlimit, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return specs.POSIXRlimit{}, fmt.Errorf("rlimit %q: want NAME,SOFT,HARD", s)
	}
	limit := strings.ToUpper(strings.TrimSpace(parts[0]))
	if !strings.HasPrefix(limit, "RLIMIT_") {
		limit = "RLIMIT_" + limit
	}
	if !slices.Contains(rlimitNames, limit) {
		return specs.POSIXRlimit{}, fmt.Errorf("rlimit %q: unknown limit %s", s, parts[0])
	}
	var vals [2]uint64
	for i, v := range parts[1:] {
		v = strings.TrimSpace(v)
		if strings.EqualFold(v, "unlimited") {
			vals[i] = math.MaxUint64
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return specs.POSIXRlimit{}, fmt.Errorf("rlimit %q: %q is not a number or unlimited", s, v)
		}
		vals[i] = n
	}
	return specs.POSIXRlimit{Type: limit, Soft: vals[0], Hard: vals[1]}, nil
}

// namespaces: net, ipc, uts and user default to the host's; pid to a new
// one; "new" (or "none" for net) makes one, a path joins one.
func namespaces(label, y imageconfig.Config) []specs.LinuxNamespace {
	var out []specs.LinuxNamespace
	for _, ns := range []struct {
		typ       specs.LinuxNamespaceType
		v, def    string
		noneIsNew bool
	}{
		{specs.NetworkNamespace, cmp.Or(y.Net, label.Net), "host", true},
		{specs.IPCNamespace, cmp.Or(y.Ipc, label.Ipc), "host", false},
		{specs.UTSNamespace, cmp.Or(y.Uts, label.Uts), "host", false},
		{specs.PIDNamespace, cmp.Or(y.Pid, label.Pid), "new", false},
		{specs.UserNamespace, cmp.Or(y.Userns, label.Userns), "host", false},
	} {
		v := cmp.Or(ns.v, ns.def)
		switch {
		case v == "host" || v == "root":
			continue
		case v == "new" || (v == "none" && ns.noneIsNew):
			v = ""
		}
		out = append(out, specs.LinuxNamespace{Type: ns.typ, Path: v})
	}
	return append(out, specs.LinuxNamespace{Type: specs.MountNamespace}, specs.LinuxNamespace{Type: specs.CgroupNamespace})
}

// runtimeOf lays the YAML's runtime keys over the label's, each key
// replacing, every list present (the init reads them as they are).
func runtimeOf(label, y *imageconfig.Runtime) imageconfig.Runtime {
	if label == nil {
		label = &imageconfig.Runtime{}
	}
	if y == nil {
		y = &imageconfig.Runtime{}
	}
	cgroups := pick([]string{}, label.Cgroups, y.Cgroups)
	mounts := pick([]specs.Mount{}, label.Mounts, y.Mounts)
	mkdir := pick([]string{}, label.Mkdir, y.Mkdir)
	ifaces := pick([]imageconfig.Interface{}, label.Interfaces, y.Interfaces)
	ns := imageconfig.Namespaces{}
	lb, yb := derefOr(label.BindNS, imageconfig.Namespaces{}), derefOr(y.BindNS, imageconfig.Namespaces{})
	for _, f := range []struct{ out, l, y **string }{
		{&ns.Cgroup, &lb.Cgroup, &yb.Cgroup}, {&ns.Ipc, &lb.Ipc, &yb.Ipc}, {&ns.Mnt, &lb.Mnt, &yb.Mnt},
		{&ns.Net, &lb.Net, &yb.Net}, {&ns.Pid, &lb.Pid, &yb.Pid}, {&ns.User, &lb.User, &yb.User}, {&ns.Uts, &lb.Uts, &yb.Uts},
	} {
		*f.out = pickPtr(*f.l, *f.y)
	}
	return imageconfig.Runtime{
		Cgroups: &cgroups, Mounts: &mounts, Mkdir: &mkdir, Interfaces: &ifaces,
		BindNS: &ns, Namespace: pickPtr(label.Namespace, y.Namespace),
	}
}

// expandCaps turns a lone "all" or "none" into the list it means.
func expandCaps(caps []string) []string {
	if len(caps) == 1 {
		switch strings.ToLower(caps[0]) {
		case "all":
			return capname.All()
		case "none":
			return []string{}
		}
	}
	if caps == nil {
		return []string{}
	}
	return caps
}

// addUnique is a followed by what b adds, each name once; nil when both
// are unset.
func addUnique(a, b *[]string) *[]string {
	if a == nil && b == nil {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, list := range []*[]string{a, b} {
		if list == nil {
			continue
		}
		for _, s := range *list {
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	if out == nil {
		out = []string{}
	}
	return &out
}

// pick returns the YAML's value if set, else the label's, else def.
func pick[T any](def []T, label, yaml *[]T) []T {
	switch {
	case yaml != nil:
		return *yaml
	case label != nil:
		return *label
	}
	return def
}

func pickPtr[T any](label, yaml *T) *T {
	if yaml != nil {
		return yaml
	}
	return label
}

func pickBool(label, yaml *bool) bool { return derefOr(pickPtr(label, yaml), false) }

func pickMap(label, yaml *map[string]string) map[string]string {
	return derefOr(pickPtr(label, yaml), nil)
}

func derefOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// ResolveID resolves a user or group (what says which): a number, or a
// name found in names. A nil names is an image not seen (a dry run): any
// name passes, as 0.
func ResolveID(id *imageconfig.ID, names map[string]uint32, what string) (uint32, error) {
	switch {
	case id == nil, id.Name == "" && id.Number == 0, id.Name == "root":
		return 0, nil
	case id.Name == "":
		return id.Number, nil
	case names == nil:
		return 0, nil
	}
	n, ok := names[id.Name]
	if !ok {
		return 0, fmt.Errorf("the image has no %s called %q", what, id.Name)
	}
	return n, nil
}
