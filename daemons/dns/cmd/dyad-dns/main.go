// Command dyad-dns is a privilege-separated node-local caching DNS
// forwarder; see package dns.
package main

import (
	"os"

	"github.com/dyad-project/dyad/daemons/dns"
)

func main() { os.Exit(dns.Main(os.Args, os.Stdout, os.Stderr)) }
