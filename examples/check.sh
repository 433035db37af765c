#!/bin/sh
# The check of examples/dhcp.yml, run in dyad's check image after the DHCP
# client: what QEMU's user network hands out must be configured. The last
# line says PASSED or FAILED; the VM test reads it from the console.
failed=0
fail() {
	echo "FAILED: $*"
	failed=1
}

echo "--- eth0"
ip -4 addr show dev eth0
ip -4 addr show dev eth0 | grep -q 'inet 10\.0\.2\.15/24 ' || fail "eth0 has no 10.0.2.15/24"
echo "--- routes"
ip -4 route show
ip -4 route show default | grep -q 'via 10\.0\.2\.2 ' || fail "no default route via 10.0.2.2"
echo "--- /run/resolvconf/resolv.conf"
cat /run/resolvconf/resolv.conf
grep -q '^nameserver 10\.0\.2\.3$' /run/resolvconf/resolv.conf || fail "resolv.conf does not name 10.0.2.3"

if [ "$failed" = 0 ]; then
	echo "dhcp test suite PASSED"
else
	echo "dhcp test suite FAILED"
fi
