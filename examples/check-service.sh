#!/bin/sh
# The check of examples/dhcp-service.yml, a service beside dyad's DHCP
# service: wait (bounded) for the service to be up, let it run a while,
# then check that it is still running and that eth0 still has its leased
# address, with a lifetime (a lease, not a static address). Then ask init
# to power off (the check runs in the host's PID namespace).
failed=0
fail() {
	echo "FAILED: $*"
	failed=1
}

pid=
i=0
while [ "$i" -lt 60 ]; do
	pid=$(pidof dyad-dhcp dhcpcd) && break
	i=$((i + 1))
	sleep 1
done
[ -n "$pid" ] || fail "the dhcpcd service never started"
# Long enough for the service to have read the saved lease and settled.
sleep 15
echo "--- the dhcpcd service"
for p in $(pidof dyad-dhcp dhcpcd exe); do
	grep -E '^(Name|Pid|Uid|CapEff|CapBnd|NoNewPrivs|Seccomp):' "/proc/$p/status"
done
pidof dyad-dhcp dhcpcd >/dev/null || fail "the dhcpcd service is no longer running"
echo "--- eth0"
ip -4 addr show dev eth0
ip -4 addr show dev eth0 | grep -q 'inet 10\.0\.2\.15/24 .*dynamic' || fail "eth0 has no leased 10.0.2.15/24"
ip -4 addr show dev eth0 | grep -q 'valid_lft forever' && fail "the address has no lifetime: no lease holds it"
ip -4 route show default | grep -q 'via 10\.0\.2\.2 ' || fail "no default route via 10.0.2.2"

if [ "$failed" = 0 ]; then
	echo "dhcp service test suite PASSED"
else
	echo "dhcp service test suite FAILED"
fi
kill -USR2 1
