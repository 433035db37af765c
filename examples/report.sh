#!/bin/sh
# The account `make run` prints from inside the guest: what dyad's DHCP
# image configured, the clock dyad's NTP image set, the names dyad's DNS
# image answers, and what their containers hold; then a line that says
# whether each was there (the demo's test reads it). Then it powers off.
started=$(date -u)
lease=no clock=no names=no
i=0
while [ "$i" -lt 60 ] && ! pidof dyad-dhcp dhcpcd >/dev/null; do
	i=$((i + 1))
	sleep 1
done
sleep 5
echo
echo "=== lease: eth0"
ip -4 addr show dev eth0
ip -4 addr show dev eth0 | grep -q 'inet 10\.0\.2\.15/24' && lease=yes
echo "=== routes"
ip -4 route show
echo "=== the lease's name servers (/run/dyad/dhcp/resolv.conf, from dyad's DHCP image)"
cat /run/dyad/dhcp/resolv.conf
echo "=== /etc/resolv.conf (-> /run/resolvconf/resolv.conf, from dyad's DNS image)"
i=0
while [ "$i" -lt 60 ] && ! grep -q '^nameserver 127.0.0.53$' /run/resolvconf/resolv.conf 2>/dev/null; do
	i=$((i + 1))
	sleep 1
done
cat /run/resolvconf/resolv.conf
echo "=== names, asked of the stub on 127.0.0.53"
# www.example.test goes to the host's unbound (the route for test.);
# node.dyad.internal is a local record of the stub's.
www=$(nslookup www.example.test 127.0.0.53 2>&1)
echo "$www"
node=$(nslookup node.dyad.internal 127.0.0.53 2>&1)
echo "$node"
echo "$www" | grep -q 192.0.2.80 && echo "$node" | grep -q 10.0.2.15 && names=yes
echo "=== clock"
echo "started at: $started"
i=0
while [ "$i" -lt 60 ] && [ "$(date +%Y)" -lt 2025 ]; do
	i=$((i + 1))
	sleep 1
done
[ "$(date +%Y)" -ge 2025 ] && clock=yes
echo "now:        $(date -u) (set by dyad's NTP image from 10.0.2.2)"
for svc in "ntpd:dyad-ntp" "dns:dyad-dns" "dhcpcd:dyad-dhcp dhcpcd exe"; do
	echo "=== the ${svc%%:*} service: its processes"
	for p in $(pidof ${svc#*:}); do
		grep -E '^(Name|Pid|Uid|CapEff|CapBnd|NoNewPrivs|Seccomp):' "/proc/$p/status" | tr '\n' ' '
		echo
	done
done
echo "=== demo: lease $lease, clock $clock, names $names"
echo "=== done: powering off"
kill -USR2 1
