package sdk

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/privsep"
	"github.com/dyad-project/dyad/privsep/sandbox"
)

// Exit codes an engine reports to the supervisor.
const (
	// ExitDone: the engine finished its work (one-shot success, or a clean
	// stop on a signal).
	ExitDone = 0
	// ExitGaveUp: the engine will not succeed by being restarted (one-shot
	// timeout, configuration the engine refuses).
	ExitGaveUp = 3
	// ExitTimeout: a one-shot engine ran out of time; the daemon exits
	// with it too.
	ExitTimeout = 4
)

// Supervisor starts the actuator and the engine and keeps the engine
// running. It is the only stage that may start processes.
type Supervisor struct {
	Name string
	Log  *slog.Logger
	// ActuatorArgs and EngineArgs follow argv[0] for each. The engine's
	// carry no path: it reads no file, and gets its configuration from the
	// actuator.
	ActuatorArgs, EngineArgs []string
	// ActuatorCaps is the actuator's grant of capabilities.
	ActuatorCaps []sandbox.Cap
	// EngineFiles are passed to each engine after the pipe (descriptors
	// 4, 5, ...). The actuator gets only the control channel.
	EngineFiles          []*os.File
	EngineUID, EngineGID uint32
	// EngineLauncher, when set, is the path of engine-exec, a file
	// set-user-ID and set-group-ID to EngineUID and EngineGID: the engine
	// is started and signalled through it, so that the supervisor needs
	// neither CAP_SETUID, CAP_SETGID, CAP_SETPCAP nor CAP_KILL. It is
	// checked before each use.
	EngineLauncher string
	// exe is this binary, which engine-exec runs as the engine.
	exe string
	// Deadline, when set, bounds the whole run (one-shot mode): past it
	// the engine is stopped and the run fails.
	Deadline time.Time
	// Confine drops the supervisor's own privilege. It runs once the
	// actuator and the first engine have been started (which takes the
	// capabilities being dropped); every later engine starts from the
	// confined supervisor. A failure is fatal.
	Confine func() error
}

// Restart backoff for an engine that keeps dying.
const (
	minRestartDelay = 500 * time.Millisecond
	maxRestartDelay = 30 * time.Second
	// maxControlFailures bad messages in a row on the control channel
	// mean it cannot be trusted to carry reports.
	maxControlFailures = 16
	stableRun          = time.Minute
	stopGrace          = 10 * time.Second
)

// Run supervises until the engine finishes or a signal stops the daemon,
// and returns the exit code of the daemon.
func (s *Supervisor) Run() int {
	if s.Confine == nil {
		s.Log.Error("a supervisor without confinement would keep every capability: refusing to start")
		return 1
	}
	if s.EngineLauncher != "" {
		// engine-exec runs this binary by path: the one running now,
		// resolved once, as the engine.
		exe, err := os.Executable()
		if err != nil {
			s.Log.Error("cannot find this binary for engine-exec", "err", err.Error())
			return 1
		}
		s.exe = exe
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)

	ctlSup, ctlAct, err := ControlPair()
	if err != nil {
		s.Log.Error(err.Error())
		return 1
	}
	actuator, err := sandbox.Start(sandbox.Child{
		Args:   append([]string{Argv0(s.Name, StageActuator)}, s.ActuatorArgs...),
		Files:  []*os.File{ctlAct.File()},
		Stderr: os.Stderr, Stdout: os.Stdout,
		Keep: s.ActuatorCaps,
		// Without CAP_SETPCAP the actuator starts with the whole
		// bounding set, and drops to its grant itself.
		LeaveBounding: s.EngineLauncher != "",
	})
	ctlAct.Close()
	if err != nil {
		s.Log.Error("cannot start the actuator", "err", err.Error())
		return 1
	}
	defer actuator.Signal(syscall.SIGKILL)

	// Reports name the session of the engine they are about; watch and
	// pause drop those about an engine already gone.
	hostile := make(chan uint64)
	reportsLost := make(chan struct{})
	reportsDone := make(chan struct{})
	defer close(reportsDone)
	go s.readReports(ctlSup, hostile, reportsLost, reportsDone)
	ev := events{actuator: actuator, hostile: hostile, reportsLost: reportsLost, sigs: sigs}

	if !s.Deadline.IsZero() {
		t := time.NewTimer(time.Until(s.Deadline) + stopGrace)
		defer t.Stop()
		ev.deadline = t.C
	}

	delay := minRestartDelay
	for restarts := 0; ; restarts++ {
		engine, session, err := s.startEngine(ctlSup)
		if err != nil {
			s.Log.Error("cannot start the engine", "err", err.Error())
			return 1
		}
		if restarts == 0 {
			if err := s.Confine(); err != nil {
				s.Log.Error("cannot confine the supervisor", "err", err.Error())
				s.kill(engine)
				return 1
			}
		}
		began := time.Now()
		code, exit, stop := s.watch(engine, session, ev)
		if stop {
			return exit
		}
		switch code {
		case ExitDone:
			return s.stop(nil, actuator, 0)
		case ExitGaveUp:
			return s.stop(nil, actuator, 1)
		case ExitTimeout:
			return s.stop(nil, actuator, ExitTimeout)
		}
		if time.Since(began) > stableRun {
			delay = minRestartDelay
		}
		s.Log.Warn("engine exited: restarting", "status", code, "in", delay.String(), "restarts", restarts+1)
		if exit, stop := s.pause(delay, ev); stop {
			return exit
		}
		delay = min(2*delay, maxRestartDelay)
	}
}

