package assemble

import (
	"archive/tar"
	"bufio"
	"bytes"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// Files every container image gets in place of its own, as LinuxKit's
// build gives them: an image's /etc/hosts and /etc/resolv.conf were made
// for the machine that built it.
const (
	hostsFile = `127.0.0.1       localhost
::1     localhost ip6-localhost ip6-loopback
fe00::0 ip6-localnet
ff00::0 ip6-mcastprefix
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
`
	noResolvConf = "\n# no resolv.conf configured\n"
	// ResolvConfLink is where /etc/resolv.conf of the system points: the
	// DHCP client writes the file in /run/resolvconf, which the init
	// makes.
	ResolvConfLink = "/run/resolvconf/resolv.conf"
)

// dropped are what a build tool leaves in an image that must not reach a
// running system.
var dropped = map[string]bool{
	".dockerenv": true, "Dockerfile": true, "dev/console": true,
	"dev/pts": true, "dev/shm": true, "etc/hostname": true,
}

// unpack adds the flattened file system of img to t below prefix. For an
// init image (system true), /etc/resolv.conf becomes the link into
// /run/resolvconf; in a container it is a placeholder.
func unpack(t *Tree, prefix string, img v1.Image, system bool) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	return t.AddTar(prefix, rc, func(h *tar.Header) (bool, []byte) {
		if dropped[h.Name] || strings.HasPrefix(h.Name, "dev/pts/") || strings.HasPrefix(h.Name, "dev/shm/") {
			return false, nil
		}
		switch h.Name {
		case "etc/hosts":
			if h.Typeflag == tar.TypeReg {
				return true, []byte(hostsFile)
			}
		case "etc/resolv.conf":
			if system {
				h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, ResolvConfLink, 0
				return true, nil
			}
			h.Typeflag, h.Linkname = tar.TypeReg, ""
			return true, []byte(noResolvConf)
		}
		return true, nil
	})
}

// ids reads the users and groups of a file system in the tree below
// prefix, for a uid or gid given by name.
func ids(t *Tree, prefix string) (users, groups map[string]uint32) {
	read := func(file string) map[string]uint32 {
		out := map[string]uint32{}
		b, _ := t.Lookup(prefix + "/" + file)
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			f := strings.Split(sc.Text(), ":")
			if len(f) < 3 || strings.HasPrefix(f[0], "#") {
				continue
			}
			if n, err := strconv.ParseUint(f[2], 10, 32); err == nil {
				out[f[0]] = uint32(n)
			}
		}
		return out
	}
	return read("etc/passwd"), read("etc/group")
}
