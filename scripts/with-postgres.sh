#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL 15 cluster on a free loopback
# port, with TEST_DATABASE_URL pointing at an ordinary (non-superuser) role
# that owns the database (the tables' owner, which migrates) and a second one
# the server runs as (TEST_SERVER_ROLE, user:password), so row-level security
# and the server's grants apply. The cluster is
# stopped and removed when the command ends, whatever its outcome.
# TEST_DATABASE_SOCKET_URL names the same database over the Unix socket.
# The cluster skips the disk syncs (fsync=off) so the tests run fast;
# VRS_PG_DURABLE=1 keeps PostgreSQL's durable defaults, for benchmarks;
# VRS_PG_OPTIONS adds server settings (-c name=value ...).
#   scripts/with-postgres.sh cargo test
#   VRS_PG_DURABLE=1 scripts/with-postgres.sh sh -c 'vrs bench record --postgres "$TEST_DATABASE_SOCKET_URL"'
set -euo pipefail

PGBIN=${PGBIN:-}
if [ -z "$PGBIN" ]; then
  for v in 15 16 17; do
    if [ -x "/usr/lib/postgresql/$v/bin/initdb" ]; then PGBIN=/usr/lib/postgresql/$v/bin; break; fi
  done
fi
if [ -z "$PGBIN" ]; then
  echo "with-postgres: no PostgreSQL server binaries found (apt-get install postgresql)" >&2
  exit 1
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
work=$(mktemp -d /tmp/vrs-pg.XXXXXX)
as_pg=()
if [ "$(id -u)" = 0 ]; then
  chown postgres:postgres "$work"
  as_pg=(runuser -u postgres --)
fi

cleanup() {
  "${as_pg[@]}" "$PGBIN/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

"${as_pg[@]}" "$PGBIN/initdb" -D "$work/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$work/initdb.log" 2>&1 \
  || { cat "$work/initdb.log" >&2; exit 1; }
fast="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
if [ "${VRS_PG_DURABLE:-}" = 1 ]; then
  fast="-c shared_buffers=1GB -c max_wal_size=8GB"
fi
"${as_pg[@]}" "$PGBIN/pg_ctl" -D "$work/data" -l "$work/server.log" -w -t 60 \
  -o "-p $port -k $work -c listen_addresses=127.0.0.1 -c max_connections=300 $fast ${VRS_PG_OPTIONS:-}" \
  start >/dev/null || { cat "$work/server.log" >&2; exit 1; }

"${as_pg[@]}" "$PGBIN/psql" -v ON_ERROR_STOP=1 -q -h 127.0.0.1 -p "$port" -U postgres -d postgres <<'SQL'
CREATE ROLE vrs LOGIN PASSWORD 'vrs' NOSUPERUSER NOBYPASSRLS;
CREATE DATABASE vrs OWNER vrs;
CREATE ROLE vrs_server LOGIN PASSWORD 'vrs_server' NOSUPERUSER NOBYPASSRLS;
-- The tests cut the server's connections as a network fault would.
GRANT pg_signal_backend TO vrs;
SQL

export TEST_DATABASE_URL="postgres://vrs:vrs@127.0.0.1:$port/vrs"
# The server runs as a second role that owns nothing; the owner above
# migrates and grants it what it needs (README, "Two database roles").
export TEST_SERVER_ROLE="vrs_server:vrs_server"
# The same database over the cluster's Unix socket (its folder as the host,
# percent-encoded), as an application on the database's own machine connects.
export TEST_DATABASE_SOCKET_URL="postgres://vrs:vrs@${work//\//%2F}:$port/vrs"
echo "with-postgres: PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
"$@"
