package backend

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/privsep"
)

const (
	// watchBuffer is the receive buffer asked for the link subscription:
	// room for a burst of changes (many containers' veths at once) before
	// the kernel drops notifications and a resync is needed.
	watchBuffer = 1 << 20

	// resyncAttempts bounds the dumps tried after notifications were lost.
	resyncAttempts = 5

	// maxBackoff caps the pause after a failed receive or resync.
	maxBackoff = time.Second
)

// WatchLinks calls fn with every link present now, then with every change
// to a link (Gone set when it is deleted or leaves the namespace) until ctx
// ends. It subscribes to the kernel's link notifications before taking that
// snapshot and before returning, so that no change made after the call is
// missed; it returns an error if it can do neither. It watches the network
// namespace of the calling thread.
//
// fn is called from one goroutine, one event at a time; the last event for
// a link describes its current state, and fn is not called once ctx has
// ended. If fn is so slow that the kernel drops notifications, the watch
// repairs itself: it reports every link again from a fresh dump, and
// reports as Gone those that vanished meanwhile.
func WatchLinks(ctx context.Context, fn func(privsep.LinkEvent)) error {
	return watchLinks(ctx, fn, watchBuffer)
}

// watchLinks is WatchLinks with a given receive buffer size, so that tests
// can make the kernel drop notifications.
func watchLinks(ctx context.Context, fn func(privsep.LinkEvent), rcvbuf int) error {
	s, err := nl.Subscribe(unix.NETLINK_ROUTE, unix.RTNLGRP_LINK)
	if err != nil {
		return fmt.Errorf("backend: watch links: subscribe: %w", err)
	}
	// A smaller buffer than asked only makes resyncs likelier.
	_ = s.SetReceiveBufferSize(rcvbuf, false)
	n, err := NewNetlink()
	if err != nil {
		s.Close()
		return err
	}
	snap, err := n.Links()
	if err != nil {
		s.Close()
		n.Close()
		return err
	}
	w := &linkWatch{sock: s, dumps: n, fn: fn, known: make(map[int]string)}
	// Closing the socket is what ends a Receive blocked in the loop.
	context.AfterFunc(ctx, s.Close)
	go func() {
		defer n.Close()
		w.run(ctx, snap)
	}()
	return nil
}

// linkWatch is the state of one WatchLinks loop.
type linkWatch struct {
	sock  *nl.NetlinkSocket
	dumps *Netlink // for resync dumps, in the watched namespace
	fn    func(privsep.LinkEvent)
	known map[int]string // index to name of the links reported and not gone
}

func (w *linkWatch) run(ctx context.Context, snap []privsep.LinkEvent) {
	w.report(ctx, snap)
	failures := 0
	for ctx.Err() == nil {
		msgs, from, err := w.sock.Receive()
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, unix.ENOBUFS):
			// The kernel dropped notifications; the socket is still good.
			w.resync(ctx)
			continue
		case err != nil:
			// Not seen in practice on a netlink socket; pause rather
			// than spin, and go on until ctx ends.
			failures++
			sleep(ctx, min(time.Duration(failures)*100*time.Millisecond, maxBackoff))
			continue
		}
		failures = 0
		if from.Pid != nl.PidKernel {
			continue
		}
		for _, m := range msgs {
			if ctx.Err() != nil {
				return
			}
			w.handle(m)
		}
	}
}

// handle reports one notification.
func (w *linkWatch) handle(m syscall.NetlinkMessage) {
	t := m.Header.Type
	if t != unix.RTM_NEWLINK && t != unix.RTM_DELLINK || len(m.Data) < unix.SizeofIfInfomsg {
		return
	}
	// Bridge port notifications (AF_BRIDGE) share the group; an
	// RTM_DELLINK among them means a port left a bridge, not a link gone.
	if nl.DeserializeIfInfomsg(m.Data).Family != unix.AF_UNSPEC {
		return
	}
	h := unix.NlMsghdr(m.Header)
	l, err := netlink.LinkDeserialize(&h, m.Data)
	if err != nil {
		return
	}
	ev := linkEvent(l)
	if t == unix.RTM_DELLINK {
		ev.Gone = true
		delete(w.known, ev.Index)
	} else {
		w.known[ev.Index] = ev.Name
	}
	w.fn(ev)
}

// resync reports the links from a fresh dump after notifications were
// lost. A dump that keeps failing leaves the state as the notifications
// that follow make it.
func (w *linkWatch) resync(ctx context.Context) {
	for i := range resyncAttempts {
		links, err := w.dumps.Links()
		if err == nil {
			w.report(ctx, links)
			return
		}
		sleep(ctx, min(time.Duration(i+1)*100*time.Millisecond, maxBackoff))
		if ctx.Err() != nil {
			return
		}
	}
}

// report sends a full list of the links present, then Gone for the known
// links missing from it.
func (w *linkWatch) report(ctx context.Context, links []privsep.LinkEvent) {
	present := make(map[int]bool, len(links))
	for _, ev := range links {
		if ctx.Err() != nil {
			return
		}
		present[ev.Index] = true
		w.known[ev.Index] = ev.Name
		w.fn(ev)
	}
	for index, name := range w.known {
		if ctx.Err() != nil {
			return
		}
		if !present[index] {
			delete(w.known, index)
			w.fn(privsep.LinkEvent{Index: index, Name: name, Gone: true})
		}
	}
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
