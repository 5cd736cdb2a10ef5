#!/usr/bin/env bash
# Trains on a mapped data set larger than the memory a cgroup allows the process, streamed a
# batch at a time, and prints the file size against the peak memory the run used.
#
# Usage (as root, with the cgroup v1 or v2 memory controller mounted):
#   scripts/stream-memory.sh [ROWS] [LIMIT_MB]      defaults: 200000 rows (627 MB), 256 MiB
# Prints: file bytes, the cgroup's limit and peak charge, the process's peak anonymous and
# file-backed resident memory (sampled from /proc every 50 ms), and the run's epoch line.
set -euo pipefail
rows=${1:-200000}
limit_mb=${2:-256}
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
cargo build --bin wgfit >/dev/null 2>&1
wgfit="${CARGO_TARGET_DIR:-$repo/target}/debug/wgfit"
work="$(mktemp -d "${TMPDIR:-/tmp}/wgfit-stream-memory.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# x: rows x 784 f32 in [0, 1) (a repeated 64 KiB pattern), y: labels 0..9 as U32.
python3 - "$work/big.safetensors" "$rows" <<'PY'
import array, json, struct, sys
path, rows = sys.argv[1], int(sys.argv[2])
features = 784
x_bytes, y_bytes = rows * features * 4, rows * 4
header = json.dumps({
    "x": {"dtype": "F32", "shape": [rows, features], "data_offsets": [0, x_bytes]},
    "y": {"dtype": "U32", "shape": [rows], "data_offsets": [x_bytes, x_bytes + y_bytes]},
}).encode()
header += b" " * (-len(header) % 8)
block = array.array("f", ((i * 7919 % 1000) / 1000.0 for i in range(16384))).tobytes()
with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(header)) + header)
    left = x_bytes
    while left:
        chunk = block[: min(len(block), left)]
        f.write(chunk)
        left -= len(chunk)
    f.write(array.array("I", (i % 10 for i in range(rows))).tobytes())
PY
size=$(stat -c %s "$work/big.safetensors")
# The file's pages out of the page cache, so that the run reads them in and they are charged to
# its cgroup (pages cached by the writer are charged to the writer's).
sync
echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || echo "(could not drop the page cache)"

# A memory cgroup for the run (v2 if mounted, else v1).
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    cg=/sys/fs/cgroup/wgfit-stream-memory.$$
    mkdir "$cg"; echo $((limit_mb << 20)) > "$cg/memory.max"
    peak_file="$cg/memory.peak"
else
    cg=/sys/fs/cgroup/memory/wgfit-stream-memory.$$
    mkdir "$cg"; echo $((limit_mb << 20)) > "$cg/memory.limit_in_bytes"
    peak_file="$cg/memory.max_usage_in_bytes"
fi
cleanup() { rmdir "$cg" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

sh -c "echo \$\$ > $cg/cgroup.procs; exec \"$wgfit\" train --data \"$work/big.safetensors\" \
    --layers 32,10 --epochs 1 --batch-size 256 --no-backup --data-on host --verbose 2 \
    --output \"$work/out.safetensors\"" > "$work/train.log" 2>&1 &
pid=$!
anon=0; filerss=0
while kill -0 "$pid" 2>/dev/null; do
    if [ -r "/proc/$pid/status" ]; then
        a=$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
        f=$(awk '/^RssFile/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
        [ "${a:-0}" -gt "$anon" ] && anon=$a
        [ "${f:-0}" -gt "$filerss" ] && filerss=$f
    fi
    sleep 0.05
done
status=0; wait "$pid" || status=$?
echo "data file:            $size bytes ($((size >> 20)) MiB, $rows rows x 784)"
echo "cgroup memory limit:  $((limit_mb << 20)) bytes ($limit_mb MiB)"
echo "cgroup peak charge:   $(cat "$peak_file") bytes"
echo "peak RssAnon:         $((anon * 1024)) bytes ($((anon >> 10)) MiB)"
echo "peak RssFile:         $((filerss * 1024)) bytes ($((filerss >> 10)) MiB)"
echo "exit status:          $status"
grep -E "^data:|Epoch 1/1" "$work/train.log" || cat "$work/train.log"
