#!/usr/bin/env bash
# ensure-deps.sh: make sure the programs the local environment starts are
# installed (PostgreSQL server binaries and redis-server). As root on Debian
# it installs what is missing with apt-get; otherwise it stops with one line
# saying what to install.
set -euo pipefail

missing=()
pg_found=""
for d in ${PG_BIN:-} /usr/lib/postgresql/*/bin; do
  if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then pg_found="$d"; break; fi
done
if [ -z "$pg_found" ] && command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1; then
  pg_found="$(dirname "$(command -v initdb)")"
fi
[ -n "$pg_found" ] || missing+=(postgresql)
if [ -z "${REDIS_SERVER:-}" ] && ! command -v redis-server >/dev/null 2>&1; then
  missing+=(redis-server)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-deps: installing ${missing[*]} with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The packages start their own system-wide servers where they can; the
  # project starts its own on free ports, so stop those.
  service redis-server stop >/dev/null 2>&1 || true
  service postgresql stop >/dev/null 2>&1 || true
  exit 0
fi
echo "ensure-deps: missing ${missing[*]}: install them (Debian: sudo apt-get install -y ${missing[*]}) or set PG_BIN / REDIS_SERVER" >&2
exit 1
