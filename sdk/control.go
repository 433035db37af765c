package sdk

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Control is the channel between the supervisor and the actuator, both
// privileged: the supervisor hands the actuator each new engine session
// (its end of a fresh pipe), and the actuator asks the supervisor to stop an
// engine that proved hostile. Messages are one byte, plus a descriptor for
// a session.
type Control struct {
	f *os.File
}

// Control messages.
const (
	ctlSession = 'S' // supervisor → actuator, with the actuator's end of a new pipe
	ctlHostile = 'H' // actuator → supervisor: stop this engine
)

// ControlPair returns the supervisor's and the actuator's ends.
func ControlPair() (supervisor, actuator *Control, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("sdk: control socketpair: %w", err)
	}
	return &Control{os.NewFile(uintptr(fds[0]), "control-supervisor")},
		&Control{os.NewFile(uintptr(fds[1]), "control-actuator")}, nil
}

// NewControl wraps an inherited descriptor.
func NewControl(f *os.File) *Control { return &Control{f} }

// File returns the socket, to hand to a child.
func (c *Control) File() *os.File { return c.f }

// Close closes this end.
func (c *Control) Close() error { return c.f.Close() }

// SendSession hands the actuator its end of a new engine pipe.
func (c *Control) SendSession(pipe *os.File) error {
	if err := unix.Sendmsg(int(c.f.Fd()), []byte{ctlSession}, unix.UnixRights(int(pipe.Fd())), nil, 0); err != nil {
		return fmt.Errorf("sdk: control: send session: %w", err)
	}
	return nil
}

// SendHostile asks the supervisor to stop the current engine.
func (c *Control) SendHostile() error {
	if err := unix.Sendmsg(int(c.f.Fd()), []byte{ctlHostile}, nil, nil, 0); err != nil {
		return fmt.Errorf("sdk: control: send hostile: %w", err)
	}
	return nil
}

// ErrControlClosed means the other end is gone.
var ErrControlClosed = errors.New("sdk: control channel closed")

// ReceiveSession waits for the next session from the supervisor.
func (c *Control) ReceiveSession() (*os.File, error) {
	kind, files, err := c.receive()
	if err != nil {
		return nil, err
	}
	if kind != ctlSession || len(files) != 1 {
		for _, f := range files {
			f.Close()
		}
		return nil, fmt.Errorf("sdk: control: unexpected message %q with %d descriptors", kind, len(files))
	}
	return files[0], nil
}

// ReceiveHostile waits for the actuator to ask for the engine to be stopped.
func (c *Control) ReceiveHostile() error {
	kind, files, err := c.receive()
	for _, f := range files {
		f.Close()
	}
	if err != nil {
		return err
	}
	if kind != ctlHostile {
		return fmt.Errorf("sdk: control: unexpected message %q", kind)
	}
	return nil
}

func (c *Control) receive() (byte, []*os.File, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	for range 64 { // EINTR retries, bounded
		n, oobn, _, _, err := unix.Recvmsg(int(c.f.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, nil, fmt.Errorf("sdk: control: receive: %w", err)
		}
		if n == 0 {
			return 0, nil, ErrControlClosed
		}
		var files []*os.File
		if oobn > 0 {
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				return 0, nil, fmt.Errorf("sdk: control: %w", err)
			}
			for _, m := range msgs {
				fds, err := unix.ParseUnixRights(&m)
				if err != nil {
					return 0, nil, fmt.Errorf("sdk: control: %w", err)
				}
				for _, fd := range fds {
					files = append(files, os.NewFile(uintptr(fd), "control-passed"))
				}
			}
		}
		return buf[0], files, nil
	}
	return 0, nil, errors.New("sdk: control: receive interrupted too often")
}
