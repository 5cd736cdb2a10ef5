#!/usr/bin/env sh
# What the files rewritten from the run's history cost (`wgfit train --history` CSV and JSON,
# `--plot`) in a long run of short epochs: iris in one batch of 150 for EPOCHS epochs, timed
# without a file and with each, alternated REPS times; prints each variant's median seconds
# and its ratio to the run without (bench/NOTES.md, "Files rewritten from the history").
# Usage: scripts/bench-history-files.sh [reps] [epochs]   (default 3 and 3000)
# WGFIT_BIN picks another build of wgfit (to compare one before a change).
set -eu
cd "$(dirname "$0")/.."
reps=${1:-3}
epochs=${2:-3000}
if [ -z "${WGFIT_BIN:-}" ]; then
    cargo build --release --bin wgfit
    WGFIT_BIN=./target/release/wgfit
fi
bin=$(realpath "$WGFIT_BIN")
data=$(realpath data/iris.csv)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fs=$(df -T "$out" | awk 'NR == 2 { print $2 }')
times="$out/times"
for i in $(seq "$reps"); do
    for variant in none csv json plot; do
        case $variant in
            none) files="" ;;
            csv) files="--history h.csv" ;;
            json) files="--history h.json" ;;
            plot) files="--plot p.svg" ;;
        esac
        run="$out/$variant-$i"
        mkdir "$run"
        start=$(date +%s.%N)
        if ! (cd "$run" && "$bin" train --data "$data" --batch-size 150 --epochs "$epochs" \
            --verbose 0 --output o.safetensors $files >log 2>&1); then
            echo "wgfit failed ($variant, repetition $i):" >&2
            cat "$run/log" >&2
            exit 1
        fi
        end=$(date +%s.%N)
        echo "$variant $start $end" >>"$times"
    done
done
python3 - "$times" "$epochs" "$reps" "$fs" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    variant, start, end = line.split()
    runs.setdefault(variant, []).append(float(end) - float(start))
base = statistics.median(runs["none"])
print(f"{sys.argv[2]} epochs of iris, {sys.argv[3]} alternated repetitions, files on {sys.argv[4]}, seconds:")
for variant, label in [("none", "no file"), ("csv", "--history h.csv"),
                       ("json", "--history h.json"), ("plot", "--plot p.svg")]:
    t = runs[variant]
    m = statistics.median(t)
    print(f"  {label:<17} median {m:7.2f} (runs {min(t):.2f}-{max(t):.2f})  ÷ no file {m / base:.2f}")
EOF
