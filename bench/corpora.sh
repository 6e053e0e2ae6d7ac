#!/usr/bin/env bash
# Fetch real corpora for the benchmarks into .cache/corpora/NAME (ignored by git).
#   bench/corpora.sh linux-doc     Linux kernel documentation, ~3,200 .rst.gz files, 24 MB of text
#   bench/corpora.sh python-doc    Python 3.11 documentation sources, ~500 .rst files, 11 MB
# Debian packages, fetched with apt-get download (run `apt-get update` once first) and unpacked
# with dpkg-deb; nothing is installed on the system.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.cache/corpora
mkdir -p "$dest"

fetch_deb() {  # name package
  local name=$1 pkg=$2 out="$dest/$1"
  if [ -f "$out/.complete" ]; then echo "$out (cached)"; return; fi
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download "$pkg" >/dev/null) || {
    echo "could not download the Debian package $pkg; run 'apt-get update' once and try again" >&2; exit 1; }
  rm -rf "$out" && mkdir -p "$out"
  dpkg-deb -x "$tmp"/*.deb "$out"
  rm -rf "$tmp"
  touch "$out/.complete"
  echo "$out"
}

for name in "${@:-linux-doc}"; do
  case "$name" in
    linux-doc) fetch_deb linux-doc linux-doc-6.1 ;;
    python-doc) fetch_deb python-doc python3.11-doc ;;
    *) echo "unknown corpus '$name' (known: linux-doc, python-doc)" >&2; exit 2 ;;
  esac
done
