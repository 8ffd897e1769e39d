#!/usr/bin/env bash
# build-base.sh: build a Debian base image with a set of packages, without
# an image registry (the base of a foreign subject's image: subjects/*.yaml).
#
#   harness/images/build-base.sh [--force] SUITE TAG PACKAGE...
#
# A Debian SUITE (e.g. trixie) root file system is made with debootstrap
# --variant=minbase, with PACKAGE... included, from the Debian archive this
# machine's apt uses (CHRONICLE_DEBIAN_MIRROR overrides it), slimmed (package
# cache, docs, locales) and imported as TAG. It does nothing when TAG exists
# (--force rebuilds it). Concurrent builds wait for each other (flock). It
# prints how long each part took; the harness (harness/env, BuildSubjectImage)
# calls it with a TAG derived from the suite and the package set, so a base
# is built once per set and shared by the subjects that list the same one.
# debootstrap needs root; it is installed with apt-get when missing.
set -euo pipefail

force=0
args=()
for a in "$@"; do
  case "$a" in
    --force) force=1 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) args+=("$a") ;;
  esac
done
if [ "${#args[@]}" -lt 3 ]; then
  echo "build-base: usage: $0 [--force] SUITE TAG PACKAGE..." >&2; exit 2
fi
suite="${args[0]}"
tag="${args[1]}"
packages=("${args[@]:2}")
say() { echo "build-base: $*" >&2; }

case "$suite" in
  *[!a-z]*|"") say "suite '$suite': want a Debian code name (e.g. trixie)"; exit 2 ;;
esac
for p in "${packages[@]}"; do
  case "$p" in
    *[!a-z0-9.+-]*|"") say "package '$p': not a Debian package name"; exit 2 ;;
  esac
done

if ! docker version >/dev/null 2>&1; then
  say "no Docker daemon answers (docker version failed)"; exit 1
fi
lock="${TMPDIR:-/tmp}/chronicleweaver-build-base.lock"
exec 9>>"$lock"
if command -v flock >/dev/null 2>&1 && ! flock -n 9; then
  say "another build is running: waiting for it ($lock)"
  flock 9
fi
if [ "$force" = 0 ] && docker image inspect "$tag" >/dev/null 2>&1; then
  say "$tag exists (--force rebuilds it)"
  exit 0
fi

# debian_mirror prints the archive URI apt uses for Debian: the first "deb"
# entry (one-line or deb822 format) whose suites include a plain code name
# (not -security, -updates): the same archive serves every suite.
debian_mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    awk '
      $1 == "deb" {
        i = 2
        if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
        if ($(i+1) ~ /^[a-z]+$/ && $i ~ /debian/) { print $i; exit }
      }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    awk '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && suites ~ /(^| )[a-z]+( |$)/ && uris ~ /debian/ && uris !~ /security/) { split(uris, u, " "); print u[1]; found = 1 }
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

mirror="${CHRONICLE_DEBIAN_MIRROR:-$(debian_mirror)}"
if [ -z "$mirror" ]; then
  say "no Debian archive in /etc/apt/sources.list(.d): set CHRONICLE_DEBIAN_MIRROR"; exit 1
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
if [ ! -e "/usr/share/debootstrap/scripts/$suite" ]; then
  say "this debootstrap does not know the suite '$suite' (/usr/share/debootstrap/scripts/$suite): upgrade debootstrap"; exit 1
fi

start=$SECONDS
work="$(mktemp -d "${TMPDIR:-/var/tmp}/chronicle-base.XXXXXX")"
cleanup() {
  for m in proc sys dev/pts dev; do umount -l "$work/rootfs/$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
r="$work/rootfs"
include="$(IFS=,; echo "${packages[*]}")"
say "debootstrap $suite (minbase + $include) from $mirror (a few minutes)"
t0=$SECONDS
if ! debootstrap --foreign --variant=minbase --include="$include" "$suite" "$r" "$mirror" >"$work/debootstrap.log" 2>&1; then
  tail -n 30 "$work/debootstrap.log" >&2
  [ -f "$r/debootstrap/debootstrap.log" ] && tail -n 30 "$r/debootstrap/debootstrap.log" >&2
  say "debootstrap (download) failed"; exit 1
fi
say "packages fetched in $((SECONDS - t0)) s"
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
say "installed in $((SECONDS - t1)) s"
rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/* "$r"/debootstrap \
  "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/info/* \
  "$r"/usr/share/locale/* "$r"/var/log/*.log "$r"/tmp/* "$r"/var/tmp/*
: >"$r/etc/resolv.conf"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$r/etc/hosts"
say "importing $tag ($(du -sm "$r" | cut -f1) MiB)"
tar --numeric-owner --xattrs -C "$r" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change "LABEL chronicleweaver.base.suite=$suite" \
  --change "LABEL chronicleweaver.base.packages=$include" \
  --change 'CMD ["/bin/bash"]' \
  - "$tag" >/dev/null
say "built $tag in $((SECONDS - start)) s"
