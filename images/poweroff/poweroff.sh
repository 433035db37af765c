#!/bin/sh
# poweroff.sh [SECONDS]: wait SECONDS (default 0), then ask init to power
# the machine off. dyad's init takes SIGUSR2 as that request: it stops the
# services, runs the onshutdown containers and powers off. The container
# shares the host's PID namespace (pid: host), where init is PID 1.
set -eu

delay=${1:-0}
case $delay in
'' | *[!0-9]*)
	echo "poweroff.sh: '$delay' is not a whole number of seconds" >&2
	exit 2
	;;
esac

sleep "$delay"
echo "poweroff.sh: asking init (PID 1) to power off"
kill -USR2 1
