package ntp

import (
	"bufio"
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/privsep"
	"github.com/dyad-project/dyad/privsep/sandbox"
	"github.com/dyad-project/dyad/sdk"
)

// The engine: the unprivileged process. It runs as a non-root user with no
// capabilities, under seccomp (UDP sockets and nothing else of the
// network) and landlock (read-only access to the resolver's files and the
// DHCP client's server list). It opens its own UDP sockets, resolves
// names, runs the Engine, and asks the actuator for every clock change.
// dyad-ntp -q runs the same driver in one process, without an actuator.

const (
	replyTimeout   = 10 * time.Second
	welcomeTimeout = 10 * time.Second
	resolveTimeout = 5 * time.Second
	// dhcpCheckEvery is how often the DHCP client's list is looked at.
	dhcpCheckEvery = 10 * time.Second
	// maxDHCPFile bounds the list read.
	maxDHCPFile = 16 << 10
)

// resolverFiles are what Go's resolver reads, and the engine may.
func resolverFiles() []string {
	return []string{"/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/host.conf"}
}

// inbound is a datagram a socket reader hands to the loop.
type inbound struct {
	from netip.AddrPort
	b    []byte
	at   time.Time // the kernel's receive time, by the real clock
}

type resolution struct {
	name  string
	addrs []netip.Addr
	err   error
}

type pipeReply struct {
	id    uint64
	reply *privsep.Reply
}

// driver runs an Engine: sockets, timers, lookups and the pipe.
type driver struct {
	e    *Engine
	cfg  EngineConfig
	log  *slog.Logger
	conn *privsep.Conn // nil for -q
	udp4 *net.UDPConn
	udp6 *net.UDPConn

	in       chan inbound
	resolved chan resolution
	replies  chan pipeReply
	fatal    chan error
	nextID   uint64

	// simDelta is how far the simulated clock stands from the real one,
	// as the actuator's last reply said.
	simDelta time.Duration

	dhcpStamp string // the DHCP list's size and time when last read

	statusMu sync.Mutex
	status   Status
}

// now reads the clock the engine disciplines.
func (d *driver) now() time.Time { return d.clockAt(time.Now()) }

// clockAt converts a reading of the real clock. The engine keeps wall
// time only, without Go's monotonic reading: it moves its own times when
// it steps the clock, which a monotonic reading would not follow.
func (d *driver) clockAt(t time.Time) time.Time {
	t = t.Round(0)
	if d.cfg.SimulatedClock {
		return t.Add(d.simDelta)
	}
	return t
}

func runEngine(args []string) int {
	fs := flag.NewFlagSet("dyad-ntp: engine", flag.ContinueOnError)
	debug := fs.Bool("d", false, "")
	allowNoLandlock := fs.Bool("allow-no-landlock", false, "")
	dhcpDir := fs.String("dhcp-dir", "", "")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "dyad-ntp: engine: bad arguments from the supervisor:", args)
		return sdk.ExitGaveUp
	}
	log := sdk.NewLogger(os.Stderr, "dyad-ntp", sdk.StageEngine, *debug)
	pipe, files, err := sdk.TakeEngineFiles("status")
	if err != nil {
		log.Error(err.Error())
		return sdk.ExitGaveUp
	}
	statusFile := files[0]
	var readable []string
	if *dhcpDir != "" {
		if _, err := os.Stat(*dhcpDir); err != nil && !errors.Is(err, os.ErrNotExist) {
			log.Warn("the DHCP client's NTP servers cannot be read", "err", err.Error())
		}
		readable = append(readable, *dhcpDir)
	}
	if err := confineEngine(log, readable, *allowNoLandlock, true); err != nil {
		log.Error("cannot confine the engine", "err", err.Error())
		return sdk.ExitGaveUp
	}
	conn, err := privsep.EngineConn(pipe)
	if err != nil {
		log.Error(err.Error())
		return sdk.ExitGaveUp
	}
	d := newDriver(log)
	d.conn = conn
	if err := d.hello(); err != nil {
		log.Error(err.Error())
		return 1 // the supervisor restarts the engine
	}
	if err := d.openSockets(); err != nil {
		log.Error(err.Error())
		return sdk.ExitGaveUp
	}
	go d.readPipe()
	go func() { d.fatal <- sdk.ServeStatus(context.Background(), statusFile, d.snapshot) }()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if d.cfg.Mode == ModeOnce && d.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.cfg.Timeout)
		defer cancel()
	}
	if err := d.run(ctx); err != nil {
		log.Error(err.Error())
		if errors.Is(err, errGaveUp) {
			return sdk.ExitGaveUp
		}
		return 1
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		log.Error("the clock was not set in time", "timeout", d.cfg.Timeout.String())
		return sdk.ExitTimeout
	}
	return sdk.ExitDone
}

