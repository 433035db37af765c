package sdk

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestControlNumbersSessions checks that a hostile report names the session
// the actuator received last, as the supervisor numbered it when sending.
func TestControlNumbersSessions(t *testing.T) {
	sup, act, err := ControlPair()
	if err != nil {
		t.Fatal(err)
	}
	defer sup.Close()
	defer act.Close()

	for want := uint64(1); want <= 3; want++ {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		sent, err := sup.SendSession(w)
		r.Close()
		w.Close()
		if err != nil {
			t.Fatal(err)
		}
		if sent != want {
			t.Fatalf("session sent as %d, want %d", sent, want)
		}
		f, err := act.ReceiveSession()
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if err := act.SendHostile(); err != nil {
			t.Fatal(err)
		}
		got, err := sup.ReceiveHostile()
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("report names session %d, want %d", got, want)
		}
	}
}

func TestControlRefusesMalformedReports(t *testing.T) {
	for _, msg := range [][]byte{
		{ctlHostile},
		{ctlHostile, 0, 0, 0, 0, 0, 0, 0, 1, 0},
		{ctlSession, 0, 0, 0, 0, 0, 0, 0, 1},
		{'X', 0, 0, 0, 0, 0, 0, 0, 1},
		make([]byte, 64),
	} {
		sup, act, err := ControlPair()
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Sendmsg(int(act.File().Fd()), msg, nil, nil, 0); err != nil {
			t.Fatal(err)
		}
		if n, err := sup.ReceiveHostile(); err == nil {
			t.Errorf("%q: accepted as a report about session %d", msg, n)
		}
		sup.Close()
		act.Close()
	}
}

func TestControlClosed(t *testing.T) {
	sup, act, err := ControlPair()
	if err != nil {
		t.Fatal(err)
	}
	defer sup.Close()
	act.Close()
	if _, err := sup.ReceiveHostile(); err != ErrControlClosed {
		t.Errorf("got %v, want ErrControlClosed", err)
	}
}
