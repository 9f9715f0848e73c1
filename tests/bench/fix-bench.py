#!/usr/bin/env python3
"""Benchmark of `kaifuku fix` (prints a table; asserts nothing).

1. kaifuku fix --in-place vs ntfs-3g mount + rm + umount of the same files on the same raw image,
   median of several runs each, and the ratio; `fix -o` (which also copies the image, sparsely)
   is shown too.
2. Bytes read, read calls and time of `kaifuku fix` for the same tree in bare NTFS volumes of
   1 GiB, 64 GiB and 1 TiB (sparse files): the line should be flat.
3. The cost of the ownership proof, which scans every in-use MFT record: bytes read and plan time
   for a 16 GiB volume holding the same tree plus N more (empty) files (--files 0,20000,100000).

Needs root (FUSE), mkntfs, ntfs-3g, and a release build (`cargo build --release -p kaifuku-cli`).
Usage: tests/bench/fix-bench.py [WORKDIR] [--runs N] [--sizes 1G,64G,1T] [--files 0,20000,100000]
"""
import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KAIFUKU = os.path.join(ROOT, "target", "release", "kaifuku")
CS_DIR = "Windows/System32/drivers/CrowdStrike"
TARGETS = [
    ("C-00000291-00000000-00000032.sys", (2024, 7, 19, 4, 9, 13)),
    ("C-00000291-00000000-00000033.sys", (2024, 7, 19, 5, 27, 41)),
]


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def size_bytes(s):
    units = {"G": 1 << 30, "T": 1 << 40, "M": 1 << 20}
    return int(s[:-1]) * units[s[-1]]


def make_volume(path, size, mnt, extra_files=0):
    """A bare NTFS volume of `size` bytes with a Windows-like CrowdStrike tree (fixed seed), and
    `extra_files` more empty files in directories of 1000 (as WinSxS holds many small files)."""
    with open(path, "wb") as f:
        f.truncate(size)
    run(["mkntfs", "-F", "-Q", "-q", "-c", "4096", "-L", "Windows", path])
    os.makedirs(mnt, exist_ok=True)
    run(["ntfs-3g", "-o", "noatime", path, mnt])
    try:
        rng = random.Random(20240719)
        drivers = os.path.join(mnt, "Windows/System32/drivers")
        os.makedirs(os.path.join(mnt, CS_DIR))
        for i in range(400):
            with open(os.path.join(drivers, f"driver{i:03d}_{rng.randrange(1 << 30):x}.sys"), "wb") as f:
                f.write(rng.randbytes(rng.randrange(2048, 65536)))
        for i in range(150):
            name = f"C-{rng.randrange(0, 300):08d}-00000000-{i:08d}.sys"
            with open(os.path.join(mnt, CS_DIR, name), "wb") as f:
                f.write(rng.randbytes(rng.randrange(1024, 50000)))
        for name, when in TARGETS:
            p = os.path.join(mnt, CS_DIR, name)
            with open(p, "wb") as f:
                f.write(bytes.fromhex("aaaaaaaa01002301") + rng.randbytes(40000))
            t = time.mktime(time.struct_time(when + (0, 0, 0))) - time.timezone
            os.utime(p, (t, t))
        for i in range(extra_files):
            d = os.path.join(mnt, "Windows/WinSxS", f"d{i // 1000:04d}")
            if i % 1000 == 0:
                os.makedirs(d, exist_ok=True)
            open(os.path.join(d, f"f{i:07d}.manifest"), "wb").close()
    finally:
        run(["umount", mnt])


def sparse_copy(src, dst):
    run(["cp", "--sparse=always", src, dst])


def timed(cmd):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    return time.perf_counter() - t0, p


