#!/bin/bash
# Serialise "make install + run tests" between developers sharing one machine:
# the installed perfguard.so is global to the server binaries.
# Re-entrant: a command already running under the lock (scripts/test.sh calls
# scripts/setup.sh, a developer may wrap test.sh itself) just runs.
if [ -n "${PERFGUARD_INSTALL_LOCK_HELD:-}" ]; then
	exec "$@"
fi
export PERFGUARD_INSTALL_LOCK_HELD=1
exec flock /tmp/perfguard-install.lock "$@"
