package dhcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/dyad-project/dyad/privsep"
	"github.com/dyad-project/dyad/privsep/backend"
	"github.com/dyad-project/dyad/privsep/sandbox"
	"github.com/dyad-project/dyad/sdk"
)

// The actuator: the privileged process. It holds CAP_NET_ADMIN (and
// CAP_SYS_ADMIN only to apply a host name), reads nothing from the network,
// and performs only the requests its Guard lets through.

type actuator struct {
	cfg   *Config
	log   *slog.Logger
	nl    *backend.Netlink
	guard *privsep.Guard

	// mu serialises host changes with shutdown, so a signal never cuts an
	// operation in half.
	mu sync.Mutex
	// linkMu orders link events after the snapshot a new engine gets. It
	// is not mu: a send to an engine that does not read may block, and
	// must hold up neither host changes nor shutdown.
	linkMu sync.Mutex
	conn   *privsep.Conn // the current engine session, for link events
}

func actuate(args []string) int {
	cfg, log, ok := stageConfig(args, sdk.StageActuator)
	if !ok {
		return 2
	}
	ctl := sdk.NewControl(os.NewFile(3, "control"))

	writable := actuatorWritable(cfg)
	// Started with its grant as its bounding set, it holds nothing else
	// already; started without CAP_SETPCAP (the images'), it holds the
	// container's whole set and drops to its grant here.
	if err := sdk.ConfineActuator(log, actuatorCaps(cfg), sandbox.Profile{
		Syscalls:        sandbox.ActuatorSyscalls(),
		Landlock:        &sandbox.Landlock{ReadWrite: writable},
		AllowNoLandlock: cfg.AllowNoLandlock,
	}); err != nil {
		log.Error(err.Error())
		return 1
	}
	log.Debug("confined")
	nl, err := backend.NewNetlink()
	if err != nil {
		log.Error(err.Error())
		return 1
	}
	a := &actuator{cfg: cfg, log: log, nl: nl, guard: privsep.NewGuard(grant(cfg))}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sdk.ExitOnSignal(&a.mu, log, "stopping; the host configuration stays")
	if err := backend.WatchLinks(ctx, a.linkChanged); err != nil {
		// Without it the engine would never hear of carrier changes.
		log.Error("cannot watch links", "err", err.Error())
		return 1
	}
	a.adoptSaved()
	log.Debug("ready")

	server := &privsep.Server{
		Daemon:      "dhcp",
		Guard:       a.guard,
		Backend:     a,
		Log:         log,
		MaxRefusals: sdk.MaxRefusals,
		Welcome:     a.welcome,
		Started:     a.started,
	}
	// The connection is closed before setConn: that ends a link event
	// blocked on an engine that does not read, which holds the lock
	// setConn takes.
	return sdk.ServeEngines(ctx, ctl, server, log, func() { a.setConn(nil) })
}

// actuatorWritable are the directories landlock lets the actuator write:
// the state directory and those of the files it writes.
func actuatorWritable(cfg *Config) []string {
	writable := []string{cfg.StateDir}
	for _, p := range []string{cfg.ResolvConf, cfg.NTPConf} {
		if p != "" {
			writable = append(writable, filepath.Dir(p))
		}
	}
	return writable
}

func (a *actuator) setConn(c *privsep.Conn) {
	a.linkMu.Lock()
	a.conn = c
	a.linkMu.Unlock()
}

// adoptSaved enters in the ledger the leases saved before a restart, so
// that they count against the limit on saved leases, and their addresses
// that are still on their links: they are this daemon's, and a new engine
// may need to remove them.
func (a *actuator) adoptSaved() {
	for _, l := range a.savedLeases() {
		a.guard.Record(&privsep.LeaseSave{Lease: l})
		addrs, err := a.nl.Addrs(l.Interface)
		if err != nil {
			continue // the link is gone
		}
		for _, ai := range addrs {
			// Only an address that expires, as every one this actuator
			// installs does: a saved lease naming the operator's
			// permanent address must not make it this daemon's.
			if ai.Prefix == l.Address && ai.ValidLifetime != backend.Forever {
				a.guard.Record(&privsep.AddrReplace{Interface: l.Interface, Address: l.Address})
				a.log.Info("adopted the address of a saved lease", "interface", l.Interface, "address", l.Address)
			}
		}
	}
}

// welcome gives a new engine its configuration, the saved leases and the
// addresses held on the host.
func (a *actuator) welcome() (*privsep.Welcome, error) {
	ec := a.cfg.engineConfig(a.savedLeases())
	ec.Installed = a.guard.Installed()
	return privsep.WelcomeWith(ec)
}

