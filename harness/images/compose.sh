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
#     has no health check), for at most CHRONICLE_WAIT_TIMEOUT seconds (180);
#   - `up` first makes sure the PostgreSQL and Redis images exist: one that
#     is missing is pulled, and when it cannot be pulled (no registry) the
#     offline look-alikes are built (build-offline.sh, 1-2 min); it says
#     which it does;
#   - a failed `up` of a project that did not exist before removes what it
#     created (containers, networks, volumes), so nothing is left behind.
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

args=("$@")
# The compose command: the first argument that is not a global option (or
# the value of one).
command=""
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    -f|--file|-p|--project-name|--env-file|--profile|--project-directory|-H|--host|--context|--log-level|--ansi) i=$((i + 1)) ;;
    -*) ;;
    *) command="${args[$i]}"; break ;;
  esac
done

# Images the user named (CHRONICLE_POSTGRES_IMAGE, CHRONICLE_REDIS_IMAGE)
# are used as they are.
pg_named="${CHRONICLE_POSTGRES_IMAGE:+1}"
redis_named="${CHRONICLE_REDIS_IMAGE:+1}"

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
    if [ "$command" != up ]; then
      say "neither $official nor $offline is present: compose will pull $official (without a registry: harness/images/build-offline.sh first)"
    fi
  fi
}
offline_pg="${CHRONICLE_OFFLINE_POSTGRES:-chronicleweaver/postgres:15-offline}"
offline_redis="${CHRONICLE_OFFLINE_REDIS:-chronicleweaver/redis:7-offline}"
pick CHRONICLE_POSTGRES_IMAGE postgres:17-bookworm "$offline_pg"
pick CHRONICLE_REDIS_IMAGE redis:7-bookworm "$offline_redis"

# ensure VAR OFFLINE: for `up`, make the image VAR names exist: pull it, or
# when that fails and it is not the offline look-alike already, build the
# offline images (build-offline.sh) and use the look-alike.
ensure() {
  local var="$1" offline="$2" image="${!1}"
  if docker image inspect "$image" >/dev/null 2>&1; then return; fi
  say "$image is not present: pulling it"
  if timeout 120 docker pull -q "$image" >/dev/null 2>&1; then say "pulled $image"; return; fi
  if [ "$image" != "$offline" ] && docker image inspect "$offline" >/dev/null 2>&1; then
    say "cannot pull $image: using $offline ($var)"
  else
    say "cannot pull $image (no registry?): building the offline images with harness/images/build-offline.sh (1-2 min, once)"
    "$root/harness/images/build-offline.sh" >&2
  fi
  export "$var=$offline"
}
fresh=0
if [ "$command" = up ]; then
  [ -n "$pg_named" ] || ensure CHRONICLE_POSTGRES_IMAGE "$offline_pg"
  [ -n "$redis_named" ] || ensure CHRONICLE_REDIS_IMAGE "$offline_redis"
  for a in "${args[@]}"; do
    [ "$a" = --build ] || continue
    if [ ! -x "$root/bin/chronicleweaver" ]; then
      say "bin/chronicleweaver is missing: run 'make build' (or 'make up', which builds it) first"
      exit 1
    fi
    say "building the service image ${CHRONICLE_SERVICE_IMAGE:-chronicleweaver:local} from bin/chronicleweaver (seconds)"
  done
  # A project with no container and no volume yet: a failed up removes
  # whatever it created.
  label="com.docker.compose.project=$COMPOSE_PROJECT_NAME"
  if [ -z "$(docker ps -aq --filter "label=$label")" ] && [ -z "$(docker volume ls -q --filter "label=$label")" ]; then
    fresh=1
  fi
fi

# cleanup_failed_up: after a failed `up` of a fresh project, remove it.
cleanup_failed_up() {
  if [ "$fresh" = 1 ]; then
    say "up failed: removing the containers, networks and volumes it created"
    "${compose[@]}" down -v --remove-orphans >&2 || true
  else
    say "up failed; the project existed before, so it is left as it is ('make down' removes it, with its volumes)"
  fi
}

# Does the command line run `up ... --wait` on a CLI without --wait?
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

if [ "$command" != up ]; then
  exec "${compose[@]}" "${args[@]}"
fi
trap 'st=$?; if [ "$st" != 0 ]; then cleanup_failed_up; fi' EXIT
"${compose[@]}" "${args[@]}"
if [ "$wait" = 0 ]; then
  exit 0
fi

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
