package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/dyad-project/dyad/linuxkit-builder/cache"
	"github.com/dyad-project/dyad/linuxkit-builder/imageconfig"
)

// TestAudit builds the dhcp image and reads back, from the image alone,
// what its container and processes will hold.
func TestAudit(t *testing.T) {
	root := moduleRoot(t)
	cacheDir := filepath.Join(t.TempDir(), "cache")
	ref := build(t, cacheDir, "-tag", "audit", filepath.Join(root, "images/dhcp"))

	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"audit", "-json", ref}, &stdout, &stderr); code != 0 {
		t.Fatalf("dyad audit -json: exit %d\n%s", code, stderr.String())
	}
	var r auditReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	if r.Image != ref {
		t.Errorf("image %q, want %q", r.Image, ref)
	}
	if !slices.Contains(r.Binds, "/run/resolvconf:/etc") || !r.Readonly || r.Namespaces["net"] != "host" || r.Namespaces["pid"] != "new" {
		t.Errorf("container: binds %v, read-only %v, namespaces %v", r.Binds, r.Readonly, r.Namespaces)
	}
	if want := []string{"/usr/bin/dyad-dhcp", "dhcpcd", "--nobackground", "-f", "/dhcpcd.conf"}; !slices.Equal(r.Command, want) {
		t.Errorf("command %q, want %q", r.Command, want)
	}
	a := r.Daemon
	if a == nil {
		t.Fatal("no daemon audit in the image")
	}
	if a.Engine.User != "2101:2101" || r.EngineUser != "dyad-dhcp" || len(a.Engine.Capabilities) != 0 || !a.Engine.NoNewPrivs {
		t.Errorf("engine %+v (user named %q)", a.Engine, r.EngineUser)
	}
	if !slices.Equal(a.Actuator.Capabilities, []string{"CAP_NET_ADMIN"}) {
		t.Errorf("actuator keeps %v, want CAP_NET_ADMIN alone", a.Actuator.Capabilities)
	}
	// The image starts its engine through engine-exec: the supervisor
	// keeps nothing, and the label grants a strict subset of dhcpcd's.
	if len(a.Supervisor.Capabilities) != 0 || !strings.Contains(a.Supervisor.Role, "engine-exec") {
		t.Errorf("supervisor %+v", a.Supervisor)
	}
	if want := []string{"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE"}; !slices.Equal(r.Capabilities, want) {
		t.Errorf("label capabilities %v, want %v", r.Capabilities, want)
	}
	ops := map[string]string{}
	for _, op := range a.Operations {
		ops[op.Op] = op.Only
		if op.Does == "" || op.Checks == "" {
			t.Errorf("operation %s is not described: %+v", op.Op, op)
		}
	}
	// The image's default command manages eth* links, as dhcpcd.conf says.
	if only, ok := ops["addr.replace"]; !ok || only != "" || !strings.Contains(a.Operations[2].Checks, "eth*") {
		t.Errorf("addr.replace not granted by default, or not on eth*: %+v", a.Operations)
	}
	if only := ops["hostname.set"]; !strings.Contains(only, "CAP_SYS_ADMIN") {
		t.Errorf("hostname.set should be granted only with apply_hostname and CAP_SYS_ADMIN, says %q", only)
	}

	// The human form says the same.
	stdout.Reset()
	if code := run(context.Background(), []string{"audit", ref}, &stdout, &stderr); code != 0 {
		t.Fatalf("dyad audit: exit %d\n%s", code, stderr.String())
	}
	for _, want := range []string{"user 2101:2101 (dyad-dhcp); keeps none", "keeps CAP_NET_ADMIN (1)", "/run/resolvconf:/etc", "read-only", "hostname.set"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("dyad audit does not say %q:\n%s", want, stdout.String())
		}
	}
}

// TestAuditOtherImages: an image without dyad's audit says so; one
// without LinuxKit's label is refused.
func TestAuditOtherImages(t *testing.T) {
	t.Setenv(cache.EnvDir, filepath.Join(t.TempDir(), "cache"))
	c, err := openCache()
	if err != nil {
		t.Fatal(err)
	}
	plain, err := mutate.Config(empty.Image, v1.Config{Labels: map[string]string{
		imageconfig.LabelKey: `{"capabilities":["CAP_NET_ADMIN","CAP_SYS_ADMIN"],"binds":["/run/resolvconf:/etc"]}`,
	}})
	if err != nil {
		t.Fatal(err)
	}
	// Named by digest, as examples and tests name images.
	byDigest := func(ref string, img v1.Image) string {
		if _, err := c.Put(ref, img); err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return ref + "@" + d.String()
	}
	dhcpcd := byDigest("example/dhcpcd:1", plain)
	nolabel := byDigest("example/nolabel:1", empty.Image)
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"audit", dhcpcd}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	if out := stdout.String(); !strings.Contains(out, "CAP_NET_ADMIN CAP_SYS_ADMIN (2)") || !strings.Contains(out, "no dyad audit") {
		t.Errorf("audit of a label without dyad's audit:\n%s", out)
	}
	stderr.Reset()
	if code := run(context.Background(), []string{"audit", nolabel}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "no org.mobyproject.config label") {
		t.Errorf("audit of an image without a label: exit %d, %s", code, stderr.String())
	}
}