// events are what the supervisor waits on besides the engine.
type events struct {
	actuator *sandbox.Process
	// hostile carries the session numbers of the actuator's reports.
	hostile <-chan uint64
	// reportsLost is closed when the control channel fails: a supervisor
	// that can no longer hear the actuator's reports stops the daemon
	// rather than run an engine nobody can stop.
	reportsLost <-chan struct{}
	sigs        <-chan os.Signal
	deadline    <-chan time.Time // nil without one
}

// readReports passes the actuator's hostile reports on until done, and
// closes lost when the control channel fails.
func (s *Supervisor) readReports(ctl *Control, hostile chan<- uint64, lost, done chan struct{}) {
	failures := 0
	for range 1 << 20 { // one message per hostile engine; bounded all the same
		session, err := ctl.ReceiveHostile()
		if errors.Is(err, ErrControlClosed) {
			return // the actuator is gone, which the supervisor sees
		}
		if err != nil {
			s.Log.Error("bad message from the actuator", "err", err.Error())
			if failures++; failures >= maxControlFailures {
				close(lost)
				return
			}
			continue
		}
		failures = 0
		select {
		case hostile <- session:
		case <-done:
			return
		}
	}
	// Past the bound, reports would go unheard: stop instead.
	s.Log.Error("too many reports from the actuator")
	close(lost)
}

// pause waits delay before the next engine, dropping reports about
// engines already gone. It returns stop and the daemon's exit code when
// the daemon is to stop.
func (s *Supervisor) pause(delay time.Duration, ev events) (exit int, stop bool) {
	wait := time.NewTimer(delay)
	defer wait.Stop()
	for range 1 << 20 { // stale reports only; bounded all the same
		select {
		case <-wait.C:
			return 0, false
		case n := <-ev.hostile:
			s.Log.Debug("ignoring a report about an engine already gone", "session", n)
		case sig := <-ev.sigs:
			s.Log.Info("stopping", "signal", sig.String())
			return s.stop(nil, ev.actuator, 0), true
		case <-ev.actuator.Done():
			return 1, true
		case <-ev.reportsLost:
			s.Log.Error("the control channel failed: stopping")
			return s.stop(nil, ev.actuator, 1), true
		}
	}
	return 0, false
}

// watch waits for the engine of the given session to end, or for a reason
// to end it. It returns the engine's exit code, or stop and the daemon's
// exit code when the daemon is to stop.
func (s *Supervisor) watch(engine *sandbox.Process, session uint64, ev events) (code, exit int, stop bool) {
	actuator := ev.actuator
	for range 1 << 20 { // stale reports only; bounded all the same
		select {
		case <-engine.Done():
			st, _ := engine.Wait()
			return exitCode(st), 0, false
		case <-actuator.Done():
			s.Log.Error("the actuator died: stopping")
			s.kill(engine)
			return 0, 1, true
		case n := <-ev.hostile:
			if n != session {
				s.Log.Debug("ignoring a report about an engine already gone", "session", n, "current", session)
				continue
			}
			s.Log.Error("the actuator reports a hostile engine: killing it")
			if err := s.kill(engine); err != nil {
				return 0, s.stop(nil, actuator, 1), true
			}
			return -1, 0, false
		case <-ev.reportsLost:
			s.Log.Error("the control channel failed: stopping")
			s.kill(engine)
			return 0, s.stop(nil, actuator, 1), true
		case sig := <-ev.sigs:
			s.Log.Info("stopping", "signal", sig.String())
			return 0, s.stop(engine, actuator, 0), true
		case <-ev.deadline:
			s.Log.Error("the engine overran the deadline: stopping")
			return 0, s.stop(engine, actuator, 1), true
		}
	}
	s.Log.Error("too many stale reports from the actuator: stopping")
	return 0, s.stop(engine, actuator, 1), true
}

