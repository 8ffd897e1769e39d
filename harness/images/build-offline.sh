#!/usr/bin/env bash
# build-offline.sh: build PostgreSQL and Redis images without an image
# registry, for air-gapped machines that still reach a Debian archive.
#
#   harness/images/build-offline.sh [--force]
#
# A Debian bookworm root file system is made with debootstrap (minbase plus
# postgresql-15 and redis-server) from the archive this machine's apt uses,
# imported as a base image, and two small images are built on it whose
# entrypoints behave like the official postgres and redis images
# (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB, PGDATA; redis-server with
# AOF on). Tags (overridable through the environment):
#
#   CHRONICLE_OFFLINE_BASE      chronicleweaver/bookworm-base:offline
#   CHRONICLE_OFFLINE_POSTGRES  chronicleweaver/postgres:15-offline
#   CHRONICLE_OFFLINE_REDIS     chronicleweaver/redis:7-offline
#
# It does nothing when the three tags exist and the two small images were
# built from the current Dockerfile and entrypoint (a label holds their
# hash; a changed one is rebuilt on the existing base); --force rebuilds
# all. Concurrent runs wait for each other (flock). It prints how long each
# part took. CHRONICLE_DEBIAN_MIRROR overrides the archive read from the
# apt sources. debootstrap needs root; it is installed with apt-get when
# missing. The root file system is made in a temporary folder under
# ${TMPDIR:-/var/tmp} and removed afterwards.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
base_tag="${CHRONICLE_OFFLINE_BASE:-chronicleweaver/bookworm-base:offline}"
pg_tag="${CHRONICLE_OFFLINE_POSTGRES:-chronicleweaver/postgres:15-offline}"
redis_tag="${CHRONICLE_OFFLINE_REDIS:-chronicleweaver/redis:7-offline}"
suite=bookworm

force=0
for a in "$@"; do
  case "$a" in
    --force) force=1 ;;
    -h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-offline: unknown argument $a (usage: $0 [--force])" >&2; exit 2 ;;
  esac
done

say() { echo "build-offline: $*" >&2; }
have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# debian_mirror prints the archive URI that apt uses for $suite: the first
# "deb" entry of /etc/apt/sources.list(.d) (one-line or deb822 format) whose
# suite is exactly $suite.
debian_mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    awk -v s="$suite" '
      $1 == "deb" {
        i = 2
        if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
        if ($(i+1) == s) { print $i; exit }
      }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    awk -v s="$suite" '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " s " ") && uris != "") { split(uris, u, " "); print u[1]; found = 1 }
        types = ""; suites = ""; uris = ""
      }
      /^[ \t]*$/ { flush(); if (found) exit; next }
      /^[ \t]*#/ { next }
      tolower($1) == "types:"  { $1 = ""; types = $0 }
      tolower($1) == "suites:" { $1 = ""; suites = $0 }
      tolower($1) == "uris:"   { $1 = ""; uris = $0 }
      END { if (!found) flush() }' "$f"
  done | sed 's/^ *//' | head -n 1
}

if ! docker version >/dev/null 2>&1; then
  say "no Docker daemon answers (docker version failed)"; exit 1
fi
# One build at a time on this machine (test packages may ask concurrently):
# a second caller waits, then finds the tags.
lock="${TMPDIR:-/tmp}/chronicleweaver-build-offline.lock"
exec 9>>"$lock"
if command -v flock >/dev/null 2>&1 && ! flock -n 9; then
  say "another build is running: waiting for it ($lock)"
  flock 9
fi
# Each small image carries the hash of its folder (Dockerfile, entrypoint):
# an image built from other files is rebuilt (on the existing base).
source_hash() { (cd "$here/$1" && cat Dockerfile docker-entrypoint.sh) | sha256sum | cut -c1-16; }
up_to_date() {
  [ "$(docker image inspect -f '{{index .Config.Labels "chronicleweaver.source"}}' "$1" 2>/dev/null)" = "$(source_hash "$2")" ]
}
need_base=$force; have_image "$base_tag" || need_base=1
need_pg=$need_base; up_to_date "$pg_tag" postgres || need_pg=1
need_redis=$need_base; up_to_date "$redis_tag" redis || need_redis=1
if [ "$need_base$need_pg$need_redis" = 000 ]; then
  say "$pg_tag and $redis_tag are up to date (--force rebuilds them)"
  exit 0
