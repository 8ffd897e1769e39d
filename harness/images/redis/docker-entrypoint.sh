#!/usr/bin/env bash
# Entrypoint of the offline redis image. `redis-server [ARGS...]` (or only
# options) runs
#
#   redis-server --appendonly yes --appendfsync always --dir /data \
#                --protected-mode no --bind 0.0.0.0 ARGS...
#
# as the redis user; later options override earlier ones, so ARGS can change
# any of these (e.g. --appendfsync always). Any other command is run as is.
set -Eeuo pipefail

if [ "$#" = 0 ] || [ "${1:0:1}" = '-' ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi
if [ "$1" != redis-server ]; then
  exec "$@"
fi
shift
case "${1:-}" in
  -v|--version|-h|--help|--test-memory) exec redis-server "$@" ;;
esac

if [ "$(id -u)" = 0 ]; then
  mkdir -p /data
  find /data \! -user redis -exec chown redis:redis '{}' +
  exec setpriv --reuid=redis --regid=redis --init-groups "$0" redis-server "$@"
fi

# A configuration file, if any, must come first.
conf=()
if [ "$#" -gt 0 ] && [ "${1:0:1}" != '-' ]; then
  conf=("$1")
  shift
fi
exec redis-server "${conf[@]}" --appendonly yes --appendfsync always --dir /data \
  --protected-mode no --bind 0.0.0.0 "$@"
