// Package backend performs the host changes a daemon's actuator makes on
// behalf of its engine: links, addresses and routes through rtnetlink,
// atomic writes of files such as resolv.conf, and the host name.
//
// Everything here runs in the privileged actuator. Callers have already
// validated each request against the daemon's grant (the policy in package
// privsep); this package does not judge requests, it performs them
// correctly, leaves nothing half done where the kernel allows it, and
// reports errors with enough context to log.
package backend
