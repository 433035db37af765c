package dhcp

import (
	"os"
	"time"

	"github.com/dyad-project/dyad/privsep"
)

// engineStatus is the JSON the status socket serves.
type engineStatus struct {
	Daemon     string            `json:"daemon"`
	PID        int               `json:"pid"`
	OneShot    bool              `json:"one_shot"`
	Interfaces []interfaceStatus `json:"interfaces"`
}

type interfaceStatus struct {
	Name      string         `json:"name"`
	State     string         `json:"state"`
	Lease     *privsep.Lease `json:"lease,omitempty"`
	Expires   *time.Time     `json:"expires,omitempty"`
	LastError string         `json:"last_error,omitempty"`
}

// updateStatus copies the clients' state for the status server, which runs
// on its own goroutine.
func (e *engine) updateStatus() {
	s := engineStatus{Daemon: "dyad-dhcp", PID: os.Getpid(), OneShot: e.cfg.OneShot, Interfaces: []interfaceStatus{}}
	for _, idx := range e.sortedClients() {
		c := e.clients[idx]
		is := interfaceStatus{Name: c.cfg.Interface, State: c.State().String(), Lease: c.Lease(), LastError: c.LastError()}
		if exp := c.Expiry(); !exp.IsZero() && is.Lease != nil {
			is.Expires = &exp
		}
		s.Interfaces = append(s.Interfaces, is)
	}
	e.statusMu.Lock()
	e.status = s
	e.statusMu.Unlock()
}

func (e *engine) snapshot() any {
	e.statusMu.Lock()
	defer e.statusMu.Unlock()
	return e.status
}
