#!/usr/bin/env bash
# Measures copy workloads into a pushfs mount against the same work into a
# plain directory on the same disk, and writes the ratios to BENCHMARKS.md.
# Needs root (or fusermount3). Usage: scripts/bench.sh [runs]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
cargo build --release -q
BIN=$PWD/target/release/pushfs
WORK=$(mktemp -d /var/tmp/pushfs-bench.XXXXXX)
MNT=$WORK/mnt
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  mountpoint -q "$MNT" 2>/dev/null && umount -l "$MNT" || true
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$MNT" "$WORK/src/small" "$WORK/plain"

# Sources: one 1 GiB file, and 5000 files of 4 KiB in 50 directories.
head -c $((1 << 30)) /dev/urandom > "$WORK/src/big.bin"
for d in $(seq 1 50); do
  mkdir -p "$WORK/src/small/d$d"
  for f in $(seq 1 100); do head -c 4096 /dev/urandom > "$WORK/src/small/d$d/f$f"; done
done
tar -C "$WORK/src" -cf "$WORK/small.tar" small

PUSHFS_LOG=pushfs=warn "$BIN" mount "$MNT" --state-dir "$WORK/state" --settle-ms 1000 &
PID=$!
for _ in $(seq 1 100); do mountpoint -q "$MNT" && break; sleep 0.1; done
mountpoint -q "$MNT" || { echo "mount failed" >&2; exit 1; }

now() { date +%s.%N; }
# time_one TARGET_DIR COMMAND...: seconds the command takes, into a new
# directory (never one just emptied: ext4 creates slowly after mass deletes).
# Outside the timing: sync before, and after it sync and (in the mount) wait
# until pushfs has sealed every file, so one run never overlaps the next.
time_one() {
  local target=$1; shift
  mkdir -p "$target"; sync
  local t0 t1; t0=$(now)
  "$@"
  t1=$(now)
  [ -e "$target/.pushfs/wait" ] && cat "$target/.pushfs/wait" >/dev/null
  sync
  echo "$t1 - $t0" | bc -l
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A RESULT
CASE=0
# Plain and pushfs runs alternate, so a slow spell of the disk hits both alike.
run_case() {
  local name=$1 cmd=$2
  CASE=$((CASE + 1))
  local plain=() pushfs=()
  for run in $(seq 1 "$RUNS"); do
    local target=$WORK/plain/case$CASE-run$run
    plain+=("$(time_one "$target" bash -c "${cmd//TARGET/$target}")")
    target=$MNT/bytenite/case$CASE-run$run
    pushfs+=("$(time_one "$target" bash -c "${cmd//TARGET/$target}")")
  done
  RESULT[$name,plain]=$(printf '%s\n' "${plain[@]}" | median)
  RESULT[$name,pushfs]=$(printf '%s\n' "${pushfs[@]}" | median)
  rm -rf "$WORK"/plain/case$CASE-* "$MNT"/bytenite/case$CASE-*; sync
}

run_case "cp 1 GiB file" "cp $WORK/src/big.bin TARGET/"
run_case "dd 1 GiB file, bs=1M" "dd if=$WORK/src/big.bin of=TARGET/big.bin bs=1M status=none"
run_case "cp -r 5000 x 4 KiB" "cp -r $WORK/src/small TARGET/"
run_case "tar x 5000 x 4 KiB" "tar -C TARGET -xf $WORK/small.tar"
run_case "rsync -a 5000 x 4 KiB" "rsync -a $WORK/src/small/ TARGET/small/"

{
  echo "# Benchmarks"
  echo
  echo "Measured by \`scripts/bench.sh $RUNS\` on $(date -u +%Y-%m-%d), $(nproc) cores, kernel $(uname -r)."
  echo "Median of $RUNS runs of the command alone, each into a new directory (page cache warm, \`sync\` before each run and"
  echo "after it, outside the timing). \"plain\" is the same work into a directory on the same disk;"
  echo "the ratio is plain time / pushfs time (1.0 = native speed). pushfs hashes each file when it"
  echo "is closed, after the command returns; that time is not in the table."
  echo
  echo "| workload | plain (s) | pushfs (s) | ratio |"
  echo "|---|---|---|---|"
  for name in "cp 1 GiB file" "dd 1 GiB file, bs=1M" "cp -r 5000 x 4 KiB" "tar x 5000 x 4 KiB" "rsync -a 5000 x 4 KiB"; do
    p=${RESULT[$name,plain]}; f=${RESULT[$name,pushfs]}
    printf '| %s | %.2f | %.2f | %.2f |\n' "$name" "$p" "$f" "$(echo "$p / $f" | bc -l)"
  done
  cat <<'NOTES'

Notes:
- Writes of a file being created go straight from the kernel to its temp file (FUSE
  passthrough, root and Linux 6.9+): `dd` writes through pushfs as fast as to the disk.
- Plain `cp` of one big file within one ext4 file system copies in the kernel
  (copy_file_range); into any other file system, pushfs included, it reads and writes.
- Small files cost a few round trips each (lookup, create, flush, release); `tar x` and
  `rsync -a` also set times and owners, which pushfs keeps in memory.
- This machine is shared and its disk timings vary from run to run by 2x or more, plain
  runs included: read the ratios as rough.
NOTES
} > BENCHMARKS.md.new
mv BENCHMARKS.md.new BENCHMARKS.md
cat BENCHMARKS.md
