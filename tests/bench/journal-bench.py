#!/usr/bin/env python3
"""Benchmark of the journal on a crashed volume (prints a table; asserts nothing).

Bytes read, read calls and time of `kaifuku inspect --json` and `kaifuku fix --dry-run --json` on
a 13 GiB NTFS volume (sparse file; mkntfs gives a volume above 12 GiB a 64 MiB `$LogFile`):

* `clean`: the volume as ntfs-3g leaves it after creating the 04:09 channel file (journal clean);
* `unclean N %`: the same creation logged by tests/logwriter.py as a committed transaction that
  was not flushed (the crashed volume of tests/journal-replay.py's `committed` case), with the
  transaction's idempotent updates (the records' images, resident values, bitmap bits, index entry
  duplicated information) logged again after the checkpoint until N % of the log lies between the
  checkpoint and the log's end, as a busy volume's log does: a replay reads and redoes all of it.

Every unclean volume is checked before it is measured: `fix --dry-run` must plan the replay and the
delete (exit 0); the live span is taken from the writer's own layout.

Needs root (FUSE), mkntfs, ntfs-3g, libfaketime and a release build
(`cargo build --release -p kaifuku-cli`).
Usage: tests/bench/journal-bench.py [WORKDIR] [--runs N] [--live 1,50]
"""
import argparse
import importlib.util
import json
import mmap
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
ROOT = os.path.dirname(TESTS)
KAIFUKU = os.path.join(ROOT, "target", "release", "kaifuku")
sys.path.insert(0, TESTS)
import logwriter as L  # noqa: E402

_spec = importlib.util.spec_from_file_location("journal_replay", os.path.join(TESTS, "journal-replay.py"))
J = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(J)

VOLUME_SIZE = 13 << 30
# Updates that leave the same bytes when applied twice: logging them again changes nothing the
# replay must reach, only how much of the log it reads.
IDEMPOTENT = {L.INIT_FRS, L.UPDATE_RESIDENT, L.UPDATE_FN_ROOT, L.UPDATE_FN_ALLOC, L.SET_BITS}


class MappedVolume(L.Volume):
    """logwriter's volume reader over a memory map: a 13 GiB image is not read into memory."""

    def __init__(self, path, writable=False):
        self.file = open(path, "r+b" if writable else "rb")
        self.img = mmap.mmap(self.file.fileno(), 0, access=mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ)
        b = self.img
        if b[3:11] != b"NTFS    ":
            raise L.Unsupported("%s is not a bare NTFS volume" % path)
        self.sector = L.u16(b, 0x0B)
        self.cluster = self.sector * b[0x0D]
        self.mft_lcn = L.u64(b, 0x30)
        c = struct.unpack_from("<b", b, 0x40)[0]
        self.rec_size = self.cluster * c if c > 0 else 1 << -c
        c = struct.unpack_from("<b", b, 0x44)[0]
        self.idx_size = self.cluster * c if c > 0 else 1 << -c
        rec0 = L.unfixup(b[self.mft_lcn * self.cluster:self.mft_lcn * self.cluster + self.rec_size])
        self.mft_runs = L.find_attr(rec0, L.AT_DATA)["runs"]
        self.mft_records = L.find_attr(rec0, L.AT_DATA)["data_size"] // self.rec_size


def make_volumes(d):
    """PRE (the CrowdStrike folder with csagent.sys) and POST (then the 04:09 channel file), as
    tests/journal-replay.py makes them, on a 13 GiB volume."""
    pre, post = os.path.join(d, "pre.img"), os.path.join(d, "post.img")
    with open(pre, "wb") as f:
        f.truncate(VOLUME_SIZE)
    rc, out = J.run(["mkntfs", "-Q", "-F", "-q", "-c", "4096", "-L", "Windows", pre], env=J.clock("2024-01-15 09:00:00"))
    if rc:
        sys.exit("mkntfs failed: %s" % out)
    J.run(["ntfslabel", "--new-serial=0123456789abcdef", pre])
    mnt = os.path.join(d, "mnt")

    def setup(m):
        os.makedirs(os.path.join(m, J.CS))
        os.makedirs(os.path.join(m, "Windows/Temp"))
        with open(os.path.join(m, J.CS, "csagent.sys"), "w") as f:
            f.write("agent\n")
    J.mounted(pre, mnt, "2024-03-04 11:20:00", setup)
    subprocess.run(["cp", "--sparse=always", pre, post], check=True)

    def faulty(m):
        with open(os.path.join(m, J.CS, J.N032), "wb") as f:
            f.write(b"\xaa\xaa\xaa\xaa\x01\x00\x23\x01" + b"x" * 2992)
    J.mounted(post, mnt, "2024-07-19 04:09:13", faulty)
    return pre, post


