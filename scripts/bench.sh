#!/usr/bin/env bash
# Measures what a user waits for when copying into a pushfs mount, against the
# same work into a plain directory, and writes BENCHMARKS.md.
#
# Usage (as root, or with fusermount3 and permission to mount a tmpfs):
#   scripts/bench.sh [runs]          runs per side and case (default 5)
# Environment:
#   CASES="a b c d e f g"            which cases to run (default all)
#   DISKS="disk tmpfs tmpfs-uring"   which sets to run (default: disk and tmpfs over
#                                    /dev/fuse, and tmpfs again over FUSE over io_uring
#                                    when /sys/module/fuse/parameters/enable_uring is Y;
#                                    disk-uring also exists)
#   HUGE_FILES=1000000               files in the huge-deploy case (h); 0 skips it
#   OUT=BENCHMARKS.md                where the report goes
#   PUSHFS_BIN=path BIN_DESC=text    measure this binary instead of building
#                                    (e.g. a build of HEAD while src/ is mid-edit)
#
# Method: for each case, plain and pushfs runs alternate (plain, pushfs, plain,
# pushfs, ...), each into a new directory. The timed command is the work plus
# `sync`, for both sides; for the deploy case (e) it also includes reading
# `.pushfs/wait` until the deploy is done. Between runs, outside the timing:
# pushfs finishes sealing (`.pushfs/wait` of the target app), the run's output
# is removed on both sides, and `sync`.
# The whole set runs twice: state dir and plain target on the real disk
# (/var/tmp), then both on a tmpfs (pushfs's own cost, without disk noise).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${1:-5}
CASES=${CASES:-a b c d e f g}
if [ "$(cat /sys/module/fuse/parameters/enable_uring 2>/dev/null)" = Y ]; then
  DISKS=${DISKS:-disk tmpfs tmpfs-uring}
else
  DISKS=${DISKS:-disk tmpfs}
fi
# A set named *-uring runs pushfs (and the floor) over FUSE over io_uring,
# the others over /dev/fuse reads and writes.
IO_URING=off
FLOOR_OPTS=
OUT=${OUT:-$ROOT/BENCHMARKS.md}
META_BENCH=$ROOT/docs/meta-engine-bench.md
SMALL_FILES_NOTES=$ROOT/docs/small-files-bench.md
SMALL_FILES=${SMALL_FILES:-20000}   # smaller values: smoke tests only
BIG_MIB=${BIG_MIB:-1024}
SMALL_DIRS=100
# The floor: a FUSE file system that does nothing but pass requests to a
# directory on the same disk, mounted beside pushfs and timed in the same
# runs, e.g. libfuse's example/passthrough_hp (3.x, built from source).
# Unset: no floor column.
FLOOR_BIN=${FLOOR_BIN:-}
APP_FILES=2000
APP_DIRS=20
# The floor keeps a descriptor open for every inode the kernel holds. Where
# the hard limit is below what one run needs and cannot be raised (that takes
# CAP_SYS_RESOURCE), the whole run uses fewer files, so that all three sides
# still do the same work.
FLOOR_NOTE=
if [ -n "$FLOOR_BIN" ]; then
  need=$((SMALL_FILES + SMALL_DIRS + 1000))
  limit=$(ulimit -Hn)
  if [ "$limit" != unlimited ] && [ "$limit" -lt "$need" ] && ! ulimit -Hn "$need" 2>/dev/null; then
    FLOOR_NOTE="$SMALL_FILES files asked for; $((limit - SMALL_DIRS - 1000)) used, because the floor needs a descriptor per inode and the hard limit here is $limit"
    SMALL_FILES=$((limit - SMALL_DIRS - 1000))
  fi
fi

case "$(stat -f -c %T /var/tmp)" in
  tmpfs|ramfs) echo "bench: /var/tmp is a $(stat -f -c %T /var/tmp), not a real disk" >&2; exit 1 ;;
esac
command -v python3 >/dev/null || { echo "bench: needs python3 (to generate the sources)" >&2; exit 1; }
command -v rsync >/dev/null || { echo "bench: needs rsync" >&2; exit 1; }

if [ -z "${PUSHFS_BIN:-}" ]; then
  cargo build --release -j 1
  PUSHFS_BIN=target/release/pushfs
  BIN_DESC="release build of commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || echo ' plus uncommitted changes in src/')"
fi
WORK=$(mktemp -d /var/tmp/pushfs-bench.XXXXXX)
# A private copy: a rebuild by someone else during the run must not swap it.
BIN=$WORK/pushfs
cp "$PUSHFS_BIN" "$BIN"