fi
start=$SECONDS
# Images the tags point at now: removed after the rebuild, unless still used.
old_ids="$(for t in "$base_tag" "$pg_tag" "$redis_tag"; do docker image inspect -f '{{.Id}}' "$t" 2>/dev/null || true; done)"
work="$(mktemp -d "${TMPDIR:-/var/tmp}/chronicle-offline.XXXXXX")"
cleanup() {
  # debootstrap may leave /proc or /sys mounted in the target if it fails.
  for m in proc sys dev/pts dev; do umount -l "$work/rootfs/$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

if [ "$need_base" = 1 ]; then
  mirror="${CHRONICLE_DEBIAN_MIRROR:-$(debian_mirror)}"
  if [ -z "$mirror" ]; then
    say "no '$suite' Debian archive in /etc/apt/sources.list(.d): set CHRONICLE_DEBIAN_MIRROR"; exit 1
  fi

  if ! command -v debootstrap >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
      say "debootstrap is missing: install it (Debian: sudo apt-get install -y debootstrap) or run as root"; exit 1
    fi
    say "installing debootstrap with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  fi
  if [ "$(id -u)" != 0 ]; then
    say "debootstrap needs root: run as root (or with sudo)"; exit 1
  fi

  # Two stages, so that dpkg can be told not to fsync every file it unpacks
  # (force-unsafe-io) before the packages are installed: that halves the
  # time, and the tree is thrown away if anything fails.
  say "debootstrap $suite (minbase + postgresql-15, redis-server) from $mirror into $work"
  t0=$SECONDS
  r="$work/rootfs"
  if ! debootstrap --foreign --variant=minbase --include=postgresql-15,redis-server \
      "$suite" "$r" "$mirror" >"$work/debootstrap.log" 2>&1; then
    tail -n 30 "$work/debootstrap.log" >&2
    [ -f "$r/debootstrap/debootstrap.log" ] && tail -n 30 "$r/debootstrap/debootstrap.log" >&2
    say "debootstrap (download) failed"; exit 1
  fi
  say "debootstrap: packages fetched in $((SECONDS - t0)) s"
  t1=$SECONDS
  mkdir -p "$r/etc/dpkg/dpkg.cfg.d"
  echo force-unsafe-io >"$r/etc/dpkg/dpkg.cfg.d/chronicleweaver-unsafe-io"
  if ! chroot "$r" /debootstrap/debootstrap --second-stage >>"$work/debootstrap.log" 2>&1; then
    tail -n 30 "$work/debootstrap.log" >&2
    [ -f "$r/debootstrap/debootstrap.log" ] && tail -n 30 "$r/debootstrap/debootstrap.log" >&2
    say "debootstrap (install) failed"; exit 1
  fi
  rm -f "$r/etc/dpkg/dpkg.cfg.d/chronicleweaver-unsafe-io"
  sync -f "$r" 2>/dev/null || sync
  say "debootstrap: installed in $((SECONDS - t1)) s ($((SECONDS - t0)) s in all)"

  # Slim the tree: the package cache and lists, docs, translations, LLVM
  # (PostgreSQL's JIT, off without it) and the cluster the postgresql package
  # created (the entrypoint makes its own in PGDATA).
  rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/* "$r"/debootstrap \
    "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/info/* \
    "$r"/usr/share/locale/* "$r"/usr/share/i18n \
    "$r"/usr/lib/*-linux-gnu/libLLVM-* "$r"/usr/lib/*-linux-gnu/libz3.so* \
    "$r"/usr/lib/postgresql/15/lib/llvmjit* "$r"/usr/lib/postgresql/15/lib/bitcode \
    "$r"/var/lib/postgresql/15/main "$r"/etc/postgresql/15/main "$r"/var/log/*.log \
    "$r"/tmp/* "$r"/var/tmp/*
  # The build machine's resolver and hosts must not end up in the image.
  : >"$r/etc/resolv.conf"
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$r/etc/hosts"

  say "importing $base_tag ($(du -sm "$r" | cut -f1) MiB)"
  t0=$SECONDS
  tar --numeric-owner --xattrs -C "$r" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    - "$base_tag" >/dev/null
  rm -rf --one-file-system "$r"
  say "import took $((SECONDS - t0)) s"
fi

# The images build concurrently (the legacy builder spends its time
# committing one layer per instruction).
t0=$SECONDS
imgs=()
pids=()
for img in postgres redis; do
  tag="$pg_tag"; need=$need_pg
  if [ "$img" = redis ]; then tag="$redis_tag"; need=$need_redis; fi
  [ "$need" = 1 ] || continue
  say "building $tag"
  docker build -q --build-arg "BASE=$base_tag" --label "chronicleweaver.source=$(source_hash "$img")" \
    -t "$tag" "$here/$img" >"$work/build-$img.log" 2>&1 &
  imgs+=("$img")
  pids+=($!)
done
failed=0
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    failed=1
    cat "$work/build-${imgs[$i]}.log" >&2
    say "docker build of the ${imgs[$i]} image failed"
  fi
done
[ "$failed" = 0 ] || exit 1
say "image builds took $((SECONDS - t0)) s"

# Remove the images the rebuilt tags pointed at, once nothing names them
# (removing a still-tagged image by id would delete it).
for id in $old_ids; do
  if [ "$(docker image inspect -f '{{len .RepoTags}}' "$id" 2>/dev/null)" = 0 ]; then
    docker image rm "$id" >/dev/null 2>&1 || true # used by a container: kept
  fi
done
built=()
[ "$need_base" = 1 ] && built+=("$base_tag")
[ "$need_pg" = 1 ] && built+=("$pg_tag")
[ "$need_redis" = 1 ] && built+=("$redis_tag")
say "built ${built[*]} in $((SECONDS - start)) s"
