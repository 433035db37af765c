package dhcp

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/privsep"
	"github.com/dyad-project/dyad/privsep/sandbox"
	"github.com/dyad-project/dyad/sdk"
)

// The engine: the unprivileged process. It runs as a non-root user with no
// capabilities under seccomp and landlock, and talks to the network only
// through the sockets the supervisor opened for it. It drives one Client per
// link and asks the actuator for every host change.

// efdFirstPacket is the first of the engine's packet sockets, one per
// link, after the pipe and the status listener (sdk.TakeEngineFiles). The
// engine has no other socket: even unicast to a server goes out as a
// frame on the link's packet socket.
const efdFirstPacket = sdk.EnginePipeFD + 2

const (
	replyTimeout   = 10 * time.Second
	welcomeTimeout = 10 * time.Second
)

// inbound is a DHCP message the network readers hand to the main loop.
type inbound struct {
	ifindex int
	msg     *dhcpv4.DHCPv4
	from    netip.Addr       // the IPv4 source of the frame
	fromMAC net.HardwareAddr // its Ethernet source: the next hop back
}

type reply struct {
	id  uint64
	err string
}

type engine struct {
	cfg  EngineConfig
	log  *slog.Logger
	conn *privsep.Conn
	rnd  *rand.Rand

	packets map[int]*os.File // by interface index
	// nextHop remembers, per link, the Ethernet source of frames from each
	// server address, so that unicast to a server (RENEWING, RELEASE) goes
	// out on the packet socket; lastHop is the last reply's, for a server
	// whose replies come through a relay with another address.
	nextHop map[int]map[netip.Addr]net.HardwareAddr
	lastHop map[int]net.HardwareAddr

	in      chan inbound
	replies chan reply
	nextID  uint64

	// Link events have their own queue, so that a burst of broadcast
	// traffic filling in can never hold up the reply a call waits for.
	linkMu    sync.Mutex
	linkQueue []privsep.LinkEvent
	linkReady chan struct{}
	// fatal carries the error that leaves the engine deaf: a reader
	// that failed, or the actuator gone.
	fatal chan error

	clients map[int]*Client // by interface index
	saved   map[string]*privsep.Lease

	// written remembers the last content sent for the host-wide files, so
	// they are only rewritten when a lease changes them.
	written map[privsep.Kind]string

	statusMu sync.Mutex
	status   engineStatus
}

// engineArgs are the engine's command line: only what it needs before the
// actuator's Welcome, since it reads no file.
func engineArgs(cfg *Config, links int) []string {
	args := []string{"--links", strconv.Itoa(links)}
	if cfg.Debug {
		args = append(args, "-d")
	}
	if cfg.AllowNoLandlock {
		args = append(args, "--allow-no-landlock")
	}
	return args
}

