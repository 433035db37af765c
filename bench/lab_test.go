package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/internal/testnet"
)

const (
	// addrTimeout bounds the wait for a client's address.
	addrTimeout = 15 * time.Second
	// exitTimeout bounds the wait for a one-shot client to exit once its
	// address is there, and for a stopped client to go.
	exitTimeout = 5 * time.Second
	// exitGrace is how long the address of a client that has exited
	// may take to be reported: the kernel's notice and the exit race.
	exitGrace = time.Second
	// logLimit is how much of a client's log an error shows.
	logLimit = 4 << 10
	// strayGrace is how long a client's leftover processes have to exit
	// by themselves before they are killed as strays.
	strayGrace = time.Second
)

// lab is one Net with a DHCP server, seen from the client's namespace: a
// netlink handle there, and a subscription to its address events that is
// open before any client starts.
type lab struct {
	net     *testnet.Net
	srv     *testnet.Server
	ns      netns.NsHandle
	h       *netlink.Handle
	link    netlink.Link
	updates chan netlink.AddrUpdate
	logDir  string
}

func newLab(t *testing.T, n *testnet.Net, srv *testnet.Server, logDir string) *lab {
	t.Helper()
	ns, err := netns.GetFromName(n.Client)
	if err != nil {
		t.Fatalf("bench: opening namespace %s: %v", n.Client, err)
	}
	t.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("bench: netlink handle in %s: %v", n.Client, err)
	}
	t.Cleanup(h.Close)
	link, err := h.LinkByName(n.ClientIf)
	if err != nil {
		t.Fatalf("bench: %s in %s: %v", n.ClientIf, n.Client, err)
	}
	l := &lab{net: n, srv: srv, ns: ns, h: h, link: link, updates: make(chan netlink.AddrUpdate, 256), logDir: logDir}
	done := make(chan struct{})
	err = netlink.AddrSubscribeWithOptions(l.updates, done, netlink.AddrSubscribeOptions{
		Namespace:         &ns,
		ReceiveBufferSize: 1 << 20,
		ErrorCallback: func(err error) {
			select {
			case <-done: // closing the socket at the end fails the receive
			default:
				t.Errorf("bench: address subscription in %s: %v", n.Client, err)
			}
		},
	})
	if err != nil {
		t.Fatalf("bench: subscribing to address events in %s: %v", n.Client, err)
	}
	t.Cleanup(func() { close(done) })
	return l
}

// running is a client process started by the lab.
type running struct {
	cmd     *exec.Cmd
	start   time.Time // just before the fork and exec
	done    chan struct{}
	err     error // cmd.Wait's result, set before done is closed
	logPath string
}

func (r *running) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// wait waits up to d for the process to exit.
func (r *running) wait(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-r.done:
		return true
	case <-timer.C:
		return false
	}
}

// stop sends SIGTERM, then SIGKILL if the process is still there after
// exitTimeout, and waits for it.
func (r *running) stop() {
	if r.exited() {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	if r.wait(exitTimeout) {
		return
	}
	_ = r.cmd.Process.Kill()
	r.wait(exitTimeout)
}

// log returns the tail of the client's output.
func (r *running) log() string {
	b, err := os.ReadFile(r.logPath)
	if err != nil {
		return err.Error()
	}
	if len(b) > logLimit {
		b = append([]byte("[...]\n"), b[len(b)-logLimit:]...)
	}
	return string(b)
}

// start runs argv in the client's network namespace, straight from a
// thread that has joined it, so that no `ip netns exec` runs first: the
// clock starts just before the fork and exec of the client itself. Its
// standard output and error go to a file, so that no pipe keeps Wait
// waiting on a process the client left behind.
func (l *lab) start(name string, argv []string) (*running, error) {
	f, err := os.CreateTemp(l.logDir, name+"-*.log")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	r := &running{cmd: cmd, done: make(chan struct{}), logPath: f.Name()}
	errc := make(chan error, 1)
	go func() {
		// The thread stays locked, so the runtime discards it when this
		// goroutine returns rather than reuse it in the wrong namespace.
		runtime.LockOSThread()
		if err := unix.Setns(int(l.ns), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("joining %s: %w", l.net.Client, err)
			return
		}
		r.start = time.Now()
		errc <- cmd.Start()
	}()
	if err := <-errc; err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		r.err = cmd.Wait()
		close(r.done)
	}()
	return r, nil
}

// prepare gets the client interface ready for a run: no IPv4 address and
// no route on it, up, and no address event pending.
func (l *lab) prepare() error {
	if err := l.flush(); err != nil {
		return err
	}
	if err := l.h.LinkSetUp(l.link); err != nil {
		return fmt.Errorf("setting %s up: %w", l.net.ClientIf, err)
	}
	for {
		select {
		case _, ok := <-l.updates:
			if !ok {
				return errors.New("the address subscription closed")
			}
		default:
			return nil
		}
	}
}