MOUNT_PID=
EMU_PID=
MNT=
TMPFS=$WORK/tmpfs
stop_mount() {
  if [ -n "$MOUNT_PID" ]; then
    kill -TERM "$MOUNT_PID" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$MOUNT_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$MOUNT_PID" 2>/dev/null || true
    wait "$MOUNT_PID" 2>/dev/null || true
    MOUNT_PID=
  fi
  if [ -n "$MNT" ] && mountpoint -q "$MNT" 2>/dev/null; then umount -l "$MNT" || true; fi
}
cleanup() {
  set +e
  stop_mount
  if [ -n "$EMU_PID" ]; then
    kill -TERM "$EMU_PID" 2>/dev/null
    wait "$EMU_PID" 2>/dev/null
  fi
  stop_floor
  for m in "$WORK"/mnt-*; do mountpoint -q "$m" 2>/dev/null && umount -l "$m"; done
  if mountpoint -q "$TMPFS" 2>/dev/null; then umount "$TMPFS" 2>/dev/null || umount -l "$TMPFS"; fi
  rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "bench: $*" >&2; }

# ---------------------------------------------------------------- sources
# Random sizes and contents from a fixed seed: the same files on every run.
gen_files() { # DIR COUNT NDIRS SEED
  python3 - "$@" <<'PY'
import os, random, sys
root, n, ndirs, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
r = random.Random(seed)
for i in range(n):
    d = os.path.join(root, "d%03d" % (i % ndirs))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d.bin" % i), "wb") as f:
        f.write(r.randbytes(r.randint(1024, 20 * 1024)))
PY
}
# Empty files in one directory, one open(O_CREAT|O_EXCL) + close each:
# the namespace alone, no data.
write_creates_script() {
  cat > "$SRC/creates.py" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
os.mkdir(d)
for i in range(n):
    os.close(os.open(os.path.join(d, "f%05d" % i), os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644))
PY
}
SRC=$WORK/src
log "generating sources in $SRC"
gen_files "$SRC/small" "$SMALL_FILES" "$SMALL_DIRS" 1
tar -C "$SRC" -cf "$SRC/small.tar" small
head -c $((BIG_MIB << 20)) /dev/urandom > "$SRC/big.bin"
mkdir -p "$SRC/benchapp/app"
gen_files "$SRC/benchapp/app" $((APP_FILES - 2)) "$APP_DIRS" 2
cat > "$SRC/benchapp/manifest.json" <<'JSON'
{
  "name": "pushfs-bench",
  "version": "0.1",
  "description": "pushfs benchmark app",
  "platform": "docker",
  "entrypoint": "main.py",
  "platform_config": { "container": "python:3.12-slim", "private_image": false },
  "device_requirements": { "min_cpu": 1, "min_memory": 1 }
}
JSON
echo 'print("hello from the pushfs benchmark")' > "$SRC/benchapp/app/main.py"
write_creates_script
SMALL_BYTES=$(du -sb "$SRC/small" | cut -f1)
APP_COUNT=$(find "$SRC/benchapp" -type f | wc -l)
APP_BYTES=$(du -sb "$SRC/benchapp" | cut -f1)

# ---------------------------------------------------------------- emulator
EMU_OUT=$WORK/emulate.out
"$BIN" emulate --bytenite-port 0 --flux-port 0 --cf-port 0 >"$EMU_OUT" 2>"$WORK/emulate.err" &
EMU_PID=$!
CONFIG=
for _ in $(seq 1 100); do
  CONFIG=$(sed -n 's/^client config: *//p' "$EMU_OUT")
  [ -n "$CONFIG" ] && [ -f "$CONFIG" ] && break
  kill -0 "$EMU_PID" 2>/dev/null || break
  sleep 0.1
done
[ -n "$CONFIG" ] && [ -f "$CONFIG" ] || { log "the emulator did not start:"; cat "$WORK/emulate.err" >&2; exit 1; }
log "emulator up, client config $CONFIG"

