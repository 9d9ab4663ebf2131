#!/usr/bin/env bash
# Runs each verifier fuzz target for a bounded time (default 60 s each):
#   scripts/fuzz.sh [SECONDS]
# Uses cargo-fuzz (installed from crates.io if missing) with libFuzzer on the pinned stable
# toolchain (RUSTC_BOOTSTRAP enables the instrumentation flags). A crash, a panic, a single
# allocation over 512 MB or a process over 2 GB fails the run; findings are left in
# verifier/fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/countersign-target}/fuzz"
for target in credential dpop_proof status_list; do
  echo "==> fuzzing $target for ${seconds}s"
  cargo fuzz run --fuzz-dir verifier/fuzz --sanitizer none "$target" -- \
    -max_total_time="$seconds" -malloc_limit_mb=512 -rss_limit_mb=2048 -print_final_stats=1
done
