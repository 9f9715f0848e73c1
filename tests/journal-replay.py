#!/usr/bin/env python3
"""Judge tests/logwriter.py with ntfsrecover (ntfs-3g), on crash-simulated volumes.

Usage: journal-replay.py SCRATCH_DIR
       journal-replay.py --compare REPLAYED EXPECTED
       journal-replay.py --compare-in-use REPLAYED EXPECTED

The second form compares two images of the same volume as the first form judges ntfsrecover's
replay: every cluster outside `$LogFile`, protected blocks (FILE, INDX) without their page LSN
and update sequence number; it prints the differing places and exits 1 when there are any. The
third compares file records only up to their bytes in use (see `compare`).

Scenario (the CrowdStrike case): mkntfs a 16 MiB volume, through ntfs-3g create
Windows/System32/drivers/CrowdStrike/csagent.sys and Windows/Temp (PRE); on a copy create
C-00000291-00000000-00000032.sys at 2024-07-19 04:09:13 UTC (POST); on a copy of that, create
Windows/Temp/x.tmp (POST2).  Clocks frozen with libfaketime, so every run is the same.

Cases, each a crashed volume written by the writer and judged independently:
1. `committed`: the 04:09 creation logged and committed, nothing of it flushed.
2. `flushed-and-uncommitted`: the same, the new file's record already flushed (its LSN stamped, so
   a replay must skip it), and the x.tmp creation logged after it without its ForgetTransaction and
   not flushed (a replay must leave it out).
3. `uncommitted-on-disk` and `uncommitted-new-record-on-disk` (written, not judged here: an undo
   pass is needed, which ntfsrecover -s does not have): case 2 with the x.tmp creation's changes
   of existing records flushed, or its new record flushed; and `unknown-undo`, the latter with
   the undo operation of x.tmp's record allocation rewritten as UpdateRelativeDataInIndex (0x23,
   whose effect no source describes: a replay must refuse it).
4. `unrelated/refused` (written, not judged here): on another volume whose CrowdStrike folder
   holds csagent.sys only, the creation of ProgramData/Cache/a.tmp committed and of b.tmp
   unfinished, both new records flushed, b.tmp's allocation undone by 0x23 as in
   `unknown-undo` (so a replay must refuse): pending updates that stay away from the rule's
   folders.
5. `left/refused` (written, not judged here): a volume with the 04:09 channel file on disk and
   the committed, unflushed overwrite of ProgramData/Cache/a.tmp, its UpdateFileNameRoot
   rewritten as UpdateRelativeDataInIndex (a replay refuses it): a journal that touches nothing a
   delete of the channel file changes.
6. `deleted/committed`: on a copy of POST2, ntfs-3g deletes Windows/Temp/x.tmp at 04:09:40
   (`deleted/post.img`); the deletion logged and committed, nothing of it flushed (ntfsrecover
   judges it up to each record's bytes in use, the freed record by its flags alone, see
   `judge_deletion`).

For each: `ntfsrecover -n -f -v` must list every record the writer wrote with the values written
(LSN, record type, transaction, redo/undo operation, target attribute, LCNs, target VCN, record
and attribute offsets, cluster index); `ntfsrecover -s` on a copy must succeed and give POST on
every metadata byte (MFT records and `$MFTMirr`, index blocks, bitmaps: page LSNs and update
sequence numbers aside, which a replay stamps) and every other byte outside `$LogFile`; ntfs-3g
must then mount the result and list the 04:09 file, and without the replay the file is absent.

Exit 0 = pass, 1 = fail, 77 = skipped (not root, no FUSE, or a tool missing), with the reason.
"""

import glob
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import logwriter as L  # noqa: E402

CS = "Windows/System32/drivers/CrowdStrike"
N032 = "C-00000291-00000000-00000032.sys"


def skip(why):
    print("SKIPPED journal-replay: %s" % why)
    sys.exit(77)


def run(cmd, env=None):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def clock(when):
    lft = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1") + glob.glob("/usr/lib/faketime/libfaketime.so.1"))
    return dict(os.environ, LD_PRELOAD=lft[0], FAKETIME=when, TZ="UTC", FAKETIME_DONT_FAKE_MONOTONIC="1")


