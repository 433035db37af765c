package imageconfig

import "testing"

func TestParseLabel(t *testing.T) {
	c, err := ParseLabel([]byte(`{"capabilities":["CAP_NET_ADMIN"],"readonly":true,"uid":"dyad","gid":2101}`))
	if err != nil {
		t.Fatal(err)
	}
	if (*c.Capabilities)[0] != "CAP_NET_ADMIN" || !*c.Readonly || c.UID.Name != "dyad" || c.GID.Number != 2101 {
		t.Errorf("parsed %+v", c)
	}
	b, err := c.Label()
	if err != nil || string(b) != `{"capabilities":["CAP_NET_ADMIN"],"readonly":true,"uid":"dyad","gid":2101}` {
		t.Errorf("label %s (%v)", b, err)
	}
	for _, bad := range []string{
		`{"capabilites":[]}`,
		`{"readonly":"yes"}`,
		`{"uid":-1}`,
		`{"uid":""}`,
		`{} {}`,
		`{}}`,
		`[]`,
		``,
	} {
		if _, err := ParseLabel([]byte(bad)); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}
