#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server on loopback for hookmap's Postgres tests and
# benchmarks, installing Debian's postgresql package first when it is missing (no Docker
# needed). The server runs as the postgres OS user from a data folder of its own, listens
# on 127.0.0.1 only, trusts local connections, and has a role and a database "hookmap".
#
#   source .ci/postgres.sh     # exports HOOKMAP_TEST_POSTGRES (what CI does)
#   .ci/postgres.sh            # prints the export line: eval "$(.ci/postgres.sh)"
#   .ci/postgres.sh stop       # stops the server and removes its data folder
#
# A server started earlier from the same folder is reused. Settings, each an environment
# variable: HOOKMAP_PG_DIR (data folder, default /tmp/hookmap-postgres), HOOKMAP_PG_PORT
# (first port tried, default 55432; the next ones are tried while a port is taken).
#
# The server keeps PostgreSQL's durable defaults (fsync, synchronous_commit on): the
# receiver's guarantee and the benchmarks are only meaningful with them.

hookmap_pg_main() {
  set -euo pipefail
  local dir="${HOOKMAP_PG_DIR:-/tmp/hookmap-postgres}"
  local port="${HOOKMAP_PG_PORT:-55432}"
  local runas=()
  if [ "$(id -u)" = 0 ]; then runas=(runuser -u postgres --); fi

  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ "${1:-}" = stop ]; then
    if [ -n "$bin" ] && [ -f "$dir/data/PG_VERSION" ]; then
      "${runas[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    return 0
  fi

  if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    echo "postgres.sh: installing Debian's postgresql package" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi

  # Reuse a server already running from this folder.
  if [ -f "$dir/port" ] && "$bin/pg_isready" -q -h 127.0.0.1 -p "$(cat "$dir/port")" 2>/dev/null &&
    "${runas[@]}" "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    port=$(cat "$dir/port")
  else
    if [ -f "$dir/data/PG_VERSION" ]; then
      "${runas[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
    "${runas[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
      cat "$dir/initdb.log" >&2
      return 1
    }
    local started=""
    for _ in $(seq 1 20); do
      # The test suites open many short-lived stores at once: allow enough connections.
      if "${runas[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$dir' -c max_connections=300" \
        start >/dev/null 2>&1; then
        started=1
        break
      fi
      if ! grep -q "could not bind\|Address already in use" "$dir/server.log" 2>/dev/null; then
        cat "$dir/server.log" >&2 || true
        return 1
      fi
      : >"$dir/server.log"
      port=$((port + 1))
    done
    if [ -z "$started" ]; then
      echo "postgres.sh: no free port found" >&2
      return 1
    fi
    echo "$port" >"$dir/port"
    "$bin/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
      -c "CREATE ROLE hookmap LOGIN" -c "CREATE DATABASE hookmap OWNER hookmap" >&2
  fi
  HOOKMAP_TEST_POSTGRES="postgres://hookmap@127.0.0.1:$port/hookmap?sslmode=disable"
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  # Sourced: run in a subshell so its shell options stay there, then export the URL.
  HOOKMAP_TEST_POSTGRES=$( (hookmap_pg_main "$@" && echo "$HOOKMAP_TEST_POSTGRES") ) || return 1
  export HOOKMAP_TEST_POSTGRES
  echo "PostgreSQL for the tests: $HOOKMAP_TEST_POSTGRES" >&2
else
  hookmap_pg_main "$@"
  if [ "${1:-}" != stop ]; then echo "export HOOKMAP_TEST_POSTGRES='$HOOKMAP_TEST_POSTGRES'"; fi
fi
