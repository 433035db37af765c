package dns

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/dyad-project/dyad/privsep"
	"github.com/dyad-project/dyad/privsep/backend"
	"github.com/dyad-project/dyad/privsep/sandbox"
	"github.com/dyad-project/dyad/sdk"
)

// The actuator: the privileged process. It keeps no capability, reads
// nothing from the network, and writes one file: the consumers'
// resolv.conf, pointing at the stub, when its Guard lets the request
// through.

type actuator struct {
	cfg *Config
	log *slog.Logger
	// mu serialises file writes with shutdown.
	mu sync.Mutex
}

func actuate(args []string) int {
	cfg, log, ok := stageConfig(args, sdk.StageActuator)
	if !ok {
		return 2
	}
	ctl := sdk.NewControl(os.NewFile(3, "control"))
	a := &actuator{cfg: cfg, log: log}
	var writable []string
	if cfg.ResolvConf != "" {
		writable = append(writable, filepath.Dir(cfg.ResolvConf))
	}
	if err := sdk.ConfineActuator(log, actuatorCaps(cfg), sandbox.Profile{
		Syscalls:        sandbox.ActuatorSyscalls(),
		Landlock:        &sandbox.Landlock{ReadWrite: writable},
		AllowNoLandlock: cfg.AllowNoLandlock,
	}); err != nil {
		log.Error(err.Error())
		return 1
	}
	log.Debug("confined", "writable", fmt.Sprint(writable))
	sdk.ExitOnSignal(&a.mu, log, "stopping; the consumers' resolv.conf stays")
	server := &privsep.Server{
		Daemon:      "dns",
		Guard:       privsep.NewGuard(Grant(cfg)),
		Backend:     a,
		Log:         log,
		MaxRefusals: sdk.MaxRefusals,
		Welcome:     a.welcome,
	}
	return sdk.ServeEngines(context.Background(), ctl, server, log, nil)
}

func (a *actuator) welcome() (*privsep.Welcome, error) { return privsep.WelcomeWith(a.cfg.Engine()) }

// Apply performs one request the Guard has passed.
func (a *actuator) Apply(_ context.Context, m privsep.Message) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch m := m.(type) {
	case *privsep.ResolvConf:
		b, err := backend.RenderResolvConf(*m, "dyad-dns")
		if err != nil {
			return err
		}
		a.log.Info("pointing resolv.conf at the stub", "path", a.cfg.ResolvConf, "search", fmt.Sprint(m.Search))
		return backend.WriteFile(a.cfg.ResolvConf, b, 0o644)
	}
	return fmt.Errorf("dns actuator: no back end for %s", m.Kind())
}
