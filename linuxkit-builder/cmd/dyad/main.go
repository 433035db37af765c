// Command dyad is the tool around dyad's daemons: it builds their images
// (dyad pkg build), keeps them in a local cache in OCI layout, and moves
// them to and from registries.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `usage:
  dyad pkg build [-org ORG] [-tag TAG] DIR...   build the images of package directories into the cache
  dyad cache ls                                 list the cached images
  dyad cache export REF -o FILE                 write a cached image as a tarball for docker/podman load
  dyad cache import FILE                        store the images of such a tarball
  dyad push REF                                 push a cached image to its registry
  dyad pull REF                                 pull an image into the cache
  dyad audit [-json] REF|FILE                   say what an image's container and processes will hold
  dyad build [-format kernel+initrd|tar] [-name N] [-dir D] [-dry-run] FILE.yml...
                                                build LinuxKit YAML files (merged in order) into a bootable system
  dyad run qemu [-mem MiB] [-cpus N] [-timeout D] [-netdev OPT] [-qemu-arg ARG] NAME
                                                boot NAME-kernel, NAME-initrd.img and NAME-cmdline in QEMU

The cache is at $DYAD_CACHE, or ~/.cache/dyad.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// errUsage asks for the usage text.
var errUsage = errors.New("usage")

// run runs one command and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprint(stderr, usage)
		return 2
	default:
		fmt.Fprintf(stderr, "dyad: %v\n", err)
		return 1
	}
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	sub := ""
	if len(rest) > 0 {
		sub = rest[0]
	}
	switch {
	case cmd == "pkg" && sub == "build":
		return pkgBuild(ctx, rest[1:], stdout, stderr)
	case cmd == "cache" && sub == "ls":
		return cacheList(rest[1:], stdout)
	case cmd == "cache" && sub == "export":
		return cacheExport(rest[1:], stdout)
	case cmd == "cache" && sub == "import":
		return cacheImport(rest[1:], stdout)
	case cmd == "push":
		return push(ctx, rest, stdout)
	case cmd == "pull":
		return pull(ctx, rest, stdout)
	case cmd == "audit":
		return auditImage(rest, stdout)
	case cmd == "build":
		return buildImage(ctx, rest, stdout, stderr)
	case cmd == "run" && sub == "qemu":
		return runQEMU(ctx, rest[1:], stdout)
	case cmd == "help" || cmd == "-h" || cmd == "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", strings.Join(args[:min(2, len(args))], " "), usage)
}

// positional takes the arguments of a command without flags: exactly
// the number named in want ("REF", "FILE"), or none when want is empty.
func positional(command string, args []string, want ...string) ([]string, error) {
	pos, err := parse(flag.NewFlagSet(command, flag.ContinueOnError), args)
	if err != nil {
		return nil, err
	}
	if len(pos) != len(want) {
		if len(want) == 0 {
			return nil, fmt.Errorf("%s: unexpected argument %q", command, pos[0])
		}
		return nil, fmt.Errorf("%s: want %s", command, strings.Join(want, " "))
	}
	return pos, nil
}

// parse parses flags that may come before, between or after the
// positional arguments, and returns the positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for range len(args) + 1 {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errUsage
			}
			return nil, fmt.Errorf("%s: %w", fs.Name(), err)
		}
		rest := fs.Args()
		// flag stops after a "--" it consumed: all that follows is
		// positional.
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return pos, nil
}
