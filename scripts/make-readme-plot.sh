#!/usr/bin/env bash
# Draws the README's picture, docs/images/curves.svg: a run on the bundled digits with
# validation and learning-rate plateaus, killed twice (once with SIGKILL, once with SIGTERM,
# which saves first) and rerun to completion each time, then drawn by `wgfit plot`. The
# picture shows the loss and accuracy curves, two resume marks, one preemption mark and the
# learning-rate reductions.
#
# Usage: scripts/make-readme-plot.sh        (from anywhere; writes only docs/images/curves.svg)
# Environment: KEEP_WORKDIR=1 keeps the scratch directory with run.json and the logs.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"

echo "+ cargo build --bin wgfit"
cargo build --bin wgfit
wgfit="${CARGO_TARGET_DIR:-$repo/target}/debug/wgfit"

work="$(mktemp -d "${TMPDIR:-/tmp}/wgfit-readme-plot.XXXXXX")"
if [ "${KEEP_WORKDIR:-0}" = 1 ]; then
    echo "scratch directory: $work (kept)"
else
    trap 'rm -rf "$work"' EXIT
fi
cd "$work"

# The run: 30 epochs, a fifth of the digits held out, the rate halved when val_loss has not
# improved for 2 epochs (down to 0.01, so that the picture has a few rate marks, not one every
# other epoch), a backup after every batch, the history (with its events) as JSON.
train=(train --validation-split 0.2 --epochs 30 --reduce-lr-on-plateau 0.5
    --plateau-patience 2 --min-lr 0.01 --save-freq 1 --history run.json --verbose 2)

# The number of epochs run.json holds (each epoch row has one "loss" key).
epochs_logged() {
    if [ -f run.json ]; then
        grep -o '"loss":' run.json | wc -l
    else
        echo 0
    fi
}

# Starts the run in the background, waits until run.json holds at least $1 epochs, then sends
# signal $2 and checks that the run ended with status $3.
interrupt() {
    local at=$1 signal=$2 expected=$3
    echo "+ wgfit ${train[*]} &   # $signal once $at epochs are logged"
    "$wgfit" "${train[@]}" >"train-$signal.log" 2>&1 &
    local pid=$!
    while [ "$(epochs_logged)" -lt "$at" ]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "the run ended before epoch $at; output:" >&2
            cat "train-$signal.log" >&2
            exit 1
        fi
        sleep 0.005
    done
    kill "-$signal" "$pid"
    local status=0
    # (bash's "Killed" notice for the SIGKILL goes to /dev/null.)
    wait "$pid" 2>/dev/null || status=$?
    sed 's/^/    /' "train-$signal.log"
    if [ "$status" -ne "$expected" ]; then
        echo "the run ended with status $status, not $expected (did it finish first?)" >&2
        exit 1
    fi
    echo "    -> exit status $status with $(epochs_logged) epochs in run.json"
}

# Away from the learning-rate changes (epochs 7 to 16 on lavapipe), so that the marks stay apart.
interrupt 4 KILL 137
interrupt 20 TERM 143
echo "+ wgfit inspect wgfit-model.backup"
"$wgfit" inspect wgfit-model.backup | sed -n '/events:/,/^$/p' | sed 's/^/    /'
echo "+ wgfit ${train[*]}   # to completion"
"$wgfit" "${train[@]}" 2>&1 | sed 's/^/    /'

mkdir -p "$repo/docs/images"
echo "+ wgfit plot run.json -o docs/images/curves.svg"
"$wgfit" plot run.json -o "$repo/docs/images/curves.svg"

# What the picture must show: two resumes, one preemption, some learning-rate changes (each
# mark is drawn in every panel; count distinct positions).
svg="$repo/docs/images/curves.svg"
marks() {
    grep -o "data-kind=\"$1\" data-x=\"[^\"]*\"" "$svg" | sort -u | wc -l
}
resumed=$(marks resumed)
preempted=$(marks preempted)
rates=$(marks learning-rate)
echo "marks: $resumed resumed, $preempted preempted, $rates learning-rate"
grep -o 'data-kind="[a-z-]*" data-x="[^"]*" data-label="[^"]*"' "$svg" | sort -u | sort -t'"' -k4,4g |
    sed 's/^/    /'
if [ "$resumed" -ne 2 ] || [ "$preempted" -ne 1 ] || [ "$rates" -lt 1 ]; then
    echo "the picture lacks the expected marks" >&2
    exit 1
fi
