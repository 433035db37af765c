package privsep

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Conn is one end of the typed pipe: an AF_UNIX SOCK_SEQPACKET socket, one
// message per datagram.
type Conn struct {
	f        *os.File
	codec    codec
	acceptFD bool // only the engine's end accepts descriptors

	sendMu sync.Mutex
}

// Pair returns the two ends of a new pipe: the actuator's, which never
// accepts descriptors, and the engine's, which does.
func Pair() (actuator, engine *Conn, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("privsep: socketpair: %w", err)
	}
	return newConn(os.NewFile(uintptr(fds[0]), "privsep-actuator"), false),
		newConn(os.NewFile(uintptr(fds[1]), "privsep-engine"), true), nil
}

// ActuatorConn wraps an inherited descriptor as the actuator's end. It
// takes ownership of f.
func ActuatorConn(f *os.File) (*Conn, error) { return wrap(f, false) }

// EngineConn wraps an inherited descriptor as the engine's end. It takes
// ownership of f.
func EngineConn(f *os.File) (*Conn, error) { return wrap(f, true) }

// wrap checks that f is a SOCK_SEQPACKET socket and hands a non-blocking
// duplicate of it to the runtime's poller; f itself is closed.
func wrap(f *os.File, acceptFD bool) (*Conn, error) {
	defer f.Close()
	raw, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("privsep: %s: %w", f.Name(), err)
	}
	var nfd int
	var serr error
	err = raw.Control(func(fd uintptr) {
		var typ int
		if typ, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE); serr != nil {
			return
		}
		if typ != unix.SOCK_SEQPACKET {
			serr = errors.New("not a SOCK_SEQPACKET socket")
			return
		}
		if nfd, serr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0); serr != nil {
			return
		}
		if serr = unix.SetNonblock(nfd, true); serr != nil {
			unix.Close(nfd)
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return nil, fmt.Errorf("privsep: %s: %w", f.Name(), err)
	}
	return newConn(os.NewFile(uintptr(nfd), f.Name()), acceptFD), nil
}

func newConn(f *os.File, acceptFD bool) *Conn {
	return &Conn{f: f, codec: newCodec(), acceptFD: acceptFD}
}

// File returns the underlying socket, to hand to a child process.
func (c *Conn) File() *os.File { return c.f }

// Close closes this end; the peer's next Receive returns io.EOF.
func (c *Conn) Close() error { return c.f.Close() }

// Send writes one message, with descriptors attached when files are given.
func (c *Conn) Send(id uint64, m Message, files ...*os.File) error {
	b, err := c.codec.marshal(id, m)
	if err != nil {
		return err
	}
	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		oob = unix.UnixRights(fds...)
	}
	raw, err := c.f.SyscallConn()
	if err != nil {
		return fmt.Errorf("privsep: send %s: %w", m.Kind(), err)
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	var serr error
	err = raw.Write(func(fd uintptr) bool {
		serr = unix.Sendmsg(int(fd), b, oob, nil, 0)
		return serr != unix.EAGAIN
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("privsep: send %s: %w", m.Kind(), err)
	}
	return nil
}

// ErrClosed is returned by Receive when the peer has closed its end.
var ErrClosed = errors.New("privsep: peer closed the pipe")

// Receive reads one message. Descriptors arriving on an end that does not
// accept them are closed and the message refused. A malformed message is an
// error; the connection remains usable.
func (c *Conn) Receive() (id uint64, m Message, files []*os.File, err error) {
	buf := make([]byte, MaxMessage+1)
	oob := make([]byte, unix.CmsgSpace(4*8))
	raw, err := c.f.SyscallConn()
	if err != nil {
		return 0, nil, nil, fmt.Errorf("privsep: receive: %w", err)
	}
	var n, oobn, flags int
	var rerr error
	err = raw.Read(func(fd uintptr) bool {
		n, oobn, flags, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	})
	if err == nil {
		err = rerr
	}
	if errors.Is(err, unix.ECONNRESET) {
		return 0, nil, nil, ErrClosed
	}
	if err != nil {
		return 0, nil, nil, fmt.Errorf("privsep: receive: %w", err)
	}
	if n == 0 && oobn == 0 {
		if c.peerClosed() {
			return 0, nil, nil, ErrClosed
		}
		return 0, nil, nil, fmt.Errorf("privsep: receive: %w: empty datagram", ErrMalformed)
	}
	if oobn > 0 {
		files, err = parseRights(oob[:oobn])
		if err != nil {
			return 0, nil, nil, err
		}
		if !c.acceptFD {
			closeAll(files)
			return 0, nil, nil, fmt.Errorf("privsep: receive: %w: descriptors are only passed to the engine", ErrMalformed)
		}
	}
	if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 || n > MaxMessage {
		closeAll(files)
		return 0, nil, nil, fmt.Errorf("privsep: receive: %w: message over the %d-byte limit", ErrMalformed, MaxMessage)
	}
	id, m, err = c.codec.unmarshal(buf[:n])
	if err != nil {
		closeAll(files)
		return id, nil, nil, err
	}
	return id, m, files, nil
}

// peerClosed tells an end of file from an empty datagram, which recvmsg
// reports alike on a SOCK_SEQPACKET socket.
func (c *Conn) peerClosed() bool {
	raw, err := c.f.SyscallConn()
	if err != nil {
		return true
	}
	closed := true
	raw.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
		n, err := unix.Poll(fds, 0)
		closed = err != nil || n > 0 && fds[0].Revents&(unix.POLLHUP|unix.POLLRDHUP) != 0
	})
	return closed
}

func parseRights(oob []byte) ([]*os.File, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("privsep: receive: control message: %w", err)
	}
	var files []*os.File
	for _, msg := range msgs {
		fds, err := unix.ParseUnixRights(&msg)
		if err != nil {
			closeAll(files)
			return nil, fmt.Errorf("privsep: receive: control message: %w", err)
		}
		for _, fd := range fds {
			files = append(files, os.NewFile(uintptr(fd), "privsep-passed"))
		}
	}
	return files, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// Hello opens an engine's session: it says hello as daemon and decodes,
// strictly, the configuration the actuator's Welcome carries into config.
// An actuator silent for timeout is an error.
func (c *Conn) Hello(daemon string, timeout time.Duration, config any) error {
	if err := c.Send(0, &Hello{Version: ProtocolVersion, Daemon: daemon}); err != nil {
		return err
	}
	type result struct {
		m   Message
		err error
	}
	ch := make(chan result, 1)
	go func() {
		_, m, files, err := c.Receive()
		closeAll(files)
		ch <- result{m, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-time.After(timeout):
		return errors.New("no welcome from the actuator")
	}
	if r.err != nil {
		return fmt.Errorf("welcome: %w", r.err)
	}
	w, ok := r.m.(*Welcome)
	if !ok {
		return fmt.Errorf("welcome: got %s", r.m.Kind())
	}
	if err := UnmarshalValue(w.Config, config); err != nil {
		return fmt.Errorf("welcome: configuration: %w", err)
	}
	return nil
}
