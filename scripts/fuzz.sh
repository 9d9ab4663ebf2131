#!/usr/bin/env bash
# Runs every cargo-fuzz target of the given fuzz crates for a bounded time each:
#   scripts/fuzz.sh [SECONDS] [FUZZ_DIR...]
# SECONDS defaults to 60; FUZZ_DIR to verifier/fuzz and server/fuzz. scripts/test.sh runs
# it briefly as a step of the suite.
#
# Uses cargo-fuzz (installed from crates.io if missing) with libFuzzer on the pinned stable
# toolchain (RUSTC_BOOTSTRAP enables the instrumentation flags). A crash, a panic, a stack
# overflow (the stack is limited to a runtime worker's 2 MiB), one input running over 10 s,
# a single allocation over 512 MB or a process over 2 GB fails the run; findings are left
# in FUZZ_DIR/artifacts/TARGET/.
#
# A crate's committed seeds (FUZZ_DIR/corpus/TARGET/) are read, never written: the corpus
# a run grows lives in the target directory, where the next run starts from it.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
dirs=("$@")
[ "${#dirs[@]}" -gt 0 ] || dirs=(verifier/fuzz server/fuzz)

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
# One target directory for both crates: the dependencies they share are built once.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/countersign-target}/fuzz"
# Build cost (docs/operations.md): opt-level 1 and no debug info build a third faster than
# cargo-fuzz's opt-level 3 with line tables, and fuzz as fast; opt-level 0 builds faster
# still but runs 6-13 times slower. Crashes are still reported by function and input.
export RUSTFLAGS="-Cdebuginfo=0${RUSTFLAGS:+ $RUSTFLAGS}"
export CARGO_PROFILE_RELEASE_OPT_LEVEL="${CARGO_PROFILE_RELEASE_OPT_LEVEL:-1}"

for dir in "${dirs[@]}"; do
  # The fuzz crates are workspaces of their own; their lock files start from the main one,
  # so they build the versions the test suite tested.
  [ "$dir/Cargo.lock" -nt Cargo.lock ] || cp Cargo.lock "$dir/Cargo.lock"
  echo "==> building the fuzz targets of $dir"
  cargo fuzz build --fuzz-dir "$dir" --sanitizer none
  for target in $(cargo fuzz list --fuzz-dir "$dir"); do
    corpus="$CARGO_TARGET_DIR/corpus/$(basename "$(dirname "$dir")")/$target"
    seeds=()
    [ -d "$dir/corpus/$target" ] && seeds=("$dir/corpus/$target")
    mkdir -p "$corpus" "$dir/artifacts/$target"
    echo "==> fuzzing $dir $target for ${seconds}s"
    (
      ulimit -s 2048
      cargo fuzz run --fuzz-dir "$dir" --sanitizer none "$target" "$corpus" "${seeds[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -malloc_limit_mb=512 -rss_limit_mb=2048 \
        -print_final_stats=1
    )
  done
done
