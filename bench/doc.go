// Package bench runs dyad's daemons side by side with their peers and
// reports ratios. It has no library code: the benchmarks are tests, run in
// full by `make bench` (DYAD_BENCH=1) and as a short smoke test by `make
// test`.
//
// TestBenchDHCP compares dyad-dhcp with dhcpcd, dhclient and busybox udhcpc,
// against dnsmasq and kea in network namespaces: the time from the start of
// a client process to the kernel's report of its IPv4 address, and the
// memory (RSS and PSS, summed over every process of the client) while it
// holds a lease. Beside them it measures two floor processes
// (bench/cmd/floor-*): the Go runtime alone, and the runtime with the
// libraries the DHCP client is built on, to show how much of dyad-dhcp's
// memory any Go process of its kind holds. The latest full run is in
// RESULTS.md.
//
// TestBenchVM boots examples/dhcp.yml's image in QEMU, and the same image
// with busybox udhcpc as its onboot DHCP step (an image only the benchmark
// builds), and reads from the serial console how long each takes from
// QEMU's start to the address; it also times warm builds of the example
// with dyad build and reports the initrd's size. The latest full run is
// in RESULTS-vm.md.
//
// TestBenchNTP asks a chronyd 2.5 s ahead (faketime) for the offset with
// dyad-ntp -q, chronyd -Q, ntpdate -q and ntpdig: each one's median error
// and time to answer; and the memory of dyad-ntp's service beside chronyd
// as a client. The latest full run is in RESULTS-ntp.md.
package bench
