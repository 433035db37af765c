package initd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/linuxkit-builder/imageconfig"
)

// bundle is one container's OCI bundle, as the assembler laid it out.
type bundle struct {
	kind string // "onboot", "service" or "onshutdown", as the log says it
	name string // the directory's name, which is also runc's container id
	dir  string
}

// listBundles returns the bundles in dir in name order (the assembler
// numbers onboot and onshutdown ones NNN-name for this). A missing dir is
// an empty list.
func listBundles(dir, kind string) ([]bundle, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []bundle
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, bundle{kind: kind, name: e.Name(), dir: filepath.Join(dir, e.Name())})
		}
	}
	return out, nil
}

// logf logs a line about b: "onboot 000-dhcpcd: ...".
func (in *Init) logf(b bundle, format string, args ...any) {
	in.con.Logf("%s %s: %s", b.kind, b.name, fmt.Sprintf(format, args...))
}

// container is a container that init created and started.
type container struct {
	bundle
	pid    int
	exited <-chan unix.WaitStatus
	create *proc // runc create's; its output is the container's
}

// start creates the container of b (whose runtime.json has been applied),
// logs its identity, does what runtime.json asks once the process exists,
// and starts it.
func (in *Init) start(ctx context.Context, b bundle, rt imageconfig.Runtime) (*container, error) {
	if in.runc.exists(b.name) {
		// Left over from an earlier run of a restarted service.
		_ = in.runc.run(ctx, b.name, "delete", "-f", b.name)
	}
	pidFile := filepath.Join(in.stateDir, b.name+".pid")
	_ = os.Remove(pidFile)
	// Exits reaped from here on may be this container's: it can end
	// before init has read its pid.
	mark := in.reaper.Mark()
	cp, err := in.runc.create(ctx, b.name, b.dir, pidFile)
	if err != nil {
		if cp != nil {
			in.delete(b)
			cp.drain()
		}
		return nil, err
	}
	pid, err := readPidFile(pidFile)
	if err != nil {
		in.delete(b)
		cp.drain()
		return nil, err
	}
	c := &container{bundle: b, pid: pid, exited: in.reaper.Wait(pid, mark), create: cp}
	if id, err := readIdentity(in.host.proc, pid); err != nil {
		in.logf(b, "pid %d: %v", pid, err)
	} else {
		in.logf(b, "pid %d %s", pid, id)
	}
	if err := in.host.applyInterfaces(pid, deref(rt.Interfaces)); err != nil {
		in.discard(c)
		return nil, err
	}
	if err := in.host.bindNamespaces(pid, rt.BindNS); err != nil {
		in.discard(c)
		return nil, err
	}
	if err := in.runc.run(ctx, b.name, "start", b.name); err != nil {
		in.discard(c)
		return nil, err
	}
	return c, nil
}

// readPidFile reads the pid runc wrote.
func readPidFile(name string) (int, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return 0, fmt.Errorf("pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s: %q is not a pid", name, b)
	}
	return pid, nil
}

// finish waits for c to exit, or stops it when ctx ends, then deletes it.
// It returns how the process ended, and false if it would not.
func (in *Init) finish(ctx context.Context, c *container) (unix.WaitStatus, bool) {
	var ws unix.WaitStatus
	ok := true
	select {
	case ws = <-c.exited:
	case <-ctx.Done():
		// A shutdown needs no word; a time limit does.
		if cause := context.Cause(ctx); !errors.Is(cause, context.Canceled) {
			in.logf(c.bundle, "%v", cause)
		}
		ws, ok = in.stop(c)
	}
	in.delete(c.bundle)
	c.create.drain()
	return ws, ok
}

// stop stops c: SIGTERM, and SIGKILL if it is still there after
// in.stopGrace.
func (in *Init) stop(c *container) (unix.WaitStatus, bool) {
	grace := in.stopGrace
	// The context that ended is the one that asked for the stop; the
	// commands get their own time.
	bg := context.Background()
	if grace > 0 {
		in.logf(c.bundle, "stopping: SIGTERM")
		if err := in.runc.run(bg, c.name, "kill", c.name, "TERM"); err != nil {
			in.logf(c.bundle, "%v", err)
		}
		if ws, ok := waitExit(c.exited, grace); ok {
			return ws, true
		}
		in.logf(c.bundle, "still running after %v: SIGKILL", grace)
	}
	if err := in.runc.run(bg, c.name, "kill", c.name, "KILL"); err != nil {
		in.logf(c.bundle, "%v", err)
		_ = unix.Kill(c.pid, unix.SIGKILL)
	}
	return waitExit(c.exited, killWait)
}

// discard removes a container that was created but will not run.
func (in *Init) discard(c *container) {
	in.delete(c.bundle)
	waitExit(c.exited, killWait)
	c.create.drain()
}

// delete removes runc's container (killing what is left of it).
func (in *Init) delete(b bundle) {
	if err := in.runc.run(context.Background(), b.name, "delete", "-f", b.name); err != nil {
		in.logf(b, "%v", err)
	}
}

// prepareBundle reads b's runtime.json and applies what comes before the
// container exists.
func (in *Init) prepareBundle(b bundle) (imageconfig.Runtime, error) {
	rt, err := readRuntime(b.dir)
	if err != nil {
		return rt, err
	}
	return rt, in.host.prepare(b.dir, rt)
}

// runToCompletion runs the container of b until it exits, or until ctx
// ends, and logs how it ended.
func (in *Init) runToCompletion(ctx context.Context, b bundle) {
	rt, err := in.prepareBundle(b)
	if err != nil {
		in.logf(b, "%v", err)
		return
	}
	c, err := in.start(ctx, b, rt)
	if err != nil {
		in.logf(b, "%v", err)
		return
	}
	ws, ok := in.finish(ctx, c)
	if !ok {
		in.logf(b, "pid %d did not exit", c.pid)
		return
	}
	in.logf(b, "%s", describeExit(ws))
}

// runInOrder runs each bundle in dir to completion, one after the other,
// each bounded by timeout (0: only by ctx). A failure is logged and the
// next one runs.
func (in *Init) runInOrder(ctx context.Context, dir, kind string, timeout time.Duration) {
	bundles, err := listBundles(dir, kind)
	if err != nil {
		in.con.Logf("%s: %v", kind, err)
		return
	}
	for _, b := range bundles {
		if ctx.Err() != nil {
			in.logf(b, "not run: %v", context.Cause(ctx))
			continue
		}
		func() {
			cctx := ctx
			if timeout > 0 {
				var cancel context.CancelFunc
				cctx, cancel = context.WithTimeoutCause(ctx, timeout, fmt.Errorf("still running after %v", timeout))
				defer cancel()
			}
			in.runToCompletion(cctx, b)
		}()
	}
}
