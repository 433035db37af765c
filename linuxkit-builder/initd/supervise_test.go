package initd

import (
	"slices"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		name string
		runs []time.Duration // how long each run lasted
		want []time.Duration // the delays after them
	}{
		{
			"crash loop",
			[]time.Duration{0, 0, 0, 0, 0, 0, 0, 0, 0},
			[]time.Duration{1 * s, 2 * s, 4 * s, 8 * s, 16 * s, 32 * s, 60 * s, 60 * s, 60 * s},
		},
		{
			"a long run starts over",
			[]time.Duration{0, 0, 0, 60 * s, 0, 59 * s, 10 * time.Minute},
			[]time.Duration{1 * s, 2 * s, 4 * s, 1 * s, 2 * s, 4 * s, 1 * s},
		},
		{
			"a first run counts as a start",
			[]time.Duration{time.Hour, time.Hour},
			[]time.Duration{1 * s, 1 * s},
		},
	} {
		b := serviceBackoff()
		var got []time.Duration
		for _, ran := range tc.runs {
			got = append(got, b.next(ran))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: delays %v, want %v", tc.name, got, tc.want)
		}
	}
}
