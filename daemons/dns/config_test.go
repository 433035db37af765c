package dns

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       string // an error containing this, or "" for accepted
		check      func(c *Config) bool
	}{
		{"defaults", "upstreams: [192.0.2.53]\n", "", func(c *Config) bool {
			return len(c.listen) == 1 && c.listen[0].String() == "127.0.0.53:53" && c.ResolvConf == defaultResolvConf && c.HostsFile == defaultHostsFile
		}},
		{"tls upstream on 853", "tls_upstreams: {192.0.2.53: dns.example}\nupstreams_file: none\n", "", func(c *Config) bool {
			return len(c.tls) == 1 && c.tls[0].Addr.String() == "192.0.2.53:853" && c.TLSCAFile == defaultTLSCAFile && len(c.upstreams) == 1
		}},
		{"tls upstream with a port", "tls_upstreams: {\"192.0.2.53:8853\": dns.example}\ntls_ca_file: /ca.pem\nupstreams_file: none\n", "", func(c *Config) bool {
			return c.tls[0].Addr.Port() == 8853 && c.TLSCAFile == "/ca.pem"
		}},
		{"tls name not a name", "tls_upstreams: {192.0.2.53: \"bad name\"}\n", "tls_upstreams", nil},
		{"tls address not one", "tls_upstreams: {dns.example: dns.example}\n", "tls_upstreams", nil},
		{"no upstream", "upstreams_file: none\n", "no upstream", nil},
		{"unknown key", "upstream: [192.0.2.1]\n", "upstream", nil},
		{"listen twice", "listen: [127.0.0.53, \"127.0.0.53:53\"]\nupstreams: [192.0.2.1]\n", "twice", nil},
		{"search not a name", "search: [\"a b\"]\nupstreams: [192.0.2.1]\n", "search", nil},
		{"min above max", "min_ttl: 2h\nmax_ttl: 1h\nupstreams: [192.0.2.1]\n", "min_ttl", nil},
		{"bad local record", "local_records: [\"nonsense\"]\nupstreams: [192.0.2.1]\n", "local_records", nil},
		{"route to nowhere", "routes: {corp.example: []}\nupstreams: [192.0.2.1]\n", "corp.example", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "dns.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := ParseArgs([]string{"-f", path}, io.Discard)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want == "" && !tc.check(c):
				t.Errorf("read as %+v", c)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
}
