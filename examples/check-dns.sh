#!/bin/sh
# The check of examples/dns.yml, a service beside dyad's DNS service: wait
# (bounded) for the stub to point the node's resolv.conf at itself, ask it
# for a name only the host's upstream knows, then ask init to power off
# (the check runs in the host's PID namespace).
failed=0
fail() {
	echo "FAILED: $*"
	failed=1
}

i=0
while [ "$i" -lt 120 ] && ! grep -q '^nameserver 127.0.0.53$' /run/resolvconf/resolv.conf 2>/dev/null; do
	i=$((i + 1))
	sleep 1
done
echo "--- /run/resolvconf/resolv.conf"
cat /run/resolvconf/resolv.conf
grep -q '^nameserver 127.0.0.53$' /run/resolvconf/resolv.conf || fail "resolv.conf does not point at the stub"
echo "--- nslookup www.example.test 127.0.0.53"
answer=$(nslookup www.example.test 127.0.0.53 2>&1)
echo "$answer"
echo "$answer" | grep -q '192.0.2.80' || fail "the stub did not answer with the host's upstream's address"
pidof dyad-dns >/dev/null || fail "the dns service is not running"

if [ "$failed" = 0 ]; then
	echo "dns test suite PASSED"
else
	echo "dns test suite FAILED"
fi
kill -USR2 1