// startEngine opens a fresh pipe, hands one end to the actuator and starts
// an engine on the other. It returns the engine and its session's number.
func (s *Supervisor) startEngine(ctl *Control) (*sandbox.Process, uint64, error) {
	if s.EngineLauncher != "" {
		if err := s.checkLauncher(); err != nil {
			return nil, 0, err
		}
	}
	act, eng, err := privsep.Pair()
	if err != nil {
		return nil, 0, err
	}
	defer eng.Close()
	session, err := ctl.SendSession(act.File())
	act.Close()
	if err != nil {
		return nil, 0, err
	}
	child := sandbox.Child{
		Args:       append([]string{Argv0(s.Name, StageEngine)}, s.EngineArgs...),
		Files:      append([]*os.File{eng.File()}, s.EngineFiles...),
		Stderr:     os.Stderr,
		Stdout:     os.Stdout,
		UID:        s.EngineUID,
		GID:        s.EngineGID,
		NoNewPrivs: true,
	}
	if s.EngineLauncher != "" {
		// engine-exec takes the engine's user from its set-ID bits,
		// which no_new_privs would void: it sets no_new_privs itself
		// before it execs this binary as the engine.
		child.Path = s.EngineLauncher
		child.Args = append([]string{"engine-exec", "exec", s.exe}, child.Args...)
		child.UID, child.GID, child.NoNewPrivs, child.LeaveBounding = 0, 0, false, true
	}
	p, err := sandbox.Start(child)
	return p, session, err
}

// checkLauncher makes sure EngineLauncher will run the engine as
// EngineUID and EngineGID, and as nothing else.
func (s *Supervisor) checkLauncher() error {
	var st unix.Stat_t
	if err := unix.Stat(s.EngineLauncher, &st); err != nil {
		return fmt.Errorf("engine launcher: %w", err)
	}
	const setID = unix.S_ISUID | unix.S_ISGID
	switch {
	case st.Uid != s.EngineUID || st.Gid != s.EngineGID || st.Uid == 0 || st.Gid == 0:
		return fmt.Errorf("engine launcher %s is owned by %d:%d, not by the engine's user %d:%d", s.EngineLauncher, st.Uid, st.Gid, s.EngineUID, s.EngineGID)
	case st.Mode&setID != setID:
		return fmt.Errorf("engine launcher %s is not set-user-ID and set-group-ID (mode %#o)", s.EngineLauncher, st.Mode&0o7777)
	case st.Mode&0o022 != 0:
		return fmt.Errorf("engine launcher %s may be written by others (mode %#o)", s.EngineLauncher, st.Mode&0o7777)
	}
	// Its owner, the engine's user, could otherwise rewrite what root
	// runs next: it must sit on a read-only file system (the images'
	// root is), which honours its set-ID bits.
	var fs unix.Statfs_t
	if err := unix.Statfs(s.EngineLauncher, &fs); err != nil {
		return fmt.Errorf("engine launcher: %w", err)
	}
	switch {
	case fs.Flags&unix.ST_RDONLY == 0:
		return fmt.Errorf("engine launcher %s is on a writable file system, where its owner could change it (keep the image's root read-only)", s.EngineLauncher)
	case fs.Flags&unix.ST_NOSUID != 0:
		return fmt.Errorf("engine launcher %s is on a nosuid file system, where it cannot change users", s.EngineLauncher)
	}
	return nil
}