def session(post, ch, repeats):
    """The writer's session of the committed creation with its idempotent updates logged
    `repeats` more times after the checkpoint; returns (writer, live bytes)."""
    filler = [o for o in ch.ops if o["redo"] in IDEMPOTENT]
    w = L.Writer(post)
    w.restart_record(dict(start=0))
    t1 = dict(id=0x18, last=0)
    half = max(0, len(ch.ops) // 2 - 1)
    w.transaction(t1, ch, ch.ops + filler * repeats, forget=True, checkpoint_after=half)
    checkpoint_offset = [pos for lsn, pos, _, _ in w.log.records if lsn == w.checkpoint_lsn][0]
    return w, w.log.pos - checkpoint_offset


def make_unclean(pre_path, post_path, out_path, live_fraction):
    pre, post = MappedVolume(pre_path), MappedVolume(post_path)
    ch = L.diff_volumes(pre, post)
    filler = [o for o in ch.ops if o["redo"] in IDEMPOTENT]
    if not filler:
        sys.exit("the creation logged no idempotent update to repeat")
    _, base = session(post, ch, 0)
    _, one = session(post, ch, 1)
    target = int(live_fraction * L.find_attr(post.record(2), L.AT_DATA)["data_size"])
    repeats = max(0, (target - base) // max(1, one - base))
    w, live = session(post, ch, repeats)
    # The model of the updates must still give POST with the repeats.
    check = L.Change()
    check.ops = ch.ops + filler * repeats
    check.targets = ch.targets
    L.verify_change(check, pre, post)
    data = L.log_image(w)
    subprocess.run(["cp", "--sparse=always", post_path, out_path], check=True)
    out = MappedVolume(out_path, writable=True)
    for key, t in ch.targets.items():
        L.put_block(out.img, pre, post, key, t, pre.img)
    for pos in ch.mirror:
        out.img[pos:pos + post.cluster] = pre.img[pos:pos + post.cluster]
    L.write_log(out.img, post, data)
    out.img.flush()
    return dict(records=len(w.log.records), live=live, log_size=w.log_size, checkpoint=w.checkpoint_lsn)


def timed(cmd):
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    return time.perf_counter() - t, p


def measure(cmd, img, runs):
    times, doc = [], None
    for _ in range(runs):
        t, p = timed([KAIFUKU] + cmd + [img])
        if p.returncode != 0:
            sys.exit("kaifuku %s failed (exit %d): %s%s" % (" ".join(cmd), p.returncode, p.stdout[-2000:], p.stderr))
        times.append(t)
        doc = json.loads(p.stdout)
    return statistics.median(times) * 1000, doc["reads"], doc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("work", nargs="?")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--live", default="1,50", help="percent of the log between the checkpoint and its end")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root for ntfs-3g FUSE mounts")
    if not os.path.exists(KAIFUKU):
        sys.exit("build first: cargo build --release -p kaifuku-cli")
    work = a.work or tempfile.mkdtemp(prefix="kaifuku-journal-bench-")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    pre, post = make_volumes(work)
    cases = [("clean", post, None)]
    for pct in (int(x) for x in a.live.split(",")):
        img = os.path.join(work, "unclean-%d.img" % pct)
        cases.append(("unclean %d %%" % pct, img, make_unclean(pre, post, img, pct / 100)))
    rows = []
    for name, img, info in cases:
        ims, ireads, _ = measure(["inspect", "--json"], img, a.runs)
        fms, freads, doc = measure(["fix", "--dry-run", "--json"], img, a.runs)
        plan = json.dumps(doc["plan"])
        if info and "journal replay" not in plan:
            sys.exit("%s: the plan does not replay the journal" % name)
        rows.append((name, info, ireads, ims, freads, fms))
    print("Volume: %d GiB, $LogFile %d MiB; median of %d runs; %s" % (VOLUME_SIZE >> 30, cases[1][2]["log_size"] >> 20 if len(cases) > 1 else 0, a.runs, work))
    print()
    print("| volume | log records | live log bytes | inspect: bytes read | inspect: read calls | inspect ms | fix --dry-run: bytes read | fix --dry-run: read calls | fix --dry-run ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, info, ir, ims, fr, fms in rows:
        recs = info["records"] if info else 0
        live = info["live"] if info else 0
        print(f"| {name} | {recs} | {live} | {ir['bytes']} | {ir['calls']} | {ims:.1f} | {fr['bytes']} | {fr['calls']} | {fms:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
