package ntp

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/dyad-project/dyad/privsep"
	"github.com/dyad-project/dyad/privsep/backend"
	"github.com/dyad-project/dyad/privsep/sandbox"
	"github.com/dyad-project/dyad/sdk"
)

// The actuator: the privileged process. It holds CAP_SYS_TIME and nothing
// else, reads nothing from the network and no file, and performs only the
// clock operations its Guard lets through.

// clockDevice is the clock the actuator disciplines: the system's, or the
// simulated one of the tests.
type clockDevice interface {
	Step(time.Duration) error
	Slew(time.Duration) error
	SetFrequency(int64) error
	SetStatus(privsep.ClockStatus) error
	Read() (privsep.ClockState, error)
}

type actuator struct {
	cfg   *Config
	log   *slog.Logger
	clock clockDevice
	// mu serialises clock operations with shutdown.
	mu sync.Mutex
}

func actuate(args []string) int {
	cfg, log, ok := stageConfig(args, sdk.StageActuator)
	if !ok {
		return 2
	}
	ctl := sdk.NewControl(os.NewFile(3, "control"))
	a := &actuator{cfg: cfg, log: log, clock: backend.Clock{}}
	if cfg.SimulatedClock != "" {
		sim, err := simulatedClock(cfg.SimulatedClock, log)
		if err != nil {
			log.Error(err.Error())
			return 1
		}
		a.clock = sim
	}
	if err := sdk.ConfineActuator(log, actuatorCaps(cfg), sandbox.Profile{
		// The engine's policy and clock_adjtime: no socket, no file
		// opened for writing (the simulated clock's log is open already).
		Syscalls:        sandbox.EngineSyscalls().Allowing("clock_adjtime"),
		Landlock:        &sandbox.Landlock{},
		AllowNoLandlock: cfg.AllowNoLandlock,
	}); err != nil {
		log.Error(err.Error())
		return 1
	}
	log.Debug("confined")

	sdk.ExitOnSignal(&a.mu, log, "stopping; the clock stays as it is")
	server := &privsep.Server{
		Daemon:      "ntp",
		Guard:       privsep.NewGuard(Grant(cfg.Engine())),
		Backend:     a,
		Log:         log,
		MaxRefusals: sdk.MaxRefusals,
		Welcome:     a.welcome,
	}
	return sdk.ServeEngines(context.Background(), ctl, server, log, nil)
}

// simulatedClock opens the log of a simulated clock, before confinement.
func simulatedClock(path string, log *slog.Logger) (*backend.SimClock, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("simulated clock: %w", err)
	}
	sim := backend.NewSimClock(time.Now, 0)
	sim.Record = func(op privsep.Message) {
		line, _ := json.Marshal(struct {
			Time int64           `json:"time"`
			Op   privsep.Kind    `json:"op"`
			Args privsep.Message `json:"args"`
		}{time.Now().UnixNano(), op.Kind(), op})
		if _, err := f.Write(append(line, '\n')); err != nil {
			log.Error("simulated clock: cannot log", "err", err.Error())
		}
	}
	return sim, nil
}

func (a *actuator) welcome() (*privsep.Welcome, error) { return privsep.WelcomeWith(a.cfg.Engine()) }

// Apply performs one request the Guard has passed.
func (a *actuator) Apply(_ context.Context, m privsep.Message) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch m := m.(type) {
	case *privsep.ClockRead:
		return nil
	case *privsep.ClockStep:
		a.log.Info("stepping the clock", "offset", time.Duration(m.Offset).String())
		return a.clock.Step(time.Duration(m.Offset))
	case *privsep.ClockSlew:
		return a.clock.Slew(time.Duration(m.Offset))
	case *privsep.ClockFrequency:
		return a.clock.SetFrequency(m.Frequency)
	case *privsep.ClockStatus:
		return a.clock.SetStatus(*m)
	}
	return fmt.Errorf("ntp actuator: no back end for %s", m.Kind())
}

// ReadClock reads the clock's state for the reply to a clock operation.
func (a *actuator) ReadClock() (privsep.ClockState, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.clock.Read()
}