def bench_ntfs3g(img, work, mnt, runs):
    """Mount + rm + umount, and the same followed by an fsync of the image (kaifuku's in-place fix
    syncs its undo file and the image before it returns, so that is the like-for-like figure)."""
    times, synced = [], []
    for _ in range(runs):
        copy = os.path.join(work, "ntfs3g.img")
        sparse_copy(img, copy)
        os.sync()
        t0 = time.perf_counter()
        run(["ntfs-3g", "-o", "noatime", copy, mnt])
        for name, _ in TARGETS:
            os.remove(os.path.join(mnt, CS_DIR, name))
        run(["umount", mnt])
        t1 = time.perf_counter()
        fd = os.open(copy, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        t2 = time.perf_counter()
        times.append(t1 - t0)
        synced.append(t2 - t0)
        os.remove(copy)
    return times, synced


def bench_kaifuku_plan(img, runs):
    times = []
    for _ in range(runs):
        t, p = timed([KAIFUKU, "fix", "--dry-run", img])
        if p.returncode != 0:
            sys.exit(f"kaifuku fix --dry-run failed: {p.stderr}")
        times.append(t)
    return times


def bench_kaifuku_in_place(img, work, runs):
    times, reads = [], None
    for _ in range(runs):
        copy = os.path.join(work, "kaifuku.img")
        undo = os.path.join(work, "kaifuku.undo")
        sparse_copy(img, copy)
        os.sync()
        t, p = timed([KAIFUKU, "fix", "--in-place", copy, "--undo", undo, "--json"])
        if p.returncode != 0:
            sys.exit(f"kaifuku fix failed: {p.stderr}")
        times.append(t)
        reads = json.loads(p.stdout)["reads"]
        os.remove(copy)
        os.remove(undo)
    return times, reads


def bench_kaifuku_copy(img, work, runs):
    times = []
    for _ in range(runs):
        out = os.path.join(work, "out.img")
        t, p = timed([KAIFUKU, "fix", img, "-o", out])
        if p.returncode != 0:
            sys.exit(f"kaifuku fix -o failed: {p.stderr}")
        times.append(t)
        os.remove(out)
    return times


def ms(xs):
    return f"{statistics.median(xs) * 1000:9.1f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workdir", nargs="?")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sizes", default="1G,64G,1T")
    ap.add_argument("--files", default="0,20000,100000")
    a = ap.parse_args()
    if not os.path.exists(KAIFUKU):
        sys.exit("build first: cargo build --release -p kaifuku-cli")
    work = a.workdir or tempfile.mkdtemp(prefix="kaifuku-bench-")
    os.makedirs(work, exist_ok=True)
    mnt = os.path.join(work, "mnt")
    os.makedirs(mnt, exist_ok=True)
    rows = []
    scans = []
    try:
        for s in a.sizes.split(","):
            img = os.path.join(work, f"vol-{s}.img")
            make_volume(img, size_bytes(s), mnt)
            p_times = bench_kaifuku_plan(img, a.runs)
            k_times, reads = bench_kaifuku_in_place(img, work, a.runs)
            c_times = bench_kaifuku_copy(img, work, a.runs)
            n_times, n_synced = bench_ntfs3g(img, work, mnt, a.runs)
            rows.append((s, reads, p_times, k_times, c_times, n_times, n_synced))
            os.remove(img)
        for n in [int(x) for x in a.files.split(",") if x]:
            img = os.path.join(work, f"files-{n}.img")
            make_volume(img, 16 << 30, mnt, extra_files=n)
            p_times = bench_kaifuku_plan(img, a.runs)
            t, p = timed([KAIFUKU, "fix", "--dry-run", "--json", img])
            if p.returncode != 0:
                sys.exit(f"kaifuku fix --dry-run failed: {p.stderr}")
            doc = json.loads(p.stdout)
            scan = doc["plan"]["verification"]["ownership"][0]
            scans.append((n, doc["reads"], scan, p_times))
            os.remove(img)
    finally:
        subprocess.run(["umount", mnt], capture_output=True)
    print(f"median of {a.runs} runs; the same tree (2 target files among ~550) in a bare NTFS volume, 4 KiB clusters")
    print()
    print("| volume | bytes read | read calls | kaifuku plan (--dry-run) ms | kaifuku fix --in-place (undo, fsync) ms | kaifuku fix -o (sparse copy) ms | ntfs-3g mount+rm+umount ms | ntfs-3g + fsync ms | ratio ntfs-3g+fsync / in-place | ratio ntfs-3g / plan |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for s, reads, p, k, c, n, ns in rows:
        r1 = statistics.median(ns) / statistics.median(k)
        r2 = statistics.median(n) / statistics.median(p)
        print(f"| {s} | {reads['bytes']} | {reads['calls']} | {ms(p)} | {ms(k)} | {ms(c)} | {ms(n)} | {ms(ns)} | {r1:.1f}x | {r2:.1f}x |")
    if scans:
        print()
        print("ownership proof: a 16 GiB volume with the same tree plus N empty files")
        print()
        print("| extra files | in-use records scanned | $MFT bytes scanned | bytes read in all | read calls | kaifuku plan (--dry-run) ms |")
        print("|---|---|---|---|---|---|")
        for n, reads, scan, p in scans:
            print(f"| {n} | {scan['records_scanned']} | {scan['bytes_read']} | {reads['bytes']} | {reads['calls']} | {ms(p)} |")
    if not a.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
