package dns

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dyad-project/dyad/privsep"
	"github.com/dyad-project/dyad/privsep/sandbox"
	"github.com/dyad-project/dyad/sdk"
)

// The engine: the unprivileged process. It runs as a non-root user with no
// capabilities, under seccomp (UDP and TCP sockets of IPv4 and IPv6, and
// nothing else of the network) and landlock (read-only access to the hosts
// file and the DHCP client's resolv.conf). It serves the listeners the
// supervisor opened, asks upstreams itself, and asks the actuator to point
// the consumers' resolv.conf at the stub.

const (
	welcomeTimeout = 10 * time.Second
	replyTimeout   = 10 * time.Second
	// watchEvery is how often the hosts file and the DHCP client's
	// resolv.conf are looked at.
	watchEvery = 2 * time.Second
)

// readableFiles are what the engine may read: the hosts file, and the
// directory of the upstreams' resolv.conf (a DHCP client replaces the
// file, and landlock follows the file it was given).
func readableFiles(cfg *Config) []string {
	var r []string
	if cfg.HostsFile != "" {
		r = append(r, cfg.HostsFile)
	}
	if cfg.UpstreamsFile != "" {
		r = append(r, filepath.Dir(cfg.UpstreamsFile))
	}
	if cfg.TLSCAFile != "" {
		r = append(r, cfg.TLSCAFile)
	}
	return r
}

func runEngine(args []string) int {
	fs := flag.NewFlagSet("dyad-dns: engine", flag.ContinueOnError)
	debug := fs.Bool("d", false, "")
	allowNoLandlock := fs.Bool("allow-no-landlock", false, "")
	listeners := fs.Int("listeners", 0, "")
	var readable []string
	fs.Func("read", "", func(s string) error { readable = append(readable, s); return nil })
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 || *listeners < 1 || *listeners > maxListen {
		fmt.Fprintln(os.Stderr, "dyad-dns: engine: bad arguments from the supervisor:", args)
		return sdk.ExitGaveUp
	}
	log := sdk.NewLogger(os.Stderr, "dyad-dns", sdk.StageEngine, *debug)
	names := []string{"status"}
	for i := range *listeners {
		names = append(names, fmt.Sprintf("udp%d", i))
	}
	for i := range *listeners {
		names = append(names, fmt.Sprintf("tcp%d", i))
	}
	pipe, files, err := sdk.TakeEngineFiles(names...)
	if err != nil {
		log.Error(err.Error())
		return sdk.ExitGaveUp
	}
	statusFile := files[0]
	var udp []*net.UDPConn
	var tcp []*net.TCPListener
	for i, f := range files[1:] {
		if i < *listeners {
			c, err := net.FilePacketConn(f)
			u, ok := c.(*net.UDPConn)
			if err != nil || !ok {
				log.Error("descriptor from the supervisor is not a UDP socket", "name", f.Name())
				return sdk.ExitGaveUp
			}
			udp = append(udp, u)
		} else {
			l, err := net.FileListener(f)
			t, ok := l.(*net.TCPListener)
			if err != nil || !ok {
				log.Error("descriptor from the supervisor is not a TCP listener", "name", f.Name())
				return sdk.ExitGaveUp
			}
			tcp = append(tcp, t)
		}
		f.Close()
	}
	_ = time.Now().Local() // load the zone before landlock hides it
	var exist []string
	for _, p := range readable {
		if _, err := os.Stat(p); err == nil {
			exist = append(exist, p)
		} else {
			log.Warn("cannot read", "path", p, "err", err.Error())
		}
	}
	if err := sandbox.Confine(sandbox.Profile{
		Name:               "engine",
		Syscalls:           sandbox.UDPTCPClientSyscalls(),
		Landlock:           &sandbox.Landlock{ReadOnly: exist},
		ExpectUnprivileged: true,
		AllowNoLandlock:    *allowNoLandlock,
		Warn:               func(msg string) { log.Warn(msg) },
	}); err != nil {
		log.Error("cannot confine the engine", "err", err.Error())
		return sdk.ExitGaveUp
	}
	log.Debug("confined", "readable", strings.Join(exist, ","))
	conn, err := privsep.EngineConn(pipe)
	if err != nil {
		log.Error(err.Error())
		return sdk.ExitGaveUp
	}
	e := &engine{log: log, conn: conn}
	if err := conn.Hello("dns", welcomeTimeout, &e.cfg); err != nil {
		log.Error(err.Error())
		return 1 // the supervisor restarts the engine
	}
	if err := e.start(); err != nil {
		log.Error(err.Error())
		return sdk.ExitGaveUp
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithCancelCause(ctx)
	go e.readPipe(cancel)
	go func() { cancel(sdk.ServeStatus(ctx, statusFile, e.snapshot)) }()
	var wg sync.WaitGroup
	for _, u := range udp {
		wg.Add(1)
		go func() { defer wg.Done(); cancel(e.r.ServeUDP(ctx, u)) }()
	}
	for _, t := range tcp {
		wg.Add(1)
		go func() { defer wg.Done(); cancel(e.r.ServeTCP(ctx, t)) }()
	}
	// Serving first: the consumers are pointed at a stub that answers.
	e.reload(true)
	e.watch(ctx)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Error(err.Error())
		return 1
	}
	return sdk.ExitDone
}