func runEngine(args []string) int {
	fs := flag.NewFlagSet("dyad-dhcp: engine", flag.ContinueOnError)
	debug := fs.Bool("d", false, "")
	allowNoLandlock := fs.Bool("allow-no-landlock", false, "")
	links := fs.Int("links", 0, "")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 || *links < 1 || *links > maxLinks {
		fmt.Fprintln(os.Stderr, "dyad-dhcp: engine: bad arguments from the supervisor:", args)
		return sdk.ExitGaveUp
	}
	log := sdk.NewLogger(os.Stderr, "dyad-dhcp", sdk.StageEngine, *debug)
	pipe, files, err := sdk.TakeEngineFiles("status")
	if err != nil {
		log.Error(err.Error())
		return sdk.ExitGaveUp
	}
	status := files[0]
	_ = time.Now().Local() // load the zone before landlock hides it
	packets, err := linkSockets(*links)
	if err != nil {
		log.Error(err.Error())
		return sdk.ExitGaveUp
	}

	if err := sandbox.Confine(sandbox.Profile{
		Name:               "engine",
		Syscalls:           sandbox.EngineSyscalls(),
		Landlock:           &sandbox.Landlock{},
		ExpectUnprivileged: true,
		AllowNoLandlock:    *allowNoLandlock,
		Warn:               func(msg string) { log.Warn(msg) },
	}); err != nil {
		log.Error("cannot confine the engine", "err", err.Error())
		return sdk.ExitGaveUp
	}

	log.Debug("confined")
	conn, err := privsep.EngineConn(pipe)
	if err != nil {
		log.Error(err.Error())
		return sdk.ExitGaveUp
	}
	var seed [16]byte
	crand.Read(seed[:])
	e := &engine{
		log: log, conn: conn, packets: packets,
		nextHop:   map[int]map[netip.Addr]net.HardwareAddr{},
		lastHop:   map[int]net.HardwareAddr{},
		rnd:       rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:]))),
		in:        make(chan inbound, 64),
		replies:   make(chan reply, 16),
		linkReady: make(chan struct{}, 1),
		fatal:     make(chan error, 4),
		clients:   map[int]*Client{},
		saved:     map[string]*privsep.Lease{},
		written:   map[privsep.Kind]string{},
	}
	if err := e.hello(); err != nil {
		log.Error(err.Error())
		return 1 // the supervisor restarts the engine
	}
	e.log.Debug("welcomed")
	go func() { e.fatal <- sdk.ServeStatus(context.Background(), status, e.snapshot) }()
	go e.readPipe()
	for idx, f := range e.packets {
		go e.readPackets(idx, f)
	}
	return e.run()
}

// hello opens the session and reads the configuration from the Welcome.
func (e *engine) hello() error {
	if err := e.conn.Hello("dhcp", welcomeTimeout, &e.cfg); err != nil {
		return err
	}
	for i := range e.cfg.Leases {
		l := &e.cfg.Leases[i]
		e.saved[l.Interface] = l
	}
	return nil
}

// readPipe hands link events and replies from the actuator to the loop.
func (e *engine) readPipe() {
	for {
		id, m, files, err := e.conn.Receive()
		for _, f := range files {
			f.Close()
		}
		if err != nil {
			e.fatal <- fmt.Errorf("the actuator is gone: %w", err)
			return
		}
		switch m := m.(type) {
		case *privsep.Reply:
			e.replies <- reply{id: id, err: m.Error}
		case *privsep.LinkEvent:
			e.linkMu.Lock()
			e.linkQueue = append(e.linkQueue, *m)
			e.linkMu.Unlock()
			select {
			case e.linkReady <- struct{}{}:
			default:
			}
		default:
			e.log.Warn("unexpected message from the actuator", "kind", string(m.Kind()))
		}
	}
}

// linkSockets takes the inherited packet sockets and learns from each the
// link it is bound to.
func linkSockets(n int) (map[int]*os.File, error) {
	out := map[int]*os.File{}
	for fd := efdFirstPacket; fd < efdFirstPacket+n; fd++ {
		sa, err := unix.Getsockname(fd)
		sll, ok := sa.(*unix.SockaddrLinklayer)
		if err != nil || !ok || sll.Ifindex == 0 {
			return nil, fmt.Errorf("descriptor %d is not a packet socket bound to a link", fd)
		}
		if err := unix.SetNonblock(fd, true); err != nil {
			return nil, fmt.Errorf("descriptor %d: %w", fd, err)
		}
		out[sll.Ifindex] = os.NewFile(uintptr(fd), "packet")
	}
	return out, nil
}

