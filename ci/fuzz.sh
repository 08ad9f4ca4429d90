#!/usr/bin/env bash
# Fuzzes the path from request bytes to a stored record, one target per
# surface (fuzz/fuzz_targets). Default: a short run per target, as CI does;
# FUZZ_SECONDS=N runs each target N seconds. Prints each target's
# executions; fails on any crash or broken property.
#
# cargo-fuzz needs nightly-only flags; this machine has stable Rust only.
# RUSTC_BOOTSTRAP=1 lets stable rustc accept them, and --sanitizer none
# avoids AddressSanitizer (the crate forbids unsafe code, so libFuzzer's
# coverage guidance is what matters). See docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-15}"
if ! command -v cargo-fuzz >/dev/null; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
# --dev: an unoptimised build compiles several times faster, which matters
# more than speed for a short run; long runs (FUZZ_SECONDS > 60) optimise.
profile=(--dev)
if [ "$seconds" -gt 60 ]; then profile=(-O); fi
cargo fuzz build --sanitizer none "${profile[@]}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for target in lance_icp_patch clientsuccess_client_patch hood_profile_patch; do
    mkdir -p "$scratch/$target"
    # New inputs go to the scratch corpus; the committed one only seeds.
    log="$scratch/$target.log"
    if ! cargo fuzz run --sanitizer none "${profile[@]}" "$target" "$scratch/$target" "fuzz/corpus/$target" \
        -- -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
        tail -40 "$log"
        echo "fuzz target $target FAILED (crash input under fuzz/artifacts/$target)" >&2
        exit 1
    fi
    executions="$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)"
    echo "fuzz $target: $executions executions in ${seconds}s, no crash"
done
