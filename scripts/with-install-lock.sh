#!/bin/bash
# Serialise "make install + run tests" between developers sharing one machine
# (the installed perfguard.so is global to the server binaries).  Waits at
# most 25 minutes for the lock, then runs the command anyway.
# Re-entrant: PERFGUARD_INSTALL_LOCK_HELD marks commands that run under the
# lock already (scripts/test.sh runs scripts/setup.sh; a developer may wrap
# test.sh itself), which then just run instead of waiting for themselves.
if [ -n "${PERFGUARD_INSTALL_LOCK_HELD:-}" ]; then
	exec "$@"
fi
export PERFGUARD_INSTALL_LOCK_HELD=1
# -o: the command does not inherit the lock's descriptor, so a server it
# starts in the background cannot keep holding the lock after it exits.
flock -o -w 1500 -E 200 /tmp/perfguard-install.lock "$@"
rc=$?
if [ $rc -eq 200 ]; then
	echo "with-install-lock: lock busy for 1500 s, running without it" >&2
	exec "$@"
fi
exit $rc
