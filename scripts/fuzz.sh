#!/usr/bin/env bash
# Runs every fuzz target briefly: the feed's frame decoder (protocol/fuzz) and the front door's
# HTTP/1 stream head parser (ops/fuzz), each for FUZZ_SECONDS (default 20) with libFuzzer:
# under AddressSanitizer on a nightly toolchain, or without a sanitizer on stable (Rust's bounds
# checks and the targets' assertions still catch what matters). It installs cargo-fuzz, and the
# nightly toolchain when rustup can fetch it; where cargo-fuzz cannot be had, it builds the
# targets instead and says loudly that they were not run. A crash fails the run and leaves the
# input under target/fuzz-artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly CARGO_FUZZ_VERSION=0.13.2
readonly SECONDS_EACH="${FUZZ_SECONDS:-20}"
say() { printf '==> %s\n' "$*"; }

have_nightly() { cargo +nightly --version >/dev/null 2>&1; }
if ! have_nightly && command -v rustup >/dev/null; then
  say "installing the nightly toolchain (minimal profile) for cargo-fuzz"
  rustup toolchain install nightly --profile minimal >/dev/null 2>&1 || true
fi
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  say "installing cargo-fuzz $CARGO_FUZZ_VERSION (a few minutes, once)"
  cargo install --quiet --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION" || true
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  say "fuzz targets NOT run: cargo-fuzz could not be installed here; building them instead"
  for dir in protocol/fuzz ops/fuzz; do
    cargo check --locked --manifest-path "$dir/Cargo.toml"
  done
  exit 0
fi
if have_nightly; then
  toolchain=(+nightly) sanitizer=address
else
  toolchain=() sanitizer=none
fi

for dir in protocol/fuzz ops/fuzz; do
  for target in $(cargo fuzz list --fuzz-dir "$dir"); do
    corpus="target/fuzz-corpus/$target"
    artifacts="target/fuzz-artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    say "fuzzing $target for ${SECONDS_EACH}s (sanitizer: $sanitizer)"
    # The output is filtered to the run's summary (and any crash report); the fuzzer's exit
    # status is what counts.
    set +e
    cargo "${toolchain[@]}" fuzz run --sanitizer "$sanitizer" --fuzz-dir "$dir" \
      --target-dir "target/fuzz-$sanitizer" "$target" "$corpus" -- \
      -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -artifact_prefix="$artifacts/" \
      -print_final_stats=1 2>&1 |
      grep -E '^(stat::number_of_executed_units|==[0-9]+==|SUMMARY|thread .* panicked|Done|error)'
    status=${PIPESTATUS[0]}
    set -e
    if [ "$status" -ne 0 ]; then
      say "$target failed (exit $status); its input is in $artifacts"
      exit "$status"
    fi
  done
done
