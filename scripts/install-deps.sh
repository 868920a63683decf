#!/usr/bin/env bash
# Installs, with apt, whatever llmos needs that this Debian machine lacks.
# Idempotent: packages already present are not touched, and apt is not even
# called when nothing is missing. Usage: scripts/install-deps.sh [--with-test] [--with-bench]
set -euo pipefail

build_pkgs=(
  build-essential cmake pkg-config
  libzmq3-dev libprotobuf-c-dev protobuf-c-compiler
  libopenmpi-dev openmpi-bin
  liblmdb-dev lmdb-utils libblis-dev
  libserd-dev libcsv-dev libcjson-dev liblinear-dev
)
test_pkgs=(libcmocka-dev python3 python3-zmq protobuf-compiler python3-protobuf python3-numpy python3-torch python3-sklearn rasqal-utils libsord-dev iproute2)
bench_pkgs=(libsord-dev python3-torch hyperfine)

want=("${build_pkgs[@]}")
for arg in "$@"; do
  case "$arg" in
    --with-test) want+=("${test_pkgs[@]}") ;;
    --with-bench) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
    --with-torch) want+=(python3-torch) ;;
    *) echo "install-deps: unknown option '$arg'" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
# One update per machine is enough; the stamp avoids hitting the mirrors on every build.
stamp=/var/lib/apt/periodic/llmos-update-stamp
if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +1440 2>/dev/null)" ]; then
  $sudo apt-get update -qq
  $sudo mkdir -p "$(dirname "$stamp")" && $sudo touch "$stamp"
fi
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
