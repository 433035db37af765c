package pkgbuild

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dyad-project/dyad/sdk/audit"
)

// TestRunAudit runs stand-ins for a daemon's binary: what the build embeds
// must read as an audit and name the engine user of ENGINE_USER.
func TestRunAudit(t *testing.T) {
	const good = `{"daemon":"d","supervisor":{"user":"root","capabilities":[],"no_new_privs":true,"seccomp":"s","landlock":"l","role":"r"},"actuator":{"user":"root","capabilities":["CAP_NET_ADMIN"],"no_new_privs":true,"seccomp":"s","landlock":"l","role":"r"},"engine":{"user":"2101:2101","capabilities":[],"no_new_privs":true,"seccomp":"s","landlock":"l","role":"r"},"operations":[]}`
	tests := []struct {
		name, prints string
		exit         int
		want         string // a substring of the error; "" for success
	}{
		{"an audit", good, 0, ""},
		{"another engine user", strings.Replace(good, `"2101:2101"`, `"65534:65534"`, 1), 0, "runs as 65534:65534, but ENGINE_USER says 2101:2101"},
		{"not an audit", `{"daemon":"d","extra":1}`, 0, "unknown field"},
		{"a failing binary", "", 3, "exit status 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			bin := filepath.Join(dir, "daemon")
			script := "#!/bin/sh\n[ \"$1 $2\" = 'audit -q' ] || exit 9\nprintf '%s' '" + tc.prints + "'\nexit " + string(rune('0'+tc.exit)) + "\n"
			if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			p := &Package{Dir: dir, Recipe: Recipe{Audit: []string{"audit", "-q"}, User: User{Name: "e", UID: 2101, GID: 2101}}}
			out, err := runAudit(context.Background(), p, bin)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %s, %v; want an error saying %q", out, err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			a, err := audit.Parse(out)
			if err != nil || a.Engine.User != "2101:2101" || !json.Valid(out) {
				t.Fatalf("embedded %s (%v)", out, err)
			}
		})
	}
}
