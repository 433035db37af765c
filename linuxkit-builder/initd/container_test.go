package initd

import (
	"context"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dyad-project/dyad/internal/testnet"
)

// fakeRunc is enough of runc for init's side of the lifecycle. create
// starts the "container" (the bundle's run.sh) in the background, where it
// waits for start, and exits, leaving it to be reparented to the test
// process as runc leaves containers to init. A bundle with a file
// fail-create makes create fail.
const fakeRunc = `#!/bin/sh
[ "$1" = --root ] || { echo "fake runc: no --root" >&2; exit 64; }
root=$2; shift 2
cmd=$1; shift
case $cmd in
create)
	bundle=$2 pidfile=$4 name=$5
	echo "runc create $name"
	if [ -e "$bundle/fail-create" ]; then echo "cannot create $name" >&2; exit 1; fi
	mkdir -p "$root/$name"
	(
		i=0
		while [ ! -e "$root/$name/started" ]; do
			i=$((i+1)); [ $i -lt 400 ] || exit 70
			sleep 0.05
		done
		exec /bin/sh "$bundle/run.sh"
	) &
	echo $! >"$root/$name/pid"
	echo $! >"$pidfile"
	;;
start) touch "$root/$1/started" ;;
kill) kill -s "$2" "$(cat "$root/$1/pid")" ;;
delete) rm -rf "$root/$2" ;;
*) echo "fake runc: $cmd?" >&2; exit 64 ;;
esac
`

// testSystem is an Init on a temporary root with the fake runc, its reaper
// running, and bundles with the given run.sh scripts ("" for one whose
// create fails).
func testSystem(t *testing.T, bundles map[string]string) (*Init, *syncBuffer, string) {
	t.Helper()
	testnet.RequireIsolated(t)
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "usr/bin/runc"), fakeRunc, 0o755)
	for dir, script := range bundles {
		if script == "" {
			writeFile(t, filepath.Join(root, "containers", dir, "fail-create"), "", 0o644)
			continue
		}
		writeFile(t, filepath.Join(root, "containers", dir, "run.sh"), script, 0o644)
	}
	buf := &syncBuffer{}
	p := Paths{
		Root:     root,
		Proc:     "/proc",
		Sys:      filepath.Join(root, "sys"),
		Runc:     filepath.Join(root, "usr/bin/runc"),
		RuncRoot: filepath.Join(root, "run/runc"),
		State:    filepath.Join(root, "run/dyad-init"),
	}
	writeFile(t, filepath.Join(p.State, ".keep"), "", 0o644)
	in := newInit(NewConsole(buf), p, runReaper(t), nil)
	in.stopGrace = 5 * time.Second
	return in, buf, root
}

// inOrder checks that lines holds lines matching each pattern, in order.
func inOrder(t *testing.T, lines []string, patterns ...string) {
	t.Helper()
	i := 0
	for _, p := range patterns {
		re := regexp.MustCompile("^" + p + "$")
		for i < len(lines) && !re.MatchString(lines[i]) {
			i++
		}
		if i == len(lines) {
			t.Errorf("no line %q in order in:\n%s", p, strings.Join(lines, "\n"))
			return
		}
		i++
	}
}

const capsRE = `(CAP_[A-Z_0-9]+(,CAP_[A-Z_0-9]+)*|none)`

func TestOnboot(t *testing.T) {
	in, buf, root := testSystem(t, map[string]string{
		"onboot/000-hello": "echo hello from the container\necho to stderr >&2\nexit 3\n",
		"onboot/001-fail":  "",
		"onboot/002-after": "printf 'no newline'\n",
	})
	in.runInOrder(context.Background(), filepath.Join(root, "containers/onboot"), "onboot", 0)
	lines := buf.Lines()
	inOrder(t, lines,
		`\[000-hello\] runc create 000-hello`,
		`init: onboot 000-hello: pid [0-9]+ uid 0 CapBnd `+capsRE+` CapEff `+capsRE+` NoNewPrivs 0`,
		`\[000-hello\] hello from the container`,
		`\[000-hello\] to stderr`,
		`init: onboot 000-hello: exited 3`,
		`\[001-fail\] cannot create 001-fail`,
		`init: onboot 001-fail: runc create: exited 1`,
		`init: onboot 002-after: pid [0-9]+ uid 0 .*`,
		`\[002-after\] no newline`,
		`init: onboot 002-after: exited 0`,
	)
	// One status line per container that was created.
	var status []string
	for _, l := range lines {
		if strings.Contains(l, "CapBnd") {
			status = append(status, l)
		}
	}
	if len(status) != 2 {
		t.Errorf("%d status lines, want 2: %q", len(status), status)
	}
}

func TestOnshutdownTimeout(t *testing.T) {
	in, buf, root := testSystem(t, map[string]string{
		"onshutdown/000-slow": "echo slow\nexec sleep 30\n",
	})
	start := time.Now()
	in.runInOrder(context.Background(), filepath.Join(root, "containers/onshutdown"), "onshutdown", 500*time.Millisecond)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
	inOrder(t, buf.Lines(),
		`\[000-slow\] slow`,
		`init: onshutdown 000-slow: still running after 500ms`,
		`init: onshutdown 000-slow: stopping: SIGTERM`,
		`init: onshutdown 000-slow: killed by SIGTERM`,
	)
}

func TestServices(t *testing.T) {
	in, buf, root := testSystem(t, map[string]string{
		"services/crash":  "echo crashing\nexit 1\n",
		"services/steady": "echo up\nexec sleep 30\n",
	})
	in.newBackoff = func() backoff {
		return backoff{min: 10 * time.Millisecond, max: 40 * time.Millisecond, reset: time.Minute}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := in.startServices(ctx, filepath.Join(root, "containers/services"))
	count := func(line string) int {
		return len(slices.DeleteFunc(buf.Lines(), func(l string) bool { return l != line }))
	}
	eventually(t, 20*time.Second, "restarted 4 times", func() bool { return count("[crash] crashing") >= 5 })
	eventually(t, 20*time.Second, "up", func() bool { return count("[steady] up") == 1 })
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("services still running 30 s after the shutdown")
	}
	lines := buf.Lines()
	inOrder(t, lines,
		`init: service crash: exited 1; restarting in 10ms`,
		`init: service crash: exited 1; restarting in 20ms`,
		`init: service crash: exited 1; restarting in 40ms`,
		`init: service crash: exited 1; restarting in 40ms`,
	)
	inOrder(t, lines,
		`init: service steady: pid [0-9]+ uid 0 CapBnd .*`,
		`\[steady\] up`,
		`init: service steady: stopping: SIGTERM`,
		`init: service steady: killed by SIGTERM`,
	)
	if n := count("[steady] up"); n != 1 {
		t.Errorf("steady started %d times, want 1", n)
	}
	for _, l := range lines {
		if strings.Contains(l, "fake runc") {
			t.Errorf("runc called wrongly: %s", l)
		}
	}
}
