#!/usr/bin/env bash
# Fuzzing with cargo-fuzz (libFuzzer). See README.md, "Fuzzing".
#
#   tests/fuzz.sh                    seed, build, then run every target for FUZZ_SECONDS (60) each
#   tests/fuzz.sh seed               build the small NTFS volume and the seed corpora (needs root,
#                                    the fixtures of tests/make-fixtures.py, ntfs-3g, sleuthkit,
#                                    qemu-img)
#   tests/fuzz.sh build              build the targets
#   tests/fuzz.sh run [TARGET...]    run targets (default: all) for FUZZ_SECONDS each
#   tests/fuzz.sh runs N TARGET      run one target for exactly N executions
#   tests/fuzz.sh list               the targets and their libFuzzer options
#
# One fuzzer at a time, at low priority. Exits non-zero when a target crashes, hangs (10 s per
# input) or runs out of memory (2 GiB); libFuzzer leaves the input in fuzz/artifacts/TARGET/. Every
# such input becomes a regression test in the owning crate's tests before the fix.
# Environment: FUZZ_SECONDS, KAIFUKU_FIXTURES (default tests/out/fixtures).
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FIXTURES=${KAIFUKU_FIXTURES:-$PWD/tests/out/fixtures}
export PATH="$HOME/.cargo/bin:$PATH"

# target  max_len: the largest input worth trying (a record, a block, a sparse disk's segments).
TARGETS=(
  "container 65536"
  "partitions 65536"
  "ntfs_boot 4104"
  "mft_record 4096"
  "runlist 512"
  "index_node 8193"
  "upcase 4096"
  "logfile 65540"
  "undo 8192"
  "inspect_image 1024"
  "plan_image 1024"
  "check_image 1024"
  "hive 65536"
  "rule_file 65537"
  "vmdk_descriptor 65537"
  "bitlocker 65536"
)

max_len() {
  local t
  for t in "${TARGETS[@]}"; do
    if [ "${t%% *}" = "$1" ]; then echo "${t#* }"; return; fi
  done
  echo "fuzz.sh: unknown target $1" >&2
  exit 2
}

# Nightly when it is installed; otherwise the default toolchain, which builds the targets too
# because no sanitizer is asked for (the sanitizers are what need nightly's -Z flags).
CARGO=(cargo)
need_fuzz() {
  if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: needs cargo-fuzz: cargo install cargo-fuzz --locked" >&2
    exit 2
  fi
  if cargo +nightly --version >/dev/null 2>&1; then CARGO=(cargo +nightly); fi
}

# Sanitizer: none. The crates forbid unsafe code, so AddressSanitizer would find nothing the
# bounds checks miss, and it halves the speed; debug assertions (overflow checks) stay on.
build() {
  need_fuzz
  (cd fuzz && nice -n 10 "${CARGO[@]}" fuzz build --sanitizer none --debug-assertions)
}

seed() {
  python3 tests/fuzz-seed.py "$FIXTURES" fuzz
}

# run_target TARGET LIBFUZZER-ARGS...: one run, the corpus in fuzz/corpus/TARGET.
run_target() {
  local t=$1
  shift
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t" fuzz/logs
  local log="fuzz/logs/$t.log"
  echo "== fuzz $t ($*)"
  if ! (cd fuzz && nice -n 10 "${CARGO[@]}" fuzz run --sanitizer none --debug-assertions "$t" \
      "corpus/$t" -- -max_len="$(max_len "$t")" -rss_limit_mb=2048 -timeout=10 \
      -print_final_stats=1 "$@") >"$log" 2>&1; then
    grep -a -E -A2 'panicked at|==[0-9]+== ERROR|SUMMARY|Test unit written|ALARM|out-of-memory' "$log" |
      cut -c1-300 | head -n 30
    echo "fuzz.sh: $t FAILED; the input is in fuzz/artifacts/$t/ (log: $log)" >&2
    return 1
  fi
  grep -a -E '^stat::number_of_executed_units|^Done [0-9]+ runs' "$log" | sed "s/^/   $t: /" || true
}

run_all() {
  local failed=0 t
  local list=("$@")
  if [ ${#list[@]} -eq 0 ]; then
    for t in "${TARGETS[@]}"; do list+=("${t%% *}"); done
  fi
  for t in "${list[@]}"; do
    run_target "$t" -max_total_time="$FUZZ_SECONDS" || failed=1
  done
  return $failed
}

case "${1:-all}" in
  seed) seed ;;
  build) build ;;
  run) shift; need_fuzz; run_all "$@" ;;
  runs) need_fuzz; run_target "$3" -runs="$2" ;;
  list) printf '%s\n' "${TARGETS[@]}" ;;
  all) seed; build; run_all ;;
  *) sed -n '2,17p' "$0"; exit 2 ;;
esac
