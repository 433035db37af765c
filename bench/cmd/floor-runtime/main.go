// Command floor-runtime is the least any Go process weighs: the runtime and
// nothing else. It says "ready" and waits to be killed. The benchmark
// measures its memory beside floor-dhcp's and dyad-dhcp's.
package main

import (
	"os"
	"time"
)

func main() {
	os.Stdout.WriteString("ready\n")
	time.Sleep(time.Hour)
}