func (e *engine) readPackets(ifindex int, f *os.File) {
	raw, err := f.SyscallConn()
	if err != nil {
		e.fatal <- fmt.Errorf("packet socket: %w", err)
		return
	}
	buf := make([]byte, 4096)
	for {
		var n int
		var from unix.Sockaddr
		var rerr error
		err := raw.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), buf, 0)
			return rerr != unix.EAGAIN
		})
		if err == nil {
			err = rerr
		}
		if errors.Is(err, unix.ENETDOWN) {
			// The link went down, or was down when the socket was bound:
			// the kernel reports it once, and the socket stays usable.
			e.log.Debug("packet socket: link down", "interface", ifindex)
			continue
		}
		if err != nil {
			e.fatal <- fmt.Errorf("packet socket: %w", err)
			return
		}
		sll, ok := from.(*unix.SockaddrLinklayer)
		if !ok || sll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		f, err := ParseFrame(buf[:n])
		if err != nil {
			e.log.Debug("dropped frame", "err", err.Error())
			continue
		}
		m, err := dhcpv4.FromBytes(f.Payload)
		if err != nil {
			e.log.Debug("dropped DHCP message", "from", f.SrcIP, "err", err.Error())
			continue
		}
		e.in <- inbound{ifindex: ifindex, msg: m, from: f.SrcIP, fromMAC: f.SrcMAC}
	}
}

// run is the main loop: one event at a time, then the actions it caused.
func (e *engine) run() int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	var giveUp <-chan time.Time
	if e.cfg.OneShot && e.cfg.Timeout > 0 {
		giveUp = time.After(time.Duration(e.cfg.Timeout))
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if e.cfg.OneShot && e.anyBound() {
			return sdk.ExitDone
		}
		timer.Reset(e.untilNextDeadline())
		select {
		case err := <-e.fatal:
			e.log.Error("exiting", "err", fmt.Sprint(err))
			return 1
		case <-e.linkReady:
			e.linkMu.Lock()
			links := e.linkQueue
			e.linkQueue = nil
			e.linkMu.Unlock()
			for _, l := range links {
				e.linkChanged(time.Now(), l)
			}
		case in := <-e.in:
			now := time.Now()
			if c := e.clients[in.ifindex]; c != nil {
				// Only an answer to this client teaches where servers
				// are: anything else on the link may be forged.
				if c.foreign(in.msg) == "" {
					e.learnHop(in)
				}
				c.HandleMessage(now, in.msg)
			}
		case <-timer.C:
			now := time.Now()
			for _, c := range e.clients {
				c.HandleTimer(now)
			}
		case sig := <-sigs:
			e.log.Info("stopping", "signal", sig.String())
			now := time.Now()
			for _, c := range e.clients {
				c.Stop(now)
			}
			e.act()
			return sdk.ExitDone
		case <-giveUp:
			e.log.Error(fmt.Sprintf("no lease within %s", time.Duration(e.cfg.Timeout)))
			return sdk.ExitTimeout
		}
		e.act()
		e.updateStatus()
	}
}

func (e *engine) untilNextDeadline() time.Duration {
	next := time.Time{}
	for _, c := range e.clients {
		if d := c.Deadline(); !d.IsZero() && (next.IsZero() || d.Before(next)) {
			next = d
		}
	}
	if next.IsZero() {
		return time.Hour
	}
	return max(time.Until(next), time.Millisecond)
}

func (e *engine) anyBound() bool {
	for _, c := range e.clients {
		if c.State() == StateBound && c.Lease() != nil {
			return true
		}
	}
	return false
}

