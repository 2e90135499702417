#!/usr/bin/env bash
# Makes sure a PostgreSQL answers and prints its URL (the maintenance database) on stdout.
# Everything else goes to stderr. Order of preference:
#   1. DATABASE_URL, if it answers;
#   2. a server on 127.0.0.1:5432 accepting user postgres without a password;
#   3. a private cluster under .data/postgres (port 55432), created with the machine's
#      initdb/pg_ctl and started if it is not running;
#   4. Debian's postgresql package, installed when running as root, then (3);
#   5. otherwise: stop and say exactly what to do.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PRIVATE_DIR="${INTEROP_PG_DIR:-$ROOT/.data/postgres}"
PRIVATE_PORT="${INTEROP_PG_PORT:-55432}"

say() { echo "ensure-postgres: $*" >&2; }

# answers URL: true when a PostgreSQL at URL accepts a connection.
answers() {
	local url="$1"
	if command -v psql >/dev/null 2>&1; then
		PGCONNECT_TIMEOUT=3 psql "$url" -XtAc 'select 1' >/dev/null 2>&1
		return
	fi
	# Without psql, settle for the TCP port being open.
	local hostport host port
	hostport="$(echo "$url" | sed -E 's#^[a-z]+://([^@/]*@)?([^/?]*).*#\2#')"
	host="${hostport%:*}"; port="${hostport##*:}"
	[ "$host" = "$port" ] && port=5432
	timeout 3 bash -c "exec 3<>/dev/tcp/${host:-127.0.0.1}/${port}" 2>/dev/null
}

find_bin() {
	local name="$1"
	if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return; fi
	ls -1d /usr/lib/postgresql/*/bin/"$name" 2>/dev/null | sort -V | tail -1
}

if [ -n "${DATABASE_URL:-}" ]; then
	if answers "$DATABASE_URL"; then
		say "using DATABASE_URL"
		echo "$DATABASE_URL"
		exit 0
	fi
	say "DATABASE_URL is set but does not answer; looking for another server"
fi

LOCAL_URL="${INTEROP_PG_LOCAL_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}"
if answers "$LOCAL_URL"; then
	say "using the PostgreSQL on 127.0.0.1:5432"
	echo "$LOCAL_URL"
	exit 0
fi

PRIVATE_URL="postgres://postgres@127.0.0.1:${PRIVATE_PORT}/postgres?sslmode=disable"
if answers "$PRIVATE_URL"; then
	say "using the private cluster in $PRIVATE_DIR"
	echo "$PRIVATE_URL"
	exit 0
fi

INITDB="$(find_bin initdb || true)"
PG_CTL="$(find_bin pg_ctl || true)"
if { [ -z "$INITDB" ] || [ -z "$PG_CTL" ]; } && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
	say "no PostgreSQL server found: installing Debian's postgresql package (as root)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq postgresql >&2
	INITDB="$(find_bin initdb || true)"
	PG_CTL="$(find_bin pg_ctl || true)"
fi
if [ -z "$INITDB" ] || [ -z "$PG_CTL" ]; then
	cat >&2 <<'MSG'
ensure-postgres: no PostgreSQL found, and none can be started here.
  Do one of these, then run the command again:
  - point DATABASE_URL at a PostgreSQL 13+ you can create databases on, e.g.
      export DATABASE_URL=postgres://user:password@host:5432/postgres
  - install PostgreSQL (Debian/Ubuntu: sudo apt-get install postgresql;
    macOS: brew install postgresql@16) so that initdb and pg_ctl are available;
    the Makefile then runs a private cluster under .data/postgres.
MSG
	exit 1
fi

# initdb and postgres refuse to run as root: run the private cluster as a dedicated user.
RUN_AS=()
if [ "$(id -u)" = "0" ]; then
	id -u postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres >&2
	RUN_AS=(runuser -u postgres --)
fi
mkdir -p "$PRIVATE_DIR"
if [ "$(id -u)" = "0" ]; then chown postgres "$PRIVATE_DIR"; fi
if [ ! -f "$PRIVATE_DIR/PG_VERSION" ]; then
	say "creating a private PostgreSQL cluster in $PRIVATE_DIR (port $PRIVATE_PORT, trust auth, local only)"
	"${RUN_AS[@]}" "$INITDB" -D "$PRIVATE_DIR" -U postgres --auth=trust -E UTF8 >/dev/null
fi
say "starting the private PostgreSQL cluster in $PRIVATE_DIR on port $PRIVATE_PORT"
"${RUN_AS[@]}" "$PG_CTL" -D "$PRIVATE_DIR" -l "$PRIVATE_DIR/server.log" -w \
	-o "-p $PRIVATE_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$PRIVATE_DIR -c max_connections=300" start >&2
for _ in $(seq 1 30); do
	if answers "$PRIVATE_URL"; then
		echo "$PRIVATE_URL"
		exit 0
	fi
	sleep 1
done
say "the private cluster did not answer; see $PRIVATE_DIR/server.log"
exit 1