def mounted(img, mnt, when, action):
    os.makedirs(mnt, exist_ok=True)
    rc, out = run(["ntfs-3g", "-o", "rw,noatime,big_writes", img, mnt], env=clock(when) if when else None)
    if rc:
        raise SystemExit("ntfs-3g could not mount %s: %s" % (img, out))
    try:
        return action(mnt)
    finally:
        for _ in range(50):
            if run(["umount", mnt])[0] == 0:
                break
            time.sleep(0.1)
        time.sleep(0.3)


def make_images(d, extra=0):
    """PRE, POST, POST2 in `d`; `extra` more files in the CrowdStrike directory of PRE (enough
    make ntfs-3g move its entries into an index block, where the 04:09 name then goes)."""
    pre, post, post2 = (os.path.join(d, n) for n in ("pre.img", "post.img", "post2.img"))
    with open(pre, "wb") as f:
        f.truncate(16 << 20)
    rc, out = run(["mkntfs", "-Q", "-F", "-q", "-c", "4096", "-L", "Windows", pre], env=clock("2024-01-15 09:00:00"))
    assert rc == 0, out
    run(["ntfslabel", "--new-serial=0123456789abcdef", pre])
    mnt = os.path.join(d, "mnt")

    def setup(m):
        os.makedirs(os.path.join(m, CS))
        os.makedirs(os.path.join(m, "Windows/Temp"))
        with open(os.path.join(m, CS, "csagent.sys"), "w") as f:
            f.write("agent\n")
        for k in range(extra):
            with open(os.path.join(m, CS, "f%03d.sys" % k), "w") as f:
                f.write("x\n")
    mounted(pre, mnt, "2024-03-04 11:20:00", setup)
    shutil.copy(pre, post)

    def faulty(m):
        with open(os.path.join(m, CS, N032), "wb") as f:
            f.write(b"\xaa\xaa\xaa\xaa\x01\x00\x23\x01" + b"x" * 2992)
    mounted(post, mnt, "2024-07-19 04:09:13", faulty)
    shutil.copy(post, post2)

    def later(m):
        with open(os.path.join(m, "Windows/Temp/x.tmp"), "w") as f:
            f.write("tmp\n")
    mounted(post2, mnt, "2024-07-19 04:09:20", later)
    return pre, post, post2


def make_left(d):
    """PRE (the CrowdStrike folder with csagent.sys and the 04:09 channel file on disk, and
    ProgramData/Cache/a.tmp) and POST (a.tmp's four bytes overwritten in place): an update that
    changes only a.tmp's record and its entry in ProgramData/Cache, no bitmap."""
    pre, post = os.path.join(d, "pre.img"), os.path.join(d, "post.img")
    with open(pre, "wb") as f:
        f.truncate(16 << 20)
    rc, out = run(["mkntfs", "-Q", "-F", "-q", "-c", "4096", "-L", "Windows", pre], env=clock("2024-01-15 09:00:00"))
    assert rc == 0, out
    run(["ntfslabel", "--new-serial=0123456789abcdef", pre])
    mnt = os.path.join(d, "mnt")

    def setup(m):
        os.makedirs(os.path.join(m, CS))
        os.makedirs(os.path.join(m, "ProgramData/Cache"))
        with open(os.path.join(m, CS, "csagent.sys"), "w") as f:
            f.write("agent\n")
        with open(os.path.join(m, CS, N032), "wb") as f:
            f.write(b"\xaa\xaa\xaa\xaa\x01\x00\x23\x01" + b"x" * 2992)
        with open(os.path.join(m, "ProgramData/Cache/a.tmp"), "w") as f:
            f.write("tmp\n")
    mounted(pre, mnt, "2024-03-04 11:20:00", setup)
    shutil.copy(pre, post)

    def overwrite(m):
        with open(os.path.join(m, "ProgramData/Cache/a.tmp"), "r+") as f:
            f.write("TMP\n")
    mounted(post, mnt, "2024-07-19 04:09:30", overwrite)
    return pre, post


