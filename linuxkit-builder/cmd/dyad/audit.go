package main

import (
	"archive/tar"
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/dyad-project/dyad/linuxkit-builder/imageconfig"
	"github.com/dyad-project/dyad/sdk/audit"
)

// auditReport is what dyad audit says of an image, read from the image
// alone: the container LinuxKit will make from its label, and what the
// daemon's own binary said, at build time, each of its processes keeps.
type auditReport struct {
	Image   string   `json:"image"`
	Command []string `json:"command"`
	// The container, from the org.mobyproject.config label.
	Capabilities []string          `json:"capabilities"`
	Binds        []string          `json:"binds"`
	Tmpfs        []string          `json:"tmpfs"`
	Readonly     bool              `json:"readonly"`
	Namespaces   map[string]string `json:"namespaces"`
	User         string            `json:"user"`
	RuntimeMkdir []string          `json:"runtime_mkdir,omitempty"`
	// Daemon is nil for an image that is not a dyad daemon's.
	Daemon *audit.Audit `json:"daemon,omitempty"`
	// EngineUser is the name the image's /etc/passwd gives the engine's
	// user, if any.
	EngineUser string `json:"engine_user,omitempty"`
}

func auditImage(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("audit: want REF (in the cache) or FILE (a tarball of dyad cache export)")
	}
	img, name, err := openImage(pos[0])
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	r, err := reportOf(img, name)
	if err != nil {
		return fmt.Errorf("audit: %s: %w", name, err)
	}
	if *asJSON {
		b, _ := json.MarshalIndent(r, "", "  ")
		_, err := fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	return r.print(stdout)
}

// openImage opens a tarball if arg is a file, else a cached image.
func openImage(arg string) (v1.Image, string, error) {
	if fi, err := os.Stat(arg); err == nil && fi.Mode().IsRegular() {
		img, err := tarball.ImageFromPath(arg, nil)
		return img, arg, err
	}
	c, err := openCache()
	if err != nil {
		return nil, "", err
	}
	img, ref, err := c.Image(arg)
	if err != nil {
		return nil, "", err
	}
	return img, ref, nil
}

func reportOf(img v1.Image, name string) (*auditReport, error) {
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	raw, ok := cf.Config.Labels[imageconfig.LabelKey]
	if !ok {
		return nil, fmt.Errorf("no %s label: not an image for LinuxKit", imageconfig.LabelKey)
	}
	label, err := imageconfig.ParseLabel([]byte(raw))
	if err != nil {
		return nil, err
	}
	r := &auditReport{
		Image:        strings.SplitN(name, "@", 2)[0] + "@" + d.String(),
		Command:      append(append([]string{}, cf.Config.Entrypoint...), cf.Config.Cmd...),
		Capabilities: orNone(label.Capabilities),
		Binds:        orNone(label.Binds),
		Tmpfs:        orNone(label.Tmpfs),
		Readonly:     label.Readonly != nil && *label.Readonly,
		// LinuxKit's defaults: the host's network, IPC and UTS
		// namespaces, a new PID and mount namespace.
		Namespaces: map[string]string{
			"net": cmp.Or(label.Net, "host"), "ipc": cmp.Or(label.Ipc, "host"), "uts": cmp.Or(label.Uts, "host"),
			"pid": cmp.Or(label.Pid, "new"), "mnt": "new",
		},
		User: "root (uid 0)",
	}
	if label.Command != nil {
		r.Command = *label.Command
	}
	if label.UID != nil {
		r.User = label.UID.Name
		if r.User == "" {
			r.User = "uid " + strconv.FormatUint(uint64(label.UID.Number), 10)
		}
	}
	if label.Runtime != nil && label.Runtime.Mkdir != nil {
		r.RuntimeMkdir = *label.Runtime.Mkdir
	}
	if raw, ok := cf.Config.Labels[audit.Label]; ok {
		if r.Daemon, err = audit.Parse([]byte(raw)); err != nil {
			return nil, err
		}
		r.EngineUser, err = passwdName(img, r.Daemon.Engine.User)
		if err != nil {
			return nil, err
		}
	}
	return r, nil
}

