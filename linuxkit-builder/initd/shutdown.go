package initd

import (
	"context"
	"os"
	"os/signal"
	"time"

	"golang.org/x/sys/unix"
)

// action is what a shutdown ends with.
type action int

const (
	powerOff action = iota
	reboot
	halt
)

func (a action) String() string {
	switch a {
	case reboot:
		return "reboot"
	case halt:
		return "halt"
	default:
		return "power off"
	}
}

// rebootCmd is the reboot(2) command of a.
func (a action) rebootCmd() int {
	switch a {
	case reboot:
		return unix.LINUX_REBOOT_CMD_RESTART
	case halt:
		return unix.LINUX_REBOOT_CMD_HALT
	default:
		return unix.LINUX_REBOOT_CMD_POWER_OFF
	}
}

// actionFor maps a signal to a shutdown, as busybox's init does: SIGUSR2
// powers off (what `poweroff` sends to PID 1), SIGTERM reboots, SIGUSR1
// halts; SIGINT, which the kernel sends on Ctrl-Alt-Del once init has
// asked for it, reboots.
func actionFor(sig os.Signal) (action, bool) {
	switch sig {
	case unix.SIGUSR2:
		return powerOff, true
	case unix.SIGTERM, unix.SIGINT:
		return reboot, true
	case unix.SIGUSR1:
		return halt, true
	}
	return 0, false
}

// notifySignals routes every signal that would otherwise end the process
// to a channel. PID 1 must not exit, and the Go runtime's default for
// SIGHUP, SIGTERM and the like is to exit; the kernel's protection of init
// covers only signals with no handler, and Go installs handlers for all.
// Ignoring them instead would pass SIG_IGN on to every container.
func notifySignals() chan os.Signal {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs,
		unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGABRT, unix.SIGUSR1, unix.SIGUSR2,
		unix.SIGPIPE, unix.SIGALRM, unix.SIGTERM, unix.SIGSTKFLT, unix.SIGXCPU, unix.SIGXFSZ,
		unix.SIGVTALRM, unix.SIGIO, unix.SIGPWR)
	return sigs
}

// watchSignals reads sigs for the life of the process: the first
// shutdown signal goes to actions and cancels the running system; later
// ones, and the rest, are logged and dropped.
func watchSignals(con *Console, sigs <-chan os.Signal, actions chan<- action, cancel context.CancelFunc) {
	stopping := false
	for sig := range sigs {
		name := sig.String()
		if s, ok := sig.(unix.Signal); ok && unix.SignalName(s) != "" {
			name = unix.SignalName(s)
		}
		a, ok := actionFor(sig)
		switch {
		case !ok:
			con.Logf("%s: ignored", name)
		case stopping:
			con.Logf("%s: already shutting down", name)
		default:
			stopping = true
			con.Logf("%s: shutting down to %s", name, a)
			actions <- a
			cancel()
		}
	}
}

const (
	// servicesStopWait bounds the wait for every service to stop: each
	// gets stopGrace after SIGTERM, then SIGKILL, then runc delete.
	servicesStopWait = 60 * time.Second
	// onshutdownTimeout bounds each onshutdown container.
	onshutdownTimeout = 30 * time.Second
)

// shutdown stops the services (whose context has ended; servicesDone
// closes once they have) and runs the onshutdown containers.
func (in *Init) shutdown(servicesDone <-chan struct{}, onshutdownDir string) {
	in.con.Logf("shutdown: stopping services")
	select {
	case <-servicesDone:
	case <-time.After(servicesStopWait):
		in.con.Logf("shutdown: services still stopping after %v; going on", servicesStopWait)
	}
	in.con.Logf("shutdown: running onshutdown containers")
	in.runInOrder(context.Background(), onshutdownDir, "onshutdown", onshutdownTimeout)
}

// finalize ends the machine: every process left gets SIGTERM, then
// SIGKILL, the file systems are synced, and the kernel halts, powers off
// or reboots. It never returns: PID 1 must not exit, the kernel panics if
// it does. Only PID 1 may call it (kill(-1) reaches every process).
func finalize(con *Console, a action) {
	con.Logf("shutdown: stopping the remaining processes")
	_ = unix.Kill(-1, unix.SIGTERM)
	time.Sleep(time.Second)
	_ = unix.Kill(-1, unix.SIGKILL)
	con.Logf("shutdown: syncing")
	unix.Sync()
	con.Logf("%s", a)
	err := unix.Reboot(a.rebootCmd())
	con.Logf("reboot(%s): %v", a, err)
	hang()
}

// hang blocks for good: the one wait in init without a bound, for when
// the kernel would not stop the machine and exiting would panic it.
func hang() {
	for {
		time.Sleep(time.Hour)
	}
}
