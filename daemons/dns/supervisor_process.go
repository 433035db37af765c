package dns

import (
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/privsep/sandbox"
	"github.com/dyad-project/dyad/sdk"
)

// The supervisor: the process the operator starts, as root. It opens the
// status socket and the listeners on port 53 (with CAP_NET_BIND_SERVICE,
// which it then drops with everything it does not need to restart the
// engine), starts the actuator and the engine, and confines itself. It
// never reads a byte from the network: the engine serves the listeners.

func supervise(cfg *Config, args []string) int {
	log := sdk.NewLogger(os.Stderr, "dyad-dns", sdk.StageSupervisor, cfg.Debug)
	fail := func(err error) int {
		log.Error(err.Error())
		fmt.Fprintln(os.Stderr, "dyad-dns:", err)
		return 1
	}
	// Whatever the caller left open must not reach the children.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fail(fmt.Errorf("close-on-exec: %w", err))
	}
	if err := sdk.CheckRoot("dyad-dns"); err != nil {
		return fail(err)
	}
	status, err := sdk.ListenStatus(cfg.RunDir)
	if err != nil {
		return fail(err)
	}
	listeners, err := openListeners(cfg)
	if err != nil {
		return fail(err)
	}
	log.Debug("listening", "addresses", fmt.Sprint(cfg.listen))
	s := &sdk.Supervisor{
		Name:           "dyad-dns",
		Log:            log,
		ActuatorArgs:   args,
		EngineArgs:     engineArgs(cfg),
		ActuatorCaps:   actuatorCaps(cfg),
		EngineFiles:    append([]*os.File{status}, listeners...),
		EngineUID:      cfg.EngineUID,
		EngineGID:      cfg.EngineGID,
		EngineLauncher: cfg.EngineLauncher,
		Confine: func() error {
			return sdk.ConfineSupervisor(log, cfg.EngineLauncher != "", sdk.RestartCaps(), sandbox.UDPTCPClientSyscalls())
		},
	}
	return s.Run()
}

// udpReceiveBuffer is the receive buffer the stub asks for on its UDP
// sockets.
const udpReceiveBuffer = 4 << 20

// openListeners opens, for each listen address, a UDP socket and a
// listening TCP socket: the UDP ones first, then the TCP ones, in order.
func openListeners(cfg *Config) ([]*os.File, error) {
	var udp, tcp []*os.File
	fail := func(err error) ([]*os.File, error) {
		for _, f := range append(udp, tcp...) {
			f.Close()
		}
		return nil, err
	}
	for _, a := range cfg.listen {
		u, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(a))
		if err != nil {
			return fail(fmt.Errorf("listen on %s: %w", a, err))
		}
		// Room for the bursts of a node's clients while the engine is
		// busy (a collection, an upstream's slow answer): the kernel's
		// default drops them. FORCE goes past rmem_max where the
		// supervisor may (CAP_NET_ADMIN); otherwise rmem_max bounds it.
		if rc, err := u.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) {
				if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, udpReceiveBuffer) != nil {
					unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, udpReceiveBuffer)
				}
			})
		}
		uf, err := fileOf(u)
		if err != nil {
			return fail(err)
		}
		udp = append(udp, uf)
		t, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(a))
		if err != nil {
			return fail(fmt.Errorf("listen on %s: %w", a, err))
		}
		tf, err := fileOf(t)
		if err != nil {
			return fail(err)
		}
		tcp = append(tcp, tf)
	}
	return append(udp, tcp...), nil
}

// fileOf turns a socket into the file handed to the engine, and closes
// the socket (the file is a duplicate).
func fileOf(s interface {
	File() (*os.File, error)
	Close() error
}) (*os.File, error) {
	f, err := s.File()
	s.Close()
	return f, err
}

// engineArgs are the engine's command line: what it needs before the
// actuator's Welcome.
func engineArgs(cfg *Config) []string {
	args := []string{"--listeners", strconv.Itoa(len(cfg.listen))}
	if cfg.Debug {
		args = append(args, "-d")
	}
	if cfg.AllowNoLandlock {
		args = append(args, "--allow-no-landlock")
	}
	for _, p := range readableFiles(cfg) {
		args = append(args, "--read", p)
	}
	return args
}
