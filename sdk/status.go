package sdk

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"
)

// The status socket: a unix stream socket in the run directory that answers
// every connection with one JSON document and closes it. The supervisor
// creates it (the engine cannot create files); the engine serves it, so no
// privileged code reads what a client sends.

// StatusSocket is the file name of the status socket in a run directory.
const StatusSocket = "status.sock"

// ListenStatus creates the run directory and the status socket, replacing a
// stale one.
func ListenStatus(runDir string) (*os.File, error) {
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, fmt.Errorf("sdk: status: %w", err)
	}
	path := filepath.Join(runDir, StatusSocket)
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("sdk: status: %w", err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("sdk: status: %w", err)
	}
	ln.SetUnlinkOnClose(false) // the engine serves it; the file outlives this process's copy
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("sdk: status: %w", err)
	}
	f, err := ln.File()
	ln.Close()
	if err != nil {
		return nil, fmt.Errorf("sdk: status: %w", err)
	}
	return f, nil
}

// ServeStatus answers connections on an inherited listener with what
// snapshot returns, until ctx ends.
func ServeStatus(ctx context.Context, f *os.File, snapshot func() any) error {
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("sdk: status: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("sdk: status: %w", err)
		}
		conn.SetDeadline(time.Now().Add(2 * time.Second))
		b, err := json.MarshalIndent(snapshot(), "", "  ")
		if err == nil {
			conn.Write(append(b, '\n'))
		}
		conn.Close()
	}
}

// ReadStatus connects to a status socket and returns its document.
func ReadStatus(runDir string) ([]byte, error) {
	path := filepath.Join(runDir, StatusSocket)
	conn, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(io.LimitReader(conn, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("status: %s: %w", path, err)
	}
	return b, nil
}

// StatusCommand is a daemon's "status" subcommand: it prints what the
// status socket in the run directory (-run-dir, defaultRunDir by default)
// says. The document comes from the unprivileged engine: it is printed
// only as re-encoded JSON, which escapes control bytes, never as it came.
func StatusCommand(name, defaultRunDir string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(name+" status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	runDir := fs.String("run-dir", defaultRunDir, "run directory of the daemon")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	b, err := ReadStatus(*runDir)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		fmt.Fprintf(stderr, "%s: status: not JSON: %v\n", name, err)
		return 1
	}
	out, _ := json.MarshalIndent(doc, "", "  ")
	fmt.Fprintf(stdout, "%s\n", out)
	return 0
}
