package privsep

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// Backend performs operations that the Guard has already checked. It is the
// only code that changes the host.
type Backend interface {
	Apply(ctx context.Context, m Message) error
}

// ClockReader is a Backend that keeps a clock: the reply to every clock
// operation carries the clock's state after it.
type ClockReader interface {
	ReadClock() (ClockState, error)
}

// Server is the actuator's side of the pipe: it answers the engine's hello,
// then checks every request against the Guard, performs what passes through
// the Backend and answers each request with exactly one Reply.
type Server struct {
	Daemon  string
	Guard   *Guard
	Backend Backend
	Log     *slog.Logger
	// MaxRefusals is how many refused or malformed requests an engine may
	// send before its session is ended as hostile.
	MaxRefusals int
	// Welcome builds the engine's configuration for a hello.
	Welcome func() (*Welcome, error)
	// Started runs once a session is welcomed; it may send events on
	// conn. An error ends the session.
	Started func(conn *Conn) error
}

// ErrHostile ends a session whose engine sent too many refused or malformed
// messages.
var ErrHostile = errors.New("engine sent too many refused or malformed requests")

// ServeSession serves one engine on conn until the engine closes its end,
// ctx ends, or the engine proves hostile. It returns nil when the engine
// closed the pipe.
func (s *Server) ServeSession(ctx context.Context, conn *Conn) error {
	refusals := 0
	welcomed := false
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	for {
		id, m, files, err := conn.Receive()
		closeAll(files) // the actuator never takes descriptors (Receive refuses them too)
		if errors.Is(err, ErrClosed) {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			err = s.handle(ctx, conn, id, m, &welcomed)
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, ErrRefused) && !errors.Is(err, ErrMalformed) {
			return err
		}
		refusals++
		s.Log.Warn("refused engine request", "reason", err.Error(), "refusals", refusals)
		if err := conn.Send(id, &Reply{Error: err.Error()}); err != nil {
			return err
		}
		if s.MaxRefusals > 0 && refusals >= s.MaxRefusals {
			return fmt.Errorf("privsep: %s: %w (%d)", s.Daemon, ErrHostile, refusals)
		}
	}
}

// handle processes one well-formed message. A returned ErrRefused has not
// been answered yet; any other error ends the session.
func (s *Server) handle(ctx context.Context, conn *Conn, id uint64, m Message, welcomed *bool) error {
	switch m := m.(type) {
	case *Hello:
		if *welcomed {
			return refuse("second hello")
		}
		if m.Version != ProtocolVersion || m.Daemon != s.Daemon {
			return refuse("hello from %q version %d; this actuator is %q version %d", truncate(m.Daemon, 32), m.Version, s.Daemon, ProtocolVersion)
		}
		w, err := s.Welcome()
		if err != nil {
			return err
		}
		w.Version = ProtocolVersion
		if err := conn.Send(id, w); err != nil {
			return err
		}
		*welcomed = true
		if s.Started != nil {
			return s.Started(conn)
		}
		return nil
	}
	if !*welcomed {
		return refuse("%s before hello", m.Kind())
	}
	if err := s.Guard.Check(m); errors.Is(err, ErrNotHeld) {
		// Removing what is not there: nothing to do, and no offence.
		s.Log.Debug("nothing to remove", "op", string(m.Kind()), "reason", err.Error())
		return conn.Send(id, &Reply{})
	} else if err != nil {
		return err
	}
	reply := &Reply{}
	if err := s.Backend.Apply(ctx, m); err != nil {
		s.Log.Error("operation failed", "op", string(m.Kind()), "err", err.Error())
		reply.Error = err.Error()
	} else {
		s.Guard.Record(m)
		s.Log.Debug("operation applied", "op", string(m.Kind()))
	}
	if cr, ok := s.Backend.(ClockReader); ok && IsClockOperation(m.Kind()) {
		st, err := cr.ReadClock()
		if err != nil && reply.Error == "" {
			reply.Error = err.Error()
		}
		if err == nil {
			st.Set = s.Guard.ClockSet()
			reply.Clock = &st
		}
	}
	return conn.Send(id, reply)
}
