package ntp

import (
	"context"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"text/tabwriter"

	"github.com/dyad-project/dyad/sdk"
)

// dyad-ntp -q: the engine's driver in one process, without an actuator, as
// ntpdate -q: it measures every source, prints what it made of each and
// the combined offset, and changes nothing. It needs no privilege, and
// confines itself as an engine before it sends a packet.

func runQuery(cfg *Config, stdout, stderr io.Writer) int {
	log := sdk.NewLogger(stderr, "dyad-ntp", sdk.StageEngine, cfg.Debug)
	var readable []string
	if cfg.DHCPServers != "" {
		readable = append(readable, cfg.DHCPServers)
	}
	if err := confineEngine(log, readable, cfg.AllowNoLandlock, false); err != nil {
		fmt.Fprintln(stderr, "dyad-ntp: cannot confine the query:", err)
		return 1
	}
	d := newDriver(log)
	d.cfg = cfg.Engine()
	if err := d.openSockets(); err != nil {
		fmt.Fprintln(stderr, "dyad-ntp:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if err := d.run(ctx); err != nil {
		fmt.Fprintln(stderr, "dyad-ntp:", err)
		return 1
	}
	return printQuery(stdout, d.e.Status(d.now()), d.e.Selection() != nil)
}

// printQuery prints each source and the combined offset; it returns 0 when
// the sources agreed on a time.
func printQuery(w io.Writer, st Status, agreed bool) int {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "server\taddress\tstratum\toffset\tdelay\tjitter\tverdict")
	for _, s := range st.Sources {
		if s.Samples == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t%s (%s)\n", s.Name, s.Address, s.Verdict, s.Error)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%+.6f\t%.6f\t%.6f\t%s\n", s.Name, s.Address, s.Stratum,
			s.Offset.Seconds(), s.Delay.Seconds(), s.Jitter.Seconds(), s.Verdict)
	}
	tw.Flush()
	if !agreed {
		fmt.Fprintln(w, "no time: the sources did not agree, or none answered")
		return 1
	}
	fmt.Fprintf(w, "offset %+.6f s, jitter %.6f s\n", st.Offset.Seconds(), st.Jitter.Seconds())
	return 0
}