// confineEngine confines the calling process as an engine: UDP sockets,
// and read-only access to the resolver's files and the paths given, those
// that exist.
func confineEngine(log *slog.Logger, paths []string, allowNoLandlock, expectUnprivileged bool) error {
	_ = time.Now().Local() // load the zone before landlock hides it
	var readable []string
	for _, p := range slices.Concat(resolverFiles(), paths) {
		if _, err := os.Stat(p); err == nil {
			readable = append(readable, p)
		}
	}
	if err := sandbox.Confine(sandbox.Profile{
		Name:               "engine",
		Syscalls:           sandbox.UDPClientSyscalls(),
		Landlock:           &sandbox.Landlock{ReadOnly: readable},
		ExpectUnprivileged: expectUnprivileged,
		AllowNoLandlock:    allowNoLandlock,
		Warn:               func(msg string) { log.Warn(msg) },
	}); err != nil {
		return err
	}
	log.Debug("confined", "readable", strings.Join(readable, ","))
	return nil
}

func newDriver(log *slog.Logger) *driver {
	return &driver{
		log:      log,
		in:       make(chan inbound, 64),
		resolved: make(chan resolution, 16),
		replies:  make(chan pipeReply, 16),
		fatal:    make(chan error, 4),
	}
}

// newRand returns the generator of the queries' nonces, seeded from the
// kernel: an off-path attacker must not guess them.
func newRand() *rand.Rand {
	var seed [32]byte
	crand.Read(seed[:])
	return rand.New(rand.NewChaCha8(seed))
}

// hello opens the session and reads the configuration from the Welcome.
func (d *driver) hello() error {
	if err := d.conn.Hello("ntp", welcomeTimeout, &d.cfg); err != nil {
		return err
	}
	if err := d.cfg.Check(); err != nil {
		return fmt.Errorf("welcome: configuration: %w", err)
	}
	return nil
}

// openSockets opens one UDP socket for each address family, on a port the
// kernel picks, with receive timestamps. A family the host lacks is
// skipped.
func (d *driver) openSockets() error {
	var errs []error
	for _, network := range []string{"udp4", "udp6"} {
		c, err := net.ListenUDP(network, nil)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		raw, err := c.SyscallConn()
		if err == nil {
			var serr error
			err = raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1) })
			err = errors.Join(err, serr)
		}
		if err != nil {
			c.Close()
			return fmt.Errorf("%s socket: receive timestamps: %w", network, err)
		}
		if network == "udp4" {
			d.udp4 = c
		} else {
			d.udp6 = c
		}
		go d.readSocket(c)
	}
	if d.udp4 == nil && d.udp6 == nil {
		return fmt.Errorf("no UDP socket: %w", errors.Join(errs...))
	}
	return nil
}

// readSocket hands datagrams to the loop with the kernel's receive time.
func (d *driver) readSocket(c *net.UDPConn) {
	buf := make([]byte, MaxPacket+1)
	oob := make([]byte, 128)
	for {
		n, oobn, _, from, err := c.ReadMsgUDPAddrPort(buf, oob)
		at := time.Now()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			d.fatal <- fmt.Errorf("UDP socket: %w", err)
			return
		}
		if ts, ok := receiveTime(oob[:oobn]); ok {
			at = ts
		}
		d.in <- inbound{from: from, b: bytes.Clone(buf[:n]), at: at}
	}
}

// receiveTime reads SO_TIMESTAMPNS's control message.
func receiveTime(oob []byte) (time.Time, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
			sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
			nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
			return time.Unix(sec, nsec), true
		}
	}
	return time.Time{}, false
}

// readPipe hands the actuator's replies to the loop.
func (d *driver) readPipe() {
	for {
		id, m, files, err := d.conn.Receive()
		for _, f := range files {
			f.Close()
		}
		if err != nil {
			d.fatal <- fmt.Errorf("the actuator is gone: %w", err)
			return
		}
		if r, ok := m.(*privsep.Reply); ok {
			d.replies <- pipeReply{id, r}
			continue
		}
		d.log.Warn("unexpected message from the actuator", "kind", string(m.Kind()))
	}
}

// errGaveUp ends a one-shot run that cannot succeed by a restart.
var errGaveUp = errors.New("gave up")

