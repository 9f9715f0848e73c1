#!/usr/bin/env python3
"""Benchmark of a batch `kaifuku fix` (prints a table; asserts nothing).

N sparse bare NTFS volumes of SIZE (the same Windows-like tree as fix-bench.py, made with mkntfs
and an ntfs-3g mount, then copied with `cp --sparse=always`) fixed in one batch, as copies
(`--out-dir`) and in place (`--in-place --undo-dir`), with the default --jobs (the core count):
wall time, images per minute, and peak memory — the largest resident set of any process of the
batch (the batch itself or one image's `kaifuku fix`), from getrusage(RUSAGE_CHILDREN).

Needs root (FUSE), mkntfs, ntfs-3g, and a release build (`cargo build --release -p kaifuku-cli`).
Usage: tests/bench/batch-bench.py [WORKDIR] [--images 20] [--size 64G]
"""
import argparse
import importlib.util
import os
import resource
import shutil
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("fix_bench", os.path.join(HERE, "fix-bench.py"))
fix_bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fix_bench)
KAIFUKU = fix_bench.KAIFUKU


def batch(args):
    """Runs one batch in a child process; its wall time, exit status and peak RSS in KiB."""
    pid = os.fork()
    if pid == 0:
        # A fresh process, so RUSAGE_CHILDREN covers this batch alone.
        t0 = time.perf_counter()
        p = subprocess.run([KAIFUKU, "fix", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wall = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        with open(os.path.join(os.environ["BENCH_OUT"]), "w") as f:
            f.write(f"{wall} {p.returncode} {peak}\n")
        os._exit(0)
    os.waitpid(pid, 0)
    with open(os.environ["BENCH_OUT"]) as f:
        wall, code, peak = f.read().split()
    return float(wall), int(code), int(peak)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workdir", nargs="?")
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--size", default="64G")
    a = ap.parse_args()
    work = a.workdir or tempfile.mkdtemp(prefix="kaifuku-batch-bench-")
    os.makedirs(work, exist_ok=True)
    os.environ["BENCH_OUT"] = os.path.join(work, "result")
    size = fix_bench.size_bytes(a.size)
    first = os.path.join(work, "volume.raw")
    fix_bench.make_volume(first, size, os.path.join(work, "mnt"))
    images = os.path.join(work, "images")
    os.makedirs(images, exist_ok=True)
    for i in range(a.images):
        fix_bench.sparse_copy(first, os.path.join(images, f"disk{i:02d}.raw"))
    rows = []
    out = os.path.join(work, "out")
    os.makedirs(out, exist_ok=True)
    wall, code, peak = batch(["--out-dir", out, images])
    rows.append(("--out-dir (sparse copies)", wall, code, peak))
    undo = os.path.join(work, "undo")
    os.makedirs(undo, exist_ok=True)
    wall, code, peak = batch(["--in-place", "--undo-dir", undo, images])
    rows.append(("--in-place --undo-dir", wall, code, peak))
    print(f"{a.images} × {a.size} sparse NTFS volumes, {os.cpu_count()} cores, default --jobs")
    print("| mode | exit | wall s | images per minute | peak memory (largest process) |")
    print("|---|---|---|---|---|")
    for mode, wall, code, peak in rows:
        print(f"| {mode} | {code} | {wall:.1f} | {a.images / wall * 60:.0f} | {peak / 1024:.1f} MiB |")
    if not a.workdir:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