// flush removes every IPv4 address and route of the client interface.
func (l *lab) flush() error {
	// Bounded: a client left running could add addresses back forever.
	for range 10 {
		addrs, err := l.h.AddrList(l.link, netlink.FAMILY_V4)
		if err != nil {
			return fmt.Errorf("listing the addresses of %s: %w", l.net.ClientIf, err)
		}
		routes, err := l.h.RouteList(l.link, netlink.FAMILY_V4)
		if err != nil {
			return fmt.Errorf("listing the routes of %s: %w", l.net.ClientIf, err)
		}
		if len(addrs) == 0 && len(routes) == 0 {
			return nil
		}
		for _, r := range routes {
			_ = l.h.RouteDel(&r)
		}
		for _, a := range addrs {
			_ = l.h.AddrDel(l.link, &a)
		}
	}
	return fmt.Errorf("%s keeps getting addresses or routes back", l.net.ClientIf)
}

// waitAddr waits for the kernel to report a new IPv4 address on the client
// interface, and returns it with the time it was seen.
func (l *lab) waitAddr(r *running) (netip.Prefix, time.Time, error) {
	timer := time.NewTimer(addrTimeout)
	defer timer.Stop()
	index := l.link.Attrs().Index
	// addrOf is the new IPv4 address an update reports on the link.
	addrOf := func(u netlink.AddrUpdate) (netip.Prefix, bool) {
		if !u.NewAddr || u.LinkIndex != index || u.LinkAddress.IP.To4() == nil {
			return netip.Prefix{}, false
		}
		a, _ := netip.AddrFromSlice(u.LinkAddress.IP.To4())
		bits, _ := u.LinkAddress.Mask.Size()
		return netip.PrefixFrom(a, bits), true
	}
	for {
		select {
		case u, ok := <-l.updates:
			now := time.Now()
			if !ok {
				return netip.Prefix{}, now, errors.New("the address subscription closed")
			}
			if p, ok := addrOf(u); ok {
				return p, now, nil
			}
		case <-r.done:
			// The address may have come just before the exit, its
			// update not read yet (dhcpcd -1 exits at once): exitGrace
			// for it.
			grace := time.NewTimer(exitGrace)
			defer grace.Stop()
			for {
				select {
				case u, ok := <-l.updates:
					if !ok {
						return netip.Prefix{}, time.Now(), errors.New("the address subscription closed")
					}
					if p, isNew := addrOf(u); isNew {
						return p, time.Now(), nil
					}
				case <-grace.C:
					return netip.Prefix{}, time.Now(), fmt.Errorf("exited (%v) without an address", r.err)
				}
			}
		case <-timer.C:
			return netip.Prefix{}, time.Now(), fmt.Errorf("no address within %v", addrTimeout)
		}
	}
}

// checkAddr checks that a client got an address of the server's subnet.
func (l *lab) checkAddr(p netip.Prefix) error {
	want := l.net.ServerAddr.Masked()
	if p.Bits() != want.Bits() || !want.Contains(p.Addr()) {
		return fmt.Errorf("got %v, want an address in %v", p, want)
	}
	return nil
}

// timeOnce runs c's one-shot command and returns the time from its start
// to its address, then makes sure that nothing of it is left running.
func (l *lab) timeOnce(c *dhcpClient) (time.Duration, error) {
	if err := c.reset(); err != nil {
		return 0, fmt.Errorf("%s: removing its lease: %w", c.name, err)
	}
	if err := l.prepare(); err != nil {
		return 0, err
	}
	r, err := l.start(c.name, c.oneShot)
	if err != nil {
		return 0, err
	}
	defer os.Remove(r.logPath)
	addr, at, err := l.waitAddr(r)
	if err == nil {
		err = l.checkAddr(addr)
	}
	if err == nil && c.exits {
		if !r.wait(exitTimeout) {
			err = fmt.Errorf("still running %v after configuring its address", exitTimeout)
		} else if r.err != nil {
			err = fmt.Errorf("exited with %v after configuring its address", r.err)
		}
	}
	if err := l.finish(c, r, err); err != nil {
		return 0, err
	}
	return at.Sub(r.start), nil
}

// finish stops a run, kills what the client left behind and clears the
// link for the next run. It returns the run's error, or the first one it
// meets, with the client's log.
func (l *lab) finish(c *dhcpClient, r *running, err error) error {
	r.stop()
	strays := killStrays(l.srv.Pid())
	if err == nil && len(strays) > 0 {
		err = fmt.Errorf("left processes behind (killed): %s", strings.Join(strays, ", "))
	}
	if ferr := l.flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", c.name, err, r.log())
	}
	return nil
}

// memSample is the memory of a client's processes, in kB: RSS, PSS and
// private (the pages no other process maps: what stopping it would free)
// summed over them, and the RSS of the largest.
type memSample struct {
	procs                      int
	rss, pss, private, biggest int
	// seccomp counts the processes in seccomp filter mode.
	seccomp int
}