# ---------------------------------------------------------------- helpers
now() { date +%s.%N; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$MOUNT_PID/status"; }

start_mount() { # STATE_DIR
  MNT=$WORK/mnt-$SET
  mkdir -p "$MNT"
  PUSHFS_IO_URING=$IO_URING PUSHFS_LOG=pushfs=warn "$BIN" mount "$MNT" --config "$CONFIG" --state-dir "$1" \
    2>>"$WORK/mount-$SET.err" &
  MOUNT_PID=$!
  for _ in $(seq 1 200); do
    mountpoint -q "$MNT" && [ -d "$MNT/bytenite" ] && break
    kill -0 "$MOUNT_PID" 2>/dev/null || break
    sleep 0.1
  done
  mountpoint -q "$MNT" && [ -d "$MNT/bytenite" ] || {
    log "mount failed:"; cat "$WORK/mount-$SET.err" >&2; exit 1; }
}

# Waits until pushfs is done with the app at $1: every closed file sealed
# and its deploy (if any) finished. Prints the final state.
pushfs_wait() { cat "$1/.pushfs/wait"; }

# time_cmd COMMAND: seconds the command takes (sync before it, untimed).
time_cmd() {
  sync
  local t0 t1
  t0=$(now)
  if ! bash -c "$1" >&2; then log "command failed: $1"; return 1; fi
  t1=$(now)
  echo "$t1 - $t0" | bc -l
}

# stats: "median min max" of the numbers on stdin.
stats() {
  sort -g | awk '{a[NR]=$1} END {
    m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2
    printf "%.3f %.3f %.3f\n", m, a[1], a[NR] }'
}

declare -A NAME CMD
NAME[a]="cp -r $SMALL_FILES files of 1–20 KiB"
if [ "$BIG_MIB" = 1024 ]; then NAME[b]="cp 1 GiB file"; else NAME[b]="cp $BIG_MIB MiB file"; fi
NAME[c]="tar x $SMALL_FILES files of 1–20 KiB"
NAME[d]="rsync -a $SMALL_FILES files of 1–20 KiB"
NAME[e]="deploy: cp -r $APP_COUNT-file app + wait"
NAME[f]="$SMALL_FILES empty creates in one directory"
# T is the new target directory; the plain side of (e) is the cp -r alone.
CMD[a]='cp -r "$SRC/small" "$T" && sync'
CMD[b]='mkdir "$T" && cp "$SRC/big.bin" "$T/" && sync'
CMD[c]='mkdir "$T" && tar -C "$T" -xf "$SRC/small.tar" && sync'
CMD[d]='rsync -a "$SRC/small/" "$T/" && sync'
CMD[e]='cp -r "$SRC/benchapp" "$T" && sync'
CMD[f]='python3 "$SRC/creates.py" "$T" '"$SMALL_FILES"' && sync'
CMD_E_PUSHFS='cp -r "$SRC/benchapp" "$T" && sync && s=$(cat "$T/.pushfs/wait") && { [ "$s" = deployed ] || { echo "deploy ended $s: $(cat "$T/.pushfs/error")" >&2; exit 1; }; }'
NAME[g]="1 TB sparse file, one 4 KiB block: create + seal"
# One random block 700 GiB in. pushfs's side also waits for the seal: until
# its sparse blob is in the store (the previous run's went with its rm).
CMD[g]='mkdir "$T" && truncate -s 1T "$T/sparse.img" && dd if=/dev/urandom of="$T/sparse.img" bs=4k count=1 seek=183500800 conv=notrunc status=none && sync'
CMD_G_PUSHFS="${CMD[g]}"' && until find "$STATE_DIR/objects" -name "*.sparse" | grep -q .; do sleep 0.001; done'
declare -A FILES_PER_RUN=([a]=$SMALL_FILES [b]=1 [c]=$SMALL_FILES [d]=$SMALL_FILES [e]=$APP_COUNT [f]=$SMALL_FILES [g]=1)

declare -A RES RAW RSS_AFTER
declare -A PEAK_RSS FILES_THROUGH
export SRC

# ---------------------------------------------------------------- floor and CPU
FLOOR_PID=
FLOOR_MNT=
start_floor() { # BASE
  [ -n "$FLOOR_BIN" ] || return 0
  FLOOR_MNT=$WORK/mnt-floor-$SET
  mkdir -p "$1/floor" "$FLOOR_MNT"
  # An fd per inode it has seen: as many as the hard limit allows.
  # shellcheck disable=SC2086 # FLOOR_OPTS is a list of options
  ( ulimit -n "$(ulimit -Hn)"; exec "$FLOOR_BIN" --foreground $FLOOR_OPTS "$1/floor" "$FLOOR_MNT" ) \
    2>>"$WORK/floor-$SET.err" &
  FLOOR_PID=$!
  for _ in $(seq 1 100); do mountpoint -q "$FLOOR_MNT" && break; sleep 0.1; done
  mountpoint -q "$FLOOR_MNT" || { log "the floor did not mount:"; cat "$WORK/floor-$SET.err" >&2; exit 1; }
}
stop_floor() {
  [ -n "$FLOOR_PID" ] || return 0
  umount "$FLOOR_MNT" 2>/dev/null || umount -l "$FLOOR_MNT"
  wait "$FLOOR_PID" 2>/dev/null || true
  FLOOR_PID=
}
# The floor's run of one case, into a new directory; prints its seconds.
floor_run() { # CASE RUN
  export T=$FLOOR_MNT/$1-$2
  local t; t=$(time_cmd "${CMD[$1]}")
  rm -rf "$T"; sync
  echo "$t"
}
# CPU seconds (user + system) the mount process has used so far.
mount_cpu_s() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f\n", ($14 + $15) / hz }' "/proc/$MOUNT_PID/stat"
}

