#!/bin/bash
# Serialise "make install + run tests" between developers sharing one machine
# (the installed perfguard.so is global to the server binaries).  Waits at
# most two minutes for the lock, then runs the command anyway.
flock -w 120 -E 200 /tmp/perfguard-install.lock "$@"
rc=$?
if [ $rc -eq 200 ]; then
	echo "with-install-lock: lock busy for 120 s, running without it" >&2
	exec "$@"
fi
exit $rc
