// Command dyad-ntp is a privilege-separated NTP client.
package main

import (
	"os"

	"github.com/dyad-project/dyad/daemons/ntp"
)

func main() {
	os.Exit(ntp.Main(os.Args, os.Stdout, os.Stderr))
}
