#!/usr/bin/env sh
# Runs the save benchmarks (S, W1-backup) with their backups in a local S3-compatible server
# (moto_server; ./scripts/install-moto.sh), the figures of bench/NOTES.md "Object storage";
# `bench s` there also times boto3 moving as many bytes to and from the same server
# (bench/boto3_baseline.py).
# Usage: scripts/bench-object-store.sh [--reps N]   (writes bench/lavapipe-s3-*.json)
set -eu
cd "$(dirname "$0")/.."
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
moto=$!
trap 'kill $moto' EXIT
until curl -s -o /dev/null "http://127.0.0.1:$port"; do sleep 0.2; done
curl -s -f -X PUT "http://127.0.0.1:$port/wgfit-bench" >/dev/null
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export WGFIT_BENCH_BACKUP_URL=s3://wgfit-bench/runs
cargo build --release --example bench
for workload in s w1-backup; do
    ./target/release/examples/bench "$workload" --json "bench/lavapipe-s3-$workload.json" "$@"
done
