#!/usr/bin/env sh
# Where the CPU goes with a backup every batch: `perf record` over `bench w1` without and with
# one (--backup-every-batch), alternated, each run's samples counted by shared object. On two
# cores that lavapipe keeps busy, the samples the backup run has beyond the plain one outside
# lavapipe's compiled kernels ([JIT]) are CPU the backup can have taken from training
# (bench/NOTES.md, "A control for the measures within one fit": "Every batch, by CPU samples").
# Usage: scripts/profile-w1-backup.sh [pairs]   (default 3; needs perf; writes under /tmp)
set -eu
cd "$(dirname "$0")/.."
pairs=${1:-3}
cargo build --release --example bench
out=$(mktemp -d)
# Prints "<samples in [JIT]> <samples elsewhere>" of a perf data file.
samples() {
    perf report -q -n -i "$1" --no-children --sort dso --stdio 2>/dev/null |
        awk '/\[JIT\]/ { jit += $2; next } { other += $2 } END { print jit + 0, other + 0 }'
}
for i in $(seq "$pairs"); do
    for variant in plain backup; do
        flag=""
        [ "$variant" = backup ] && flag=--backup-every-batch
        data="$out/$variant-$i.data"
        if ! perf record -q -F 999 -o "$data" -- ./target/release/examples/bench w1 --reps 8 \
            $flag --json "$out/$variant-$i.json" >"$out/$variant-$i.log" 2>&1; then
            echo "perf record or bench w1 failed: see $out/$variant-$i.log" >&2
            exit 1
        fi
        set -- $(samples "$data")
        if [ "$1" -eq 0 ]; then
            echo "no samples in lavapipe's compiled kernels ([JIT]) in $data" >&2
            exit 1
        fi
        eval "${variant}_jit=$1 ${variant}_other=$2"
        perf report -q -n -i "$data" --no-children --sort dso --stdio 2>/dev/null |
            grep -v JIT | head -4 | sed "s/^/    $variant $i: /"
    done
    awk -v pj="$plain_jit" -v po="$plain_other" -v bj="$backup_jit" -v bo="$backup_other" 'BEGIN {
        printf "pair %d: kernels %d / %d samples, elsewhere %d / %d: the backup took %.2f %% more CPU outside the kernels\n",
            '"$i"', pj, bj, po, bo, 100 * (bo - po) / (pj + po) }'
    python3 -c 'import json, statistics, sys
t = [statistics.median(next(f for f in json.load(open(p))["figures"] if f["name"] == "steps/s")["extra"]["timed_seconds"]) for p in sys.argv[1:]]
print("    timed: backup / plain %.3f" % (t[1] / t[0]))' "$out/plain-$i.json" "$out/backup-$i.json"
done
echo "perf data, bench JSON and logs in $out"
