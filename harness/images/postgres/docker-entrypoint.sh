#!/usr/bin/env bash
# Entrypoint of the offline postgres image: the subset of the official
# image's docker-entrypoint.sh that this project relies on.
#
# On the first start (no PG_VERSION in PGDATA) it runs initdb as the postgres
# user with POSTGRES_USER (default postgres) as superuser, sets its password
# from POSTGRES_PASSWORD, creates POSTGRES_DB (default POSTGRES_USER), runs
# /docker-entrypoint-initdb.d/*.sh and *.sql, and lets remote clients in with
# password (scram-sha-256) authentication when a password is set, trust
# otherwise (POSTGRES_HOST_AUTH_METHOD overrides). Then it execs postgres,
# listening on every address, with the arguments given.
set -Eeuo pipefail

if [ "${1:0:1}" = '-' ]; then
  set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
  exec "$@"
fi

export PGDATA="${PGDATA:-/var/lib/postgresql/data}"

# As root: own the data and socket directories, then run again as postgres.
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  if [ "$(stat -c %U "$PGDATA")" != postgres ]; then
    chown -R postgres:postgres "$PGDATA"
  fi
  chown postgres:postgres /var/run/postgresql
  chmod 700 "$PGDATA"
  chmod 2777 /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

log() { echo "docker-entrypoint: $*" >&2; }

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  user="${POSTGRES_USER:-postgres}"
  db="${POSTGRES_DB:-$user}"
  password="${POSTGRES_PASSWORD:-}"
  auth="${POSTGRES_HOST_AUTH_METHOD:-}"
  if [ -z "$auth" ]; then
    if [ -n "$password" ]; then auth=scram-sha-256; else auth=trust; fi
  fi
  log "initialising $PGDATA (superuser $user, database $db, host auth $auth)"

  pwfile=()
  if [ -n "$password" ]; then
    (umask 077 && printf '%s\n' "$password" >/tmp/pgpass.$$)
    pwfile=(--pwfile=/tmp/pgpass.$$)
  fi
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of words
  initdb --username="$user" "${pwfile[@]}" --encoding=UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host="$auth" ${POSTGRES_INITDB_ARGS:-} -D "$PGDATA" >/dev/null
  rm -f /tmp/pgpass.$$
  {
    echo
    echo "listen_addresses = '*'"
  } >>"$PGDATA/postgresql.conf"
  {
    echo
    echo "host all all all $auth"
  } >>"$PGDATA/pg_hba.conf"

  # A temporary server on the Unix socket only, for the set-up SQL.
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w -t 60 start >/dev/null
  psql=(psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$user" --dbname postgres -q)
  if [ "$db" != postgres ]; then
    # psql interpolates variables only in what it reads, not in -c.
    echo 'CREATE DATABASE :"db"' | "${psql[@]}" -v db="$db" >/dev/null
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh)
        log "running $f"
        # shellcheck disable=SC1090 # the user's scripts
        if [ -x "$f" ]; then "$f"; else . "$f"; fi
        ;;
      *.sql) log "running $f"; "${psql[@]}" --dbname "$db" -f "$f" ;;
      *) ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w -t 60 stop >/dev/null
  log "initialised; starting the server"
fi

shift
exec postgres -c listen_addresses='*' "$@"
