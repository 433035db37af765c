// Package dns is dyad-dns, a privilege-separated node-local caching DNS
// forwarder: the stub every container's resolv.conf points at.
package dns
