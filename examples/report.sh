#!/bin/sh
# The account `make run` prints from inside the guest: what dyad's DHCP
# image configured, the clock dyad's NTP image set, and what their
# containers hold. Then it powers off.
started=$(date -u)
i=0
while [ "$i" -lt 60 ] && ! pidof dyad-dhcp dhcpcd >/dev/null; do
	i=$((i + 1))
	sleep 1
done
sleep 5
echo
echo "=== lease: eth0"
ip -4 addr show dev eth0
echo "=== routes"
ip -4 route show
echo "=== /etc/resolv.conf (-> /run/resolvconf/resolv.conf)"
cat /run/resolvconf/resolv.conf
echo "=== clock"
echo "started at: $started"
i=0
while [ "$i" -lt 60 ] && [ "$(date +%Y)" -lt 2025 ]; do
	i=$((i + 1))
	sleep 1
done
echo "now:        $(date -u) (set by dyad's NTP image from 10.0.2.2)"
echo "=== the ntpd service (dyad-ntp): its processes"
for p in $(pidof dyad-ntp); do
	grep -E '^(Name|Pid|Uid|CapEff|CapBnd|NoNewPrivs|Seccomp):' "/proc/$p/status" | tr '\n' ' '
	echo
done
echo "=== the dhcpcd service (dyad-dhcp): its processes"
for p in $(pidof dyad-dhcp dhcpcd exe); do
	grep -E '^(Name|Pid|Uid|CapEff|CapBnd|NoNewPrivs|Seccomp):' "/proc/$p/status" | tr '\n' ' '
	echo
done
echo "=== done: powering off"
kill -USR2 1
