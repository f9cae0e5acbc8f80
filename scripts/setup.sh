#!/bin/bash
#
# scripts/setup.sh: make this machine ready to build and test perfguard.
#
# Idempotent; run as root on Debian 12.  It installs the Debian packages the
# build, the tests and the examples need (only when one is missing), creates
# the unprivileged OS user `pfgtest` that runs the throwaway clusters (initdb
# refuses root), then builds the module (warnings are errors, see Makefile)
# and installs it.  Quiet when all goes well; on failure it prints the
# output of the step that failed and exits non-zero.
#
# The installed perfguard.so is shared by everyone on the machine, so the
# whole script runs under scripts/with-install-lock.sh (re-entrant: callers
# that already hold the lock, such as scripts/test.sh, just pass through).

set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Hold the install lock for the whole run (the variable is set only once
# the lock is taken, so nested callers do not wait for themselves).
if [ -z "${PERFGUARD_INSTALL_LOCK_HELD:-}" ]; then
	exec "$repo/scripts/with-install-lock.sh" \
		env PERFGUARD_INSTALL_LOCK_HELD=1 bash "${BASH_SOURCE[0]}" "$@"
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "setup.sh: must run as root (it installs packages and the extension)" >&2
	exit 1
fi

packages=(
	postgresql-15
	postgresql-server-dev-15
	postgresql-contrib
	postgresql-15-hypopg
	postgresql-15-pg-qualstats
	libpq-dev
	libipc-run-perl
	python3-django
	python3-psycopg2
	python3-sqlalchemy
	python3-pytest
	ruby-activerecord
	ruby-pg
	python3-yaml
	sqlsmith
	pgbouncer
	chromium
	fonts-dejavu-core
	make
	gcc
	dpkg-dev
	debhelper
	postgresql-server-dev-all
	procps
)

log=$(mktemp /tmp/perfguard-setup.XXXXXX)
trap 'rm -f "$log"' EXIT

# run_quiet STEP CMD...: run CMD with its output in $log; show it on failure.
run_quiet()
{
	local step=$1
	shift
	if ! "$@" >"$log" 2>&1; then
		echo "setup.sh: $step failed:" >&2
		cat "$log" >&2
		exit 1
	fi
}

missing=()
for p in "${packages[@]}"; do
	if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup.sh: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	run_quiet "apt-get update" apt-get update
	run_quiet "apt-get install" apt-get install -y "${missing[@]}"
fi

if ! id pfgtest >/dev/null 2>&1; then
	run_quiet "useradd pfgtest" useradd -m pfgtest
fi

run_quiet "make" make -s -C "$repo"
run_quiet "make install" make -s -C "$repo" install
