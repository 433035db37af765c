package initd

import (
	"context"
	"sync"
	"time"
)

// backoff is the delay before a service that exited is started again:
// min at first, doubling up to max, and min again after a run of reset or
// longer (a service that ran that long was working, not crash-looping).
type backoff struct {
	min, max, reset time.Duration
	cur             time.Duration
}

// serviceBackoff is 1 s, 2 s, 4 s ... 60 s, reset after a minute's run.
func serviceBackoff() backoff {
	return backoff{min: time.Second, max: time.Minute, reset: time.Minute}
}

// next returns the delay before the next start of a service whose last
// run lasted ran.
func (b *backoff) next(ran time.Duration) time.Duration {
	if b.cur == 0 || ran >= b.reset {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return b.cur
}

// startServices starts every service in dir, each under its own
// supervisor, and returns a channel closed once all have stopped, which
// they do when ctx ends.
func (in *Init) startServices(ctx context.Context, dir string) <-chan struct{} {
	done := make(chan struct{})
	bundles, err := listBundles(dir, "service")
	if err != nil {
		in.con.Logf("services: %v", err)
	}
	var wg sync.WaitGroup
	for _, b := range bundles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer in.guard()
			in.supervise(ctx, b)
		}()
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}

// supervise runs the service of b until ctx ends, starting it again after
// a backoff each time it exits. The loop ends with ctx: services run
// until shutdown.
func (in *Init) supervise(ctx context.Context, b bundle) {
	if ctx.Err() != nil {
		return // shut down during onboot: nothing to start
	}
	rt, err := in.prepareBundle(b)
	if err != nil {
		// Its mounts may be half made: another attempt would stack them.
		in.logf(b, "%v; not starting it", err)
		return
	}
	bo := in.newBackoff()
	for ctx.Err() == nil {
		began := time.Now()
		what := ""
		if c, err := in.start(ctx, b, rt); err != nil {
			what = err.Error()
		} else {
			ws, ok := in.finish(ctx, c)
			switch {
			case !ok:
				what = "would not exit"
			default:
				what = describeExit(ws)
			}
		}
		if ctx.Err() != nil {
			in.logf(b, "%s", what)
			return
		}
		d := bo.next(time.Since(began))
		in.logf(b, "%s; restarting in %v", what, d)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
