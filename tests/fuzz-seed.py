#!/usr/bin/env python3
"""Seed the fuzz targets (fuzz/fuzz_targets/*.rs) from the test fixtures, and build the small NTFS
volume the whole-image targets mutate.

Usage: fuzz-seed.py FIXTURES FUZZDIR

FIXTURES is the directory tests/make-fixtures.py fills (its images and *.expected.json). Writes
FUZZDIR/data/volume.img + volume.regions and FUZZDIR/corpus/<target>/seed-* (both ignored by git).

Everything is cut from images made by real tools, at places found by independent tools: the
volume offsets and record sizes come from the fixtures' expected answers (sfdisk, ntfsinfo), the
bytes of $MFT, index allocations and $LogFile from sleuthkit's icat, run locations from istat. The
small volume is made with mkntfs and populated through an ntfs-3g mount. Undo-file seeds come from
`kaifuku fix` itself when the release binary is built (there is no other writer of the format).
Needs root (the FUSE mount), ntfs-3g, sleuthkit, qemu-img.
"""

import glob
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import time

KiB = 1024
MiB = 1024 * KiB

CS_DIR = "Windows/System32/drivers/CrowdStrike"
CS_HEADER = bytes.fromhex("aaaaaaaa01002301")


def run(cmd, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    if p.returncode != 0:
        raise SystemExit("fuzz-seed: %s failed (%d): %s" % (" ".join(cmd), p.returncode,
                                                           p.stderr.decode(errors="replace")))
    return p.stdout


class Corpus:
    def __init__(self, root):
        self.root = root

    def add(self, target, data):
        d = os.path.join(self.root, target)
        os.makedirs(d, exist_ok=True)
        name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


# ---------------------------------------------------------------------------------------------
# Input formats of the targets (see fuzz/src/lib.rs)
# ---------------------------------------------------------------------------------------------

def sparse(size, segments, flags=0):
    """The Sparse format: flags, size, then (offset, len, bytes) segments."""
    out = bytearray([flags]) + struct.pack("<Q", size)
    for off, data in segments:
        for i in range(0, len(data), 0xFFFF):
            chunk = data[i:i + 0xFFFF]
            out += struct.pack("<QH", off + i, len(chunk)) + chunk
    return bytes(out)


def nonzero_runs(f, ranges, unit=512):
    """(offset, bytes) for the non-zero runs of `unit`-byte pieces of f within the ranges."""
    segs = []
    for start, length in ranges:
        f.seek(start)
        data = f.read(length)
        cur = None
        for i in range(0, len(data), unit):
            piece = data[i:i + unit]
            if any(piece):
                if cur and cur[0] + len(cur[1]) == start + i:
                    cur[1].extend(piece)
                else:
                    cur = [start + i, bytearray(piece)]
                    segs.append(cur)
            else:
                cur = None
    return [(o, bytes(b)) for o, b in segs]


# ---------------------------------------------------------------------------------------------
# sleuthkit helpers
# ---------------------------------------------------------------------------------------------

def tsk(volume_off, ss):
    return ["-f", "ntfs", "-b", str(ss), "-o", str(volume_off // ss)]


def icat(img, volume_off, ss, spec, limit=None):
    out = run(["icat"] + tsk(volume_off, ss) + [img, spec])
    return out[:limit] if limit else out


def istat_runs(img, volume_off, ss, inode):
    """{(type, name): [cluster, ...]} of the non-resident attributes istat lists."""
    text = run(["istat"] + tsk(volume_off, ss) + [img, str(inode)]).decode(errors="replace")
    out, cur = {}, None
    in_attrs = False
    for line in text.splitlines():
        if line.startswith("Attributes:"):
            in_attrs = True
            continue
        if not in_attrs:
            continue
        m = re.match(r"Type: (\S+) \((\d+)-(\d+)\)\s+Name: (\S+)\s+(Non-Resident|Resident)", line)
        if m:
            cur = (m.group(1), m.group(4)) if m.group(5) == "Non-Resident" else None
            if cur:
                out.setdefault(cur, [])
            continue
        if cur and re.match(r"^[\d ]+$", line.strip()):
            out[cur].extend(int(x) for x in line.split())
    return out


def cluster_ranges(clusters, cs):
    """Contiguous byte ranges of a cluster list."""
    ranges = []
    for c in clusters:
        if ranges and ranges[-1][0] + ranges[-1][1] == c * cs:
            ranges[-1][1] += cs
        else:
            ranges.append([c * cs, cs])
    return [(a, b) for a, b in ranges]


# ---------------------------------------------------------------------------------------------
# NTFS record walking (only to find where seeds lie; nothing is judged here)
# ---------------------------------------------------------------------------------------------

def unfixup(rec):
    rec = bytearray(rec)
    usa_ofs, usa_cnt = struct.unpack_from("<HH", rec, 4)
    for i in range(1, usa_cnt):
        end = i * 512 - 2
        if end + 2 > len(rec) or usa_ofs + 2 * i + 2 > len(rec):
            break
        rec[end:end + 2] = rec[usa_ofs + 2 * i:usa_ofs + 2 * i + 2]
    return bytes(rec)


def attributes(rec):
    """(type, non_resident, raw) of the attributes of a fixed-up FILE record."""
    off = struct.unpack_from("<H", rec, 0x14)[0]
    used = struct.unpack_from("<I", rec, 0x18)[0]
    out = []
    while off + 8 <= min(used, len(rec)):
        ty, ln = struct.unpack_from("<II", rec, off)
        if ty == 0xFFFFFFFF or ln < 0x18 or off + ln > len(rec):
            break
        out.append((ty, rec[off + 8] != 0, rec[off:off + ln]))
        off += ln
    return out


# ---------------------------------------------------------------------------------------------
# Seeds cut from the fixtures
# ---------------------------------------------------------------------------------------------

def ntfs_volumes(fixtures):
    """(image path, volume dict, expected dict) of every NTFS volume of the raw fixtures."""
    for exp_path in sorted(glob.glob(os.path.join(fixtures, "*.raw.expected.json"))):
        exp = json.load(open(exp_path))
        img = os.path.join(fixtures, exp["image"])
        for v in exp.get("volumes", []):
            if v.get("fs") == "ntfs":
                yield img, v, exp


def seed_ntfs(fixtures, corpus):
    for img, v, exp in ntfs_volumes(fixtures):
        off, ss = v["offset"], v["sector_size"]
        cs, rs, irs = v["cluster_size"], v["mft_record_size"], v["index_record_size"]
        with open(img, "rb") as f:
            f.seek(off)
            boot = f.read(512)
        corpus.add("ntfs_boot", struct.pack("<Q", v["volume_size"]) + boot)
        corpus.add("ntfs_boot", struct.pack("<Q", v["volume_size"] + ss) + boot)

        mft = icat(img, off, ss, "0", limit=4 * MiB)
        wanted = list(range(0, 16)) + [24, 25, 26, 27]
        wanted += [m["mft_record"] for m in v.get("matches", [])]
        dirs = v.get("directories", {})
        wanted += [d["mft_record"] for d in dirs.values()]
        for n in sorted(set(wanted)):
            raw = mft[n * rs:(n + 1) * rs]
            if len(raw) < rs or raw[:4] != b"FILE":
                continue
            corpus.add("mft_record", raw)
            rec = unfixup(raw)
            for ty, nonres, a in attributes(rec):
                if nonres and len(a) >= 0x40:
                    mp = struct.unpack_from("<H", a, 0x20)[0]
                    lowest = struct.unpack_from("<Q", a, 0x10)[0]
                    data_size = struct.unpack_from("<Q", a, 0x30)[0]
                    head = struct.pack("<QBQI", lowest, cs.bit_length() - 10, 0,
                                       min(data_size, 0xFFFFFFFF))
                    corpus.add("runlist", head + a[mp:])
                elif ty == 0x90 and not nonres:
                    vlen, voff = struct.unpack_from("<IH", a, 0x10)
                    corpus.add("index_node", b"\x00" + a[voff:voff + vlen])
        for d in dirs.values():
            try:
                alloc = icat(img, off, ss, "%d-160" % d["mft_record"], limit=16 * irs)
            except SystemExit:
                continue  # a root-only index has no allocation
            for i in range(0, len(alloc) - irs + 1, irs):
                blk = alloc[i:i + irs]
                if blk[:4] == b"INDX":
                    corpus.add("index_node", b"\x01" + blk)

        log = icat(img, off, ss, "2", limit=64 * KiB)
        full = len(icat(img, off, ss, "2"))
        corpus.add("logfile", struct.pack("<I", full) + log[:8192])
        corpus.add("logfile", struct.pack("<I", full) + log[:16384])

        names = json.load(open(os.path.join(fixtures, "%s.vol%d.files.json"
                                            % (exp["image"], v.get("partition") or 0))))
        cs_names = [p.split("/")[-1] for p in names if p.startswith(CS_DIR + "/")][:12]
        for n in cs_names:
            pat = "C-00000291*.sys".encode("utf-16-le")
            corpus.add("upcase", b"\x00" + bytes([len(pat) // 2]) + pat + n.encode("utf-16-le"))


def seed_partitions(fixtures, corpus):
    imgs = sorted(glob.glob(os.path.join(fixtures, "*.raw"))) + \
        sorted(glob.glob(os.path.join(fixtures, "bad", "*.raw")))
    for img in imgs:
        size = os.path.getsize(img)
        # Both GPT copies (34 sectors of 512 bytes, or 6 of 4096) and the MBR.
        ranges = [(0, min(size, 24 * KiB)), (max(0, size - 24 * KiB), min(size, 24 * KiB))]
        with open(img, "rb") as f:
            # The EBR chain and the first sector of every partition the MBR(s) name.
            s0 = f.read(512)
            todo = []
            if s0[510:512] == b"\x55\xaa":
                for i in range(4):
                    e = s0[446 + 16 * i:446 + 16 * (i + 1)]
                    ty, lba, n = e[4], struct.unpack_from("<I", e, 8)[0], struct.unpack_from("<I", e, 12)[0]
                    if ty and n:
                        todo.append((lba, ty in (0x05, 0x0F, 0x85), lba))
            seen = set()
            while todo and len(seen) < 64:
                lba, ext, ext_base = todo.pop()
                if lba in seen or lba * 512 >= size:
                    continue
                seen.add(lba)
                ranges.append((lba * 512, 512))
                if ext:
                    f.seek(lba * 512)
                    ebr = f.read(512)
                    for i in range(2):
                        e = ebr[446 + 16 * i:446 + 16 * (i + 1)]
                        ty, rel = e[4], struct.unpack_from("<I", e, 8)[0]
                        if not ty:
                            continue
                        if ty in (0x05, 0x0F, 0x85):
                            todo.append((ext_base + rel, True, ext_base))
                        else:
                            todo.append((lba + rel, False, ext_base))
            segs = nonzero_runs(f, ranges)
        corpus.add("partitions", sparse(size, segs, 0))
        corpus.add("partitions", sparse(size, segs, 1))


def qcow2_ranges(f, head, size):
    """The metadata a qcow2 reader walks (qcow2.txt): L1 table, the first L2 tables, the refcount
    table and blocks, and the start of the first clusters the L2 tables map (compressed data
    included), so that mutations reach every level."""
    cbits = struct.unpack(">I", head[20:24])[0]
    if not 9 <= cbits <= 21:
        return []
    cluster = 1 << cbits
    ext_l2 = len(head) >= 80 and struct.unpack(">I", head[4:8])[0] >= 3 and head[79] & 16
    l1_size, l1_at = struct.unpack(">IQ", head[36:48])
    rt_at, rt_clusters = struct.unpack(">QI", head[48:60])
    take = lambda at, n: [(at, min(n, 64 * KiB))] if 0 < at < size else []
    out = take(l1_at, l1_size * 8) + take(rt_at, rt_clusters * cluster)
    mask = 0x00FFFFFFFFFFFE00
    f.seek(rt_at)
    for e in struct.unpack(">%dQ" % min(rt_clusters * cluster // 8, 64), f.read(8 * min(rt_clusters * cluster // 8, 64))):
        out += take(e & mask, cluster)
    f.seek(l1_at)
    l1 = struct.unpack(">%dQ" % min(l1_size, 4), f.read(8 * min(l1_size, 4)))
    step = 16 if ext_l2 else 8
    for e in [e & mask for e in l1 if e & mask][:4]:
        out += take(e, cluster)
        f.seek(e)
        table = f.read(min(cluster, 64 * KiB))
        mapped = 0
        for i in range(0, len(table) - 7, step):
            d = struct.unpack(">Q", table[i:i + 8])[0]
            if d & (1 << 62):
                x = 62 - (cbits - 8)
                at = d & ((1 << x) - 1)
                n = (((d >> x) & ((1 << (cbits - 8)) - 1)) + 1) * 512
            else:
                at, n = d & mask, 4 * KiB
            if at:
                out += take(at, min(n, 8 * KiB))
                mapped += 1
            if mapped == 12:
                break
    return out
def vmdk_ranges(f, head, size):
    """The metadata a VMDK sparse-extent reader walks (VMware's Virtual Disk Format 5.0): the
    descriptor, both grain directories, the first grain tables, and the start of the first grains
    they map (for streamOptimized, the grain marker and compressed data)."""
    desc_at, desc_n, gtes, rgd_at, gd_at = struct.unpack_from("<QQIQQ", head, 28)
    if not 1 <= gtes <= 512:
        return []
    take = lambda at, n: [(at, min(n, 64 * KiB))] if 0 < at < size else []
    out = take(desc_at * 512, desc_n * 512) + take(rgd_at * 512, 4 * KiB)
    if gd_at == 0xFFFFFFFFFFFFFFFF:
        return out + [(max(0, size - 1536), min(size, 1536))]
    out += take(gd_at * 512, 4 * KiB)
    f.seek(gd_at * 512)
    gd = f.read(16)
    for gde in struct.unpack("<%dI" % (len(gd) // 4), gd):
        if not gde:
            continue
        out += take(gde * 512, gtes * 4)
        f.seek(gde * 512)
        table = f.read(gtes * 4)
        grains = [g for g in struct.unpack("<%dI" % (len(table) // 4), table) if g > 1][:8]
        for g in grains:
            out += take(g * 512, 1024)
    return out


def vhdx_ranges(f):
    """The VHDX metadata kaifuku reads: both headers and region tables, the metadata table and its
    items, the first BAT page, and the start of the first present blocks."""
    ranges = [(64 * KiB, 256 * KiB)]
    f.seek(192 * KiB)
    rt = f.read(64 * KiB)
    if rt[:4] != b"regi":
        return ranges
    regions = {}
    for i in range(min(struct.unpack("<I", rt[8:12])[0], 2047)):
        e = rt[16 + i * 32:48 + i * 32]
        regions[e[:4]] = (struct.unpack("<Q", e[16:24])[0], struct.unpack("<I", e[24:28])[0])
    meta = regions.get(bytes([0x06, 0xA2, 0x7C, 0x8B]))
    bat = regions.get(bytes([0x66, 0x77, 0xC2, 0x2D]))
    if meta:
        ranges += [(meta[0], 64 * KiB), (meta[0] + 64 * KiB, 4 * KiB)]
    if bat:
        ranges.append((bat[0], min(bat[1], 4 * KiB)))
        f.seek(bat[0])
        entries = struct.unpack("<%dQ" % (min(bat[1], 4 * KiB) // 8), f.read(min(bat[1], 4 * KiB)))
        for e in [e for e in entries if e & 7 == 6][:8]:
            ranges.append(((e >> 20) << 20, 1024))
    return ranges


def seed_containers(fixtures, corpus, tmp):
    files = sorted(glob.glob(os.path.join(fixtures, "*.vhd"))) + \
        sorted(glob.glob(os.path.join(fixtures, "bad", "*.vhd"))) + \
        sorted(glob.glob(os.path.join(fixtures, "*.qcow2"))) + \
        sorted(glob.glob(os.path.join(fixtures, "*.vhdx")))
    # Small images of every format qemu-img writes, the refused ones included.
    raw = os.path.join(tmp, "small.raw")
    with open(raw, "wb") as f:
        f.truncate(5 * MiB)
        for at in (0, 1 * MiB + 4096, 4 * MiB + 512):
            f.seek(at)
            f.write(hashlib.sha256(str(at).encode()).digest() * 16)
    for fmt, opts, name in [("vpc", "subformat=dynamic", "dyn.vhd"), ("vpc", "subformat=fixed", "fixed.vhd"),
                            ("vpc", "subformat=dynamic,force_size=on", "dynfs.vhd"),
                            ("vhdx", "", "x.vhdx"), ("vhdx", "subformat=fixed,block_size=1M", "xf.vhdx"),
                            ("vhdx", "subformat=dynamic,block_size=1M", "xd.vhdx"),
                            ("vmdk", "", "v.vmdk"),
                            ("vmdk", "subformat=monolithicSparse,zeroed_grain=on", "vz.vmdk"),
                            ("vmdk", "subformat=streamOptimized", "st.vmdk"),
                            ("vmdk", "subformat=monolithicFlat", "flat.vmdk"),
                            ("qcow2", "compat=0.10", "q2.qcow2"), ("qcow2", "compat=1.1", "q3.qcow2"),
                            ("qcow2", "compat=1.1,cluster_size=4k", "q3-4k.qcow2"),
                            ("qcow2", "compat=1.1,extended_l2=on", "q3-ext.qcow2"),
                            ("qcow2", "compat=1.1,refcount_bits=1", "q3-rc1.qcow2"),
                            ("qcow2", "compat=1.1 -c", "q3-c.qcow2"),
                            ("qcow2", "compat=1.1,cluster_size=4k -c", "q3-4k-c.qcow2"),
                            ("qcow2", "compat=1.1 snapshot", "q3-snap.qcow2")]:
        out = os.path.join(tmp, name)
        words = opts.split()
        cmd = ["qemu-img", "convert", "-O", fmt] + (["-o", words[0]] if words else []) + \
            (["-c"] if "-c" in words else []) + [raw, out]
        run(cmd)
        if "snapshot" in words:
            run(["qemu-img", "snapshot", "-c", "s1", out])
        files.append(out)
    for path in files:
        size = os.path.getsize(path)
        ranges = [(0, min(size, 64 * KiB)), (max(0, size - 4 * KiB), min(size, 4 * KiB))]
        with open(path, "rb") as f:
            tail = (f.seek(size - 512), f.read(512))[1]
            if tail[:8] == b"conectix" and struct.unpack(">I", tail[60:64])[0] == 3:
                hdr_at = struct.unpack(">Q", tail[16:24])[0]
                f.seek(hdr_at)
                h = f.read(1024)
                if h[:8] == b"cxsparse":
                    bat_at = struct.unpack(">Q", h[16:24])[0]
                    entries = struct.unpack(">I", h[28:32])[0]
                    ranges.append((hdr_at, 1024))
                    ranges.append((bat_at, min(entries * 4, 64 * KiB)))
                    f.seek(bat_at)
                    bat = struct.unpack(">%dI" % min(entries, 16 * KiB), f.read(4 * min(entries, 16 * KiB)))
                    for e in [e for e in bat if e != 0xFFFFFFFF][:8]:
                        ranges.append((e * 512, 1024))  # bitmap and the first data sector
            f.seek(0)
            head = f.read(104)
            if head[:4] == b"QFI\xfb":
                ranges += qcow2_ranges(f, head, size)
            if head[:8] == b"vhdxfile":
                ranges += vhdx_ranges(f)
            if head[:4] == b"KDMV" and len(head) >= 64:
                ranges += vmdk_ranges(f, head, size)
            segs = nonzero_runs(f, ranges)
        corpus.add("container", sparse(size, segs, 0))
        corpus.add("container", sparse(size, segs, 1))


def seed_undo(fixtures, corpus, tmp, repo):
    exe = os.path.join(repo, "target", "release", "kaifuku")
    if not os.access(exe, os.X_OK):
        print("fuzz-seed: no target/release/kaifuku; the undo target starts from an empty corpus")
        return
    # A streamOptimized VMDK is extended by its fix: its undo file is of version 3.
    stream = os.path.join(tmp, "mbr-win-stream.vmdk")
    mbr = os.path.join(fixtures, "mbr-win.raw")
    if os.path.exists(mbr):
        run(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", mbr, stream])
    for name, extra in [("cs-rootonly.raw", []), ("mbr-win.raw", []), ("bare-64k.raw", ["--discard-journal"]),
                        (stream, [])]:
        img = os.path.join(fixtures, name)
        if not os.path.exists(img):
            continue
        out, undo = os.path.join(tmp, name + ".out"), os.path.join(tmp, name + ".undo")
        p = subprocess.run([exe, "fix", img, "-o", out, "--undo", undo] + extra,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if p.returncode == 0 and os.path.exists(undo):
            data = open(undo, "rb").read()
            # The target's flag byte: as written, and with both checksums resealed.
            corpus.add("undo", b"\x00" + data)
            corpus.add("undo", b"\x03" + data)
        for p_ in (out, undo):
            if os.path.exists(p_):
                os.remove(p_)


# ---------------------------------------------------------------------------------------------
# The small volume of the whole-image targets
# ---------------------------------------------------------------------------------------------

def make_volume(datadir, tmp):
    img = os.path.join(tmp, "volume.img")
    with open(img, "wb") as f:
        f.truncate(3 * MiB)
    run(["mkntfs", "-F", "-Q", "-q", "-c", "512", "-s", "512", "-p", "0", "-H", "0", "-S", "0",
         "-L", "Windows", img])
    mnt = os.path.join(tmp, "mnt")
    os.makedirs(mnt)
    proc = subprocess.Popen(["ntfs-3g", "-o", "rw,no_detach", img, mnt],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while not os.path.ismount(mnt):
            if proc.poll() is not None or time.time() > deadline:
                raise SystemExit("fuzz-seed: ntfs-3g could not mount the small volume")
            time.sleep(0.02)
        cs = os.path.join(mnt, CS_DIR)
        os.makedirs(cs)
        os.makedirs(os.path.join(mnt, "Windows/System32/config"))
        for i in range(6):
            with open(os.path.join(mnt, "Windows/System32/drivers/drv%02d.sys" % i), "wb") as f:
                f.write(hashlib.sha256(b"drv%d" % i).digest() * (i + 1))
        # Enough channel files that the directory's index needs INDX blocks.
        for i in range(40):
            with open(os.path.join(cs, "C-%08d-00000000-00000001.sys" % (100 + 7 * i)), "wb") as f:
                f.write(hashlib.sha256(b"ch%d" % i).digest() * 2)
        for name, body in [("C-00000291-00000000-00000032.sys", CS_HEADER + bytes(5000)),
                           ("C-00000291-00000000-00000033.sys", CS_HEADER + b"\x11" * 3000)]:
            with open(os.path.join(cs, name), "wb") as f:
                f.write(body)
        # A Win32 name with its DOS twin, as Windows writes them.
        subprocess.run(["setfattr", "-n", "system.ntfs_dos_name", "-v", "C-0000~1.SYS",
                        os.path.join(cs, "C-00000291-00000000-00000033.sys")], check=True)
        os.sync()
    finally:
        for _ in range(50):
            if subprocess.run(["umount", mnt], stderr=subprocess.DEVNULL).returncode == 0:
                break
            time.sleep(0.1)
        proc.wait(timeout=60)

    size = os.path.getsize(img)
    cs = 512
    regions = [(0, 512, "boot sector"), (size - 512, 512, "backup boot sector")]

    def inode_of(path):
        out = run(["ifind", "-f", "ntfs", "-n", path, img]).decode().strip()
        return int(out.split("-")[0])

    mft = istat_runs(img, 0, 512, 0)
    mft_ranges = cluster_ranges(mft[("$DATA", "N/A")], cs)
    mft_bytes = icat(img, 0, 512, "0")
    # One region per record in use, so mutations land in records rather than in free slots.
    pos = 0
    for start, length in mft_ranges:
        for r in range(start, start + length, 1024):
            n = (pos + r - start) // 1024
            rec = mft_bytes[n * 1024:(n + 1) * 1024]
            if rec[:4] == b"FILE" and struct.unpack_from("<H", rec, 0x16)[0] & 1:
                regions.append((r, 1024, "MFT record %d" % n))
        pos += length
    for key, runs in mft.items():
        if key != ("$DATA", "N/A"):
            regions += [(a, b, "$MFT %s" % key[0]) for a, b in cluster_ranges(runs, cs)]
    for inode, what, limit in [(1, "$MFTMirr", None), (2, "$LogFile restart pages", 8192),
                               (6, "$Bitmap", None), (10, "$UpCase", None)]:
        left = limit
        for a, b in cluster_ranges(istat_runs(img, 0, 512, inode).get(("$DATA", "N/A"), []), cs):
            if left is not None:
                b = min(b, left)
                left -= b
            if b > 0:
                regions.append((a, b, what))
    for path in ["/", "Windows", "Windows/System32", "Windows/System32/drivers", CS_DIR]:
        ino = 5 if path == "/" else inode_of(path)
        for key, runs in istat_runs(img, 0, 512, ino).items():
            regions += [(a, b, "%s %s" % (path, key[0])) for a, b in cluster_ranges(runs, cs)]
    for name in ["C-00000291-00000000-00000032.sys", "C-00000291-00000000-00000033.sys"]:
        runs = istat_runs(img, 0, 512, inode_of(CS_DIR + "/" + name)).get(("$DATA", "N/A"), [])
        if runs:
            regions.append((runs[0] * cs, cs, name + " first cluster"))
    os.makedirs(datadir, exist_ok=True)
    shutil.copyfile(img, os.path.join(datadir, "volume.img"))
    with open(os.path.join(datadir, "volume.regions"), "w") as f:
        f.write("# start length what (byte ranges of the volume's metadata)\n")
        for a, b, what in regions:
            f.write("%d %d %s\n" % (a, b, what))
    return regions


def seed_hives(corpus, tmp, repo):
    """The hive target: the hivex-made SYSTEM hives (tests/make-hive-fixtures.py --hives-only),
    dirty and clean, each with and without the resealing flag (SOFTWARE is larger than the
    target's inputs)."""
    out = os.path.join(tmp, "hives")
    rc = subprocess.run(["python3", os.path.join(repo, "tests", "make-hive-fixtures.py"), "--hives-only", out],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if rc.returncode != 0:
        print("fuzz-seed: no hives (%s); the hive target starts from an empty corpus"
              % rc.stdout.decode("utf-8", "replace").strip())
        return
    for name in ("SYSTEM", "SYSTEM.clean"):
        with open(os.path.join(out, name), "rb") as f:
            data = f.read()
        corpus.add("hive", b"\x00" + data)
        corpus.add("hive", b"\x01" + data)


def seed_rule_files(corpus, repo):
    """The rule_file target: every TOML example of the README (the documented rule file), plus
    variants that reach each check: a rule under the root, a `$Extend` path, an offset time, a
    header, and nesting."""
    with open(os.path.join(repo, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    examples = re.findall(r"```toml\n(.*?)```", readme, re.S)
    for text in examples:
        corpus.add("rule_file", text.encode("utf-8"))
    rule = ("format = 1\n[[rule]]\nid = \"r\"\ndirectory = '%s'\nname = '%s'\n%s\n"
            "[rule.title]\nen = \"t\"\nja = \"\u3061\"\n[rule.description]\nen = \"d\"\nja = \"\u305b\"\n")
    for directory, name, extra in [
        ("\\", "notes*.txt", ""),
        ("\\$Extend\\$RmMetadata", "*", ""),
        ("\\Windows\\System32\\config\\TxR", "*.TxR.blf", "min_windows_build = 14393"),
        ("\\ProgramData\\A", "CH-??*.bin", 'header = "de ad be ef"'),
        ("\\ProgramData\\A", "x*", "faulty = { from = 2025-03-02T04:09:00+09:00, to = 2025-03-02T04:10:00Z }"),
        ("\\ProgramData\\A", "x*", "fixed_from = 2025-03-02"),
        ("\\A", "*a*b*c*d*e*f*g*h*", "windows_only = false"),
    ]:
        corpus.add("rule_file", (rule % (directory, name, extra)).encode("utf-8"))
    corpus.add("rule_file", b"format = 1\nx = " + b"[" * 100 + b"]" * 100 + b"\n")


def seed_vmdk_descriptors(corpus, tmp):
    """The vmdk_descriptor target: the descriptors qemu-img writes for every descriptor-based
    subformat, an ESXi-style one (VMFS extent, CRLF line ends, a name with a space) and a child."""
    for sub in ["monolithicFlat", "twoGbMaxExtentFlat", "twoGbMaxExtentSparse"]:
        out = os.path.join(tmp, "desc-%s.vmdk" % sub)
        run(["qemu-img", "create", "-f", "vmdk", "-o", "subformat=" + sub, out, "5G"])
        with open(out, "rb") as f:
            corpus.add("vmdk_descriptor", f.read())
    esxi = ("# Disk DescriptorFile\r\nversion=1\r\nencoding=\"UTF-8\"\r\nCID=fffffffe\r\n"
            "parentCID=ffffffff\r\ncreateType=\"vmfs\"\r\n\r\n# Extent description\r\n"
            "RW 83886080 VMFS \"web 01-flat.vmdk\"\r\n\r\n# The Disk Data Base\r\n#DDB\r\n\r\n"
            "ddb.adapterType = \"lsilogic\"\r\nddb.uuid = \"60 00 C2 9f 2b 1a 5e 4c\"\r\n")
    corpus.add("vmdk_descriptor", esxi.encode())
    corpus.add("vmdk_descriptor", esxi.replace("parentCID=ffffffff", "parentCID=12345678").encode())
    corpus.add("vmdk_descriptor", b"# Disk DescriptorFile\nRW 100 FLAT \"a\" 2048\nRW 7 FLAT \"b\"\n")


def seed_bitlocker(corpus, tmp, repo):
    """The Windows-made volumes of the shared BitLocker test set (GPL data: read from beside the
    project at seeding time; the corpus stays on this machine). They are stored trimmed: a few
    KiB of boot sector, metadata blocks and relocated sectors, so each seed is the volume whole."""
    archive = os.path.join(repo, "..", "shared", "testdata", "bitlk", "bitlk-images.tar.xz")
    if not os.path.exists(archive):
        print("fuzz-seed: no BitLocker test set beside the project; the bitlocker target gets no seeds")
        return
    names = ["bitlk-aes-xts-128-clearkey-only", "bitlk-aes-xts-128", "bitlk-aes-xts-256",
             "bitlk-aes-cbc-128", "bitlk-aes-cbc-elephant-128", "bitlk-aes-xts-128-4k",
             "bitlk-togo-aes-xts-128", "bitlk-aes-xts-128-eow"]
    with tarfile.open(archive) as t:
        for name in names:
            member = t.getmember("bitlk-images/%s.img" % name)
            with t.extractfile(member) as f:
                data = f.read()
            path = os.path.join(tmp, name + ".img")
            with open(path, "wb") as out:
                out.write(data)
            with open(path, "rb") as f:
                segs = nonzero_runs(f, [(0, len(data))])
            corpus.add("bitlocker", sparse(len(data), segs))
            corpus.add("bitlocker", sparse(len(data), segs, 1))


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    fixtures, fuzzdir = sys.argv[1], sys.argv[2]
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.exists(os.path.join(fixtures, "stamp")):
        raise SystemExit("fuzz-seed: no fixtures in %s; run tests/make-fixtures.py first" % fixtures)
    corpus = Corpus(os.path.join(fuzzdir, "corpus"))
    with tempfile.TemporaryDirectory(prefix="kaifuku-fuzz-seed-") as tmp:
        regions = make_volume(os.path.join(fuzzdir, "data"), tmp)
        seed_ntfs(fixtures, corpus)
        seed_partitions(fixtures, corpus)
        seed_containers(fixtures, corpus, tmp)
        seed_undo(fixtures, corpus, tmp, repo)
        seed_hives(corpus, tmp, repo)
        seed_rule_files(corpus, repo)
        seed_vmdk_descriptors(corpus, tmp)
        seed_bitlocker(corpus, tmp, repo)
    # Whole-image targets: the volume as it is, and one small change in each region.
    for t in ["inspect_image", "check_image"]:
        corpus.add(t, b"")
    corpus.add("plan_image", b"\x00")
    corpus.add("plan_image", b"\x01")
    for i in range(min(len(regions), 256)):
        m = bytes([i]) + struct.pack("<I", 0x10)[:3] + b"\x02\xff\xff"
        corpus.add("inspect_image", m)
        corpus.add("check_image", m)
        corpus.add("plan_image", b"\x00" + m)
    for d in sorted(os.listdir(corpus.root)):
        print("fuzz-seed: %-14s %4d seeds" % (d, len(os.listdir(os.path.join(corpus.root, d)))))


if __name__ == "__main__":
    main()