# Requests per file: a fresh mount per case (the tally is logged when it
# stops), one run, on the set's own state dir.
declare -A REQUESTS
count_requests() { # BASE
  local c state log line
  for c in $CASES; do
    state=$1/count-$c
    mkdir -p "$state"
    log=$WORK/count-$SET-$c.err
    PUSHFS_IO_URING=$IO_URING PUSHFS_LOG=pushfs=warn,pushfs::fs=info "$BIN" mount "$MNT" --config "$CONFIG" \
      --state-dir "$state" 2>"$log" &
    MOUNT_PID=$!
    for _ in $(seq 1 200); do mountpoint -q "$MNT" && [ -d "$MNT/bytenite" ] && break; sleep 0.1; done
    export T=$MNT/bytenite/count-$c
    bash -c "${CMD[$c]}" >&2
    pushfs_wait "$T" >/dev/null
    stop_mount
    line=$(sed -n 's/.*requests=\([^ ]*\( [a-z]*=[0-9]*\)*\).*/\1/p' "$log" | tail -1)
    REQUESTS[$SET,$c]=$(per_file "$line" "${FILES_PER_RUN[$c]}")
    rm -rf "$state"
  done
}
# "op=n op=n" divided by FILES: "op n/f, op n/f" with two decimals.
per_file() { # TALLY FILES
  echo "$1" | tr ' ' '\n' | awk -F= -v n="$2" '$2 / n >= 0.005 { printf "%s%s %.2f", sep, $1, $2 / n; sep = ", " }'
}

run_case() { # CASE
  local c=$1 plain=() pushfs=() floor=() cpu=() run t s cmd c0
  for run in $(seq 1 "$RUNS"); do
    export T=$PLAIN/$c-$run
    t=$(time_cmd "${CMD[$c]}")
    plain+=("$t")
    rm -rf "$T"; sync

    export T=$MNT/bytenite/$c-$run
    cmd=${CMD[$c]}
    [ "$c" = e ] && cmd=$CMD_E_PUSHFS
    [ "$c" = g ] && cmd=$CMD_G_PUSHFS
    c0=$(mount_cpu_s)
    t=$(time_cmd "$cmd")
    pushfs+=("$t")
    s=$(pushfs_wait "$T")          # untimed: sealing finished (and deploy, for e)
    cpu+=("$(echo "$(mount_cpu_s) - $c0" | bc -l)")   # sealing included
    FILES_THROUGH[$SET]=$(( ${FILES_THROUGH[$SET]} + ${FILES_PER_RUN[$c]} ))
    local r; r=$(rss_kib)
    (( r > ${PEAK_RSS[$SET]} )) && PEAK_RSS[$SET]=$r
    rm -rf "$T"
    sync
    log "$SET $c run $run: plain ${plain[-1]} s, pushfs ${pushfs[-1]} s (app state: $s, RSS ${r} KiB)"
    if [ -n "$FLOOR_PID" ] && [ "$c" != e ]; then
      floor+=("$(floor_run "$c" "$run")")
      log "$SET $c run $run: floor ${floor[-1]} s"
    fi
  done
  RES[$SET,$c,cpu]=$(printf '%s\n' "${cpu[@]}" | stats)
  if [ "${#floor[@]}" -gt 0 ]; then
    RES[$SET,$c,floor]=$(printf '%s\n' "${floor[@]}" | stats)
    RAW[$SET,$c,floor]=$(printf '%.2f ' "${floor[@]}")
  fi
  RES[$SET,$c,plain]=$(printf '%s\n' "${plain[@]}" | stats)
  RES[$SET,$c,pushfs]=$(printf '%s\n' "${pushfs[@]}" | stats)
  RAW[$SET,$c,plain]=$(printf '%.2f ' "${plain[@]}")
  RAW[$SET,$c,pushfs]=$(printf '%.2f ' "${pushfs[@]}")
  RSS_AFTER[$SET,$c]="$(rss_kib) ${FILES_THROUGH[$SET]}"
}

