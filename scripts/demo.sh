#!/usr/bin/env bash
# make demo: the main job of llmos on this machine (grows with the project).
set -euo pipefail
build=${1:-build}
echo "llmos demo: build in $build" >&2
exit 0
