// Package initd is the init of dyad's VM images: the program the assembler
// puts at /init of the initramfs, which the kernel runs as PID 1.
//
// It does what LinuxKit's init does, in one static binary and in this
// order: it leaves the initramfs for a tmpfs (runc's pivot_root cannot
// leave the initramfs), mounts the kernel's file systems, loads the modules
// the hardware needs (coldplug: every device's modalias against depmod's
// modules.alias), brings up the loopback and sets the hostname, runs the
// onboot containers in order, each to completion, starts the services and
// restarts them when they exit, reaps every orphan, and on SIGUSR2
// (power off), SIGTERM or SIGINT (reboot) or SIGUSR1 (halt) stops the
// services, runs the onshutdown containers and reboots the machine.
//
// Containers are OCI bundles under /containers/{onboot,services,onshutdown}
// run with runc; around each, init applies the bundle's runtime.json (the
// JSON of imageconfig.Runtime): mounts and directories before the
// container is created, interfaces and namespace binds after.
//
// Everything it prints goes to the console as plain lines, "init: ..."
// for its own and "[name] ..." for a container's; the VM tests read them.
// The line that reports a container's identity and capabilities, for
// example
//
//	init: onboot 000-dhcpcd: pid 123 uid 0 CapBnd CAP_NET_ADMIN,CAP_NET_RAW CapEff CAP_NET_ADMIN,CAP_NET_RAW NoNewPrivs 0
//
// is an interface: tests parse it to check that each container got the
// capabilities its label grants and no more.
//
// Every part takes its paths (the root, /proc, /sys, the modules
// directory) as parameters, so that tests run it on the host without being
// PID 1. Only [Main] refuses to run as anything but PID 1.
package initd
