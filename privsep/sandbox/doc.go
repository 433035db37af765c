// Package sandbox confines the processes of a dyad daemon: it starts each
// stage and child with the capabilities, credentials and no_new_privs it
// must have, and each process then confines itself with a seccomp filter
// and Landlock rules.
//
// The process model: the supervisor (root) opens what the daemon needs,
// starts the actuator (root, with only its grant's capabilities) and the
// engine (an unprivileged user, no capabilities at all, no_new_privs) with
// Start, then keeps only what it needs to restart the engine
// (DropAllThreads). Each process calls Confine before it handles any input.
//
// Capability sets, no_new_privs, seccomp filters and Landlock domains all
// belong to a thread, not to a process, and a Go program has many threads
// that the runtime creates and reuses as it likes. Every function here
// therefore either works on a locked OS thread that is thrown away
// afterwards (Start), or on every thread of the process (Confine,
// DropAllThreads), and checks in /proc that it did. Seccomp filters reach every
// thread with TSYNC; Landlock does too from ABI 8 on, and before that each
// thread is made to restrict itself from a signal handler (allthreads.c, which
// also drops capabilities),
// since the Go runtime's AllThreadsSyscall refuses to work with cgo.
//
// Nothing here degrades silently: every failure to drop a privilege is an
// error, and a kernel without seccomp or Landlock is one too unless the
// Profile says the operator accepted it.
package sandbox
