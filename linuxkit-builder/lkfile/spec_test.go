package lkfile

import (
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/dyad-project/dyad/linuxkit-builder/imageconfig"
)

// dhcpLabel is images/dhcp's label, in short.
const dhcpLabel = `{"binds":["/run/resolvconf:/etc","/run/dyad:/run/dyad"],
"capabilities":["CAP_NET_ADMIN","CAP_NET_RAW"],"readonly":true,
"runtime":{"mkdir":["/run/resolvconf"]}}`

func entry(t *testing.T, yamlEntry string) *Image {
	t.Helper()
	f, err := Parse("t.yml", ".", []byte("services:\n"+yamlEntry))
	if err != nil {
		t.Fatal(err)
	}
	return f.Services[0]
}

func TestSpecMergesLabelAndYAML(t *testing.T) {
	label, err := imageconfig.ParseLabel([]byte(dhcpLabel))
	if err != nil {
		t.Fatal(err)
	}
	def := ImageDefaults{Args: []string{"/usr/bin/dyad-dhcp"}, Env: []string{"PATH=/bin"}, Cwd: "/var"}
	ids := IDs{Users: map[string]uint32{"dyad": 2101}, Groups: map[string]uint32{"dyad": 2101}}
	mountAt := func(s *specs.Spec, dest string) *specs.Mount {
		for i := range s.Mounts {
			if s.Mounts[i].Destination == dest {
				return &s.Mounts[i]
			}
		}
		return nil
	}
	nsTypes := func(s *specs.Spec) string {
		var out []string
		for _, ns := range s.Linux.Namespaces {
			out = append(out, string(ns.Type)+ns.Path)
		}
		return strings.Join(out, ",")
	}
	tests := []struct {
		name  string
		entry string
		check func(t *testing.T, s *specs.Spec, rt imageconfig.Runtime)
	}{
		{"the label alone", "  - name: d\n    image: dyad/dhcp:1\n", func(t *testing.T, s *specs.Spec, rt imageconfig.Runtime) {
			if !slices.Equal(s.Process.Args, def.Args) || s.Process.Cwd != "/var" || !s.Root.Readonly {
				t.Errorf("process %+v root %+v", s.Process, s.Root)
			}
			if got := s.Process.Capabilities; !slices.Equal(got.Bounding, []string{"CAP_NET_ADMIN", "CAP_NET_RAW"}) || !slices.Equal(got.Effective, got.Bounding) || len(got.Ambient) != 0 {
				t.Errorf("capabilities %+v", got)
			}
			if m := mountAt(s, "/etc"); m == nil || m.Source != "/run/resolvconf" || !slices.Equal(m.Options, []string{"rw", "rbind", "rshared"}) {
				t.Errorf("bind of /etc: %+v", m)
			}
			if m := mountAt(s, "/dev"); m == nil || !slices.Contains(m.Options, "ro") {
				t.Errorf("a read-only root's /dev is read-only: %+v", m)
			}
			if got := nsTypes(s); got != "pid,mount,cgroup" {
				t.Errorf("namespaces %s, want a new pid, mount and cgroup namespace only", got)
			}
			if !slices.Equal(*rt.Mkdir, []string{"/run/resolvconf"}) || len(*rt.Mounts) != 0 {
				t.Errorf("runtime %+v", rt)
			}
			for i := 1; i < len(s.Mounts); i++ {
				if s.Mounts[i-1].Destination > s.Mounts[i].Destination {
					t.Errorf("mounts not sorted: %s before %s", s.Mounts[i-1].Destination, s.Mounts[i].Destination)
				}
			}
		}},
		{"command and env replace", "  - name: d\n    image: dyad/dhcp:1\n    command: [\"/sbin/dhcpcd\", \"-1\"]\n    env: [A=1]\n    cwd: /\n", func(t *testing.T, s *specs.Spec, _ imageconfig.Runtime) {
			if !slices.Equal(s.Process.Args, []string{"/sbin/dhcpcd", "-1"}) || !slices.Equal(s.Process.Env, []string{"A=1"}) || s.Process.Cwd != "/" {
				t.Errorf("process %+v", s.Process)
			}
		}},
		{"binds replace", "  - name: d\n    image: dyad/dhcp:1\n    binds: [\"/check.sh:/check.sh\"]\n", func(t *testing.T, s *specs.Spec, _ imageconfig.Runtime) {
			if mountAt(s, "/etc") != nil || mountAt(s, "/check.sh") == nil {
				t.Errorf("mounts %+v", s.Mounts)
			}
		}},
		{"binds.add adds", "  - name: d\n    image: dyad/dhcp:1\n    binds.add: [\"/var/tmp:/var/tmp:ro\"]\n", func(t *testing.T, s *specs.Spec, _ imageconfig.Runtime) {
			m := mountAt(s, "/var/tmp")
			if mountAt(s, "/etc") == nil || m == nil || !slices.Equal(m.Options, []string{"ro", "rbind"}) {
				t.Errorf("mounts %+v", s.Mounts)
			}
		}},
		{"capabilities replace", "  - name: d\n    image: dyad/dhcp:1\n    capabilities: [CAP_SYS_TIME]\n", func(t *testing.T, s *specs.Spec, _ imageconfig.Runtime) {
			if !slices.Equal(s.Process.Capabilities.Bounding, []string{"CAP_SYS_TIME"}) {
				t.Errorf("capabilities %+v", s.Process.Capabilities)
			}
		}},
		{"capabilities.add adds, ambient joins the bounding set", "  - name: d\n    image: dyad/dhcp:1\n    capabilities.add: [CAP_SYS_TIME, CAP_NET_RAW]\n    ambient: [CAP_KILL]\n", func(t *testing.T, s *specs.Spec, _ imageconfig.Runtime) {
			c := s.Process.Capabilities
			if !slices.Equal(c.Effective, []string{"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_TIME"}) || !slices.Equal(c.Bounding, []string{"CAP_KILL", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_TIME"}) || !slices.Equal(c.Ambient, []string{"CAP_KILL"}) {
				t.Errorf("capabilities %+v", c)
			}
		}},
		{"none", "  - name: d\n    image: dyad/dhcp:1\n    capabilities: [none]\n", func(t *testing.T, s *specs.Spec, _ imageconfig.Runtime) {
			if len(s.Process.Capabilities.Bounding) != 0 {
				t.Errorf("capabilities %+v", s.Process.Capabilities)
			}
		}},
		{"all", "  - name: d\n    image: dyad/dhcp:1\n    capabilities: [all]\n", func(t *testing.T, s *specs.Spec, _ imageconfig.Runtime) {
			if len(s.Process.Capabilities.Bounding) < 41 {
				t.Errorf("all is %d capabilities", len(s.Process.Capabilities.Bounding))
			}
		}},
		{"namespaces", "  - name: d\n    image: dyad/dhcp:1\n    net: new\n    pid: host\n    uts: /run/ns/uts\n", func(t *testing.T, s *specs.Spec, _ imageconfig.Runtime) {
			if got := nsTypes(s); got != "network,uts/run/ns/uts,mount,cgroup" {
				t.Errorf("namespaces %s", got)
			}
		}},
		{"users by name", "  - name: d\n    image: dyad/dhcp:1\n    uid: dyad\n    gid: 7\n    additionalGids: [dyad]\n", func(t *testing.T, s *specs.Spec, _ imageconfig.Runtime) {
			if u := s.Process.User; u.UID != 2101 || u.GID != 7 || !slices.Equal(u.AdditionalGids, []uint32{2101}) {
				t.Errorf("user %+v", u)
			}
		}},
		{"runtime keys replace the label's", "  - name: d\n    image: dyad/dhcp:1\n    runtime:\n      mkdir: [/a]\n      bindNS:\n        net: /run/netns/d\n", func(t *testing.T, _ *specs.Spec, rt imageconfig.Runtime) {
			if !slices.Equal(*rt.Mkdir, []string{"/a"}) || *rt.BindNS.Net != "/run/netns/d" || rt.BindNS.Pid != nil {
				t.Errorf("runtime %+v", rt)
			}
		}},
		{"rlimits and tmpfs", "  - name: d\n    image: dyad/dhcp:1\n    rlimits: [\"nofile,10,unlimited\"]\n    tmpfs: [\"/tmp:size=1m,mode=1777\"]\n", func(t *testing.T, s *specs.Spec, _ imageconfig.Runtime) {
			if r := s.Process.Rlimits; len(r) != 1 || r[0].Type != "RLIMIT_NOFILE" || r[0].Soft != 10 || r[0].Hard != ^uint64(0) {
				t.Errorf("rlimits %+v", r)
			}
			if m := mountAt(s, "/tmp"); m == nil || m.Type != "tmpfs" || !slices.Equal(m.Options, []string{"size=1m", "mode=1777"}) {
				t.Errorf("tmpfs %+v", m)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, rt, err := Spec(entry(t, tt.entry), label, def, ids)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s, rt)
		})
	}
}

func TestSpecRefuses(t *testing.T) {
	tests := []struct{ name, label, entry, want string }{
		{"unknown user", `{}`, "  - name: d\n    image: dyad/x:1\n    uid: nobody\n", `no user called "nobody"`},
		{"bad capability in the label", `{"capabilities":["CAP_FLY"]}`, "  - name: d\n    image: dyad/x:1\n", `label: unknown capability "CAP_FLY"`},
		{"mount without a type", `{"mounts":[{"destination":"/x","source":"/y"}]}`, "  - name: d\n    image: dyad/x:1\n", `mount on "/x": no type`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			label, err := imageconfig.ParseLabel([]byte(tt.label))
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = Spec(entry(t, tt.entry), label, ImageDefaults{}, IDs{Users: map[string]uint32{}, Groups: map[string]uint32{}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}
