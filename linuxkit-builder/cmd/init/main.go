// Command init is the init of dyad's VM images: the assembler puts it at
// /init of the initramfs and the kernel runs it as PID 1. Run as any other
// process it refuses to start. See package initd.
package main

import (
	"os"

	"github.com/dyad-project/dyad/linuxkit-builder/initd"
)

func main() { os.Exit(initd.Main()) }
