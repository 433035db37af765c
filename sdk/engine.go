package sdk

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// EnginePipeFD is the descriptor of an engine's end of the pipe to the
// actuator; the Supervisor's EngineFiles follow it.
const EnginePipeFD = 3

// TakeEngineFiles does what every engine does first, before it confines
// itself: it makes the process non-dumpable, so that nothing else running
// as the engine's user (engine-exec, or anything else that user runs) may
// ptrace it or take its descriptors with pidfd_getfd; and it takes the
// pipe and, named by names, the descriptors the supervisor passed after it
// (its EngineFiles), each checked to be open and made non-blocking.
func TakeEngineFiles(names ...string) (pipe *os.File, files []*os.File, err error) {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return nil, nil, fmt.Errorf("cannot make the engine non-dumpable: %w", err)
	}
	names = append([]string{"pipe"}, names...)
	for i, name := range names {
		fd := EnginePipeFD + i
		if err := unix.SetNonblock(fd, true); err != nil {
			return nil, nil, fmt.Errorf("descriptor %d (%s) from the supervisor: %w", fd, name, err)
		}
		files = append(files, os.NewFile(uintptr(fd), name))
	}
	return files[0], files[1:], nil
}