def patch_operation(img, rep, lsn, code, field=0):
    """Writes `code` as the redo (`field` 0) or undo (`field` 2) operation of the log record at
    `lsn` (the first or second two bytes of its client data), through `$LogFile`'s runs."""
    vol = L.Volume(img)
    runs = dict(vol.clusters(vol.attr_runs(2, L.AT_DATA)))
    offset = (lsn & ((1 << (64 - rep["seq_number_bits"])) - 1)) * 8 + 0x30 + field
    assert offset % 512 != 510, "the field is not held by the update sequence array"
    disk = runs[offset // vol.cluster] * vol.cluster + offset % vol.cluster
    with open(img, "r+b") as f:
        f.seek(disk)
        f.write(code.to_bytes(2, "little"))


def last_freeing(rep):
    """The LSN of the last record whose undo frees a record (the unfinished transaction's
    `Noop/DeallocateFileRecordSegment`)."""
    return [r["lsn"] for r in rep["records"] if r.get("undo") == L.DEALLOC_FRS][-1]


def make_unrelated(d):
    """PRE (the CrowdStrike folder with csagent.sys only, and ProgramData/Cache), POST (then
    ProgramData/Cache/a.tmp) and POST2 (then ProgramData/Cache/b.tmp): changes that leave the
    rule's folders (the root, Windows, System32, drivers, CrowdStrike) alone."""
    pre, post, post2 = (os.path.join(d, n) for n in ("pre.img", "post.img", "post2.img"))
    with open(pre, "wb") as f:
        f.truncate(16 << 20)
    rc, out = run(["mkntfs", "-Q", "-F", "-q", "-c", "4096", "-L", "Windows", pre], env=clock("2024-01-15 09:00:00"))
    assert rc == 0, out
    run(["ntfslabel", "--new-serial=0123456789abcdef", pre])
    mnt = os.path.join(d, "mnt")

    def setup(m):
        os.makedirs(os.path.join(m, CS))
        os.makedirs(os.path.join(m, "ProgramData/Cache"))
        with open(os.path.join(m, CS, "csagent.sys"), "w") as f:
            f.write("agent\n")
    mounted(pre, mnt, "2024-03-04 11:20:00", setup)
    for src, dst, name, when in ((pre, post, "a.tmp", "2024-07-19 04:09:30"), (post, post2, "b.tmp", "2024-07-19 04:09:40")):
        shutil.copy(src, dst)

        def create(m, name=name):
            with open(os.path.join(m, "ProgramData/Cache", name), "w") as f:
                f.write("tmp\n")
        mounted(dst, mnt, when, create)
    return pre, post, post2


def listing(img, v2=False):
    """ntfsrecover -n -f -v: per LSN (first listing) the fields it prints (-k for a 2.0 log)."""
    rc, out = run(["ntfsrecover", "-n", "-f", "-v"] + (["-k"] if v2 else []) + [img])
    recs, cur = {}, None
    for line in out.splitlines():
        w = line.split()
        if len(w) < 2:
            continue
        if w[0] == "this_lsn":
            lsn = int(w[1], 16)
            cur = None if lsn in recs else recs.setdefault(lsn, {"lcns": []})
            continue
        if cur is None:
            continue
        if w[0] in ("record_type", "transaction_id", "redo_operation", "undo_operation", "target_attribute",
                    "lcns_to_follow", "record_offset", "attribute_offset", "cluster_index", "target_vcn",
                    "redo_length", "undo_length"):
            cur.setdefault(w[0], int(w[1], 16))
        if line.lstrip().startswith("(") and "lcn" in line:
            # "(k offs 0x...) lcn 0x..."
            cur["lcns"].append(int(line.split("lcn")[-1].split()[0], 16))
    return rc, recs, out


def compare(replayed, post, in_use=False, skip=()):
    """Places where two images of one volume differ outside `$LogFile`: an `INDX` block compared
    whole up to its entries' end, file records one by one, both without page LSN and update
    sequence number. With `in_use`, file records are compared up to their bytes in use, as
    index blocks are up to their entries' end: where an entry or attribute left a record, ntfs-3g
    leaves the bytes that moved down past the new end, a replay zeroes them, and no reader looks
    there. The records numbered in `skip` are not compared."""
    a, b = L.Volume(replayed), L.Volume(post)
    skipped = set(b.record_pos(n)[0] for n in skip)
    log = set(l for _, l in b.clusters(b.attr_runs(2, L.AT_DATA)))
    bad = []
    c, clusters = 0, len(b.img) // b.cluster
    while c < clusters:
        start = c * b.cluster
        if c in log:
            c += 1
            continue
        if b.img[start:start + 4] == b"INDX" and a.img[start:start + 4] == b"INDX":
            size = max(b.idx_size, b.cluster)
            p, q = a.img[start:start + b.idx_size], b.img[start:start + b.idx_size]
            if p != q and L.masked(p) != L.masked(q):
                # Past the entries' end is slack: ntfs-3g leaves the bytes an insertion moved up
                # there, other writers other bytes; no reader looks at them.
                mp, mq = L.masked(p), L.masked(q)
                end = 0x18 + L.u32(mq, 0x1C)
                if mp[:0x28] != mq[:0x28] or mp[:end] != mq[:end]:
                    bad.append("index block at cluster %d" % c)
            if a.img[start + b.idx_size:start + size] != b.img[start + b.idx_size:start + size]:
                bad.append("cluster %d after its index block" % c)
            c += size // b.cluster
            continue
        x, y = a.img[start:start + b.cluster], b.img[start:start + b.cluster]
        if x != y:
            unit = min(b.rec_size, b.cluster)
            for o in range(0, b.cluster, unit):
                p, q = x[o:o + unit], y[o:o + unit]
                if start + o in skipped:
                    continue
                if p != q and L.masked(p) != L.masked(q):
                    mp, mq = L.masked(p), L.masked(q)
                    if in_use and mp[:4] == mq[:4] == b"FILE":
                        used = L.u32(mq, 0x18)
                        if mp[:used] == mq[:used]:
                            continue
                    bad.append("cluster %d +0x%x" % (c, o))
        c += 1
    return bad


def check_listing(name, crashed, rep, fails, v2=False):
    """ntfsrecover must list every record the writer wrote, with the values written."""
    rc, recs, out = listing(crashed, v2)
    for r in rep["records"]:
        got = recs.get(r["lsn"])
        if got is None:
            fails.append("%s: ntfsrecover does not list LSN 0x%x" % (name, r["lsn"]))
            continue
        if r.get("restart"):
            if got.get("record_type") != 2:
                fails.append("%s: 0x%x listed as type %s, written as a client restart record" % (name, r["lsn"], got.get("record_type")))
            continue
        want = dict(record_type=1, transaction_id=r["transaction"], redo_operation=r["redo"], undo_operation=r["undo"],
                    target_attribute=r["target_attribute"], lcns_to_follow=len(r["lcns"]),
                    record_offset=r["record_offset"], attribute_offset=r["attribute_offset"],
                    cluster_index=r["cluster_index"], target_vcn=r["target_vcn"])
        for k, v in want.items():
            if got.get(k) != v:
                fails.append("%s: LSN 0x%x %s: ntfsrecover reads %s, written %s" % (name, r["lsn"], k, got.get(k), v))
        if r["lcns"] and got["lcns"][:len(r["lcns"])] != r["lcns"]:
            fails.append("%s: LSN 0x%x LCNs: ntfsrecover reads %s, written %s" % (name, r["lsn"], got["lcns"], r["lcns"]))


def judge(name, d, crashed, post, rep, fails, v2=False):
    check_listing(name, crashed, rep, fails, v2)
    replayed = os.path.join(d, name.replace("/", "-") + ".replayed.img")
    shutil.copy(crashed, replayed)
    rc, out = run(["ntfsrecover", "-s", "-v"] + (["-k"] if v2 else []) + [replayed])
    with open(replayed + ".ntfsrecover.txt", "w") as f:
        f.write(out)
    if rc != 0 or "Syncing successful" not in out:
        fails.append("%s: ntfsrecover -s failed (exit %d), see %s" % (name, rc, replayed + ".ntfsrecover.txt"))
        return
    bad = compare(replayed, post)
    if bad:
        fails.append("%s: after ntfsrecover -s, differs from POST at %s" % (name, bad[:8]))
    listed = mounted(replayed, os.path.join(d, "mnt"), None, lambda m: sorted(os.listdir(os.path.join(m, CS))))
    if N032 not in listed:
        fails.append("%s: ntfs-3g does not list %s after the replay (%s)" % (name, N032, listed))
    # Without the replay the 04:09 file is not on the volume: the log alone holds it.
    bare = os.path.join(d, name.replace("/", "-") + ".unreplayed.img")
    shutil.copy(crashed, bare)
    run(["ntfsfix", "-d", bare])
    listed = mounted(bare, os.path.join(d, "mnt"), None, lambda m: sorted(os.listdir(os.path.join(m, CS))))
    if N032 in listed:
        fails.append("%s: the crashed volume already lists %s without replay" % (name, N032))
    print("%s: %d records written, all listed by ntfsrecover with the values written; ntfsrecover -s gives POST"
          % (name, len(rep["records"])) if not fails else "%s: see failures" % name)


def ntfsinfo_inode(img, path):
    """The MFT record ntfs-3g's ntfsinfo finds at `path`."""
    rc, out = run(["ntfsinfo", "-F", path, img])
    for line in out.splitlines():
        if line.startswith("Dumping Inode "):
            return int(line.split()[2])
    raise SystemExit("ntfsinfo -F %s %s: %s" % (path, img, out))


def judge_deletion(name, d, crashed, pre, post, rep, freed, fails):
    """The committed deletion of Windows/Temp/x.tmp (record `freed`): ntfsrecover lists the
    records as written; `ntfsrecover -s` gives POST on every metadata byte up to each record's
    bytes in use, but for the freed record, which must be free (ntfsrecover neither increments
    its sequence number, §11.7, nor zeroes its link count as ntfs-3g's delete does); ntfs-3g then
    lists no x.tmp, and lists it without the replay."""
    check_listing(name, crashed, rep, fails)
    replayed = os.path.join(d, name.replace("/", "-") + ".replayed.img")
    shutil.copy(crashed, replayed)
    rc, out = run(["ntfsrecover", "-s", "-v", replayed])
    with open(replayed + ".ntfsrecover.txt", "w") as f:
        f.write(out)
    if rc != 0 or "Syncing successful" not in out:
        fails.append("%s: ntfsrecover -s failed (exit %d), see %s" % (name, rc, replayed + ".ntfsrecover.txt"))
        return
    bad = compare(replayed, post, in_use=True, skip=[freed])
    if bad:
        fails.append("%s: after ntfsrecover -s, differs from POST at %s" % (name, bad[:8]))
    r = L.Volume(replayed).record(freed)
    if r is None or L.u16(r, 0x16) & 1:
        fails.append("%s: ntfsrecover left record %d in use" % (name, freed))
    temp = mounted(replayed, os.path.join(d, "mnt"), None, lambda m: sorted(os.listdir(os.path.join(m, "Windows/Temp"))))
    if temp:
        fails.append("%s: ntfs-3g lists %s in Windows/Temp after the replay" % (name, temp))
    bare = os.path.join(d, name.replace("/", "-") + ".unreplayed.img")
    shutil.copy(crashed, bare)
    run(["ntfsfix", "-d", bare])
    temp = mounted(bare, os.path.join(d, "mnt"), None, lambda m: sorted(os.listdir(os.path.join(m, "Windows/Temp"))))
    if temp != ["x.tmp"]:
        fails.append("%s: the crashed volume lists %s in Windows/Temp, not x.tmp" % (name, temp))
    print("%s: %d records written, all listed by ntfsrecover with the values written; ntfsrecover -s "
          "frees record %d and gives POST elsewhere" % (name, len(rep["records"]), freed)
          if not fails else "%s: see failures" % name)


def main():
    if len(sys.argv) == 4 and sys.argv[1] in ("--compare", "--compare-in-use"):
        bad = compare(sys.argv[2], sys.argv[3], in_use=sys.argv[1] == "--compare-in-use")
        for b in bad:
            print("differs at %s" % b)
        return 1 if bad else 0
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    if os.geteuid() != 0:
        skip("needs root for ntfs-3g FUSE mounts")
    if not os.path.exists("/dev/fuse"):
        skip("no /dev/fuse")
    for tool in ("mkntfs", "ntfs-3g", "ntfsrecover", "ntfslabel", "ntfsfix"):
        if not shutil.which(tool):
            skip("%s is missing (apt-get install ntfs-3g)" % tool)
    if not glob.glob("/usr/lib/*/faketime/libfaketime.so.1") + glob.glob("/usr/lib/faketime/libfaketime.so.1"):
        skip("libfaketime is missing (apt-get install faketime)")
    d = sys.argv[1]
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    pre, post, post2 = make_images(d)
    fails = []
    crashed = os.path.join(d, "committed.img")
    rep = L.build(pre, post, crashed, report=crashed + ".json")
    judge("committed", d, crashed, post, rep, fails)
    crashed = os.path.join(d, "flushed-and-uncommitted.img")
    new_record = [k for k in rep["t1_targets"] if k[0] == "mft" and k[1] >= 16][-1]
    rep = L.build(pre, post, crashed, post2_path=post2, flush=["t1:mft:%d" % new_record[1]],
                  report=crashed + ".json")
    if not rep["t2_targets"]:
        fails.append("flushed-and-uncommitted: the second operation changed nothing")
    judge("flushed-and-uncommitted", d, crashed, post, rep, fails)
    # The same cases in an LFS 2.0 log (docs/logfile-format.md §17.7), judged with ntfsrecover's
    # --kill-fast-restart (it refuses a 2.0 log without it): the committed 04:09 creation with the
    # log's last page in place and in a buffer page, only in a buffer page, and torn in place
    # beside a good buffer copy; and the flushed-and-uncommitted case.
    d5 = os.path.join(d, "v2")
    os.makedirs(d5)
    shutil.copy(post, os.path.join(d5, "post.img"))
    for name, end_page in (("committed", "in-place"), ("buffer-only", "buffer-only"), ("torn", "torn")):
        crashed = os.path.join(d5, name + ".img")
        rep2 = L.build(pre, post, crashed, report=crashed + ".json", lfs2=True, end_page=end_page)
        judge("v2/" + name, d5, crashed, post, rep2, fails, v2=True)
    crashed = os.path.join(d5, "flushed-and-uncommitted.img")
    rep2 = L.build(pre, post, crashed, post2_path=post2, flush=["t1:mft:%d" % new_record[1]],
                   report=crashed + ".json", lfs2=True)
    judge("v2/flushed-and-uncommitted", d5, crashed, post, rep2, fails, v2=True)
    # Two more crashed volumes for kaifuku's undo pass, which ntfsrecover cannot judge (it has no
    # undo in -s, docs/logfile-format.md §10.6): the unfinished x.tmp creation with its changes
    # of existing records on disk (a replay must take them back: POST), and with its new record
    # on disk (a replay must free it again: POST but for that record, now free).
    mft = lambda keys: ["t2:mft:%d" % k[1] for k in keys if k[0] == "mft"]
    existing = [k for k in rep["t2_targets"] if k[0] == "mft" and k[1] < 70]
    new = [k for k in rep["t2_targets"] if k[0] == "mft" and k[1] >= 70]
    for name, flush in (("uncommitted-on-disk", mft(existing)), ("uncommitted-new-record-on-disk", mft(new))):
        crashed = os.path.join(d, name + ".img")
        rep_u = L.build(pre, post, crashed, post2_path=post2,
                        flush=["t1:mft:%d" % new_record[1]] + flush, report=crashed + ".json")
        print("%s: written, flushed %s" % (name, flush))
    # A journal kaifuku cannot replay: the last volume with the undo operation of x.tmp's record
    # allocation rewritten as UpdateRelativeDataInIndex (0x23), whose effect no source describes.
    crashed = os.path.join(d, "unknown-undo.img")
    shutil.copy(os.path.join(d, "uncommitted-new-record-on-disk.img"), crashed)
    shutil.copy(os.path.join(d, "uncommitted-new-record-on-disk.img.json"), crashed + ".json")
    patch_operation(crashed, rep_u, last_freeing(rep_u), 0x23, field=2)
    print("unknown-undo: written, LSN 0x%x's undo made UpdateRelativeDataInIndex" % last_freeing(rep_u))
    # The 04:09 name into an index block (AddIndexEntryAllocation), in a directory of 40 more files.
    d2 = os.path.join(d, "index-block")
    os.makedirs(d2)
    pre2, post_b, _ = make_images(d2, extra=40)
    crashed = os.path.join(d2, "committed.img")
    rep = L.build(pre2, post_b, crashed, report=crashed + ".json")
    if not any(r.get("redo") == L.ADD_ALLOC for r in rep["records"]):
        fails.append("index-block: the 04:09 name did not go into an index block")
    judge("index-block", d2, crashed, post_b, rep, fails)
    # A journal kaifuku cannot replay (the unfinished b.tmp creation with its new record on
    # disk and an undo operation no source describes, as in `unknown-undo`) whose pending
    # updates all stay in ProgramData/Cache, away from the rule's folders.
    d3 = os.path.join(d, "unrelated")
    os.makedirs(d3)
    pre3, post3, post3b = make_unrelated(d3)
    probe = L.build(pre3, post3, os.path.join(d3, "probe.img"), post2_path=post3b)
    t1_records = [k[1] for k in probe["t1_targets"] if k[0] == "mft"]
    t1_new = max(t1_records)
    t2_new = [k[1] for k in probe["t2_targets"] if k[0] == "mft" and k[1] not in t1_records]
    os.remove(os.path.join(d3, "probe.img"))
    crashed = os.path.join(d3, "refused.img")
    rep3 = L.build(pre3, post3, crashed, post2_path=post3b,
                   flush=["t1:mft:%d" % t1_new] + ["t2:mft:%d" % k for k in t2_new],
                   report=crashed + ".json")
    patch_operation(crashed, rep3, last_freeing(rep3), 0x23, field=2)
    print("unrelated/refused: written, flushed t1 %d, t2 %s; LSN 0x%x's undo made "
          "UpdateRelativeDataInIndex" % (t1_new, t2_new, last_freeing(rep3)))
    # The journal left for Windows: the a.tmp overwrite committed and unflushed, its
    # UpdateFileNameRoot (0x13) written as UpdateRelativeDataInIndex (0x23), which kaifuku's replay
    # refuses by name while the analysis still attributes it (a.tmp's entry in ProgramData/Cache).
    d4 = os.path.join(d, "left")
    os.makedirs(d4)
    pre4, post4 = make_left(d4)
    crashed = os.path.join(d4, "refused.img")
    rep = L.build(pre4, post4, crashed, report=crashed + ".json")
    renamed = [r["lsn"] for r in rep["records"] if r.get("redo") == 0x13]
    if not renamed:
        fails.append("left: the overwrite logged no UpdateFileNameRoot")
    else:
        patch_operation(crashed, rep, renamed[0], 0x23)
        print("left/refused: written, LSN 0x%x's redo made UpdateRelativeDataInIndex" % renamed[0])
    # A finished deletion: PRE holds x.tmp (POST2 of the first cases), POST is PRE after ntfs-3g
    # deleted x.tmp at 04:09:40; the deletion committed, nothing of it flushed.
    d6 = os.path.join(d, "deleted")
    os.makedirs(d6)
    pre6, post6 = os.path.join(d6, "pre.img"), os.path.join(d6, "post.img")
    shutil.copy(post2, pre6)
    shutil.copy(post2, post6)
    freed = ntfsinfo_inode(pre6, "Windows/Temp/x.tmp")
    mounted(post6, os.path.join(d6, "mnt"), "2024-07-19 04:09:40",
            lambda m: os.remove(os.path.join(m, "Windows/Temp/x.tmp")))
    crashed = os.path.join(d6, "committed.img")
    rep = L.build(pre6, post6, crashed, report=crashed + ".json")
    if not any(r.get("redo") == L.DEALLOC_FRS for r in rep["records"]):
        fails.append("deleted: the deletion logged no DeallocateFileRecordSegment")
    judge_deletion("deleted", d6, crashed, pre6, post6, rep, freed, fails)
    for f in fails:
        print("JOURNAL-REPLAY FAIL %s" % f)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
