#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) with cargo fuzz on the nightly toolchain,
# seeded from fuzz/seeds, the examples and the test fixtures. A crash ends its
# target (the others still run) and fails the script; its input is in fuzz/artifacts/TARGET/.
# Keep it as fuzz/regressions/TARGET/NAME once fixed: `cargo test` replays every kept input.
#
#   FUZZ_FLAGS=... scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."

# A debug build (overflow checks and debug assertions on) without a sanitizer: the targets run
# Rust code only, and the build takes minutes, not an hour. FUZZ_FLAGS replaces these.
flags=${FUZZ_FLAGS:---dev --sanitizer none}
seconds=${1:-60}
shift || true
# Asked for and unable to run is a failure, never a silent pass.
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz: no nightly toolchain here (cargo fuzz needs one): install it with rustup toolchain install nightly" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: cargo-fuzz is not installed; install it with: cargo install cargo-fuzz --locked" >&2
    exit 1
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
fi

yaml_files() {
    find examples tests/snapshots -name '*.yaml' -o -name '*.json'
    find tests/fixtures -name '*.yaml' -o -name '*.yml'
}

seed() {
    local target=$1 dir=fuzz/corpus/$1 n=0
    mkdir -p "$dir"
    if [ -d "fuzz/seeds/$target" ]; then
        cp fuzz/seeds/"$target"/* "$dir"/
    fi
    case $target in
        snapshot)
            cp examples/snapshot/* "$dir"/ ;;
        manifest_index)
            while read -r file; do
                n=$((n + 1))
                { printf '\000'; cat "$file"; } > "$dir/m$n"
            done < <(yaml_files) ;;
        set_edit)
            while read -r file; do
                n=$((n + 1))
                { printf 'spec.template.spec.containers[0].image\n"example/app:2"\n'; cat "$file"; } > "$dir/i$n"
                { printf 'spec.replicas\n3\n'; cat "$file"; } > "$dir/r$n"
            done < <(yaml_files) ;;
        config)
            find examples -name 'kustomization.yaml' -exec cp --backup=numbered {} "$dir"/ \; ;;
    esac
}

crashed=()
for target in "${targets[@]}"; do
    seed "$target"
    echo "fuzz: $target for ${seconds}s"
    cargo +nightly fuzz run --fuzz-dir fuzz $flags "$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 2>&1 | tee "fuzz/$target.log" | grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|==|SUMMARY|Done)|panicked|Failing input' || true
    if [ -n "$(ls -A "fuzz/artifacts/$target" 2>/dev/null)" ]; then
        echo "fuzz: $target crashed; the inputs are in fuzz/artifacts/$target"
        crashed+=("$target")
    else
        echo "fuzz: $target ran ${seconds}s without a crash"
    fi
done
if [ ${#crashed[@]} -gt 0 ]; then
    echo "fuzz: crashed: ${crashed[*]}"
    exit 1
fi
