#!/usr/bin/env bash
# The daemon's figures on a machine with enough cores that the raw baseline is not CPU-starved
# (issue 23; BENCHMARKS.md, "The daemon without a thread per waiting card"): the throughput of
# 1,000 terminals through raw sockets, the SDK and the daemon, and the card-wait scenario (1,000
# purchases waiting for a card at once), each with the daemon beside its baseline (the previous
# release) in the same run.
#
#   scripts/bench-16core.sh BIN_DIR
#
# BIN_DIR holds release builds (`cargo build --release -p nami-httpd -p nami-bench`):
#   nami-bench, nami-httpd               required
#   nami-httpd-baseline                  optional: the daemon to compare with (e.g. the previous
#                                        commit's target/release/nami-httpd, renamed)
# Results go to $OUT (default ./bench-out): one JSON file and one text report per run, and
# machine.txt. About 3 minutes on 16 cores; every run has its own time limit. TERMINALS=20 makes
# a quick trial of the script itself.
set -uo pipefail

bin=${1:?usage: scripts/bench-16core.sh BIN_DIR}
out=${OUT:-bench-out}
mkdir -p "$out"
for needed in nami-bench nami-httpd; do
  [ -x "$bin/$needed" ] || { echo "bench-16core: $bin/$needed is missing" >&2; exit 2; }
done
baseline=()
if [ -x "$bin/nami-httpd-baseline" ]; then
  baseline=(--baseline-daemon-bin "$bin/nami-httpd-baseline")
fi
# 1,000 simulated terminals, their connections and the daemon's: several descriptors each.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

{
  echo "cores: $(nproc)"
  grep -m1 'model name' /proc/cpuinfo || true
  uname -r
  echo "open files: $(ulimit -n)"
  date -u
} > "$out/machine.txt"

failed=0
run() {
  local name=$1 limit=$2
  shift 2
  echo "== $name: nami-bench $*"
  if ! timeout "$limit" "$bin/nami-bench" --daemon-bin "$bin/nami-httpd" "${baseline[@]}" \
      --json "$out/$name.json" "$@" > "$out/$name.txt" 2> "$out/$name.log"; then
    echo "   failed or timed out (see $out/$name.log)"
    failed=$((failed + 1))
  fi
  cat "$out/$name.txt"
}

# Throughput at 1,000 terminals: PURCHASE and CHECK STATUS, raw, SDK, the daemon and its baseline.
terminals=${TERMINALS:-1000}
run "throughput-$terminals" 360 --terminals "$terminals" --total 20000 --mode all
# 1,000 purchases each waiting 5 s for the card: the daemon's threads and RSS during the wait.
run "card-wait-$terminals" 180 --terminals "$terminals" --card-wait-ms 5000

echo "results in $out; $failed run(s) failed"
[ "$failed" -eq 0 ]
