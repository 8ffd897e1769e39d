#!/usr/bin/env bash
# gobuild.sh: `go build` that says beforehand what it compiles and about
# how long that takes, and shows how far it is while it runs: a live count
# on a terminal, a plain line every 10 s elsewhere (CI, a log).
#
#   service/devenv/gobuild.sh OUTPUT PACKAGE [GO BUILD FLAGS...]
#
# Go's build cache makes a build after the first take seconds. The first
# build on a machine downloads the modules (go prints each) and compiles
# every package: about 2-3 min for the service on 2 cores, 3-4 min for the
# harness's command line (chronicle), which draws plots.
set -euo pipefail

out="$1" pkg="$2"
shift 2
go="${GO:-go}"
name="$(basename "$out")"

# The packages go build would compile (not in the build cache yet). go list
# downloads the modules it needs first and says so.
stale="$("$go" list -deps -f '{{if .Stale}}{{.ImportPath}}{{end}}' "$@" "$pkg" | grep -c . || true)"
if [ "$stale" -eq 0 ] && [ -x "$out" ]; then
  "$go" build -o "$out" "$@" "$pkg"
  exit 0
fi
if [ "$stale" -gt 150 ]; then
  echo "$name: compiling $stale packages and linking: about 2-4 min on 2 cores the first time (seconds after, from Go's build cache)" >&2
elif [ "$stale" -gt 20 ]; then
  echo "$name: compiling $stale packages and linking: about a minute" >&2
else
  echo "$name: compiling $stale packages and linking: under 30 s on an idle 2-core machine" >&2
fi

tty=0
[ -t 2 ] && [ "${TERM:-dumb}" != dumb ] && tty=1
start=$SECONDS
last=$SECONDS
n=0
# go build -v names each package as it compiles it; anything else it
# prints (an error) passes through.
set +e
"$go" build -v -o "$out" "$@" "$pkg" 2>&1 | {
  while IFS= read -r line; do
    case "$line" in
      *" "* | "#"* | "")
        [ "$tty" = 1 ] && printf '\r\033[2K' >&2
        printf '%s\n' "$line" >&2
        continue
        ;;
    esac
    n=$((n + 1))
    [ "$n" -ge "$stale" ] && line="(linking)"
    if [ "$tty" = 1 ]; then
      printf '\r\033[2K%s: compiled %d/%d packages (%ds) %s' "$name" "$n" "$stale" $((SECONDS - start)) "$line" >&2
    elif [ $((SECONDS - last)) -ge 10 ]; then
      printf '%s: compiled %d/%d packages (%ds)\n' "$name" "$n" "$stale" $((SECONDS - start)) >&2
      last=$SECONDS
    fi
  done
  [ "$tty" = 1 ] && printf '\r\033[2K' >&2
  true
}
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  echo "$name: go build failed (exit $status)" >&2
  exit "$status"
fi
echo "$name: compiled in $((SECONDS - start))s" >&2