// signalEngine signals the engine: directly, or through engine-exec, as
// the engine's own user, when the supervisor may not signal another user.
func (s *Supervisor) signalEngine(p *sandbox.Process, sig syscall.Signal) error {
	select {
	case <-p.Done():
		return nil
	default:
	}
	if s.EngineLauncher == "" {
		if err := p.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return err
		}
		return nil
	}
	if err := s.checkLauncher(); err != nil {
		return err
	}
	pidfd, err := p.PidFD()
	if err != nil {
		return err
	}
	defer pidfd.Close()
	k, err := sandbox.Start(sandbox.Child{
		Path:          s.EngineLauncher,
		Args:          []string{"engine-exec", "kill", strconv.Itoa(int(sig))},
		Files:         []*os.File{pidfd},
		Stderr:        os.Stderr,
		LeaveBounding: true,
	})
	if err != nil {
		return err
	}
	if st, _ := k.Wait(); st == nil || !st.Success() {
		// An engine that exited and was reaped meanwhile has no one to
		// signal: not a failure. (Done closes just after the reaping.)
		select {
		case <-p.Done():
			return nil
		case <-time.After(time.Second):
		}
		return fmt.Errorf("engine-exec could not send %v to the engine: %v", sig, st)
	}
	return nil
}

// kill ends the engine at once and waits for it, for a grace period: an
// error means it may still run, and the daemon must stop (the actuator
// goes with it, and the engine, cut off, exits).
func (s *Supervisor) kill(p *sandbox.Process) error {
	if err := s.signalEngine(p, syscall.SIGKILL); err != nil {
		s.Log.Error("cannot kill the engine", "err", err.Error())
		return err
	}
	select {
	case <-p.Done():
		return nil
	case <-time.After(stopGrace):
		s.Log.Error("the engine outlived SIGKILL")
		return errors.New("the engine outlived SIGKILL")
	}
}

// stop ends the engine (if still running) with SIGTERM, so it can release
// its leases, then the actuator, each within a grace period.
func (s *Supervisor) stop(engine, actuator *sandbox.Process, code int) int {
	if engine != nil {
		if err := s.signalEngine(engine, syscall.SIGTERM); err != nil {
			s.Log.Error("cannot stop the engine", "err", err.Error())
		}
		select {
		case <-engine.Done():
		case <-time.After(stopGrace):
			s.kill(engine)
		}
	}
	actuator.Signal(syscall.SIGTERM)
	select {
	case <-actuator.Done():
	case <-time.After(stopGrace):
		actuator.Signal(syscall.SIGKILL)
		<-actuator.Done()
	}
	return code
}

func exitCode(st *os.ProcessState) int {
	if st == nil {
		return -1
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -int(ws.Signal())
	}
	return st.ExitCode()
}

// ErrNotRoot is returned by a supervisor started without root.
var ErrNotRoot = errors.New("must be started as root (it drops privilege itself)")

// CheckRoot refuses to launch without root.
func CheckRoot(name string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s: %w", name, ErrNotRoot)
	}
	return nil
}

// ConfineSupervisor drops a supervisor's privilege once its children run.
// With engine-exec (withLauncher) it keeps no capability and installs no
// seccomp filter: a filter needs no_new_privs, under which the kernel
// would ignore engine-exec's set-ID bits. Without it, it keeps keep (what
// restarting the engine takes) under the supervisor's filter, which also
// allows what the engine's policy does, since filters are inherited.
func ConfineSupervisor(log *slog.Logger, withLauncher bool, keep []sandbox.Cap, engine sandbox.SyscallPolicy) error {
	if withLauncher {
		if err := sandbox.DropAllThreadsLeavingBounding(nil); err != nil {
			return err
		}
		log.Debug("confined", "capabilities", "none", "seccomp", "none (engine-exec)")
		return nil
	}
	if err := sandbox.DropAllThreads(keep); err != nil {
		return err
	}
	if err := sandbox.Confine(sandbox.Profile{Name: "supervisor", Syscalls: sandbox.SupervisorSyscalls(engine)}); err != nil {
		return err
	}
	log.Debug("confined")
	return nil
}

// RestartCaps are what a supervisor keeps to restart its engine as
// another user with nothing (and to stop it), when no engine-exec does
// that for it.
func RestartCaps() []sandbox.Cap {
	return []sandbox.Cap{unix.CAP_SETUID, unix.CAP_SETGID, unix.CAP_SETPCAP, unix.CAP_KILL}
}