// engine is the driver around the resolver.
type engine struct {
	log  *slog.Logger
	conn *privsep.Conn
	cfg  EngineConfig
	r    *Resolver
	fwd  *Forwarder

	// Owned by watch.
	hostsStamp, upstreamsStamp string
	search                     []string
	written                    bool

	mu      sync.Mutex
	nextID  uint64
	replies map[uint64]chan *privsep.Reply
	state   engineState
}

// engineState is what the status socket shows of the driver.
type engineState struct {
	Upstreams      []string `json:"upstreams"`
	UpstreamsError string   `json:"upstreams_error,omitempty"`
	LocalNames     int      `json:"local_names"`
	HostsError     string   `json:"hosts_error,omitempty"`
	Search         []string `json:"search,omitempty"`
}

func (e *engine) start() error {
	fc := ForwarderConfig{}
	if len(e.cfg.TLS) > 0 {
		pem, err := os.ReadFile(e.cfg.TLSCAFile)
		if err != nil {
			return fmt.Errorf("the authorities of the TLS upstreams: %w", err)
		}
		fc.RootCAs = x509.NewCertPool()
		if !fc.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s: no certificate", e.cfg.TLSCAFile)
		}
		fc.TLS = map[netip.AddrPort]string{}
		for _, u := range e.cfg.TLS {
			fc.TLS[u.Addr] = u.Name
		}
	}
	fwd, err := NewForwarder(fc)
	if err != nil {
		return err
	}
	e.fwd = fwd
	e.r = NewResolver(NewCache(e.cfg.Cache), fwd, e.log)
	e.replies = map[uint64]chan *privsep.Reply{}
	return nil
}

// watch looks at the files every watchEvery until ctx ends.
func (e *engine) watch(ctx context.Context) {
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.reload(false)
		}
	}
}

// reload reads the hosts file and the upstreams' resolv.conf when they
// changed, and points the consumers' resolv.conf at the stub when its
// search list changed (or first).
func (e *engine) reload(first bool) {
	if stamp := sdk.FileStamp(e.cfg.HostsFile); first || stamp != e.hostsStamp {
		e.hostsStamp = stamp
		e.loadLocal()
	}
	if stamp := sdk.FileStamp(e.cfg.UpstreamsFile); first || stamp != e.upstreamsStamp {
		e.upstreamsStamp = stamp
		e.loadUpstreams()
	}
	if e.cfg.WriteResolv && !e.written {
		e.pointResolvConf()
	}
}

func (e *engine) loadLocal() {
	var hosts []HostsEntry
	var herr error
	if e.cfg.HostsFile != "" {
		hosts, herr = ReadHosts(e.cfg.HostsFile)
		if herr != nil {
			e.log.Warn("hosts file not read: its names are not answered locally", "err", herr.Error())
		}
	}
	local, err := NewLocal(hosts, e.cfg.LocalRecords, 0)
	if err != nil {
		e.log.Error("local records", "err", err.Error())
		return
	}
	e.r.SetLocal(local)
	e.mu.Lock()
	e.state.LocalNames, e.state.HostsError = local.Len(), ""
	if herr != nil {
		e.state.HostsError = herr.Error()
	}
	e.mu.Unlock()
}

