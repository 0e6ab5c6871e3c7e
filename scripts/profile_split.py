#!/usr/bin/env python3
"""Splits a `perf script` dump of the pushfs mount process into kinds of
work, and prints each kind's share and its CPU microseconds per file.

Usage: perf script -i perf.data | scripts/profile_split.py CPU_SECONDS FILES

CPU_SECONDS is the mount process's CPU time over the profiled work (from
/proc/PID/stat), FILES the number of files the work handled. A sample is
put in the first kind that one of its frames names, from the leaf up, so
that a page write inside a commit counts as the commit, and the commit
inside a create counts as engine work, not as the create.
"""
import re
import sys
from collections import Counter

# (kind, pattern); the order decides between kinds named in one stack.
KINDS = [
    ("waiting and waking (scheduler, futex)", re.compile(r"finish_task_switch|__schedule|futex_wait|futex_wake|try_to_wake_up")),
    ("engine: commit (WAL append)", re.compile(r"pushfs::meta::txn::Txn::commit|sqlite3BtreeCommitPhase|pagerWalFrames")),
    ("engine: statements and read locks", re.compile(r"sqlite3_|pushfs::meta::")),
    ("hashing (SHA-256 + SHA-1)", re.compile(r"sha2::|sha1::|hash_open_with|hash_sparse")),
    ("state-dir files (temp create, link, unlink, stat, backing ids)", re.compile(
        r"ContentStore::new_temp|ContentStore::link_in|OpenFile::remove_temp|OpenFile::stat|OpenFile::set_times|"
        r"OpenFile::truncate|BackingId|Passthrough::|fuse_dev_ioctl|remove_file|std::sys::fs::")),
    ("FUSE transport (read request, write reply)", re.compile(
        r"receive_retrying|fuse_dev_do_read|fuse_dev_read|fuse_dev_write|send_ll|ReplyRaw|IosliceConcat|__GI___writev|ksys_read")),
    ("tree and adapter logic", re.compile(r"pushfs::|fuser::")),
]
OTHER = "other (libc, allocator, kernel entry)"


def samples(stream):
    frames = []
    for line in stream:
        line = line.rstrip("\n")
        if not line.strip():
            if frames:
                yield frames
            frames = []
            continue
        if line.startswith((" ", "\t")):
            parts = line.split(None, 1)
            if len(parts) == 2:
                frames.append(parts[1])
        else:
            frames = []
    if frames:
        yield frames


def kind_of(frames):
    for kind, pattern in KINDS:
        for frame in frames:
            if pattern.search(frame):
                return kind
    return OTHER


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    cpu_seconds, files = float(sys.argv[1]), int(sys.argv[2])
    counts = Counter(kind_of(frames) for frames in samples(sys.stdin))
    total = sum(counts.values())
    if total == 0:
        sys.exit("no samples")
    per_file = cpu_seconds * 1e6 / files
    print(f"| kind of work | share | µs CPU per file |")
    print(f"|---|---|---|")
    for kind, _ in KINDS + [(OTHER, None)]:
        n = counts.get(kind, 0)
        print(f"| {kind} | {100 * n / total:.0f}% | {per_file * n / total:.0f} |")
    print(f"| **all of the mount process** | 100% | **{per_file:.0f}** |")
    print(f"\n{total} samples")


if __name__ == "__main__":
    main()