// started tells a new engine about every link it may manage. The snapshot
// is sent under the lock that the watch also takes, so a change the watch
// reports later always arrives after it.
func (a *actuator) started(conn *privsep.Conn) error {
	a.linkMu.Lock()
	defer a.linkMu.Unlock()
	a.conn = conn
	a.mu.Lock() // the netlink handle is Apply's too
	links, err := a.nl.Links()
	a.mu.Unlock()
	if err != nil {
		return fmt.Errorf("cannot list links: %w", err)
	}
	for _, l := range links {
		a.sendLink(l)
	}
	return nil
}

func (a *actuator) linkChanged(l privsep.LinkEvent) {
	a.linkMu.Lock()
	defer a.linkMu.Unlock()
	a.sendLink(l)
}

// sendLink tells the current engine about an owned link; a.linkMu is held.
func (a *actuator) sendLink(l privsep.LinkEvent) {
	if a.conn == nil || !a.guard.OwnsInterface(l.Name) {
		return
	}
	if err := a.conn.Send(0, &l); err != nil {
		a.log.Warn("cannot tell the engine about a link", "link", l.Name, "err", err.Error())
	}
}

// savedLeases reads the lease files, keeping only those that pass the same
// policy as a request to save them: a damaged or foreign file is skipped
// with a warning, never trusted.
func (a *actuator) savedLeases() []privsep.Lease {
	var out []privsep.Lease
	entries, err := os.ReadDir(a.cfg.StateDir)
	if err != nil {
		a.log.Warn("cannot read the state directory", "err", err.Error())
		return nil
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), leaseSuffix)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		var l privsep.Lease
		b, err := os.ReadFile(filepath.Join(a.cfg.StateDir, e.Name()))
		if err == nil {
			err = json.Unmarshal(b, &l)
		}
		if err == nil && l.Interface != name {
			err = fmt.Errorf("lease is for %q", l.Interface)
		}
		if err == nil {
			err = a.guard.Check(&privsep.LeaseSave{Lease: l})
		}
		if err != nil {
			a.log.Warn("ignoring saved lease", "file", e.Name(), "err", err.Error())
			continue
		}
		if len(out) == a.guard.Policy().MaxLeases {
			a.log.Warn("ignoring saved leases beyond the limit", "limit", len(out))
			break
		}
		out = append(out, l)
	}
	return out
}

const leaseSuffix = ".lease"

func (a *actuator) leasePath(iface string) string {
	return filepath.Join(a.cfg.StateDir, iface+leaseSuffix)
}

// Apply performs one request the Guard has passed.
func (a *actuator) Apply(_ context.Context, m privsep.Message) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch m := m.(type) {
	case *privsep.LinkUp:
		return a.nl.LinkUp(m.Interface)
	case *privsep.LinkMTU:
		return a.nl.SetMTU(m.Interface, m.MTU)
	case *privsep.AddrReplace:
		return a.nl.ReplaceAddr(m.Interface, m.Address, m.ValidLifetime, m.PreferredLifetime)
	case *privsep.AddrRemove:
		return a.nl.RemoveAddr(m.Interface, m.Address)
	case *privsep.RouteReplace:
		return a.nl.ReplaceRoute(m.Route)
	case *privsep.RouteRemove:
		return a.nl.RemoveRoute(m.Route)
	case *privsep.ResolvConf:
		b, err := backend.RenderResolvConf(*m, "dyad-dhcp")
		if err != nil {
			return err
		}
		return backend.WriteFile(a.cfg.ResolvConf, b, 0o644)
	case *privsep.NTPServers:
		b, err := backend.RenderNTPServers(*m, "dyad-dhcp")
		if err != nil {
			return err
		}
		return backend.WriteFile(a.cfg.NTPConf, b, 0o644)
	case *privsep.Hostname:
		return backend.SetHostname(m.Name)
	case *privsep.LeaseSave:
		b, err := json.MarshalIndent(m.Lease, "", "  ")
		if err != nil {
			return fmt.Errorf("lease: %w", err)
		}
		return backend.WriteFile(a.leasePath(m.Lease.Interface), append(b, '\n'), 0o600)
	case *privsep.LeaseDrop:
		if err := os.Remove(a.leasePath(m.Interface)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("lease: %w", err)
		}
		return nil
	}
	return fmt.Errorf("dhcp actuator: no back end for %s", m.Kind())
}