// memOnce runs c as a daemon, waits for its address plus settle, sums the
// memory of its process tree, and stops it.
func (l *lab) memOnce(c *dhcpClient, settle time.Duration) (memSample, error) {
	if err := c.reset(); err != nil {
		return memSample{}, fmt.Errorf("%s: removing its lease: %w", c.name, err)
	}
	if err := l.prepare(); err != nil {
		return memSample{}, err
	}
	r, err := l.start(c.name, c.daemon)
	if err != nil {
		return memSample{}, err
	}
	defer os.Remove(r.logPath)
	var m memSample
	addr, _, err := l.waitAddr(r)
	if err == nil {
		err = l.checkAddr(addr)
	}
	if err == nil {
		time.Sleep(settle)
		if r.exited() {
			err = fmt.Errorf("exited (%v) while holding its lease", r.err)
		} else {
			m, err = treeMemory(r.cmd.Process.Pid)
		}
	}
	if err := l.finish(c, r, err); err != nil {
		return memSample{}, err
	}
	return m, nil
}

// proc is what /proc/PID/stat says of a process.
type proc struct {
	pid, ppid int
	state     byte
	comm      string
}

// procs lists the processes of the PID namespace.
func procs() (map[int]proc, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	out := make(map[int]proc, len(entries))
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || close < open {
			continue
		}
		f := strings.Fields(string(b[close+1:]))
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		out[pid] = proc{pid: pid, ppid: ppid, state: f[0][0], comm: string(b[open+1 : close])}
	}
	return out, nil
}

// tree returns root and its descendants in ps.
func tree(ps map[int]proc, root int) []int {
	children := make(map[int][]int)
	for _, p := range ps {
		children[p.ppid] = append(children[p.ppid], p.pid)
	}
	out := []int{root}
	for i := 0; i < len(out) && i < len(ps)+1; i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// treeMemory sums the memory of /proc/PID/smaps_rollup over root's tree.
func treeMemory(root int) (memSample, error) {
	ps, err := procs()
	if err != nil {
		return memSample{}, err
	}
	var m memSample
	for _, pid := range tree(ps, root) {
		if p, ok := ps[pid]; ok && p.state == 'Z' {
			continue
		}
		one, err := smapsRollup(pid)
		if err != nil {
			return memSample{}, err
		}
		m.procs++
		m.rss += one.rss
		m.pss += one.pss
		m.private += one.private
		m.biggest = max(m.biggest, one.rss)
		if testnet.ProcStatus(pid)["Seccomp"] == "2" { // a seccomp filter
			m.seccomp++
		}
	}
	return m, nil
}

// smapsRollup reads one process's RSS, PSS and private memory.
func smapsRollup(pid int) (memSample, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return memSample{}, err
	}
	defer f.Close()
	var m memSample
	var privateClean, privateDirty int
	// Each read once; what is left at the end is missing.
	fields := map[string]*int{"Rss:": &m.rss, "Pss:": &m.pss, "Private_Clean:": &privateClean, "Private_Dirty:": &privateDirty}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.Fields(sc.Text())
		if len(line) < 2 || fields[line[0]] == nil {
			continue
		}
		if *fields[line[0]], err = strconv.Atoi(line[1]); err != nil {
			return memSample{}, fmt.Errorf("/proc/%d/smaps_rollup: %s %w", pid, line[0], err)
		}
		delete(fields, line[0])
	}
	if len(fields) > 0 {
		return memSample{}, fmt.Errorf("/proc/%d/smaps_rollup: %d of Rss, Pss, Private_Clean and Private_Dirty missing (%v)", pid, len(fields), sc.Err())
	}
	m.private = privateClean + privateDirty
	return m, nil
}

// killStrays kills what a client left behind, and reaps it. This process is
// the first of its PID namespace (testnet.Isolate), so every process a
// client left behind ends up as its child; keep names those that belong (the
// server). Processes that exit within strayGrace by themselves (dhcpcd's
// helpers finish a moment after its main process) are not strays. It returns
// the strays, as "comm[pid]".
func killStrays(keep ...int) []string {
	self := os.Getpid()
	var strays []string
	grace := time.Now().Add(strayGrace)
	deadline := grace.Add(exitTimeout)
	// Bounded: each round kills the trees of the strays it finds; what
	// they leave comes back to this process for the next round.
	for time.Now().Before(deadline) {
		ps, err := procs()
		if err != nil {
			return append(strays, err.Error())
		}
		found := false
		for _, p := range ps {
			if p.ppid != self || slices.Contains(keep, p.pid) {
				continue
			}
			found = true
			if p.state != 'Z' && time.Now().Before(grace) {
				continue
			}
			if p.state != 'Z' {
				strays = append(strays, fmt.Sprintf("%s[%d]", p.comm, p.pid))
				for _, pid := range tree(ps, p.pid) {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			var ws syscall.WaitStatus
			_, _ = syscall.Wait4(p.pid, &ws, syscall.WNOHANG, nil)
		}
		if !found {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	slices.Sort(strays)
	return slices.Compact(strays)
}
