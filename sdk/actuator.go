package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/dyad-project/dyad/privsep"
	"github.com/dyad-project/dyad/privsep/sandbox"
)

// MaxRefusals is how many refused or malformed requests an actuator takes
// from one engine before it has that engine stopped.
const MaxRefusals = 32

// ConfineActuator drops the actuator, on every thread, to caps (its
// grant's capabilities; the bounding set stays as the container made it,
// see sandbox.DropAllThreadsLeavingBounding) and then confines it with
// profile, named "actuator". Either
// failing is fatal to the caller: an actuator never serves an engine with
// a half-dropped sandbox.
func ConfineActuator(log *slog.Logger, caps []sandbox.Cap, profile sandbox.Profile) error {
	if err := sandbox.DropAllThreadsLeavingBounding(caps); err != nil {
		return fmt.Errorf("cannot drop to the actuator's capabilities: %w", err)
	}
	profile.Name = "actuator"
	profile.Warn = func(msg string) { log.Warn(msg) }
	if err := sandbox.Confine(profile); err != nil {
		return fmt.Errorf("cannot confine the actuator: %w", err)
	}
	return nil
}

// ServeEngines is the actuator's main loop: it serves each engine session
// the supervisor hands over ctl, one after the other, with server. A
// session that breaks the protocol (privsep.ErrHostile) is reported back,
// so that the supervisor stops that engine and starts another. ended, if
// not nil, runs after each session, its connection closed. It returns the
// actuator's exit code: 0 once the supervisor closes the channel, 1 when
// the channel fails.
func ServeEngines(ctx context.Context, ctl *Control, server *privsep.Server, log *slog.Logger, ended func()) int {
	for {
		f, err := ctl.ReceiveSession()
		if err != nil {
			if errors.Is(err, ErrControlClosed) {
				return 0
			}
			log.Error(err.Error())
			return 1
		}
		conn, err := privsep.ActuatorConn(f)
		if err != nil {
			log.Error(err.Error())
			return 1
		}
		err = server.ServeSession(ctx, conn)
		conn.Close()
		if ended != nil {
			ended()
		}
		switch {
		case errors.Is(err, privsep.ErrHostile):
			log.Error("ending the engine's session", "err", err.Error())
			if err := ctl.SendHostile(); err != nil {
				log.Error(err.Error())
				return 1
			}
		case err != nil:
			log.Error("engine session failed", "err", err.Error())
		default:
			log.Debug("engine session ended")
		}
	}
}

// ExitOnSignal makes the actuator exit at SIGTERM, SIGINT or SIGHUP once
// the operation in progress is done: the actuator holds mu across each
// host change, and the exit takes it for good, so that a signal never cuts
// a change in half. stopping says what the host is left with.
func ExitOnSignal(mu *sync.Mutex, log *slog.Logger, stopping string) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go func() {
		<-sigs
		mu.Lock() // never unlocked
		log.Info(stopping)
		os.Exit(0)
	}()
}