run_set() { # SET BASE
  SET=$1
  local base=$2
  case $SET in
    *-uring) IO_URING=on; FLOOR_OPTS="-o io_uring" ;;
    *) IO_URING=off; FLOOR_OPTS= ;;
  esac
  PLAIN=$base/plain
  mkdir -p "$PLAIN" "$base/state"
  export STATE_DIR=$base/state
  FILES_THROUGH[$SET]=0
  start_floor "$base"
  start_mount "$base/state"
  PEAK_RSS[$SET]=$(rss_kib)
  RSS_AFTER[$SET,start]="${PEAK_RSS[$SET]} 0"
  # Warm the page cache with the sources, so every run reads them from memory.
  cat "$SRC/small.tar" "$SRC/big.bin" >/dev/null
  tar -C "$SRC" -cf - small benchapp | cat >/dev/null
  for c in $CASES; do
    log "$SET: case $c (${NAME[$c]}), $RUNS runs per side"
    run_case "$c"
  done
  stop_mount
  stop_floor
  [ "$SET" = tmpfs ] && count_requests "$base"
  return 0
}

declare -A WHERE
for SET in $DISKS; do
  case $SET in
    disk|disk-uring)
      WHERE[$SET]="$(findmnt -n -o SOURCE,FSTYPE -T "$WORK" | tr -s ' ')"
      run_set "$SET" "$WORK/$SET" ;;
    tmpfs|tmpfs-uring)
      mkdir -p "$TMPFS"
      mount -t tmpfs -o size=3g pushfs-bench "$TMPFS"
      WHERE[$SET]="tmpfs, 3 GiB"
      run_set "$SET" "$TMPFS"
      umount "$TMPFS" ;;
    *) log "unknown set $SET"; exit 1 ;;
  esac
done