// loadUpstreams sets the routes: the configuration's, and the default
// route to its upstreams or else to those of the DHCP client's
// resolv.conf, the stub's own addresses left out.
func (e *engine) loadUpstreams() {
	ups := e.cfg.Upstreams
	var rc ResolvConf
	var rerr error
	if e.cfg.UpstreamsFile != "" {
		rc, rerr = ReadResolvConf(e.cfg.UpstreamsFile)
		if rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			e.log.Warn("upstreams file not read: the upstreams stay as they were", "err", rerr.Error())
		}
	}
	if len(ups) == 0 {
		if rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			e.setUpstreamsError(rerr)
			return
		}
		for _, a := range rc.Nameservers {
			ap := netip.AddrPortFrom(a, 53)
			if !slices.Contains(e.cfg.Listen, ap) {
				ups = append(ups, ap)
			}
		}
	}
	routes := slices.Clone(e.cfg.Routes)
	if len(ups) > 0 {
		routes = append(routes, Route{Domain: ".", Upstreams: ups})
	}
	if err := e.fwd.SetRoutes(routes); err != nil {
		e.setUpstreamsError(err)
		return
	}
	e.log.Info("upstreams", "upstreams", fmt.Sprint(ups))
	search := e.cfg.Search
	if len(search) == 0 {
		search = rc.Search
	}
	e.mu.Lock()
	e.state.Upstreams, e.state.UpstreamsError = nil, ""
	for _, u := range ups {
		e.state.Upstreams = append(e.state.Upstreams, u.String())
	}
	if !slices.Equal(search, e.search) {
		e.search, e.written = search, false
	}
	e.state.Search = search
	e.mu.Unlock()
}

func (e *engine) setUpstreamsError(err error) {
	e.mu.Lock()
	e.state.UpstreamsError = err.Error()
	e.mu.Unlock()
}

// pointResolvConf asks the actuator to write the consumers' resolv.conf:
// the stub's addresses, and the search list.
func (e *engine) pointResolvConf() {
	m := &privsep.ResolvConf{Search: e.search}
	for _, a := range e.cfg.Listen {
		if !slices.Contains(m.Nameservers, a.Addr()) {
			m.Nameservers = append(m.Nameservers, a.Addr())
		}
	}
	if err := e.call(m); err != nil {
		e.log.Error("resolv.conf not written", "err", err.Error())
		return
	}
	e.written = true
}

// call sends a request to the actuator and waits for its reply.
func (e *engine) call(m privsep.Message) error {
	e.mu.Lock()
	e.nextID++
	id := e.nextID
	ch := make(chan *privsep.Reply, 1)
	e.replies[id] = ch
	e.mu.Unlock()
	defer func() { e.mu.Lock(); delete(e.replies, id); e.mu.Unlock() }()
	if err := e.conn.Send(id, m); err != nil {
		return err
	}
	select {
	case r := <-ch:
		if r.Error != "" {
			return errors.New(r.Error)
		}
		return nil
	case <-time.After(replyTimeout):
		return fmt.Errorf("no reply from the actuator to %s", m.Kind())
	}
}

// readPipe hands the actuator's replies to call; when the actuator is
// gone, the engine ends.
func (e *engine) readPipe(cancel context.CancelCauseFunc) {
	for {
		id, m, files, err := e.conn.Receive()
		for _, f := range files {
			f.Close()
		}
		if err != nil {
			cancel(fmt.Errorf("the actuator is gone: %w", err))
			return
		}
		r, ok := m.(*privsep.Reply)
		if !ok {
			e.log.Warn("unexpected message from the actuator", "kind", string(m.Kind()))
			continue
		}
		e.mu.Lock()
		ch := e.replies[id]
		e.mu.Unlock()
		if ch != nil {
			ch <- r
		}
	}
}

// Status is what the status socket says.
type Status struct {
	engineState
	Cache struct {
		Entries int `json:"entries"`
		Bytes   int `json:"bytes"`
	} `json:"cache"`
	Healthy map[string]bool   `json:"upstream_healthy"`
	Stats   map[string]uint64 `json:"stats"`
}

func (e *engine) snapshot() any {
	var st Status
	e.mu.Lock()
	st.engineState = e.state
	e.mu.Unlock()
	st.Cache.Entries, st.Cache.Bytes = e.r.cache.Len(), e.r.cache.Bytes()
	st.Healthy = map[string]bool{}
	for a, ok := range e.fwd.Healthy(time.Now()) {
		st.Healthy[a.String()] = ok
	}
	s := e.r.Stats()
	st.Stats = map[string]uint64{
		"queries": s.Queries.Load(), "local": s.Local.Load(), "hits": s.Hits.Load(), "misses": s.Misses.Load(),
		"stale": s.Stale.Load(), "prefetches": s.Prefetches.Load(), "servfail": s.ServFail.Load(),
		"refused": s.Refused.Load(), "dropped": s.Dropped.Load(),
	}
	return st
}