// linkChanged creates, updates or forgets the client of a link.
func (e *engine) linkChanged(now time.Time, l privsep.LinkEvent) {
	c := e.clients[l.Index]
	if l.Gone {
		if c != nil {
			e.log.Info("link gone", "interface", l.Name)
			c.Stop(now)
			delete(e.clients, l.Index)
		}
		return
	}
	if c == nil {
		if len(l.HardwareAddr) != 6 {
			e.log.Debug("skipping a link without an Ethernet address", "interface", l.Name)
			return
		}
		if e.packets[l.Index] == nil {
			e.log.Warn("skipping a link that appeared after start: it has no packet socket", "interface", l.Name)
			return
		}
		metric := e.cfg.RouteMetric
		if metric == 0 {
			// As dhcpcd: each link's routes get their own metric, so two
			// default routes on two links do not replace each other.
			metric = 200 + uint32(l.Index)
		}
		c = NewClient(ClientConfig{
			Interface:    l.Name,
			HardwareAddr: net.HardwareAddr(l.HardwareAddr),
			ClientID:     clientID(e.cfg.ClientID, l.HardwareAddr),
			Hostname:     e.cfg.Hostname,
			RapidCommit:  e.cfg.RapidCommit,
			RouteMetric:  metric,
			Release:      e.cfg.Release,
			Deconfigure:  e.cfg.Deconfigure,
			Request:      e.cfg.Request,
			Ignore:       e.cfg.Ignore,
			Require:      e.cfg.Require,
		}, e.log, e.rnd, e.saved[l.Name])
		if s := e.saved[l.Name]; s != nil && e.cfg.Installed[l.Name] == s.Address {
			c.HoldsSaved()
		}
		e.clients[l.Index] = c
		if !l.AdminUp {
			// A link found down is brought up once; one the operator
			// takes down later stays down.
			if err := e.call(&privsep.LinkUp{Interface: l.Name}); err != nil {
				e.log.Error("cannot bring the link up", "interface", l.Name, "err", err.Error())
			}
			return // the carrier comes with the next event
		}
	}
	c.LinkChanged(now, l.AdminUp && l.Carrier)
}

// act carries out what the clients asked for, then brings the host-wide
// files in line with the leases held.
func (e *engine) act() {
	changed := false
	for _, idx := range e.sortedClients() {
		c := e.clients[idx]
		for range 8 { // an apply's outcome may ask for more; bounded
			actions := c.TakeActions()
			if len(actions) == 0 {
				break
			}
			for _, a := range actions {
				switch a := a.(type) {
				case Send:
					e.send(idx, a)
				case Apply:
					err := e.applyAll(a.Ops, a.Bind)
					if a.Bind {
						c.Applied(time.Now(), err)
					} else if err != nil {
						e.log.Warn("removing configuration failed", "interface", c.cfg.Interface, "err", err.Error())
					}
					changed = true
				}
			}
		}
	}
	if changed {
		e.writeHostFiles()
	}
}

func (e *engine) sortedClients() []int {
	idx := make([]int, 0, len(e.clients))
	for i := range e.clients {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	return idx
}

// applyAll performs ops in order. A bind stops at the first failure; a
// removal goes on, so one failure does not leave the rest behind.
func (e *engine) applyAll(ops []privsep.Message, stopOnError bool) error {
	var errs []error
	for _, op := range ops {
		if err := e.call(op); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", op.Kind(), err))
			if stopOnError {
				break
			}
		}
	}
	return errors.Join(errs...)
}

// call sends one request and waits for its reply.
func (e *engine) call(op privsep.Message) error {
	e.nextID++
	id := e.nextID
	if err := e.conn.Send(id, op); err != nil {
		return err
	}
	timeout := time.After(replyTimeout)
	for {
		select {
		case r := <-e.replies:
			if r.id != id {
				continue // the answer to a request that timed out
			}
			if r.err != "" {
				return errors.New(r.err)
			}
			return nil
		case <-timeout:
			return fmt.Errorf("no reply from the actuator to %s", op.Kind())
		}
	}
}

func (e *engine) send(ifindex int, s Send) {
	b := s.Message.ToBytes()
	src, _ := netip.AddrFromSlice(s.Message.ClientIPAddr.To4())
	var frame []byte
	var err error
	if s.Unicast.IsValid() {
		frame, err = BuildUnicastFrame(s.Message.ClientHWAddr, e.hopTo(ifindex, s.Unicast), src, s.Unicast, b)
	} else {
		frame, err = BuildFrame(s.Message.ClientHWAddr, src, b)
	}
	if err != nil {
		e.log.Error(err.Error())
		return
	}
	f := e.packets[ifindex]
	if f == nil {
		e.log.Warn("no packet socket for the link", "interface", ifindex)
		return
	}
	raw, err := f.SyscallConn()
	if err != nil {
		e.log.Error(err.Error())
		return
	}
	to := &unix.SockaddrLinklayer{Ifindex: ifindex, Protocol: htons(unix.ETH_P_IP), Halen: 6}
	copy(to.Addr[:], frame[0:6])
	var serr error
	err = raw.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), frame, 0, to)
		return serr != unix.EAGAIN
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		e.log.Warn("send failed", "interface", ifindex, "err", err.Error())
	}
	e.log.Debug("sent", "type", s.Message.MessageType().String(), "interface", ifindex)
}