# ---------------------------------------------------------------- huge deploy
# Case (h), on its own mount on the real disk, once: a ByteNite app of
# HUGE_FILES tiny files (7 distinct contents, 1000 per directory: the
# per-file lists cost, not the bytes) written straight into the mount, then
# its manifest. Measured: VmRSS once every file is sealed, the peak (VmHWM,
# reset through /proc/PID/clear_refs just before the manifest is written),
# and the time from the manifest's write until `.pushfs/wait` returns.
# HUGE_FILES=0 skips it.
HUGE_FILES=${HUGE_FILES:-1000000}
HUGE_RESULT=
bench_huge_deploy() {
  [ "$HUGE_FILES" -gt 0 ] || return 0
  SET=huge
  local base=$WORK/huge app t0 t1 state rest peak
  mkdir -p "$base/state"
  start_mount "$base/state"
  app=$MNT/bytenite/huge
  log "huge: writing $HUGE_FILES files into $app"
  python3 -c '
import os, sys
base, n = sys.argv[1], int(sys.argv[2])
os.makedirs(base)
with open(os.path.join(base, "main.py"), "w") as f:
    f.write("print(\"hello from a huge app\")\n")
for i in range(n):
    d = os.path.join(base, "d%04d" % (i // 1000))
    if i % 1000 == 0:
        os.mkdir(d)
    with open(os.path.join(d, "f%03d" % (i % 1000)), "w") as f:
        f.write("%d\n" % (i % 7))
' "$app/app" "$HUGE_FILES"
  pushfs_wait "$app" >/dev/null   # every file sealed; no manifest, no deploy yet
  rest=$(rss_kib)
  echo 5 > "/proc/$MOUNT_PID/clear_refs"
  t0=$(now)
  sed 's/"pushfs-bench"/"huge"/' "$SRC/benchapp/manifest.json" > "$app/manifest.json"
  state=$(pushfs_wait "$app")
  t1=$(now)
  peak=$(awk '/^VmHWM:/ {print $2}' "/proc/$MOUNT_PID/status")
  [ "$state" = deployed ] || log "huge: the deploy ended $state: $(cat "$app/.pushfs/error")"
  HUGE_RESULT="$(echo "$t1 - $t0" | bc -l) $rest $peak $state"
  log "huge: $state after $(echo "$t1 - $t0" | bc -l) s, VmRSS $rest KiB before, VmHWM $peak KiB"
  stop_mount
  rm -rf --one-file-system "$base"   # faster than removing a million files through the mount
}
huge_section() {
  [ -n "$HUGE_RESULT" ] || return 0
  local secs rest peak state verdict="NOT met"
  read -r secs rest peak state <<<"$HUGE_RESULT"
  (( peak < 256 * 1024 )) && verdict=met
  echo
  echo "## Huge deploy"
  echo
  echo "(h) A ByteNite app of $HUGE_FILES tiny files (7 distinct contents, 1000 files per"
  echo "directory) written into a fresh mount on the real disk, then its \`manifest.json\`; run once."
  echo "Time: from writing the manifest until \`.pushfs/wait\` returns (settle 1 s, snapshot,"
  echo "tar, upload to the emulator of \`pushfs emulate\`, a separate process). Memory of the"
  echo "\`pushfs mount\` process: VmRSS once every file was sealed, and the peak during the deploy"
  echo "(VmHWM, reset just before the manifest). Target: peak < 256 MiB."
  echo
  echo "| files | state | time until \`.pushfs/wait\` returns (s) | VmRSS before (MiB) | peak during the deploy (MiB) | target |"
  echo "|---|---|---|---|---|---|"
  printf '| %s | %s | %.1f | %.1f | %.1f | **%s** |\n' "$HUGE_FILES" "$state" "$secs" \
    "$(echo "$rest / 1024" | bc -l)" "$(echo "$peak / 1024" | bc -l)" "$verdict"
}
bench_huge_deploy

# ---------------------------------------------------------------- report
us_per_file() { awk -v t="$1" -v n="$2" 'BEGIN { printf "%.0f", t * 1e6 / n }'; }
per_file_table() {
  echo "Microseconds per file, medians: wall time of the command + \`sync\` on each side;"
  echo "the CPU time (user + system) of the \`pushfs mount\` process over the run and the wait"
  echo "for sealing after it; the floor is \`FLOOR_BIN\` ($( [ -n "$FLOOR_BIN" ] && basename "$FLOOR_BIN" || echo "not run")), a passthrough file system"
  echo "mounted beside pushfs on the same disk. Requests: FUSE requests per file of each kind"
  echo "the kernel sent pushfs in one run on a fresh mount (tmpfs set), from the tally pushfs logs"
  echo "when it stops."
  echo
  echo "| set | workload | plain µs | pushfs µs | floor µs | pushfs / floor | pushfs CPU µs | requests per file |"
  echo "|---|---|---|---|---|---|---|---|"
  local s c n pm fm cm lm floor ratio
  for s in $DISKS; do
    for c in $CASES; do
      [ "$c" = b ] && continue
      n=${FILES_PER_RUN[$c]}
      read -r pm _ _ <<<"${RES[$s,$c,plain]}"
      read -r fm _ _ <<<"${RES[$s,$c,pushfs]}"
      read -r cm _ _ <<<"${RES[$s,$c,cpu]}"
      floor=–; ratio=–
      if [ -n "${RES[$s,$c,floor]:-}" ]; then
        read -r lm _ _ <<<"${RES[$s,$c,floor]}"
        floor=$(us_per_file "$lm" "$n"); ratio=$(ratio "$fm" "$lm")
      fi
      printf '| %s | (%s) %s | %s | %s | %s | %s | %s | %s |\n' "$s" "$c" "${NAME[$c]}" \
        "$(us_per_file "$pm" "$n")" "$(us_per_file "$fm" "$n")" "$floor" "$ratio" \
        "$(us_per_file "$cm" "$n")" "${REQUESTS[$s,$c]:-–}"
    done
  done
}
floor_line() { # SET CASE LIMIT
  local s=$1 c=$2 limit=$3 fm lm r
  [ -n "${RES[$s,$c,floor]:-}" ] || return 0
  read -r fm _ _ <<<"${RES[$s,$c,pushfs]}"
  read -r lm _ _ <<<"${RES[$s,$c,floor]}"
  r=$(ratio "$fm" "$lm")
  if awk -v r="$r" -v g="$limit" 'BEGIN { exit !(r <= g) }'; then v=met; else v="NOT met"; fi
  echo "- $s: (${c}) pushfs takes ${r}× the floor's time, target ≤ ${limit}×: **$v**"
}
ratio() { awk -v p="$1" -v f="$2" 'BEGIN { printf "%.2f", p / f }'; }
table() { # SET
  local s=$1
  echo "| workload | plain median (s) | plain min–max | pushfs median (s) | pushfs min–max | ratio plain/pushfs |"
  echo "|---|---|---|---|---|---|"
  for c in $CASES; do
    read -r pm pl ph <<<"${RES[$s,$c,plain]}"
    read -r fm fl fh <<<"${RES[$s,$c,pushfs]}"
    local name=${NAME[$c]}
    [ "$c" = e ] && name="$name (plain: cp -r only, no deploy)"
    printf '| (%s) %s | %.2f | %.2f–%.2f | %.2f | %.2f–%.2f | %s |\n' \
      "$c" "$name" "$pm" "$pl" "$ph" "$fm" "$fl" "$fh" "$(ratio "$pm" "$fm")"
  done
}
target_line() { # SET CASE GOAL
  local s=$1 c=$2 goal=$3 pm fm r
  [ -n "${RES[$s,$c,plain]:-}" ] || return 0
  read -r pm _ _ <<<"${RES[$s,$c,plain]}"
  read -r fm _ _ <<<"${RES[$s,$c,pushfs]}"
  r=$(ratio "$pm" "$fm")
  if awk -v r="$r" -v g="$goal" 'BEGIN { exit !(r >= g) }'; then v=met; else v="NOT met"; fi
  echo "- $s: (${c}) ${NAME[$c]}: ${r}x, target ≥ ${goal}x: **$v**"
}

{
  echo "# Benchmarks"
  echo
  echo "Measured by \`scripts/bench.sh $RUNS\` on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores,"
  echo "kernel $(uname -r), $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo)."
  echo "Binary: ${BIN_DESC:-$PUSHFS_BIN}."
  echo
  echo "## Method"
  echo
  echo "- Each case runs $RUNS times on each side, alternating plain and pushfs (plain, pushfs,"
  echo "  plain, pushfs, ...), each run into a new directory. The table gives the median and"
  echo "  the spread (min–max) of the $RUNS runs, and the ratio of the medians, plain / pushfs"
  echo "  (1.0 = native speed, 0.5 = twice as slow)."
  echo "- What is timed is what the user waits for: the command **plus \`sync\`**, on both sides."
  echo "  For pushfs, \`sync\` means the data of the mount's files reached the state dir's disk"
  echo "  (writes of new files go from the kernel to temp files in the state dir, FUSE passthrough)."
  echo "  \`sync\` is system-wide: it also flushes whatever else the machine wrote meanwhile."
  echo "- Untimed, between runs: \`sync\` before each run; after each pushfs run, reading the app's"
  echo "  \`.pushfs/wait\` until pushfs has sealed every file (hash + metadata commit, on a background"
  echo "  thread; this includes the settle time of 1 s) so runs never overlap; then both runs' output"
  echo "  is removed and \`sync\` again. Sealing time is therefore not in cases (a)–(d) and (f)."
  echo "- (f) empty creates: one \`open(O_CREAT|O_EXCL)\` + \`close\` per file in one new directory"
  echo "  (python3), the namespace alone."
  if [ -n "$FLOOR_BIN" ]; then
    echo "- Floor: \`$(basename "$FLOOR_BIN")\` mounted over a directory on the same disk as the state"
    echo "  dir, run in turn with the other two sides (plain, pushfs, floor, ...) on every case but (e)."
  fi
  echo "- (e) deploy: \`cp -r\` of a ByteNite app ($APP_COUNT files, $((APP_BYTES / 1000000)) MB: \`manifest.json\` +"
  echo "  \`app/\`) into \`bytenite/\`, \`sync\`, then reading \`.pushfs/wait\` until it says \`deployed\`"
  echo "  (settle 1 s, default; packaging; upload to the ByteNite emulator of \`pushfs emulate\` on"
  echo "  loopback). The plain side is the same \`cp -r\` + \`sync\` into a plain directory: there is"
  echo "  no deploy without pushfs, so that ratio compares different work and shows the whole cost."
  echo "- (g) sparse: \`truncate -s 1T\`, one 4 KiB block of random bytes written 700 GiB in with"
  echo "  \`dd\`, \`sync\`; on pushfs also until the file's sparse blob is in the store (sealed: its"
  echo "  data extents hashed, nothing of the holes read). The plain side has no seal to wait for."
  [ -z "$FLOOR_NOTE" ] || echo "- File count: $FLOOR_NOTE."
  echo "- Sources: $SMALL_FILES files of random sizes 1–20 KiB (random bytes, fixed seed; $((SMALL_BYTES / 1000000)) MB in"
  echo "  $SMALL_DIRS directories), their tar, and one $BIG_MIB MiB file of random bytes; all in /var/tmp, read"
  echo "  from the page cache (warmed before each set)."
  echo "- Two sets: **real disk** — the state dir and the plain target on ${WHERE[disk]:-the disk} (/var/tmp);"
  echo "  **tmpfs** — both on a 3 GiB tmpfs, which takes the disk out and leaves pushfs's own cost."
  echo "  A set marked *FUSE over io_uring* runs pushfs with \`io_uring = \"on\"\` (and the floor with"
  echo "  \`-o io_uring\`); the others with \`io_uring = \"off\"\`, requests read from /dev/fuse."
  echo "- The mount runs with default settings otherwise (\`--config\` from \`pushfs emulate\`, passthrough on)."
  for s in $DISKS; do
    echo
    case $s in
      disk) echo "## Real disk (${WHERE[disk]})" ;;
      disk-uring) echo "## Real disk (${WHERE[$s]}), FUSE over io_uring" ;;
      tmpfs) echo "## tmpfs" ;;
      tmpfs-uring) echo "## tmpfs, FUSE over io_uring" ;;
    esac
    echo
    table "$s"
  done
  echo
  echo "## Per file"
  echo
  per_file_table
  echo
  echo "## Targets"
  echo
  for s in $DISKS; do
    target_line "$s" a 0.25
    target_line "$s" b 0.9
    if [ "${s%-uring}" = tmpfs ]; then
      target_line "$s" c 0.2
      target_line "$s" d 0.2
      target_line "$s" f 0.25
    else
      target_line "$s" c 0.5
      target_line "$s" d 0.5
      target_line "$s" f 0.5
    fi
  done
  for s in $DISKS; do
    for c in a c d f; do floor_line "$s" "$c" 1.5; done
  done
  echo
  echo "## Memory of the mount"
  echo
  echo "VmRSS of the \`pushfs mount\` process (from \`/proc/<pid>/status\`), with the number of files"
  echo "that had passed through the mount by then (each run's files are removed after the run;"
  echo "the peak is sampled after every pushfs run, before its files are removed). Target: < 64 MiB"
  echo "after 100,000 files."
  echo
  echo "| set | at start | $(for c in $CASES; do printf 'after (%s) | ' "$c"; done)peak |"
  echo "|---|---|$(for c in $CASES; do printf -- '---|'; done)---|"
  for s in $DISKS; do
    read -r r0 _ <<<"${RSS_AFTER[$s,start]}"
    printf '| %s | %.1f MiB | ' "$s" "$(echo "$r0 / 1024" | bc -l)"
    for c in $CASES; do
      read -r r n <<<"${RSS_AFTER[$s,$c]}"
      printf '%.1f MiB (%s files) | ' "$(echo "$r / 1024" | bc -l)" "$n"
    done
    printf '%.1f MiB |\n' "$(echo "${PEAK_RSS[$s]} / 1024" | bc -l)"
  done
  huge_section
  echo
  echo "## Raw runs (seconds, in run order)"
  echo
  for s in $DISKS; do
    for c in $CASES; do
      echo "- $s ($c): plain ${RAW[$s,$c,plain]}/ pushfs ${RAW[$s,$c,pushfs]}${RAW[$s,$c,floor]:+/ floor ${RAW[$s,$c,floor]}}"
    done
  done
  echo
  echo "## Notes"
  echo
  echo "- This machine has $(nproc) cores and is shared (others compile and run tests on it): every"
  echo "  figure is noisy, plain runs included; the spread columns show how much. The tmpfs set"
  echo "  is the steadier measure of what pushfs itself costs."
  echo "- Plain \`cp\` of one big file within one ext4 file system copies in the kernel"
  echo "  (copy_file_range); into pushfs (or from /var/tmp to the tmpfs) it reads and writes."
  echo "- Small files cost FUSE round trips each (lookup, create, release, the parent's getattr"
  echo "  for \`default_permissions\`, getxattr security.capability per write and chown, and"
  echo "  setattr and rename for \`tar x\` and \`rsync -a\`: see Requests per file below; flush"
  echo "  is declined once, so the kernel stops sending it), plus one metadata transaction per"
  echo "  namespace operation in the SQLite WAL"
  echo "  engine; seals are batched on a background thread. On tmpfs pushfs spends about"
  echo "  0.2 ms per copied file and \`passthrough_hp\` about 0.13 ms; the small-files notes"
  echo "  below say where pushfs's time goes."
  echo "- On the real disk, both sides are bound by the disk's write rate, which drops after a"
  echo "  burst: plain \`cp -r\` + \`sync\` took 1 s on its first run and 6–13 s on later ones"
  echo "  (see the raw runs). Read the disk ratios as \"no worse than the disk\", and the tmpfs"
  echo "  ratios as pushfs's own cost."
  if [ -f "$SMALL_FILES_NOTES" ]; then
    echo
    cat "$SMALL_FILES_NOTES"
  fi
  if [ -f "$META_BENCH" ]; then
    echo
    cat "$META_BENCH"
  fi
} > "$OUT.new"
mv "$OUT.new" "$OUT"
cat "$OUT"
