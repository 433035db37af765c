package procstatus

import (
	"reflect"
	"strings"
	"testing"
)

const statusText = `Name:	dyad-engine
Umask:	0022
State:	S (sleeping)
Tgid:	42
Pid:	42
Uid:	65534	65534	65534	65534
Gid:	65533	65533	65533	65532
FDSize:	64
Groups:	4 27 
CapInh:	0000000000000000
CapPrm:	0000000000001000
CapEff:	0000000000001000
CapBnd:	000001ffffffffff
CapAmb:	0000000000000000
NoNewPrivs:	1
Seccomp:	2
Seccomp_filters:	1
`

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    Status
		wantErr string
	}{
		{
			name: "full",
			text: statusText,
			want: Status{
				UID:    [4]uint32{65534, 65534, 65534, 65534},
				GID:    [4]uint32{65533, 65533, 65533, 65532},
				Groups: []uint32{4, 27},
				CapPrm: 0x1000, CapEff: 0x1000, CapBnd: 0x1ffffffffff,
				NoNewPrivs: true,
				Seccomp:    2,
			},
		},
		{
			name: "no groups",
			text: strings.Replace(statusText, "Groups:\t4 27 ", "Groups:\t", 1),
			want: Status{
				UID:    [4]uint32{65534, 65534, 65534, 65534},
				GID:    [4]uint32{65533, 65533, 65533, 65532},
				Groups: []uint32{},
				CapPrm: 0x1000, CapEff: 0x1000, CapBnd: 0x1ffffffffff,
				NoNewPrivs: true,
				Seccomp:    2,
			},
		},
		{
			name:    "no seccomp field",
			text:    strings.Replace(statusText, "Seccomp:\t2\n", "", 1),
			wantErr: "missing fields Seccomp",
		},
		{
			name:    "no NoNewPrivs nor CapAmb",
			text:    strings.Replace(strings.Replace(statusText, "NoNewPrivs:\t1\n", "", 1), "CapAmb:\t0000000000000000\n", "", 1),
			wantErr: "missing fields CapAmb, NoNewPrivs",
		},
		{
			name:    "short Uid",
			text:    strings.Replace(statusText, "Uid:\t65534\t65534\t65534\t65534", "Uid:\t65534", 1),
			wantErr: "field Uid",
		},
		{
			name:    "empty",
			text:    "",
			wantErr: "missing fields",
		},
		{
			name:    "bad capability",
			text:    strings.Replace(statusText, "CapEff:\t0000000000001000", "CapEff:\tzz", 1),
			wantErr: "field CapEff",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.text))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
