package backend

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/dyad-project/dyad/privsep"
)

func TestLinks(t *testing.T) {
	n := newNetns(t)
	l := addVeth(t, "dyad0", "dyad0p")
	if err := n.SetMTU("dyad0", 1400); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		up               []string // links to bring up before listing
		adminUp, carrier bool     // of dyad0
	}{
		{nil, false, false},
		{[]string{"dyad0"}, true, false}, // a veth has a carrier when both ends are up
		{[]string{"dyad0p"}, true, true},
	}
	for _, tt := range tests {
		for _, name := range tt.up {
			if err := n.LinkUp(name); err != nil {
				t.Fatal(err)
			}
		}
		links, err := n.Links()
		if err != nil {
			t.Fatal(err)
		}
		byName := make(map[string]privsep.LinkEvent)
		for _, ev := range links {
			byName[ev.Name] = ev
		}
		if _, ok := byName["lo"]; !ok || len(links) != 3 {
			t.Errorf("Links = %+v, want lo, dyad0 and dyad0p", links)
		}
		want := privsep.LinkEvent{
			Index:        l.Attrs().Index,
			Name:         "dyad0",
			HardwareAddr: l.Attrs().HardwareAddr,
			AdminUp:      tt.adminUp,
			Carrier:      tt.carrier,
			MTU:          1400,
		}
		if got := byName["dyad0"]; !sameEvent(got, want) {
			t.Errorf("after bringing up %v: dyad0 is %+v, want %+v", tt.up, got, want)
		}
	}
}

func TestWatchLinks(t *testing.T) {
	n := newNetns(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan privsep.LinkEvent, 1024)
	if err := WatchLinks(ctx, func(ev privsep.LinkEvent) { events <- ev }); err != nil {
		t.Fatal(err)
	}

	waitEvent(t, events, "lo in the snapshot", func(ev privsep.LinkEvent) bool {
		return ev.Name == "lo" && !ev.Gone
	})
	l := addVeth(t, "dyad0", "dyad0p")
	index := l.Attrs().Index
	ev := waitEvent(t, events, "dyad0 created", func(ev privsep.LinkEvent) bool {
		return ev.Index == index && !ev.Gone
	})
	if ev.Name != "dyad0" || !bytes.Equal(ev.HardwareAddr, l.Attrs().HardwareAddr) || ev.MTU != l.Attrs().MTU {
		t.Errorf("creation event %+v, want name dyad0, address %v, MTU %d", ev, l.Attrs().HardwareAddr, l.Attrs().MTU)
	}
	for _, name := range []string{"dyad0", "dyad0p"} {
		if err := n.LinkUp(name); err != nil {
			t.Fatal(err)
		}
	}
	waitEvent(t, events, "dyad0 up with carrier", func(ev privsep.LinkEvent) bool {
		return ev.Index == index && ev.AdminUp && ev.Carrier
	})
	if err := netlink.LinkSetDown(l); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, "dyad0 down", func(ev privsep.LinkEvent) bool {
		return ev.Index == index && !ev.AdminUp && !ev.Carrier && !ev.Gone
	})
	if err := netlink.LinkDel(l); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, "dyad0 gone", func(ev privsep.LinkEvent) bool {
		return ev.Index == index && ev.Gone
	})

	// Once ctx has ended, fn is called no more.
	cancel()
	addVeth(t, "dyad1", "dyad1p")
	for timeout := time.After(300 * time.Millisecond); ; {
		select {
		case ev := <-events:
			if ev.Name == "dyad1" || ev.Name == "dyad1p" {
				t.Fatalf("event after the watch ended: %+v", ev)
			}
			continue
		case <-timeout:
		}
		break
	}
}

// TestWatchLinksResync makes the kernel drop notifications (a tiny receive
// buffer and a callback that blocks), among them the deletion of links the
// watch had reported: those must still be reported Gone, from the dump the
// watch takes when the kernel says it dropped some, and the final state of
// the other links must be right.
func TestWatchLinksResync(t *testing.T) {
	n := newNetns(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan privsep.LinkEvent, 4096)
	blocking := make(chan bool, 1) // holds true while fn must block
	blocked := make(chan struct{}, 1)
	release := make(chan struct{})
	fn := func(ev privsep.LinkEvent) {
		select {
		case <-blocking:
			blocked <- struct{}{}
			<-release
		default:
		}
		events <- ev
	}
	if err := watchLinks(ctx, fn, 4096); err != nil {
		t.Fatal(err)
	}

	const count = 5
	var doomed []netlink.Link
	for i := range count {
		l := addVeth(t, fmt.Sprintf("gone%d", i), fmt.Sprintf("gone%dp", i))
		doomed = append(doomed, l)
		waitEvent(t, events, l.Attrs().Name+" created", func(ev privsep.LinkEvent) bool {
			return ev.Index == l.Attrs().Index
		})
	}

	blocking <- true
	stay := addVeth(t, "stay0", "stay0p")
	select {
	case <-blocked:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not report stay0 within 5 s")
	}
	// Fill the receive buffer, then delete links: the kernel has no room
	// left for those notifications.
	const lastMTU = 1200
	for mtu := lastMTU - 200; mtu <= lastMTU; mtu++ {
		if err := n.SetMTU("stay0", mtu); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range doomed {
		if err := netlink.LinkDel(l); err != nil {
			t.Fatal(err)
		}
	}
	close(release)

	// Read until the state is right: each doomed link reported Gone, the
	// last event for stay0 has its last MTU, and lo (which does not change)
	// reported again, which shows that the watch took a dump: the kernel
	// did drop notifications.
	last := make(map[int]privsep.LinkEvent)
	loAgain := false
	settled := func() bool {
		for _, l := range doomed {
			if !last[l.Attrs().Index].Gone {
				return false
			}
		}
		ev := last[stay.Attrs().Index]
		return loAgain && ev.MTU == lastMTU && !ev.Gone
	}
	for timeout := time.After(5 * time.Second); !settled(); {
		select {
		case ev := <-events:
			last[ev.Index] = ev
			loAgain = loAgain || ev.Name == "lo"
		case <-timeout:
			t.Fatalf("state after 5 s: lo reported again %v, last events %+v", loAgain, last)
		}
	}
}

// waitEvent returns the first event that satisfies ok, waiting at most 5 s.
func waitEvent(t *testing.T, events <-chan privsep.LinkEvent, what string, ok func(privsep.LinkEvent) bool) privsep.LinkEvent {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-events:
			if ok(ev) {
				return ev
			}
		case <-timeout:
			t.Fatalf("no event for %s within 5 s", what)
		}
	}
}

func sameEvent(a, b privsep.LinkEvent) bool {
	return a.Index == b.Index && a.Name == b.Name && bytes.Equal(a.HardwareAddr, b.HardwareAddr) &&
		a.AdminUp == b.AdminUp && a.Carrier == b.Carrier && a.MTU == b.MTU && a.Gone == b.Gone
}
