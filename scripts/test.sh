#!/usr/bin/env bash
# test.sh — build and run the whole test suite (the README's test command).
#
#   scripts/test.sh                 gcc, -Werror, build dir ./build
#   BUILD=build-asan scripts/test.sh -DS3G_SANITIZE=ON
#
# Extra arguments go to cmake. The suite starts its own throwaway Postgres and
# fakes; it needs what scripts/deps.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
jobs=${JOBS:-$(nproc)}
cmake -S . -B "$build" -DS3G_WERROR=ON "$@" >"$build.cmake.log" 2>&1 ||
	{ cat "$build.cmake.log"; exit 1; }
cmake --build "$build" -j"$jobs"
if [ -f tests/fakes/s3control/package-lock.json ] && [ ! -d tests/fakes/s3control/node_modules ]; then
	(cd tests/fakes/s3control && npm ci --no-audit --no-fund --loglevel=error)
fi
ctest --test-dir "$build" --output-on-failure -j"$jobs" --timeout 600
