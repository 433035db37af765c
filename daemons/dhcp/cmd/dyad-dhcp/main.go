// Command dyad-dhcp is a privilege-separated DHCPv4 client.
package main

import (
	"os"

	"github.com/dyad-project/dyad/daemons/dhcp"
)

func main() {
	os.Exit(dhcp.Main(os.Args, os.Stdout, os.Stderr))
}
