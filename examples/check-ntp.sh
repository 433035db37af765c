#!/bin/sh
# The check of examples/ntp.yml, a service beside dyad's NTP service: wait
# (bounded) for the clock to be set from its years-wrong start, print the
# ntpd service's processes, then print the clock as each of five seconds
# begins ("guest clock N"), for the VM test to compare with the host's.
# Then ask init to power off (the check runs in the host's PID namespace).
failed=0
fail() {
	echo "FAILED: $*"
	failed=1
}

echo "guest clock at start: $(date -u)"
i=0
while [ "$i" -lt 240 ] && [ "$(date +%Y)" -lt 2025 ]; do
	i=$((i + 1))
	sleep 1
done
[ "$(date +%Y)" -ge 2025 ] || fail "the clock was not set: $(date -u)"
echo "guest clock set: $(date -u)"
echo "--- the ntpd service"
for p in $(pidof dyad-ntp exe); do
	grep -E '^(Name|Pid|Uid|CapEff|CapBnd|NoNewPrivs|Seccomp):' "/proc/$p/status"
done
pidof dyad-ntp >/dev/null || fail "the ntpd service is not running"
# Whatever slew follows the step is well under a second.
sleep 2
n=0
while [ "$n" -lt 5 ]; do
	a=$(date +%s)
	while [ "$(date +%s)" = "$a" ]; do :; done
	echo "guest clock $(date +%s)"
	n=$((n + 1))
done

if [ "$failed" = 0 ]; then
	echo "ntp test suite PASSED"
else
	echo "ntp test suite FAILED"
fi
kill -USR2 1
