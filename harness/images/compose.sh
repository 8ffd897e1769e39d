#!/usr/bin/env bash
# compose.sh: run Docker Compose on the repository's compose.yml with
# whichever CLI this machine has: `docker compose` (v2) or `docker-compose`
# (v1). Arguments are passed through, e.g.
#
#   harness/images/compose.sh up -d --build --wait
#   harness/images/compose.sh ps
#   harness/images/compose.sh down -v
#
# Added on top of plain compose:
#   - the project name defaults to "chronicleweaver" (COMPOSE_PROJECT_NAME
#     or -p override it);
#   - CHRONICLE_POSTGRES_IMAGE / CHRONICLE_REDIS_IMAGE, when unset, name the
#     official images if they are present locally, else the offline
#     look-alikes of build-offline.sh if those are, else the official ones
#     (which compose then pulls);
#   - `up --wait` works with v1 too (which lacks it): after `up -d` every
#     container of the project is polled until healthy (or running, when it
#     has no health check), for at most CHRONICLE_WAIT_TIMEOUT seconds (180).
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
say() { echo "compose.sh: $*" >&2; }

if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
else
  say "neither 'docker compose' nor 'docker-compose' is installed"; exit 1
fi

export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-chronicleweaver}"
if [ -z "${COMPOSE_FILE:-}" ]; then
  export COMPOSE_FILE="$root/compose.yml"
fi

# pick VAR OFFICIAL OFFLINE: set VAR when unset, preferring what exists.
pick() {
  local var="$1" official="$2" offline="$3"
  if [ -n "${!var:-}" ]; then return; fi
  if docker image inspect "$official" >/dev/null 2>&1; then
    export "$var=$official"
  elif docker image inspect "$offline" >/dev/null 2>&1; then
    export "$var=$offline"
    say "$official is not present: using $offline ($var)"
  else
    export "$var=$official"
    say "neither $official nor $offline is present: compose will pull $official (without a registry: harness/images/build-offline.sh first)"
  fi
}
pick CHRONICLE_POSTGRES_IMAGE postgres:17-bookworm "${CHRONICLE_OFFLINE_POSTGRES:-chronicleweaver/postgres:15-offline}"
pick CHRONICLE_REDIS_IMAGE redis:7-bookworm "${CHRONICLE_OFFLINE_REDIS:-chronicleweaver/redis:7-offline}"

# Does the command line run `up ... --wait` on a CLI without --wait?
args=("$@")
wait=0
if [ "${compose[0]}" = docker-compose ]; then
  seen_up=0
  filtered=()
  for ((i = 0; i < ${#args[@]}; i++)); do
    a="${args[$i]}"
    if [ "$seen_up" = 0 ] && [ "$a" = up ]; then seen_up=1; fi
    if [ "$seen_up" = 1 ]; then
      case "$a" in
        --wait) wait=1; continue ;;
        --wait-timeout) wait=1; CHRONICLE_WAIT_TIMEOUT="${args[$((i + 1))]}"; i=$((i + 1)); continue ;;
        --wait-timeout=*) wait=1; CHRONICLE_WAIT_TIMEOUT="${a#*=}"; continue ;;
      esac
    fi
    filtered+=("$a")
  done
  args=("${filtered[@]}")
  if [ "$wait" = 1 ]; then
    have_d=0
    for a in "${args[@]}"; do case "$a" in -d|--detach) have_d=1 ;; esac; done
    [ "$have_d" = 1 ] || args+=(-d)
  fi
fi

if [ "$wait" = 0 ]; then
  exec "${compose[@]}" "${args[@]}"
fi

"${compose[@]}" "${args[@]}"

# Global options (before "up") select the project: keep them for `ps`.
global=()
for a in "${args[@]}"; do
  [ "$a" = up ] && break
  global+=("$a")
done
limit="${CHRONICLE_WAIT_TIMEOUT:-180}"
deadline=$((SECONDS + limit))
say "waiting up to ${limit}s for the containers to be healthy"
while :; do
  ids="$("${compose[@]}" "${global[@]}" ps -q)"
  if [ -z "$ids" ]; then say "no container is running"; exit 1; fi
  pending=""
  for id in $ids; do
    # shellcheck disable=SC2016 # a Go template, not a shell expansion
    read -r name status health < <(docker inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id")
    name="${name#/}"
    case "$status/$health" in
      running/healthy|running/none) ;;
      running/unhealthy) say "$name is unhealthy"; docker logs --tail 30 "$id" >&2 || true; exit 1 ;;
      running/*|created/*|restarting/*) pending="$pending $name" ;;
      *) say "$name is $status"; docker logs --tail 30 "$id" >&2 || true; exit 1 ;;
    esac
  done
  if [ -z "$pending" ]; then say "all healthy"; exit 0; fi
  if [ "$SECONDS" -ge "$deadline" ]; then say "not healthy after ${limit}s:$pending"; exit 1; fi
  sleep 1
done
