#!/bin/bash
#
# scripts/build-deb.sh: build the Debian package postgresql-<v>-perfguard.
#
#   bash scripts/build-deb.sh [--out DIR] [--install-test]
#
# Copies the source tree to a temporary directory, so the build never
# touches the shared tree, and runs dpkg-buildpackage -us -uc -b there with
# the standard PostgreSQL Debian tooling (pg_buildext, debian/control.in +
# pgversions).  In a git checkout the copy holds the tracked files and the
# untracked ones that .gitignore does not exclude; in a release tarball
# (git archive output: no .git) it holds every file but build products.
# The .deb files land in DIR (default /tmp/perfguard-deb): the extension,
# postgresql-<v>-perfguard, one per PostgreSQL version, and perfguard-tools
# (architecture-independent: perfguard-report on PATH, the exporter queries,
# the Grafana dashboard and the framework integrations, all under
# /usr/share/perfguard/).
#
# --install-test (root): under the install lock (waits up to 15 minutes and
# never proceeds without it), dpkg -i the packages, check that they put
# perfguard.so into /usr/lib/postgresql/<v>/lib, the control and SQL files
# into /usr/share/postgresql/<v>/extension, and perfguard-report into
# /usr/bin (it must run), remove the packages again and reinstall the
# extension from the source tree (make install), so the development build
# stays the one in use (should that build fail, the files installed before
# are put back).  integrations/packaging/run_e2e.sh tests the packages
# without root, against a cluster that runs the packaged files.
#
# Needs (apt): dpkg-dev, debhelper, devscripts, postgresql-server-dev-all.

set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=/tmp/perfguard-deb
install_test=

while [ $# -gt 0 ]; do
	case $1 in
		--out) out=$2; shift 2 ;;
		--install-test) install_test=1; shift ;;
		*) echo "usage: bash scripts/build-deb.sh [--out DIR] [--install-test]" >&2; exit 2 ;;
	esac
done

for tool in dpkg-buildpackage dh pg_buildext; do
	if ! command -v "$tool" >/dev/null; then
		echo "build-deb.sh: $tool is missing: apt-get install dpkg-dev debhelper devscripts postgresql-server-dev-all" >&2
		exit 1
	fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/perfguard-debbuild.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$work/perfguard-1.0.0
mkdir -p "$src" "$out"

# a clean copy of the tree: no objects, no test output
if [ "$(git -C "$repo" rev-parse --show-toplevel 2>/dev/null)" = "$repo" ]; then
	(cd "$repo" && git ls-files -co --exclude-standard -z) |
		(cd "$repo" && tar --null -T - -cf - 2>/dev/null) | tar -xf - -C "$src"
else
	# a release tarball (git archive output) or another copy without .git
	tar -C "$repo" --exclude=./.git --exclude='*.o' --exclude='*.so' \
		--exclude='*.bc' --exclude=__pycache__ --exclude='*.pyc' \
		--exclude=./results --exclude=./log --exclude=./tmp_check \
		--exclude=./output_iso --exclude=./regression.diffs \
		--exclude=./regression.out -cf - . | tar -xf - -C "$src"
fi

echo "== dpkg-buildpackage -us -uc -b in $src"
(cd "$src" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 || {
	tail -n 60 "$work/build.log" >&2
	echo "build-deb.sh: dpkg-buildpackage failed" >&2
	exit 1
}
debs=()
for f in "$work"/*.deb; do
	[ -e "$f" ] || continue
	cp "$f" "$out/"
	debs+=("$out/$(basename "$f")")
done
if [ ${#debs[@]} -eq 0 ]; then
	echo "build-deb.sh: no .deb produced" >&2
	exit 1
fi
printf 'built %s\n' "${debs[@]}"

[ -n "$install_test" ] || exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "build-deb.sh: --install-test must run as root" >&2
	exit 1
fi

# install_test: runs under the install lock (the installed extension is
# shared by everyone on the machine)
install_test()
{
	local deb pkg v rc=0 f backup
	# keep the files in use, to put them back should make install fail
	backup=$(mktemp /tmp/perfguard-deb-backup.XXXXXX.tar)
	tar -cPf "$backup" /usr/lib/postgresql/*/lib/perfguard.so \
		/usr/share/postgresql/*/extension/perfguard* 2>/dev/null || true
	for deb in "$@"; do
		pkg=$(dpkg-deb -f "$deb" Package)
		if [ "$pkg" = perfguard-tools ]; then
			echo "== dpkg -i $(basename "$deb")"
			dpkg -i "$deb" >/dev/null
			for f in /usr/bin/perfguard-report \
				/usr/share/perfguard/tools/perfguard-report \
				/usr/share/perfguard/integrations/prometheus/queries.yaml \
				/usr/share/perfguard/integrations/grafana/perfguard-dashboard.json \
				/usr/share/perfguard/integrations/django/perfguard_django/testing.py \
				/usr/share/perfguard/integrations/rails/lib/perfguard.rb \
				/usr/share/perfguard/integrations/sqlalchemy/perfguard_sqlalchemy.py; do
				if dpkg -S "$f" 2>/dev/null | grep -q "^$pkg:"; then
					echo "ok - $pkg installs $f"
				else
					echo "not ok - $pkg does not install $f"
					rc=1
				fi
			done
			if perfguard-report --help >/dev/null; then
				echo "ok - perfguard-report --help runs from PATH"
			else
				echo "not ok - perfguard-report --help fails"
				rc=1
			fi
			dpkg -r "$pkg" >/dev/null
			continue
		fi
		[[ $pkg =~ ^postgresql-[0-9]+-perfguard$ ]] || continue	# not -dbgsym
		v=${pkg#postgresql-}
		v=${v%-perfguard}
		echo "== dpkg -i $(basename "$deb")"
		dpkg -i "$deb" >/dev/null
		for f in "/usr/lib/postgresql/$v/lib/perfguard.so" \
			"/usr/share/postgresql/$v/extension/perfguard.control" \
			"/usr/share/postgresql/$v/extension/perfguard--1.0.sql"; do
			if dpkg -S "$f" 2>/dev/null | grep -q "^$pkg:"; then
				echo "ok - $pkg installs $f"
			else
				echo "not ok - $pkg does not install $f"
				rc=1
			fi
		done
		dpkg -r "$pkg" >/dev/null
	done
	echo "== reinstalling the development build (make install)"
	if ! { make -s -C "$repo" >/dev/null && make -s -C "$repo" install >/dev/null; }; then
		echo "not ok - make install of the development tree failed: restoring the previous files"
		tar -xPf "$backup"
		rc=1
	fi
	rm -f "$backup"
	return $rc
}

if [ -n "${PERFGUARD_INSTALL_LOCK_HELD:-}" ]; then
	install_test "${debs[@]}"
	exit
fi
# Unlike scripts/with-install-lock.sh, never go on without the lock: dpkg -r
# removes the installed library, which would break someone else's test run.
export -f install_test
export repo PERFGUARD_INSTALL_LOCK_HELD=1
# (set -e must not end the script before the status is looked at)
rc=0
flock -w 900 -E 200 /tmp/perfguard-install.lock bash -c 'install_test "$@"' install_test "${debs[@]}" ||
	rc=$?
if [ $rc -eq 200 ]; then
	echo "build-deb.sh: the install lock stayed busy for 15 minutes; not installing" >&2
	exit 1
fi
exit $rc