// learnHop remembers where a reply on a link came from.
func (e *engine) learnHop(in inbound) {
	if len(in.fromMAC) != 6 || !isUnicast(in.from) {
		return
	}
	hops := e.nextHop[in.ifindex]
	if hops == nil {
		hops = map[netip.Addr]net.HardwareAddr{}
		e.nextHop[in.ifindex] = hops
	}
	if len(hops) < maxServers*4 { // bounded, whatever the link sends
		hops[in.from] = in.fromMAC
	}
	e.lastHop[in.ifindex] = in.fromMAC
}

// hopTo is the Ethernet address to reach server on a link: the one its
// replies came from, else the last reply's sender (a relay), else
// broadcast, which the server's host still takes for its own IP address.
func (e *engine) hopTo(ifindex int, server netip.Addr) net.HardwareAddr {
	if mac := e.nextHop[ifindex][server]; mac != nil {
		return mac
	}
	if mac := e.lastHop[ifindex]; mac != nil {
		return mac
	}
	return broadcastMAC
}

// writeHostFiles writes resolv.conf, the NTP list and the host name from
// the leases held, in interface order, when their content changed.
func (e *engine) writeHostFiles() {
	var rc privsep.ResolvConf
	var ntp privsep.NTPServers
	hostname := ""
	for _, idx := range e.sortedClients() {
		l := e.clients[idx].Lease()
		if l == nil {
			continue
		}
		for _, a := range l.DNS {
			if !slices.Contains(rc.Nameservers, a) && len(rc.Nameservers) < maxServers {
				rc.Nameservers = append(rc.Nameservers, a)
			}
		}
		if rc.Domain == "" {
			rc.Domain = l.Domain
		}
		for _, s := range l.Search {
			if !slices.Contains(rc.Search, s) && len(rc.Search) < maxSearch {
				rc.Search = append(rc.Search, s)
			}
		}
		for _, a := range l.NTP {
			if !slices.Contains(ntp.Servers, a) && len(ntp.Servers) < maxServers {
				ntp.Servers = append(ntp.Servers, a)
			}
		}
		if hostname == "" {
			hostname = l.Hostname
		}
	}
	if e.cfg.Resolv && len(rc.Nameservers) > 0 {
		e.writeOnce(&rc, fmt.Sprint(rc))
	}
	if e.cfg.NTP && len(ntp.Servers) > 0 {
		e.writeOnce(&ntp, fmt.Sprint(ntp))
	}
	if e.cfg.SetHostname && hostname != "" {
		e.writeOnce(&privsep.Hostname{Name: hostname}, hostname)
	}
}

func (e *engine) writeOnce(op privsep.Message, key string) {
	if e.written[op.Kind()] == key {
		return
	}
	if err := e.call(op); err != nil {
		e.log.Error("host file not written", "op", string(op.Kind()), "err", err.Error())
		return
	}
	e.written[op.Kind()] = key
}

// clientID builds option 61: the hardware address, or RFC 4361's DUID and
// IAID (a DUID-LL of the link's address, and the last four bytes of it as
// IAID, as dhcpcd derives them).
func clientID(mode string, hw []byte) []byte {
	if h, ok := strings.CutPrefix(mode, rawClientIDPrefix); ok {
		b, _ := hex.DecodeString(h) // checked with the configuration
		return b
	}
	switch mode {
	case "hwaddr":
		return append([]byte{1}, hw...)
	case "duid":
		id := []byte{0xff}
		id = append(id, hw[len(hw)-4:]...)
		id = append(id, 0, 3, 0, 1) // DUID-LL, Ethernet
		return append(id, hw...)
	}
	return nil
}
