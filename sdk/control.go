package sdk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Control is the channel between the supervisor and the actuator, both
// privileged: the supervisor hands the actuator each new engine session
// (its end of a fresh pipe), and the actuator asks the supervisor to stop an
// engine that proved hostile. Messages are one byte, plus a descriptor for
// a session or the number of the session a report is about.
//
// Both ends number the sessions in the order they pass over the channel, so
// a report that arrives after its engine has gone (and another started)
// names a session that is no longer the current one, and the supervisor
// does not kill the wrong engine.
type Control struct {
	f        *os.File
	sessions uint64 // sessions sent or received so far
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
	return &Control{f: os.NewFile(uintptr(fds[0]), "control-supervisor")},
		&Control{f: os.NewFile(uintptr(fds[1]), "control-actuator")}, nil
}

// NewControl wraps an inherited descriptor.
func NewControl(f *os.File) *Control { return &Control{f: f} }

// File returns the socket, to hand to a child.
func (c *Control) File() *os.File { return c.f }

// Close closes this end.
func (c *Control) Close() error { return c.f.Close() }

// SendSession hands the actuator its end of a new engine pipe and returns
// the number of that session.
func (c *Control) SendSession(pipe *os.File) (uint64, error) {
	if err := unix.Sendmsg(int(c.f.Fd()), []byte{ctlSession}, unix.UnixRights(int(pipe.Fd())), nil, 0); err != nil {
		return 0, fmt.Errorf("sdk: control: send session: %w", err)
	}
	c.sessions++
	return c.sessions, nil
}

// SendHostile asks the supervisor to stop the engine of the session
// received last.
func (c *Control) SendHostile() error {
	msg := binary.BigEndian.AppendUint64([]byte{ctlHostile}, c.sessions)
	if err := unix.Sendmsg(int(c.f.Fd()), msg, nil, nil, 0); err != nil {
		return fmt.Errorf("sdk: control: send hostile: %w", err)
	}
	return nil
}

// ErrControlClosed means the other end is gone.
var ErrControlClosed = errors.New("sdk: control channel closed")

// ReceiveSession waits for the next session from the supervisor.
func (c *Control) ReceiveSession() (*os.File, error) {
	msg, files, err := c.receive()
	if err != nil {
		return nil, err
	}
	if len(msg) != 1 || msg[0] != ctlSession || len(files) != 1 {
		for _, f := range files {
			f.Close()
		}
		return nil, fmt.Errorf("sdk: control: unexpected message %q with %d descriptors", msg, len(files))
	}
	c.sessions++
	return files[0], nil
}

// ReceiveHostile waits for the actuator to ask for an engine to be stopped,
// and returns the number of that engine's session.
func (c *Control) ReceiveHostile() (session uint64, err error) {
	msg, files, err := c.receive()
	for _, f := range files {
		f.Close()
	}
	if err != nil {
		return 0, err
	}
	if len(msg) != 9 || msg[0] != ctlHostile {
		return 0, fmt.Errorf("sdk: control: unexpected message %q", msg)
	}
	return binary.BigEndian.Uint64(msg[1:]), nil
}

// receive reads one message (at most 9 bytes; a longer one comes out
// as 10, one more than any message, and is refused for its length) and
// the descriptors that came with it.
func (c *Control) receive() ([]byte, []*os.File, error) {
	buf := make([]byte, 10)
	oob := make([]byte, unix.CmsgSpace(4))
	for range 64 { // EINTR retries, bounded
		n, oobn, _, _, err := unix.Recvmsg(int(c.f.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("sdk: control: receive: %w", err)
		}
		if n == 0 {
			return nil, nil, ErrControlClosed
		}
		var files []*os.File
		if oobn > 0 {
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				return nil, nil, fmt.Errorf("sdk: control: %w", err)
			}
			for _, m := range msgs {
				fds, err := unix.ParseUnixRights(&m)
				if err != nil {
					return nil, nil, fmt.Errorf("sdk: control: %w", err)
				}
				for _, fd := range fds {
					files = append(files, os.NewFile(uintptr(fd), "control-passed"))
				}
			}
		}
		return buf[:n], files, nil
	}
	return nil, nil, errors.New("sdk: control: receive interrupted too often")
}
