package dhcp

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/privsep"
	"github.com/dyad-project/dyad/privsep/backend"
	"github.com/dyad-project/dyad/privsep/sandbox"
	"github.com/dyad-project/dyad/sdk"
)

// The supervisor: the process the operator starts, as root. It opens what
// needs privilege to open, starts the actuator and the engine, then drops
// to the capabilities it needs to restart the engine, on every thread, and
// confines itself. It never reads a byte from the network.

// maxLinks bounds the links one daemon manages.
const maxLinks = 32

func supervise(args []string) int {
	cfg, log, ok := stageConfig(args, sdk.StageSupervisor)
	if !ok {
		return 2
	}
	fail := func(err error) int {
		log.Error(err.Error())
		fmt.Fprintln(os.Stderr, "dyad-dhcp:", err)
		return 1
	}
	// Whatever the caller left open must not reach the children: the
	// engine could read or write it whatever landlock says.
	if err := closeOnExecFrom(3); err != nil {
		return fail(err)
	}
	// Said once, by the supervisor: the other stages parse the same
	// arguments and would repeat them.
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	if err := sdk.CheckRoot("dyad-dhcp"); err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return fail(fmt.Errorf("state directory: %w", err))
	}
	if cfg.NTPConf != "" {
		if err := os.MkdirAll(filepath.Dir(cfg.NTPConf), 0o755); err != nil {
			return fail(fmt.Errorf("NTP list directory: %w", err))
		}
	}
	packets, err := openLinkSockets(cfg)
	if err != nil {
		return fail(err)
	}
	// Never read and never given to the engine: bound, it only keeps the
	// kernel from answering a server's unicast reply with ICMP port
	// unreachable. The engine reads that reply from its packet socket.
	udp, err := openUDPSocket()
	if err != nil {
		return fail(err)
	}
	defer udp.Close()
	status, err := sdk.ListenStatus(cfg.RunDir)
	if err != nil {
		return fail(err)
	}
	log.Debug("sockets open", "links", len(packets))
	if cfg.EngineLauncher != "" {
		log.Info("the engine runs through engine-exec", "launcher", cfg.EngineLauncher)
	}
	s := &sdk.Supervisor{
		Name:           "dyad-dhcp",
		Log:            log,
		ActuatorArgs:   args,
		EngineArgs:     engineArgs(cfg, len(packets)),
		ActuatorCaps:   actuatorCaps(cfg),
		EngineFiles:    append([]*os.File{status}, packets...),
		EngineUID:      cfg.EngineUID,
		EngineGID:      cfg.EngineGID,
		EngineLauncher: cfg.EngineLauncher,
		Confine: func() error {
			return sdk.ConfineSupervisor(log, cfg.EngineLauncher != "", supervisorCaps(cfg), sandbox.EngineSyscalls())
		},
	}
	if cfg.OneShot && cfg.Timeout > 0 {
		// The engine's own timer restarts with each engine; this one
		// bounds the whole boot step however often it crashes.
		s.Deadline = time.Now().Add(cfg.Timeout)
	}
	code := s.Run()
	if code == sdk.ExitTimeout || code != 0 && cfg.OneShot && !s.Deadline.IsZero() && time.Now().After(s.Deadline) {
		fmt.Fprintf(os.Stderr, "dyad-dhcp: no lease within %s\n", cfg.Timeout)
	}
	return code
}

