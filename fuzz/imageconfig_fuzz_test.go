package fuzz

import (
	"bytes"
	"testing"

	"github.com/dyad-project/dyad/linuxkit-builder/imageconfig"
)

// FuzzParseLabel covers the reader of an image's org.mobyproject.config
// label, which comes with any image pulled from a registry. The
// invariant: no panic; a label that parses writes back to JSON that
// parses to the same label.
func FuzzParseLabel(f *testing.F) {
	for _, seed := range []string{
		`{"capabilities":["CAP_NET_ADMIN"],"binds":["/run/resolvconf:/etc"],"readonly":true}`,
		`{"uid":"dyad","gid":2101,"additionalGids":[1,"wheel"],"runtime":{"mkdir":["/run/x"],"bindNS":{"net":"/run/netns/x"}}}`,
		`{"mounts":[{"destination":"/tmp","type":"tmpfs","source":"tmpfs","options":["nosuid"]}],"sysctl":{"net.ipv4.ip_forward":"1"}}`,
		`{"devices":[{"path":"/dev/tpm0","type":"c","major":10,"minor":224,"mode":"0600"}],"resources":{"memory":{"limit":1048576}}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := imageconfig.ParseLabel(b)
		if err != nil {
			return
		}
		out, err := c.Label()
		if err != nil {
			t.Fatalf("a parsed label does not write back: %v", err)
		}
		c2, err := imageconfig.ParseLabel(out)
		if err != nil {
			t.Fatalf("the label written back (%s) does not parse: %v", out, err)
		}
		out2, err := c2.Label()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("the label changes on a second round trip:\n%s\n%s", out, out2)
		}
	})
}