// run drives the engine until it is done, ctx ends, or it fails.
func (d *driver) run(ctx context.Context) error {
	d.e = NewEngine(d.cfg, d.log, newRand(), d.now())
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	dhcpTick := time.NewTicker(dhcpCheckEvery)
	defer dhcpTick.Stop()
	d.readDHCPServers()
	for {
		if err := d.perform(ctx); err != nil {
			return err
		}
		d.updateStatus()
		if done, result := d.e.Done(); done {
			if strings.HasPrefix(result, AdjustRefused) || strings.HasPrefix(result, AdjustFailed) {
				return fmt.Errorf("the clock was not set: %s: %w", result, errGaveUp)
			}
			return nil
		}
		wait := time.Hour
		if next := d.e.Deadline(); !next.IsZero() {
			wait = max(next.Sub(d.now()), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case err := <-d.fatal:
			return err
		case p := <-d.in:
			if err := d.e.HandlePacket(d.clockAt(p.at), p.from, p.b); err != nil {
				d.log.Debug("datagram dropped", "from", p.from.String(), "reason", err.Error())
			}
		case r := <-d.resolved:
			d.e.Resolved(d.now(), r.name, r.addrs, r.err)
		case <-timer.C:
			if d.cfg.SimulatedClock {
				// The simulated clock slews and runs at its own rate:
				// read where it stands before the engine reads it.
				if _, err := d.call(&privsep.ClockRead{}); err != nil {
					return err
				}
			}
			d.e.HandleTimer(d.now())
		case <-dhcpTick.C:
			d.readDHCPServers()
		}
	}
}

// perform does what the engine asked for, until it asks for nothing.
func (d *driver) perform(ctx context.Context) error {
	for range 1024 {
		actions := d.e.TakeActions()
		if len(actions) == 0 {
			return nil
		}
		for _, a := range actions {
			switch a := a.(type) {
			case Send:
				d.send(a)
			case Resolve:
				go d.resolve(ctx, a.Name)
			case Apply:
				if err := d.apply(a.Ops); err != nil {
					return err
				}
			}
		}
	}
	return errors.New("the engine keeps asking: stopping")
}

func (d *driver) send(s Send) {
	c := d.udp4
	if s.To.Addr().Is6() {
		c = d.udp6
	}
	if c == nil {
		d.log.Warn("no socket for the server's address family", "server", s.To.String())
		return
	}
	// Read before the write: the reply's kernel timestamp may be taken
	// before this goroutine runs again.
	sent := d.now()
	if _, err := c.WriteToUDPAddrPort(s.Packet, s.To); err != nil {
		d.log.Warn("cannot send a query", "server", s.To.String(), "err", err.Error())
		return
	}
	d.e.Sent(s.Token, sent)
}

func (d *driver) resolve(ctx context.Context, name string) {
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", name)
	d.resolved <- resolution{name: name, addrs: addrs, err: err}
}

// apply asks the actuator for each operation and gives the engine each
// reply. Without an actuator (-q) there is nothing to apply.
func (d *driver) apply(ops []privsep.Message) error {
	for _, op := range ops {
		if d.conn == nil {
			return fmt.Errorf("no actuator for %s", op.Kind())
		}
		r, err := d.call(op)
		if err != nil {
			return err
		}
		var opErr error
		if r.Error != "" {
			opErr = errors.New(r.Error)
		}
		d.e.Applied(d.now(), op, r.Clock, opErr)
		if opErr != nil && (op.Kind() == privsep.OpClockStep || op.Kind() == privsep.OpClockSlew) {
			// The rest (frequency, status) assumed the correction.
			return nil
		}
	}
	return nil
}

// call sends one request and waits for its reply. A reply that carries
// the simulated clock's state also says where that clock stands from the
// host's, which is the engine's too.
func (d *driver) call(op privsep.Message) (*privsep.Reply, error) {
	r, err := d.exchange(op)
	if err == nil && r.Clock != nil && d.cfg.SimulatedClock {
		d.simDelta = time.Duration(r.Clock.Offset)
	}
	return r, err
}

func (d *driver) exchange(op privsep.Message) (*privsep.Reply, error) {
	d.nextID++
	id := d.nextID
	if err := d.conn.Send(id, op); err != nil {
		return nil, err
	}
	timeout := time.After(replyTimeout)
	for {
		select {
		case r := <-d.replies:
			if r.id == id {
				return r.reply, nil
			}
		case err := <-d.fatal:
			return nil, err
		case <-timeout:
			return nil, fmt.Errorf("no reply from the actuator to %s", op.Kind())
		}
	}
}

// readDHCPServers reads the DHCP client's list when it changed.
func (d *driver) readDHCPServers() {
	path := d.cfg.DHCPServers
	if path == "" || d.e == nil {
		return
	}
	stamp := sdk.FileStamp(path)
	if stamp == d.dhcpStamp {
		return
	}
	d.dhcpStamp = stamp
	addrs, err := readServerList(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		d.log.Warn("cannot read the DHCP client's NTP servers", "file", path, "err", err.Error())
		return
	}
	d.log.Info("NTP servers from DHCP", "servers", fmt.Sprint(addrs))
	d.e.SetDHCPServers(d.now(), addrs)
}

// readServerList reads a list of addresses, one a line, # for comments, as
// dyad-dhcp writes it.
func readServerList(path string) ([]netip.Addr, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var addrs []netip.Addr
	sc := bufio.NewScanner(io.LimitReader(f, maxDHCPFile))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		a, err := netip.ParseAddr(line)
		if err == nil {
			// Another DHCP client may have written the file: no
			// loopback, multicast, broadcast or zero address.
			err = privsep.CheckUnicast(a)
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", filepath.Base(path), n, err)
		}
		if len(addrs) == 8 {
			break
		}
		addrs = append(addrs, a)
	}
	return addrs, sc.Err()
}

func (d *driver) updateStatus() {
	st := d.e.Status(d.now())
	d.statusMu.Lock()
	d.status = st
	d.statusMu.Unlock()
}

func (d *driver) snapshot() any {
	d.statusMu.Lock()
	defer d.statusMu.Unlock()
	return d.status
}