// openLinkSockets opens a packet socket for each link the configuration
// names that exists now. Links that appear later are not managed: opening
// their sockets would need CAP_NET_RAW, which no process keeps.
func openLinkSockets(cfg *Config) ([]*os.File, error) {
	nl, err := backend.NewNetlink()
	if err != nil {
		return nil, err
	}
	defer nl.Close()
	links, err := nl.Links()
	if err != nil {
		return nil, err
	}
	guard := privsep.NewGuard(grant(cfg))
	var files []*os.File
	for _, l := range links {
		if !guard.OwnsInterface(l.Name) || len(l.HardwareAddr) != 6 {
			continue
		}
		if len(files) == maxLinks {
			closeFiles(files)
			return nil, fmt.Errorf("more than %d links match %v", maxLinks, cfg.Interfaces)
		}
		f, err := openPacketSocket(l.Index)
		if err != nil {
			closeFiles(files)
			return nil, fmt.Errorf("%s: %w", l.Name, err)
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no Ethernet link matches %v", cfg.Interfaces)
	}
	return files, nil
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// openPacketSocket opens the engine's view of one link: an AF_PACKET
// socket bound to it that sees only IPv4/UDP datagrams to port 68, through
// a filter the engine cannot detach. The socket receives nothing until the
// filter is in place, so no unfiltered frame is ever queued; and bound to
// the link, it cannot send on any other.
func openPacketSocket(ifindex int) (*os.File, error) {
	return newSocket("packet socket", unix.AF_PACKET, unix.SOCK_RAW, func(fd int) error {
		prog := dhcpReplyFilter()
		fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: unsafe.SliceData(prog)}
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
			return fmt.Errorf("attach filter: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_LOCK_FILTER, 1); err != nil {
			return fmt.Errorf("lock filter: %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: ifindex}); err != nil {
			return fmt.Errorf("bind: %w", err)
		}
		return nil
	})
}

// newSocket opens a socket and sets it up, closing it if setup fails.
func newSocket(name string, domain, typ int, setup func(fd int) error) (*os.File, error) {
	fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	if err := setup(fd); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return f, nil
}

// dhcpReplyFilter is a classic BPF program accepting Ethernet frames that
// carry an unfragmented IPv4 UDP datagram to port 68.
func dhcpReplyFilter() []unix.SockFilter {
	const (
		ldh  = unix.BPF_LD | unix.BPF_H | unix.BPF_ABS
		ldb  = unix.BPF_LD | unix.BPF_B | unix.BPF_ABS
		ldxb = unix.BPF_LDX | unix.BPF_B | unix.BPF_MSH
		ldhx = unix.BPF_LD | unix.BPF_H | unix.BPF_IND
		jeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jset = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ret  = unix.BPF_RET | unix.BPF_K
	)
	return []unix.SockFilter{
		{Code: ldh, K: 12},                       // 0: EtherType
		{Code: jeq, K: 0x0800, Jt: 0, Jf: 7},     // 1: IPv4, else drop
		{Code: ldb, K: 23},                       // 2: IP protocol
		{Code: jeq, K: 17, Jt: 0, Jf: 5},         // 3: UDP, else drop
		{Code: ldh, K: 20},                       // 4: flags and fragment offset
		{Code: jset, K: 0x3fff, Jt: 3, Jf: 0},    // 5: MF or offset set: drop
		{Code: ldxb, K: 14},                      // 6: X = IP header length
		{Code: ldhx, K: 16},                      // 7: UDP destination port
		{Code: jeq, K: clientPort, Jt: 1, Jf: 0}, // 8: port 68
		{Code: ret, K: 0},                        // 9: drop
		{Code: ret, K: 0x40000},                  // 10: accept
	}
}

// openUDPSocket binds port 68 with the smallest receive buffer: what
// arrives is dropped, silently.
func openUDPSocket() (*os.File, error) {
	return newSocket("UDP socket", unix.AF_INET, unix.SOCK_DGRAM, func(fd int) error {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 0); err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrInet4{Port: clientPort}); err != nil {
			return fmt.Errorf("bind port %d: %w", clientPort, err)
		}
		return nil
	})
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// closeOnExecFrom marks every descriptor from first up close-on-exec, with
// close_range where the kernel has it (5.11) and one by one otherwise.
func closeOnExecFrom(first int) error {
	if err := unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return nil
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("list descriptors: %w", err)
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < first {
			continue
		}
		unix.CloseOnExec(fd) // the directory's own descriptor may be gone: no error to check
	}
	return nil
}