func orNone(l *[]string) []string {
	if l == nil {
		return []string{}
	}
	return *l
}

// passwdName finds the name of uid (of "UID:GID") in the image's
// /etc/passwd.
func passwdName(img v1.Image, ids string) (string, error) {
	uid, _, _ := strings.Cut(ids, ":")
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for range 1 << 16 {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		if strings.TrimPrefix(hdr.Name, "./") != "etc/passwd" {
			continue
		}
		sc := bufio.NewScanner(io.LimitReader(tr, 1<<20))
		for sc.Scan() {
			f := strings.Split(sc.Text(), ":")
			if len(f) > 2 && f[2] == uid {
				return f[0], nil
			}
		}
		return "", sc.Err()
	}
	return "", errors.New("the image has too many files")
}

func (r *auditReport) print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "image\t%s\n", r.Image)
	fmt.Fprintf(tw, "command\t%s\n", strings.Join(r.Command, " "))
	fmt.Fprintf(tw, "\nthe container (label %s)\n", imageconfig.LabelKey)
	fmt.Fprintf(tw, "  capabilities\t%s\n", countedList(r.Capabilities))
	fmt.Fprintf(tw, "  user\t%s\n", r.User)
	root := "writable"
	if r.Readonly {
		root = "read-only"
	}
	fmt.Fprintf(tw, "  root\t%s\n", root)
	for i, b := range r.Binds {
		fmt.Fprintf(tw, "  %s\t%s\n", map[bool]string{true: "binds"}[i == 0], b)
	}
	for i, t := range r.Tmpfs {
		fmt.Fprintf(tw, "  %s\t%s\n", map[bool]string{true: "tmpfs"}[i == 0], t)
	}
	fmt.Fprintf(tw, "  namespaces\tnet %s, ipc %s, uts %s, pid %s, mnt %s\n",
		r.Namespaces["net"], r.Namespaces["ipc"], r.Namespaces["uts"], r.Namespaces["pid"], r.Namespaces["mnt"])
	if len(r.RuntimeMkdir) > 0 {
		fmt.Fprintf(tw, "  made at start\t%s\n", strings.Join(r.RuntimeMkdir, " "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	a := r.Daemon
	if a == nil {
		_, err := fmt.Fprintln(w, "\nno dyad audit in the image: what its processes keep is not known")
		return err
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\nthe processes (as %s's binary states them)\n", a.Daemon)
	for _, p := range []struct {
		name string
		p    audit.Process
	}{{"supervisor", a.Supervisor}, {"actuator", a.Actuator}, {"engine", a.Engine}} {
		user := p.p.User
		if p.name == "engine" && r.EngineUser != "" {
			user += " (" + r.EngineUser + ")"
		}
		fmt.Fprintf(tw, "  %s\tuser %s; keeps %s; no_new_privs %v\n", p.name, user, countedList(p.p.Capabilities), p.p.NoNewPrivs)
		fmt.Fprintf(tw, "  \tseccomp: %s\n", p.p.Seccomp)
		fmt.Fprintf(tw, "  \tlandlock: %s\n", p.p.Landlock)
		fmt.Fprintf(tw, "  \t%s\n", p.p.Role)
	}
	fmt.Fprintf(tw, "\nthe actuator's grant: %d operations, nothing else\n", len(a.Operations))
	for _, op := range a.Operations {
		only := ""
		if op.Only != "" {
			only = " (only with " + op.Only + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s%s\n", op.Op, op.Does, only)
		fmt.Fprintf(tw, "  \tchecks: %s\n", op.Checks)
	}
	return tw.Flush()
}

func countedList(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, " ") + " (" + strconv.Itoa(len(l)) + ")"
}
