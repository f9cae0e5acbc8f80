# shellcheck shell=bash
# integrations/lib/pgbouncer.sh: Debian's pgbouncer in front of the throwaway
# cluster of integrations/lib/cluster.sh
#
# Sourced after cluster.sh; call pfg_start_pgbouncer after pfg_start_cluster
# (it needs PGHOST, PGPORT and PFG_TMP).  Gives:
#   pfg_start_pgbouncer NAME POOL_SIZE [INI_LINE]...
#        start pgbouncer (1.18 on Debian 12) as the current, unprivileged
#        user, daemonized (-d), in transaction pooling mode with POOL_SIZE
#        server connections per database and user (default_pool_size), on
#        127.0.0.1 and a free TCP port (no Unix socket), auth_type = trust
#        with an auth_file holding the current user; INI_LINEs are appended
#        to its [pgbouncer] section.  Every database name maps to the
#        cluster's database of the same name.  Sets PFG_BOUNCER_PORT, the
#        port it listens on; its files are in $PFG_TMP/pgbouncer-NAME
#        (pgbouncer.ini, pgbouncer.log, pgbouncer.pid).  Several may run at
#        once under different NAMEs.  Returns non-zero (and prints its log)
#        when it does not come up.
#   pfg_stop_pgbouncer NAME   stop it by the pid in its pidfile
#   pfg_stop_pgbouncers       stop every one started here
#   pfg_bouncer_admin NAME SQL
#        run SQL (SHOW POOLS, SHOW SERVERS, ...) on its admin console
# Every pgbouncer started here is stopped on exit, before cluster.sh's
# pfg_cleanup stops the cluster and removes PFG_TMP (the EXIT trap is
# replaced by one that does both).

PFG_PGBOUNCER=${PFG_PGBOUNCER:-/usr/sbin/pgbouncer}
export PFG_BOUNCER_PORT=
pfg_bouncers=()

# _pfg_free_port: a TCP port nobody listens on (20000-49999).
_pfg_free_port()
{
	local port hex
	while :; do
		port=$((20000 + RANDOM % 30000))
		hex=$(printf ':%04X ' "$port")
		if ! grep -qi "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
			echo "$port"
			return
		fi
	done
}

_pfg_bouncer_dir()
{
	echo "$PFG_TMP/pgbouncer-$1"
}

pfg_start_pgbouncer()
{
	local name=$1 pool=$2 dir port line user _
	shift 2
	if [ -z "${PFG_TMP:-}" ] || [ -z "${PGPORT:-}" ]; then
		echo "pfg_start_pgbouncer: start the cluster first (pfg_start_cluster)" >&2
		return 1
	fi
	if [ ! -x "$PFG_PGBOUNCER" ]; then
		echo "pfg_start_pgbouncer: $PFG_PGBOUNCER not found (apt-get install pgbouncer)" >&2
		return 1
	fi
	dir=$(_pfg_bouncer_dir "$name")
	user=$(id -un)
	mkdir -p "$dir"
	# trust: pgbouncer only checks that the user is listed
	printf '"%s" ""\n' "$user" >"$dir/userlist.txt"
	# Stopped before the cluster, whatever the script does next.
	if [ ${#pfg_bouncers[@]} -eq 0 ]; then
		trap 'pfg_stop_pgbouncers; pfg_cleanup' EXIT
	fi
	for _ in 1 2 3 4 5; do
		port=$(_pfg_free_port)
		{
			echo "[databases]"
			echo "* = host=$PGHOST port=$PGPORT"
			echo "[pgbouncer]"
			echo "listen_addr = 127.0.0.1"
			echo "listen_port = $port"
			echo "unix_socket_dir ="
			echo "pool_mode = transaction"
			echo "default_pool_size = $pool"
			echo "min_pool_size = 0"
			echo "reserve_pool_size = 0"
			echo "max_client_conn = 200"
			echo "auth_type = trust"
			echo "auth_file = $dir/userlist.txt"
			echo "admin_users = $user"
			echo "stats_users = $user"
			echo "logfile = $dir/pgbouncer.log"
			echo "pidfile = $dir/pgbouncer.pid"
			# JDBC and some drivers send it; pgbouncer cannot track it
			echo "ignore_startup_parameters = extra_float_digits"
			for line in "$@"; do
				echo "$line"
			done
		} >"$dir/pgbouncer.ini"
		rm -f "$dir/pgbouncer.pid"
		if "$PFG_PGBOUNCER" -d "$dir/pgbouncer.ini" >>"$dir/start.out" 2>&1 &&
			_pfg_bouncer_wait "$name" "$port"; then
			pfg_bouncers+=("$name")
			PFG_BOUNCER_PORT=$port
			echo "$port" >"$dir/port"
			return 0
		fi
		_pfg_bouncer_kill "$name"
		# another process took the port between the check and the bind
		grep -qi 'address already in use' "$dir/pgbouncer.log" "$dir/start.out" 2>/dev/null ||
			break
	done
	echo "pfg_start_pgbouncer: pgbouncer $name did not start" >&2
	cat "$dir/start.out" "$dir/pgbouncer.log" >&2 2>/dev/null
	return 1
}

# _pfg_bouncer_wait NAME PORT: wait (10 s at most) for the pidfile and the
# admin console.
_pfg_bouncer_wait()
{
	local dir _
	dir=$(_pfg_bouncer_dir "$1")
	for _ in $(seq 100); do
		if [ -s "$dir/pgbouncer.pid" ] &&
			"$PFG_BINDIR/psql" -X -q -At -h 127.0.0.1 -p "$2" -d pgbouncer \
				-c 'SHOW VERSION' >/dev/null 2>&1; then
			return 0
		fi
		if [ -s "$dir/pgbouncer.pid" ] && ! kill -0 "$(cat "$dir/pgbouncer.pid")" 2>/dev/null; then
			return 1
		fi
		sleep 0.1
	done
	return 1
}

# _pfg_bouncer_kill NAME: SIGTERM (immediate shutdown) to the pid of the
# pidfile when it is a pgbouncer, then SIGKILL after 5 s.
_pfg_bouncer_kill()
{
	local dir pid _
	dir=$(_pfg_bouncer_dir "$1")
	[ -s "$dir/pgbouncer.pid" ] || return 0
	pid=$(head -n 1 "$dir/pgbouncer.pid")
	[[ $pid =~ ^[0-9]+$ ]] || return 0
	grep -q pgbouncer "/proc/$pid/comm" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	return 0
}

pfg_stop_pgbouncer()
{
	local name=$1 n rest=()
	_pfg_bouncer_kill "$name"
	for n in "${pfg_bouncers[@]}"; do
		[ "$n" = "$name" ] || rest+=("$n")
	done
	pfg_bouncers=("${rest[@]}")
}

pfg_stop_pgbouncers()
{
	local n
	for n in "${pfg_bouncers[@]}"; do
		_pfg_bouncer_kill "$n"
	done
	pfg_bouncers=()
}

pfg_bouncer_admin()
{
	local dir
	dir=$(_pfg_bouncer_dir "$1")
	"$PFG_BINDIR/psql" -X -q -At -h 127.0.0.1 -p "$(cat "$dir/port")" -d pgbouncer -c "$2"
}
