#!/usr/bin/env python3
"""Derive kaifuku's hostile-image suite from the test fixtures.

Usage: make-hostile.py [--force] [--list] FIXTURES OUTDIR

FIXTURES is the directory made by tests/make-fixtures.py.  Every variant is a sparse copy of
one fixture with a few deliberate defects: truncation, flipped bytes in every structure, update
sequence (fixup) mismatches, huge sizes and counts, index loops, runlists past the volume / onto
$MFT / cross-linked, self-referencing records, bad sector and cluster sizes, overlapping
partitions, VHD BAT aliasing, and the silent-damage cases of the reliability issue.

The structures are located by this script's own small NTFS / GPT / MBR / VHD reader (struct
only), which shares no code with kaifuku: the suite judges kaifuku's reader, so it must not be
built with it.  Where a defect is meant to be *semantic* (a runlist onto $MFT, a cross-link, a
hidden index entry, a loop, a self-reference), the record or INDX block is rewritten with valid
update sequence fixups, so that only the intended defect is present; fixup mismatches are their
own category.

OUTDIR/manifest.json lists every variant: its file, the fixture it was made from, what was
changed (structure, offset, length), and the contract the runner (crates/cli/tests/hostile.rs)
holds kaifuku to:

  refuse   exit 2 or 3 with a message, and no output file
  either   that, or exit 0 with an output that kaifuku check, sleuthkit (blkstat, ifind) and
           ntfsfix -n confirm
  nothing  exit 1 (only where no NTFS structure was touched)
  fixed    exit 0 with a confirmed output (only where no NTFS structure was touched)

Deterministic: random choices come from random.Random seeded by the variant name.  To keep the
suite small on disk, each variant starts from a "slim" copy of its fixture in which the data
clusters of ordinary files (every file but the rule's targets; never metadata, directories,
$Extend files or any index) are left as holes: no NTFS structure and nothing kaifuku reads
changes.  If OUTDIR/stamp holds sha256(this script, FIXTURES/manifest.json), nothing is done.
"""

import argparse
import errno
import hashlib
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import time
import zlib

MiB = 1024 * 1024
SCRIPT_PATH = os.path.abspath(__file__)
CS_DIR = "Windows/System32/drivers/CrowdStrike"
PATH_DIRS = ["/", "Windows", "Windows/System32", "Windows/System32/drivers", CS_DIR]


class HostileError(Exception):
    pass


def need(cond, msg):
    if not cond:
        raise HostileError(msg)


def u16(b, o):
    return struct.unpack_from("<H", b, o)[0]


def u32(b, o):
    return struct.unpack_from("<I", b, o)[0]


def u64(b, o):
    return struct.unpack_from("<Q", b, o)[0]


def put(b, o, fmt, v):
    struct.pack_into(fmt, b, o, v)


# ---------------------------------------------------------------------------
# Containers: raw, VHD fixed, VHD dynamic (virtual offset -> file offset)
# ---------------------------------------------------------------------------

def vhd_checksum(b):
    c = bytearray(b)
    c[64:68] = b"\0\0\0\0"
    return (~sum(c)) & 0xFFFFFFFF


def vhd_dyn_checksum(b):
    c = bytearray(b)
    c[36:40] = b"\0\0\0\0"
    return (~sum(c)) & 0xFFFFFFFF


class Container:
    def __init__(self, path, kind):
        self.path = path
        self.kind = kind
        self.f = open(path, "rb")
        self.file_size = os.fstat(self.f.fileno()).st_size
        if kind == "raw":
            self.size = self.file_size
        else:
            foot = self.pread(self.file_size - 512, 512)
            need(foot[:8] == b"conectix", "%s: no VHD footer" % path)
            need(struct.unpack(">I", foot[64:68])[0] == vhd_checksum(foot), "%s: footer checksum" % path)
            self.footer_off = self.file_size - 512
            self.size = struct.unpack(">Q", foot[48:56])[0]
            dtype = struct.unpack(">I", foot[60:64])[0]
            if kind == "vhd-fixed":
                need(dtype == 2 and self.size == self.file_size - 512, "%s: not a fixed VHD" % path)
            else:
                need(dtype == 3, "%s: not a dynamic VHD" % path)
                self.header_off = struct.unpack(">Q", foot[16:24])[0]
                h = self.pread(self.header_off, 1024)
                need(h[:8] == b"cxsparse", "%s: no dynamic header" % path)
                self.bat_off = struct.unpack(">Q", h[16:24])[0]
                self.bat_entries = struct.unpack(">I", h[28:32])[0]
                self.block_size = struct.unpack(">I", h[32:36])[0]
                bm = self.block_size // 512 // 8
                self.bitmap_size = (bm + 511) // 512 * 512
                raw = self.pread(self.bat_off, 4 * self.bat_entries)
                self.bat = list(struct.unpack(">%dI" % self.bat_entries, raw))

    def pread(self, off, n):
        return os.pread(self.f.fileno(), n, off)

    def map(self, voff, n):
        """[(file_offset or None, length)] covering virtual [voff, voff+n)."""
        need(voff >= 0 and voff + n <= self.size, "%s: virtual range %d+%d outside the disk" % (self.path, voff, n))
        if self.kind != "vhd-dynamic":
            return [(voff, n)]
        out = []
        while n > 0:
            blk, within = divmod(voff, self.block_size)
            k = min(n, self.block_size - within)
            e = self.bat[blk]
            out.append((None if e == 0xFFFFFFFF else e * 512 + self.bitmap_size + within, k))
            voff += k
            n -= k
        return out

    def read(self, voff, n):
        parts = []
        for fo, k in self.map(voff, n):
            parts.append(bytes(k) if fo is None else self.pread(fo, k))
        return b"".join(parts)

    def block_of(self, voff):
        return voff // self.block_size


# ---------------------------------------------------------------------------
# NTFS: boot sector, $MFT, records, attributes, runs, indexes
# ---------------------------------------------------------------------------

def unfixup(raw, stride=512):
    """The record with its update sequence applied; ok=False when a stride end does not hold the USN."""
    b = bytearray(raw)
    usa_ofs, usa_cnt = u16(b, 4), u16(b, 6)
    need(usa_cnt >= 2 and (usa_cnt - 1) * stride == len(b) and usa_ofs + 2 * usa_cnt <= len(b),
         "odd update sequence %d/%d for %d bytes" % (usa_ofs, usa_cnt, len(b)))
    usn = b[usa_ofs:usa_ofs + 2]
    ok = True
    for i in range(1, usa_cnt):
        end = i * stride
        if b[end - 2:end] != usn:
            ok = False
        b[end - 2:end] = b[usa_ofs + 2 * i:usa_ofs + 2 * i + 2]
    return b, ok


def fixup(fixed, stride=512):
    """Inverse of unfixup: save each stride's last word in the USA and put the USN there."""
    b = bytearray(fixed)
    usa_ofs, usa_cnt = u16(b, 4), u16(b, 6)
    usn = b[usa_ofs:usa_ofs + 2]
    for i in range(1, usa_cnt):
        end = i * stride
        b[usa_ofs + 2 * i:usa_ofs + 2 * i + 2] = b[end - 2:end]
        b[end - 2:end] = usn
    return b


def decode_runs(b, o):
    """Mapping pairs at b[o:] -> ([(lcn or None, count)], end offset)."""
    runs = []
    lcn = 0
    while True:
        h = b[o]
        if h == 0:
            return runs, o + 1
        ln, lo = h & 0xF, h >> 4
        count = int.from_bytes(b[o + 1:o + 1 + ln], "little")
        if lo:
            lcn += int.from_bytes(b[o + 1 + ln:o + 1 + ln + lo], "little", signed=True)
            runs.append((lcn, count))
        else:
            runs.append((None, count))
        o += 1 + ln + lo


def _minimal(v, signed):
    n = 1
    while True:
        try:
            v.to_bytes(n, "little", signed=signed)
            return n
        except OverflowError:
            n += 1


def encode_runs(runs):
    """[(lcn or None, count)] -> mapping pairs, terminated."""
    out = bytearray()
    prev = 0
    for lcn, count in runs:
        ln = _minimal(count, False)
        if lcn is None:
            out.append(ln)
            out += count.to_bytes(ln, "little")
            continue
        d = lcn - prev
        lo = _minimal(d, True)
        out.append(ln | (lo << 4))
        out += count.to_bytes(ln, "little") + d.to_bytes(lo, "little", signed=True)
        prev = lcn
    out.append(0)
    return bytes(out)


class Attr:
    def __init__(self, rec, off):
        self.off = off
        self.type = u32(rec, off)
        self.len = u32(rec, off + 4)
        self.nonres = rec[off + 8]
        nl, no = rec[off + 9], u16(rec, off + 10)
        self.name = rec[off + no:off + no + 2 * nl].decode("utf-16-le")
        if self.nonres:
            self.start_vcn, self.last_vcn = u64(rec, off + 16), u64(rec, off + 24)
            self.runs_off = off + u16(rec, off + 32)
            self.alloc_size, self.data_size, self.init_size = u64(rec, off + 40), u64(rec, off + 48), u64(rec, off + 56)
            self.runs, self.runs_end = decode_runs(rec, self.runs_off)
        else:
            self.value_len = u32(rec, off + 16)
            self.value_off = off + u16(rec, off + 20)


def attrs(rec):
    out = []
    o = u16(rec, 0x14)
    while o + 8 <= len(rec) and u32(rec, o) != 0xFFFFFFFF:
        a = Attr(rec, o)
        need(a.len >= 24 and o + a.len <= len(rec), "bad attribute length %d at %d" % (a.len, o))
        out.append(a)
        o += a.len
    return out


def find_attr(rec, ty, name=""):
    for a in attrs(rec):
        if a.type == ty and a.name == name:
            return a
    return None


def set_runs(rec, a, runs, keep_vcn=False):
    """Rewrites the mapping pairs of non-resident attribute `a` in record `rec` (fixups removed),
    growing the attribute (and moving the ones after it) when the new pairs need more room."""
    enc = encode_runs(runs)
    space = a.off + a.len - a.runs_off
    if len(enc) > space:
        delta = (len(enc) - space + 7) // 8 * 8
        biu, alloc = u32(rec, 0x18), u32(rec, 0x1C)
        need(biu + delta <= alloc, "no room to grow the runlist")
        end = a.off + a.len
        rec[end + delta:biu + delta] = rec[end:biu]
        rec[end:end + delta] = bytes(delta)
        put(rec, a.off + 4, "<I", a.len + delta)
        put(rec, 0x18, "<I", biu + delta)
        a.len += delta
    rec[a.runs_off:a.off + a.len] = enc + bytes(a.off + a.len - a.runs_off - len(enc))
    if not keep_vcn:
        put(rec, a.off + 24, "<Q", a.start_vcn + sum(c for _, c in runs) - 1)


class Entry:
    def __init__(self, b, o):
        self.off = o
        self.ref = u64(b, o)
        self.rec = self.ref & 0xFFFFFFFFFFFF
        self.length = u16(b, o + 8)
        self.key_len = u16(b, o + 10)
        self.flags = u16(b, o + 12)
        self.child = u64(b, o + self.length - 8) if self.flags & 1 else None
        self.name = None
        if not self.flags & 2 and self.key_len >= 66:
            n = b[o + 16 + 64]
            self.name = b[o + 16 + 66:o + 16 + 66 + 2 * n].decode("utf-16-le", "replace")
            self.ns = b[o + 16 + 65]

    @property
    def last(self):
        return bool(self.flags & 2)


def parse_entries(b, hdr):
    eo, il = u32(b, hdr), u32(b, hdr + 4)
    out = []
    o = hdr + eo
    while o + 16 <= hdr + il:
        e = Entry(b, o)
        need(e.length >= 16, "entry length %d" % e.length)
        out.append(e)
        if e.last:
            break
        o += e.length
    return out


class Node:
    """An index node: the root (inside the directory's record) or an INDX block."""
    def __init__(self, where, buf, hdr, vcn=None, pieces=None, ok=True):
        self.where = where        # "root" or block number
        self.buf = buf            # fixups removed
        self.hdr = hdr            # offset of the index header in buf
        self.vcn = vcn
        self.pieces = pieces      # INDX: disk pieces (volume-relative)
        self.fixup_ok = ok
        self.entries = parse_entries(buf, hdr)
        self.flags = buf[hdr + 12]
        self.index_length = u32(buf, hdr + 4)
        self.allocated = u32(buf, hdr + 8)


class Ntfs:
    def __init__(self, c, off, size, exp):
        self.c = c
        self.off = off
        self.size = size
        self.exp = exp
        b = c.read(off, 512)
        need(b[3:11] == b"NTFS    ", "no NTFS boot sector at %d" % off)
        self.boot = b
        self.bps = u16(b, 11)
        spc = b[13]
        self.spc = spc if spc <= 0x80 else 1 << (256 - spc)
        self.cs = self.bps * self.spc
        self.total_sectors = u64(b, 0x28)
        self.total_clusters = self.total_sectors * self.bps // self.cs
        self.mft_lcn, self.mirr_lcn = u64(b, 0x30), u64(b, 0x38)
        cpr = struct.unpack_from("<b", b, 0x40)[0]
        self.rs = cpr * self.cs if cpr > 0 else 1 << -cpr
        cpi = struct.unpack_from("<b", b, 0x44)[0]
        self.ibs = cpi * self.cs if cpi > 0 else 1 << -cpi
        need((self.cs, self.rs, self.mft_lcn) == (exp["cluster_size"], exp["mft_record_size"], exp["mft_lcn"]),
             "volume at %d: geometry disagrees with the fixture's expected answers" % off)
        self.vcn_unit = self.cs if self.cs <= self.ibs else 512
        # $MFT's own runs, from record 0 read at the boot sector's MFT LCN
        raw0 = c.read(off + self.mft_lcn * self.cs, self.rs)
        r0, ok = unfixup(raw0)
        need(raw0[:4] == b"FILE" and ok, "volume at %d: record 0 unreadable" % off)
        d = find_attr(r0, 0x80)
        self.mft_runs = d.runs
        self.mft_size = d.data_size
        self.records = self.mft_size // self.rs

    # -- byte ranges
    def pieces(self, runs, start, length):
        """Volume-relative (offset, length) pieces of stream bytes [start, start+length)."""
        out = []
        vcn = 0
        end = start + length
        for lcn, count in runs:
            a, b = vcn * self.cs, (vcn + count) * self.cs
            lo, hi = max(a, start), min(b, end)
            if lo < hi:
                need(lcn is not None, "sparse run inside a metadata stream")
                out.append((lcn * self.cs + lo - a, hi - lo))
            vcn += count
        need(sum(n for _, n in out) == length, "stream range %d+%d beyond its runs" % (start, length))
        return out

    def read_pieces(self, pieces):
        return b"".join(self.c.read(self.off + o, n) for o, n in pieces)

    def rec_pieces(self, n):
        return self.pieces(self.mft_runs, n * self.rs, self.rs)

    def rec_off(self, n):
        """Volume-relative offset of the record's first byte."""
        return self.rec_pieces(n)[0][0]

    def raw_record(self, n):
        return self.read_pieces(self.rec_pieces(n))

    def record(self, n):
        raw = self.raw_record(n)
        need(raw[:4] == b"FILE", "record %d: no FILE signature" % n)
        b, ok = unfixup(raw)
        need(ok, "record %d: fixup mismatch in the fixture" % n)
        return b

    def stream(self, n, ty, name=""):
        """(runs, data_size) or (None, resident bytes) of attribute ty/name of record n."""
        rec = self.record(n)
        a = find_attr(rec, ty, name)
        need(a is not None, "record %d has no attribute %x %s" % (n, ty, name))
        if a.nonres:
            return a.runs, a.data_size
        return None, bytes(rec[a.value_off:a.value_off + a.value_len])

    # -- indexes
    def index(self, n):
        """Every node of directory n's $I30: root first, then the INDX blocks in use."""
        rec = self.record(n)
        root = find_attr(rec, 0x90, "$I30")
        need(root is not None, "record %d is not a directory" % n)
        v = root.value_off
        block_size = u32(rec, v + 8)
        need(block_size == self.ibs, "record %d: index block size %d" % (n, block_size))
        nodes = [Node("root", rec, v + 16)]
        nodes[0].attr_off = root.off
        nodes[0].value_off = v
        alloc = find_attr(rec, 0xA0, "$I30")
        if alloc is None:
            return nodes
        bm_runs, bm = self.stream(n, 0xB0, "$I30")
        if bm_runs is not None:
            bm = self.read_pieces(self.pieces(bm_runs, 0, bm))
        for k in range(alloc.data_size // self.ibs):
            if not bm[k // 8] & (1 << (k % 8)):
                continue
            pcs = self.pieces(alloc.runs, k * self.ibs, self.ibs)
            raw = self.read_pieces(pcs)
            need(raw[:4] == b"INDX", "dir %d block %d: no INDX" % (n, k))
            b, ok = unfixup(raw)
            need(ok, "dir %d block %d: fixup mismatch in the fixture" % (n, k))
            nodes.append(Node(k, b, 0x18, vcn=u64(b, 0x10), pieces=pcs))
        return nodes

    def block_of_vcn(self, vcn):
        return vcn * self.vcn_unit // self.ibs

    def vcn_of_block(self, k):
        return k * self.ibs // self.vcn_unit

    def find_entry(self, dirrec, pred):
        """(node, index of entry) of the first entry satisfying pred, in tree order of nodes."""
        for node in self.index(dirrec):
            for i, e in enumerate(node.entries):
                if not e.last and pred(e):
                    return node, i
        raise HostileError("dir %d: entry not found" % dirrec)


def resize_in_record(rec, attr_off, at, delta):
    """Inserts (delta > 0) or removes (delta < 0) |delta| bytes at `at` inside the resident
    attribute at attr_off of record `rec`, keeping attribute, value and record lengths right."""
    biu, alloc = u32(rec, 0x18), u32(rec, 0x1C)
    need(delta % 8 == 0 and biu + delta <= alloc, "no room in the record")
    if delta > 0:
        rec[at + delta:biu + delta] = rec[at:biu]
        rec[at:at + delta] = bytes(delta)
    else:
        rec[at:biu + delta] = rec[at - delta:biu]
        rec[biu + delta:biu] = bytes(-delta)
    put(rec, attr_off + 4, "<I", u32(rec, attr_off + 4) + delta)
    put(rec, attr_off + 16, "<I", u32(rec, attr_off + 16) + delta)
    put(rec, 0x18, "<I", biu + delta)


def resize_in_node(node, at, delta):
    """Inserts/removes bytes at `at` in an index node's entry area; fixes index_length (and for
    the root, the attribute and record sizes and the header's allocated size)."""
    b, hdr = node.buf, node.hdr
    il = u32(b, hdr + 4)
    if node.where == "root":
        resize_in_record(b, node.attr_off, at, delta)
        put(b, hdr + 8, "<I", u32(b, hdr + 8) + delta)
    else:
        end = hdr + il
        need(il + delta <= u32(b, hdr + 8), "no room in the INDX block")
        if delta > 0:
            b[at + delta:end + delta] = b[at:end]
            b[at:at + delta] = bytes(delta)
        else:
            b[at:end + delta] = b[at - delta:end]
            b[end + delta:end] = bytes(-delta)
    put(b, hdr + 4, "<I", il + delta)


# ---------------------------------------------------------------------------
# Partition tables
# ---------------------------------------------------------------------------

class Gpt:
    def __init__(self, c, ss):
        self.c, self.ss = c, ss
        self.p_off = ss
        h = c.read(ss, 92)
        need(h[:8] == b"EFI PART", "no GPT header")
        self.hsize = u32(h, 12)
        self.b_off = u64(h, 32) * ss
        self.n, self.esz = u32(h, 80), u32(h, 84)
        self.p_entries = u64(h, 72) * ss
        bh = c.read(self.b_off, 92)
        need(bh[:8] == b"EFI PART", "no backup GPT header")
        self.b_entries = u64(bh, 72) * ss
        self.first_usable, self.last_usable = u64(h, 40), u64(h, 48)

    def entry(self, i):
        return bytearray(self.c.read(self.p_entries + i * self.esz, self.esz))

    def index_of(self, start_lba):
        for i in range(self.n):
            e = self.entry(i)
            if u64(e, 32) == start_lba and any(e[:16]):
                return i
        raise HostileError("no GPT entry starting at LBA %d" % start_lba)

    def header(self, backup=False):
        return bytearray(self.c.read(self.b_off if backup else self.p_off, self.hsize))

    @staticmethod
    def seal_header(h):
        h[16:20] = b"\0\0\0\0"
        put(h, 16, "<I", zlib.crc32(bytes(h)) & 0xFFFFFFFF)
        return h

    def with_entries(self, changes, copies=("primary", "backup"), seal=True):
        """Patches writing entry changes {index: bytes} into the chosen copies, with the
        entry-array CRC and the header CRC recomputed (seal) or left stale."""
        out = []
        for which in copies:
            base = self.p_entries if which == "primary" else self.b_entries
            arr = bytearray(self.c.read(base, self.n * self.esz))
            for i, e in changes.items():
                arr[i * self.esz:(i + 1) * self.esz] = e
                out.append((base + i * self.esz, bytes(e)))
            if seal:
                h = self.header(which == "backup")
                put(h, 88, "<I", zlib.crc32(bytes(arr)) & 0xFFFFFFFF)
                out.append((self.b_off if which == "backup" else self.p_off, bytes(self.seal_header(h))))
        return out

    def with_header(self, fn, copies=("primary", "backup")):
        out = []
        for which in copies:
            h = self.header(which == "backup")
            fn(h)
            out.append((self.b_off if which == "backup" else self.p_off, bytes(self.seal_header(h))))
        return out


def mbr_entries(sector):
    out = []
    for i in range(4):
        o = 446 + 16 * i
        out.append(dict(off=o, type=sector[o + 4], start=u32(sector, o + 8), size=u32(sector, o + 12)))
    return out


# ---------------------------------------------------------------------------
# Bases (one per fixture) and variants
# ---------------------------------------------------------------------------

SHORT = {".raw": "", ".vhd": "-vhd"}


class Base:
    def __init__(self, fixtures, name):
        self.name = name
        self.path = os.path.join(fixtures, name)
        self.exp = json.load(open(self.path + ".expected.json"))
        self.ext = os.path.splitext(name)[1]
        self.short = name[:-4] + SHORT[self.ext]
        self.c = Container(self.path, self.exp["container"])
        self.ss = self.exp["sector_size"]
        self.parts = {p["number"]: p for p in self.exp.get("partitions", [])}
        wins = [v for v in self.exp["volumes"] if v.get("windows")]
        need(len(wins) == 1, "%s: one Windows volume expected" % name)
        self.win = wins[0]
        size = self.parts[self.win["partition"]]["size"] if self.win["partition"] else self.c.size
        self.vol = Ntfs(self.c, self.win["offset"], size, self.win)
        self.dirs = {d: e["mft_record"] for d, e in self.win["directories"].items()}
        self.matches = self.win["matches"]
        self.targets = [m["mft_record"] for m in self.matches]
        faulty = [m for m in self.matches if m["name"].lower().endswith("32.sys")]
        self.t = faulty[0]["mft_record"] if faulty else None
        others = [r for r in self.targets if r != self.t]
        self.t2 = others[0] if others else None
        self.gpt = Gpt(self.c, self.ss) if self.exp["scheme"] == "gpt" else None
        self.slim = None
        self.drop = []
        self._records = None

    def kind_vhd(self):
        return self.c.kind != "raw"

    # Every in-use base record: (number, fixed bytes).
    def records(self):
        if self._records is None:
            out = []
            v = self.vol
            for n in range(v.records):
                raw = v.raw_record(n)
                if raw[:4] != b"FILE":
                    continue
                b, ok = unfixup(raw)
                if ok and u16(b, 0x16) & 1:
                    out.append((n, b))
            self._records = out
        return self._records

    def file_names(self, rec):
        out = []
        for a in attrs(rec):
            if a.type == 0x30 and not a.nonres:
                v = a.value_off
                out.append((u64(rec, v) & 0xFFFFFFFFFFFF, rec[v + 66:v + 66 + 2 * rec[v + 64]].decode("utf-16-le")))
        return out

    def data_runs_of(self, n):
        a = find_attr(self.vol.record(n), 0x80)
        return a.runs if a is not None and a.nonres else None

    def other_file(self):
        """A regular file outside the CrowdStrike directory with non-resident data: (record, runs)."""
        drivers = self.dirs["Windows/System32/drivers"]
        for n, rec in self.records():
            if n < 24 or n in self.targets or u16(rec, 0x16) & 2 or u64(rec, 0x20):
                continue
            names = self.file_names(rec)
            if not names or names[0][0] != drivers:
                continue
            a = find_attr(rec, 0x80)
            if a is not None and a.nonres and a.runs and all(l is not None for l, _ in a.runs) \
                    and sum(c for _, c in a.runs) >= 2:
                return n, a.runs
        raise HostileError("%s: no driver with non-resident data" % self.name)

    def free_clusters(self, count):
        """`count` consecutive clusters free in $Bitmap and in no runlist (searched from the middle)."""
        v = self.vol
        runs, size = v.stream(6, 0x80)
        bm = v.read_pieces(v.pieces(runs, 0, size))
        used = set()
        for n, rec in self.records():
            for a in attrs(rec):
                if a.nonres:
                    for l, c in a.runs:
                        if l is not None:
                            used.update(range(l, l + c))
        start = v.total_clusters // 2
        run = 0
        for lcn in range(start, v.total_clusters):
            if not bm[lcn // 8] & (1 << (lcn % 8)) and lcn not in used:
                run += 1
                if run == count:
                    return lcn - count + 1
            else:
                run = 0
        raise HostileError("%s: no %d free clusters" % (self.name, count))

    def compute_drop(self):
        """Volume data of ordinary files (virtual ranges): holes in the slim copy."""
        v = self.vol
        drop = []
        for n, rec in self.records():
            if n < 24 or n in self.targets or u64(rec, 0x20):
                continue
            names = self.file_names(rec)
            if not names or any(p == 11 for p, _ in names):
                continue  # $Extend's files are metadata
            for a in attrs(rec):
                if a.type == 0x80 and a.nonres:
                    for lcn, c in a.runs:
                        if lcn is not None:
                            drop.append((v.off + lcn * v.cs, c * v.cs))
        self.drop = drop


class Variant:
    def __init__(self, base, category, detail, expect, note):
        self.base = base
        self.name = "%s--%s--%s" % (base.short, category, detail)
        self.file = self.name + base.ext
        self.category = category
        self.expect = expect
        self.note = note
        self.patches = []       # (virtual offset, bytes)
        self.file_patches = []  # (file offset, bytes): container structures
        self.truncate = None
        self.changes = []
        self.in_walk = True
        self.check_must_flag = True
        self.fix_args = []
        self.named = False
        self.valid_pieces = []  # volume pieces that must hold a record/INDX block with valid fixups
        self.istat = []         # (record, clusters sleuthkit must list for it)

    def change(self, structure, offset, length, what, space="virtual"):
        self.changes.append(dict(structure=structure, offset=offset, length=length, what=what, space=space))

    def write(self, voff, data, structure, what):
        self.patches.append((voff, bytes(data)))
        self.change(structure, voff, len(data), what)

    def write_file(self, foff, data, structure, what):
        self.file_patches.append((foff, bytes(data)))
        self.change(structure, foff, len(data), what, space="file")

    def write_over(self, vol, pieces, old, new, structure, what):
        """Writes `new` over volume pieces that held `old`; records the changed span."""
        need(len(old) == len(new), "size change")
        pos = 0
        first = last = None
        for o, n in pieces:
            seg_old, seg_new = old[pos:pos + n], new[pos:pos + n]
            if seg_old != seg_new:
                self.patches.append((vol.off + o, bytes(seg_new)))
                diffs = [i for i in range(n) if seg_old[i] != seg_new[i]]
                a, b = vol.off + o + diffs[0], vol.off + o + diffs[-1] + 1
                first = a if first is None else min(first, a)
                last = b if last is None else max(last, b)
            pos += n
        need(first is not None, "%s: the mutation changed nothing (%s)" % (self.name, what))
        self.change(structure, first, last - first, what)

    def edit_record(self, n, fn, what, structure=None, vol=None):
        vol = vol or self.base.vol
        rec = vol.record(n)
        new = bytearray(rec)
        fn(new)
        self.write_over(vol, vol.rec_pieces(n), vol.raw_record(n), fixup(new), structure or "MFT record %d" % n,
                        what + " (fixups re-applied)")
        self.valid_pieces.append(vol.rec_pieces(n))

    def edit_raw_record(self, n, fn, what, structure=None):
        vol = self.base.vol
        old = vol.raw_record(n)
        new = bytearray(old)
        fn(new)
        self.write_over(vol, vol.rec_pieces(n), old, new, structure or "MFT record %d" % n, what)

    def edit_node(self, dirrec, node, fn, what):
        """fn(node) edits node.buf (fixups removed); written back with valid fixups."""
        vol = self.base.vol
        fn(node)
        if node.where == "root":
            self.write_over(vol, vol.rec_pieces(dirrec), vol.raw_record(dirrec), fixup(node.buf),
                            "MFT record %d ($INDEX_ROOT $I30)" % dirrec, what + " (fixups re-applied)")
            self.valid_pieces.append(vol.rec_pieces(dirrec))
        else:
            old = vol.read_pieces(node.pieces)
            self.write_over(vol, node.pieces, old, fixup(node.buf),
                            "INDX block %d (VCN %d) of directory %d" % (node.where, node.vcn, dirrec),
                            what + " (fixups re-applied)")
            self.valid_pieces.append(node.pieces)

    def edit_raw_node(self, dirrec, node, fn, what):
        vol = self.base.vol
        old = vol.read_pieces(node.pieces)
        new = bytearray(old)
        fn(new)
        self.write_over(vol, node.pieces, old, new,
                        "INDX block %d (VCN %d) of directory %d" % (node.where, node.vcn, dirrec), what)

    def flip(self, voff, length, count, rng, structure):
        old = self.base.c.read(voff, length)
        new = bytearray(old)
        spots = sorted(rng.sample(range(length), min(count, length)))
        for s in spots:
            new[s] ^= rng.randrange(1, 256)
        for s in spots:
            self.patches.append((voff + s, bytes([new[s]])))
        self.change(structure, voff, length, "%d byte(s) XORed at +%s" % (len(spots), ",".join(map(str, spots[:16]))))

    def flip_file(self, foff, length, count, rng, structure):
        old = self.base.c.pread(foff, length)
        new = bytearray(old)
        spots = sorted(rng.sample(range(length), min(count, length)))
        for s in spots:
            new[s] ^= rng.randrange(1, 256)
            self.file_patches.append((foff + s, bytes([new[s]])))
        self.change(structure, foff, length, "%d byte(s) XORed at +%s" % (len(spots), ",".join(map(str, spots[:16]))),
                    space="file")

    def manifest(self):
        return dict(name=self.name, file=self.file, base=self.base.name, category=self.category,
                    expect=self.expect, named=self.named, in_walk=self.in_walk,
                    check_must_flag=self.check_must_flag, fix_args=self.fix_args, note=self.note,
                    changes=self.changes, truncated_to=self.truncate,
                    windows_volume_offset=self.base.vol.off, target_records=self.base.targets)


# ---------------------------------------------------------------------------
# The variants
# ---------------------------------------------------------------------------

def rng_for(*parts):
    return random.Random(int.from_bytes(hashlib.sha256("/".join(parts).encode()).digest()[:8], "little"))


def first_lcn(runs):
    return [l for l, _ in runs if l is not None][0]


def total_of(runs):
    return sum(c for _, c in runs)


def node_with(b, dirrec, rec):
    """(node, entry index) of the long-name (non-DOS) entry naming record `rec` in directory dirrec."""
    return b.vol.find_entry(dirrec, lambda e: e.rec == rec and getattr(e, "ns", 0) != 2)


def new_variant(b, out, category, detail, expect, note, named=False):
    v = Variant(b, category, detail, expect, note)
    v.named = named
    out.append(v)
    return v


def set_attr_runs(v, n, ty, runs, note, fix_alloc=False, name=""):
    vol = v.base.vol

    def fn(rec):
        a = find_attr(rec, ty, name)
        set_runs(rec, a, runs)
        if fix_alloc:
            put(rec, a.off + 40, "<Q", total_of(runs) * vol.cs)
    v.edit_record(n, fn, note, "MFT record %d (mapping pairs of attribute 0x%X%s)" % (n, ty, " " + name if name else ""))
    # (sleuthkit shows a run at LCN 0 as sparse, so those are not cross-checked with istat)
    # (nor are runs listing a cluster twice: sleuthkit drops the repeat)
    clusters = [l + k for l, c in runs if l is not None for k in range(c)]
    if ty == 0x80 and not name and all(l and l + c <= vol.total_clusters for l, c in runs) \
            and len(set(clusters)) == len(clusters) \
            and total_of(runs) < 4096:
        v.istat.append((n, [l + k for l, c in runs for k in range(c)]))


def gen_silent(b):
    """The silent-damage cases named by the reliability issue: each must be refused."""
    out = []
    vol = b.vol
    if b.t is not None:
        t = b.t
        truns = b.data_runs_of(t)
        need(truns and len(truns) == 1, "%s: the faulty file should have one data run" % b.name)
        tl, total = truns[0]
        other_rec, oruns = b.other_file()
        sib = b.data_runs_of(b.t2)

        def tv(detail, runs, note, fix_alloc=False, rec=t):
            v = new_variant(b, out, "silent", detail, "refuse", note, named=True)
            set_attr_runs(v, rec, 0x80, runs, note, fix_alloc)
            return v

        mft_run_end = vol.mft_runs[0][0] + vol.mft_runs[0][1]
        tv("target-run-into-mft", [(vol.mft_lcn, total)],
           "the faulty file's $DATA runlist points into $MFT (LCN %d); deleting it would mark $MFT clusters free" % vol.mft_lcn)
        tv("target-run-at-lcn0", [(0, total)],
           "the faulty file's $DATA runlist starts at LCN 0 (the boot sector); deleting it would free the boot clusters")
        take = min(total, sib[0][1])
        tv("target-run-crosslinked-sibling", [(sib[0][0], take)] + ([(tl + take, total - take)] if total > take else []),
           "the faulty file's clusters are cross-linked with the other matching file (record %d)" % b.t2)
        take = min(total, oruns[0][1])
        tv("target-run-crosslinked-driver", [(oruns[0][0], take)] + ([(tl + take, total - take)] if total > take else []),
           "the faulty file's clusters are cross-linked with a driver file (record %d) that stays" % other_rec)
        if total >= 2:
            tv("target-run-partial-crosslink", [(oruns[0][0], 1), (tl + 1, total - 1)],
               "the faulty file's first cluster is also the first cluster of record %d" % other_rec)
        tv("target-run-past-volume", [(vol.total_clusters - max(1, total // 2), total)],
           "the faulty file's run ends past the last cluster of the volume (%d clusters)" % vol.total_clusters)
        tv("target-run-far-past-volume", [(vol.total_clusters * 64 + 17, total)],
           "the faulty file's run starts far past the end of the volume")
        tv("target-run-into-mft-tail", [(mft_run_end - 1, total)],
           "the faulty file's run starts on the last cluster of $MFT's first run")
        tv("target-run-onto-mftmirr", [(vol.mirr_lcn, total)], "the faulty file's run lies on $MFTMirr")
        for rec, label in ((6, "bitmap"), (2, "logfile"), (10, "upcase")):
            tv("target-run-onto-%s" % label, [(first_lcn(b.data_runs_of(rec)), total)],
               "the faulty file's run lies on the data of system file %d" % rec)
        mftbm = find_attr(vol.record(0), 0xB0)
        tv("target-run-onto-mft-bitmap", [(first_lcn(mftbm.runs), total)], "the faulty file's run lies on $MFT:$BITMAP")
        for d in (CS_DIR, "Windows/System32/drivers"):
            alloc = find_attr(vol.record(b.dirs[d]), 0xA0, "$I30")
            if alloc is not None:
                tv("target-run-onto-dir-index", [(first_lcn(alloc.runs), total)],
                   "the faulty file's run lies on an INDX block of %s" % d)
                break
        tv("target-run-self-overlap", [(tl, total), (tl, total)],
           "the faulty file lists its own clusters twice (allocated size adjusted to match)", fix_alloc=True)
        if b.t2 is not None:
            s_total = total_of(sib)
            tv("target2-run-into-mft", [(vol.mft_lcn + 1, s_total)],
               "the other matching file's runlist points into $MFT", rec=b.t2)

        # The structures the fix writes: a bad runlist there makes it write elsewhere.
        bm_runs = find_attr(vol.record(0), 0xB0).runs
        n = total_of(bm_runs)
        for detail, runs, note in (
                ("mft-bitmap-run-at-lcn0", [(0, n)], "$MFT:$BITMAP's runlist points at LCN 0: the fix would write the record bit into the boot sector"),
                ("mft-bitmap-run-into-mft", [(vol.mft_lcn, n)], "$MFT:$BITMAP's runlist points at $MFT's first cluster"),
                ("mft-bitmap-run-past-volume", [(vol.total_clusters + 5, n)], "$MFT:$BITMAP's runlist points past the volume")):
            v = new_variant(b, out, "silent", detail, "refuse", note, named=True)
            set_attr_runs(v, 0, 0xB0, runs, note)
        br = b.data_runs_of(6)
        n = total_of(br)
        cases = [("bitmap-run-at-lcn0", [(0, n)], "$Bitmap's runlist points at LCN 0: the fix would clear bits in the boot sector"),
                 ("bitmap-run-into-mft", [(vol.mft_lcn, n)], "$Bitmap's runlist points into $MFT"),
                 ("bitmap-run-past-volume", [(vol.total_clusters + 3, n)], "$Bitmap's runlist points past the volume"),
                 ("bitmap-run-shifted", [(first_lcn(br) + 1, n)], "$Bitmap's runlist starts one cluster late: it reads whatever follows")]
        if n >= 2:
            cases.append(("bitmap-run-too-short", [(first_lcn(br), n - 1)],
                          "$Bitmap's runlist is one cluster shorter than its size: the faulty file's bits lie beyond it"))
        for detail, runs, note in cases:
            v = new_variant(b, out, "silent", detail, "refuse", note, named=True)
            set_attr_runs(v, 6, 0x80, runs, note)

        # Hidden entries: the "last entry" flag set early in the node holding the faulty file.
        cs = b.dirs[CS_DIR]
        node, i = node_with(b, cs, t)
        v = new_variant(b, out, "silent", "hidden-by-last-flag-on-target", "refuse",
                        "the faulty file's own index entry has the last-entry flag: it and the entries after it are hidden", named=True)
        e = node.entries[i]
        v.edit_node(cs, node, lambda nd: put(nd.buf, e.off + 12, "<H", e.flags | 2), "last-entry flag set on entry %d" % i)
        if i > 0:
            node, _ = node_with(b, cs, t)
            e0 = node.entries[0]
            v = new_variant(b, out, "silent", "hidden-by-last-flag-on-first-entry", "refuse",
                            "the first entry of the node holding the faulty file has the last-entry flag", named=True)
            v.edit_node(cs, node, lambda nd: put(nd.buf, e0.off + 12, "<H", e0.flags | 2), "last-entry flag set on entry 0")
        node, i = node_with(b, cs, t)
        e = node.entries[i]
        v = new_variant(b, out, "silent", "orphaned-by-short-node", "refuse",
                        "the node holding the faulty file ends (a well-formed end entry) where its entry was: the file's record stays in use but is in no index", named=True)

        def cut(nd, e=e):
            old_end = nd.hdr + u32(nd.buf, nd.hdr + 4)
            end_len = 24 if e.child is not None else 16
            end = bytearray(end_len)
            put(end, 8, "<H", end_len)
            put(end, 12, "<H", 2 | (1 if e.child is not None else 0))
            if e.child is not None:
                put(end, 16, "<Q", e.child)
            nd.buf[e.off:e.off + end_len] = end
            delta = -(old_end - (e.off + end_len))
            resize_in_node(nd, e.off + end_len, delta)
        v.edit_node(cs, node, cut, "node cut at entry %d" % i)
        drv = b.dirs["Windows/System32/drivers"]
        node, i = b.vol.find_entry(drv, lambda e: e.rec == cs and getattr(e, "ns", 0) != 2)
        e = node.entries[i]
        v = new_variant(b, out, "silent", "cs-dir-hidden-in-drivers", "refuse",
                        "the CrowdStrike directory's entry in drivers has the last-entry flag: the whole directory is hidden", named=True)
        v.edit_node(drv, node, lambda nd: put(nd.buf, e.off + 12, "<H", e.flags | 2), "last-entry flag set on entry %d" % i)

        # `check` must flag what inspect refuses: an impossible index block size.
        for detail, val, note in (("index-block-size-impossible", 3000, "not a power of two"),
                                  ("index-block-size-disagrees", 2 * vol.ibs, "disagrees with the boot sector")):
            v = new_variant(b, out, "silent", detail, "refuse",
                            "the CrowdStrike directory's $INDEX_ROOT says index blocks of %d bytes (%s)" % (val, note), named=True)
            v.edit_record(cs, lambda rec, val=val: put(rec, find_attr(rec, 0x90, "$I30").value_off + 8, "<I", val),
                          "index block size %d" % val)

    # Unreadable volume: zeroed boot sector / bad OEM id must be an error, not "nothing to fix".
    backup = vol.off + vol.total_sectors * vol.bps
    has_backup = backup + 512 <= vol.off + vol.size
    for detail, data, both, note in (
            ("boot-zeroed", bytes(512), False, "the Windows volume's boot sector is all zeros"),
            ("boot-zeroed-both", bytes(512), True, "the Windows volume's boot sector and its backup are all zeros"),
            ("boot-bad-oem", b"NTFX    ", False, "the Windows volume's OEM id is NTFX"),
            ("boot-bad-oem-both", b"NTFX    ", True, "the OEM id is NTFX in the boot sector and its backup")):
        if both and not has_backup:
            continue
        v = new_variant(b, out, "silent", detail, "refuse", note, named=True)
        at = 0 if len(data) == 512 else 3
        v.write(vol.off + at, data, "NTFS boot sector", note)
        if both:
            v.write(backup + at, data, "NTFS backup boot sector", note)
    return out


def walk_nodes(b):
    """(label, dirrec, node) for the index nodes of the path to the CrowdStrike directory: every
    root, the nodes holding the matches, and the first block of each directory."""
    out = []
    seen = set()
    for d in PATH_DIRS:
        if d not in b.dirs:
            continue
        n = b.dirs[d]
        nodes = b.vol.index(n)
        want = {"root"}
        if len(nodes) > 1:
            want.add(nodes[1].where)
        if d == CS_DIR:
            for r in b.targets:
                want.add(node_with(b, n, r)[0].where)
        for nd in nodes:
            if nd.where in want and (n, nd.where) not in seen:
                seen.add((n, nd.where))
                out.append(("%s %s" % (d, "root" if nd.where == "root" else "block %d" % nd.where), n, nd))
    return out


def extend_children(b):
    try:
        return [e.rec for nd in b.vol.index(11) for e in nd.entries if not e.last and e.rec >= 24]
    except HostileError:
        return []


def flip_regions(b):
    """(label, virtual offset, length, in_walk, extra) for every structure a flip can hit."""
    v = b.vol
    R = []
    R.append(("boot-bpb", v.off + 0x0B, 0x49, True))
    R.append(("boot-code", v.off + 0x54, 0x1AA, False))
    backup = v.off + v.total_sectors * v.bps
    if backup + 512 <= v.off + v.size:
        R.append(("boot-backup", backup, 512, False))

    def rec(label, n, walk):
        o, k = v.rec_pieces(n)[0]
        R.append((label, v.off + o, k, walk))
    for n, label, walk in ((0, "mft", True), (1, "mftmirr-record", False), (2, "logfile-record", True),
                           (3, "volume-record", True), (4, "attrdef-record", False), (5, "root-record", True),
                           (6, "bitmap-record", True), (7, "boot-record", False), (8, "badclus-record", False),
                           (9, "secure-record", False), (10, "upcase-record", True), (11, "extend-record", True)):
        rec("rec%d-%s" % (n, label), n, walk)
    for n in extend_children(b)[:3]:
        rec("rec%d-extend-child" % n, n, True)
    for d in PATH_DIRS[1:]:
        rec("dir-%s" % d.split("/")[-1].lower(), b.dirs[d], True)
    for t in b.targets:
        rec("target-rec%d" % t, t, True)
    other, _ = b.other_file()
    rec("driver-rec%d" % other, other, False)
    for label, n, nd in walk_nodes(b):
        if nd.where != "root":
            o, k = nd.pieces[0]
            R.append(("indx-" + label.replace("Windows/System32/", "").replace("/", "-").replace(" ", "-").lower(),
                      v.off + o, k, True))
    for d in ("Windows/WinSxS/Manifests", "Windows/System32/drivers/etc"):
        try:
            nodes = v.index(b.dirs[d])
        except (HostileError, KeyError):
            continue  # e.g. an index whose attributes live in extension records
        o, k = (nodes[1].pieces[0] if len(nodes) > 1 else v.rec_pieces(b.dirs[d])[0])
        R.append(("index-unrelated-" + d.split("/")[-1].lower(), v.off + o, k, False))
        break
    mirr = v.mirr_lcn * v.cs
    R.append(("mftmirr-data", v.off + mirr, min(4 * v.rs, v.cs * max(1, 4 * v.rs // v.cs)), False))
    bm = find_attr(v.record(0), 0xB0)
    R.append(("mft-bitmap-data", v.off + first_lcn(bm.runs) * v.cs, max(8, v.records // 8 + 1), True))
    br = b.data_runs_of(6)
    R.append(("bitmap-head", v.off + first_lcn(br) * v.cs, 64, False))
    if b.t is not None:
        tl = first_lcn(b.data_runs_of(b.t))
        pcs = v.pieces(br, max(0, tl // 8 - 8), 24)
        R.append(("bitmap-near-target", v.off + pcs[0][0], pcs[0][1], True))
    def data(label, n, length, walk):
        runs = b.data_runs_of(n)
        if runs:
            R.append((label, v.off + first_lcn(runs) * v.cs, length, walk))
        else:  # resident (4 KiB records hold all of $AttrDef)
            rec = v.record(n)
            a = find_attr(rec, 0x80)
            R.append((label, v.off + v.rec_off(n) + a.value_off, min(length, a.value_len), walk))
    data("upcase-data", 10, 256, True)
    data("attrdef-data", 4, 2560, False)
    data("logfile-restart", 2, 8192, True)
    if b.exp["scheme"] == "gpt":
        g = b.gpt
        R.append(("gpt-header", g.p_off, 92, True))
        i = g.index_of(b.win["offset"] // b.ss)
        R.append(("gpt-entry-windows", g.p_entries + i * g.esz, g.esz, True))
        R.append(("gpt-backup-header", g.b_off, 92, False))
        R.append(("pmbr", 446, 66, False))
    elif b.exp["scheme"] == "mbr":
        R.append(("mbr-table", 446, 66, True))
        ext = [p for p in mbr_entries(b.c.read(0, 512)) if p["type"] in (5, 0x0F)]
        if ext:
            R.append(("ebr-first", ext[0]["start"] * b.ss + 446, 66, True))
    return R


# The silent-damage cases repeated on the larger bases.
SILENT_KEY = ("target-run-into-mft", "target-run-at-lcn0", "target-run-crosslinked-sibling",
              "target-run-crosslinked-driver", "target-run-past-volume", "target-run-self-overlap",
              "mft-bitmap-run-at-lcn0", "bitmap-run-at-lcn0", "bitmap-run-too-short", "hidden-by-last-flag",
              "orphaned-by-short-node", "cs-dir-hidden-in-drivers", "index-block-size-impossible", "boot-zeroed",
              "boot-bad-oem")

CORE_FLIPS = ("boot-bpb", "rec0-", "rec3-", "rec5-", "rec6-", "dir-", "target-", "indx-", "mft-bitmap-data",
              "bitmap-near-target", "upcase-data", "logfile-restart", "gpt-", "mbr-table", "ebr-first")


def gen_flips(b, seeds, core=False):
    """Random bytes changed in every structure (core: the structures on the path to the targets)."""
    out = []
    counts = [1, 3, 12]
    prefixes = CORE_FLIPS if core is True else core
    for label, off, length, walk in flip_regions(b):
        if prefixes and not label.startswith(prefixes):
            continue
        for s in range(seeds):
            n = counts[s % 3]
            detail = "%s-%dx-s%d" % (label, n, s)
            v = new_variant(b, out, "flip", detail, "either",
                            "%d random byte(s) changed in %s" % (n, label))
            v.in_walk = walk
            v.check_must_flag = False
            if label.startswith("logfile"):
                v.fix_args = ["--discard-journal"]
            v.flip(off, length, n, rng_for(v.name), label)
    if b.kind_vhd():
        c = b.c
        regions = [("vhd-footer", c.footer_off, 512)]
        if c.kind == "vhd-dynamic":
            regions += [("vhd-dyn-header", c.header_off, 1024), ("vhd-footer-copy", 0, 512)]
            blk = c.block_of(b.vol.off + b.vol.mft_lcn * b.vol.cs)
            regions += [("vhd-bat-near-mft", c.bat_off + 4 * max(0, blk - 4), 32)]
        for label, off, length in regions:
            for s in range(max(1, seeds)):
                n = counts[s % 3]
                v = new_variant(b, out, "flip", "%s-%dx-s%d" % (label, n, s), "either",
                                "%d random byte(s) changed in %s" % (n, label))
                v.check_must_flag = False
                v.flip_file(off, length, n, rng_for(v.name), label)
    return out


def gen_fixups(b):
    out = []
    vol = b.vol
    recs = [(0, "mft"), (2, "logfile"), (3, "volume"), (5, "root"), (6, "bitmap"), (10, "upcase")]
    recs += [(b.dirs[d], "dir-" + d.split("/")[-1].lower()) for d in PATH_DIRS[1:]]
    recs += [(t, "target-rec%d" % t) for t in b.targets]
    for n, label in recs:
        raw = vol.raw_record(n)
        cnt = u16(raw, 6)
        k = rng_for(b.name, label).randrange(1, cnt)
        v = new_variant(b, out, "fixup", "%s-stride%d" % (label, k), "refuse",
                        "MFT record %d: the last word of sector %d of the record no longer holds the update sequence number" % (n, k))
        v.edit_raw_record(n, lambda r, k=k: r.__setitem__(slice(k * 512 - 2, k * 512), bytes(x ^ 0x5A for x in r[k * 512 - 2:k * 512])),
                          "stride %d end changed" % k)
    for n, label in [(0, "mft"), (b.dirs[CS_DIR], "dir-crowdstrike")] + [(t, "target-rec%d" % t) for t in b.targets[:1]]:
        v = new_variant(b, out, "fixup", "%s-usn-changed" % label, "refuse",
                        "MFT record %d: the update sequence number itself changed, so no sector matches" % n)
        uo = u16(vol.raw_record(n), 4)
        v.edit_raw_record(n, lambda r, uo=uo: r.__setitem__(uo, r[uo] ^ 0xFF), "USN changed")
    for label, dirrec, nd in walk_nodes(b):
        if nd.where == "root":
            continue
        raw = vol.read_pieces(nd.pieces)
        cnt = u16(raw, 6)
        k = rng_for(b.name, label).randrange(1, cnt)
        v = new_variant(b, out, "fixup", "indx-%s-stride%d" % (label.replace("Windows/System32/", "").replace("/", "-").replace(" ", "-").lower(), k),
                        "refuse", "%s: the last word of sector %d no longer holds the USN" % (label, k))
        v.edit_raw_node(dirrec, nd, lambda r, k=k: r.__setitem__(slice(k * 512 - 2, k * 512), bytes(x ^ 0x5A for x in r[k * 512 - 2:k * 512])),
                        "stride %d end changed" % k)
    other, _ = b.other_file()
    v = new_variant(b, out, "fixup", "driver-rec%d-stride1" % other, "either",
                    "a driver's record (not on the path) has a fixup mismatch")
    v.in_walk = False
    v.check_must_flag = False
    v.edit_raw_record(other, lambda r: r.__setitem__(510, r[510] ^ 0x5A), "stride 1 end changed")
    return out


def gen_huge(b, full=True):
    out = []
    vol = b.vol
    t = b.t
    HUGE = 1 << 62

    def rv(detail, expect, n, fn, note):
        v = new_variant(b, out, "huge", detail, expect, note)
        v.edit_record(n, fn, note)
        return v

    def data(rec):
        return find_attr(rec, 0x80)

    def fname(rec):
        return find_attr(rec, 0x30)
    if t is not None:
        rv("target-data-size-huge", "either", t, lambda r: put(r, data(r).off + 48, "<Q", HUGE),
           "the faulty file's data size is 2^62")
        rv("target-alloc-size-huge", "either", t, lambda r: put(r, data(r).off + 40, "<Q", HUGE),
           "the faulty file's allocated size is 2^62 (its runs are unchanged)")
        rv("target-run-length-huge", "refuse", t,
           lambda r: (set_runs(r, data(r), [(first_lcn(data(r).runs), 1 << 40)]), put(r, data(r).off + 40, "<Q", (1 << 40) * vol.cs)),
           "the faulty file's run is 2^40 clusters long")
        rv("target-bytes-in-use-huge", "refuse", t, lambda r: put(r, 0x18, "<I", 0xFFF0),
           "the faulty file's record says 0xFFF0 bytes in use")
        rv("target-attrs-offset-huge", "refuse", t, lambda r: put(r, 0x14, "<H", 0xFFF8),
           "the faulty file's first attribute offset is 0xFFF8")
        rv("target-first-attr-length-zero", "refuse", t, lambda r: put(r, u16(r, 0x14) + 4, "<I", 0),
           "the faulty file's first attribute has length 0 (a reader that trusts it loops forever)")
        rv("target-data-attr-length-huge", "refuse", t, lambda r: put(r, data(r).off + 4, "<I", 0xFFFFFFF0),
           "the faulty file's $DATA attribute length is 0xFFFFFFF0")
        if full:
            rv("target-init-beyond-data", "either", t, lambda r: put(r, data(r).off + 56, "<Q", data(r).data_size + (1 << 40)),
               "the faulty file's initialized size exceeds its data size by 2^40")
            rv("target-last-vcn-huge", "either", t, lambda r: put(r, data(r).off + 24, "<Q", 1 << 40),
               "the faulty file's $DATA last VCN is 2^40 (its runs are unchanged)")
            rv("target-link-count-huge", "either", t, lambda r: put(r, 0x12, "<H", 0xFFFF),
               "the faulty file's link count is 65535")
            rv("target-bytes-allocated-wrong", "refuse", t, lambda r: put(r, 0x1C, "<I", 0x10000),
               "the faulty file's record says it is 64 KiB long")
            rv("target-name-length-huge", "refuse", t, lambda r: r.__setitem__(fname(r).value_off + 64, 255),
               "the faulty file's $FILE_NAME says its name is 255 characters (past the attribute)")
            v = new_variant(b, out, "huge", "target-usa-count-huge", "refuse",
                            "the faulty file's update sequence count is 0xFFFF")
            v.edit_raw_record(t, lambda r: put(r, 6, "<H", 0xFFFF), "usa_count 0xFFFF")
            v = new_variant(b, out, "huge", "target-usa-offset-huge", "refuse",
                            "the faulty file's update sequence offset is 0xFFFE")
            v.edit_raw_record(t, lambda r: put(r, 4, "<H", 0xFFFE), "usa_ofs 0xFFFE")

        cs = b.dirs[CS_DIR]
        for detail, fn, note in (
                ("cs-index-length-huge", lambda nd, e: put(nd.buf, nd.hdr + 4, "<I", 0xFFFFFF00), "index_length 0xFFFFFF00"),
                ("cs-entries-offset-huge", lambda nd, e: put(nd.buf, nd.hdr, "<I", 0xFFFFFF00), "entries offset 0xFFFFFF00"),
                ("cs-entry-length-zero", lambda nd, e: put(nd.buf, e.off + 8, "<H", 0), "the faulty file's entry has length 0"),
                ("cs-entry-length-huge", lambda nd, e: put(nd.buf, e.off + 8, "<H", 0xFFF8), "the faulty file's entry has length 0xFFF8"),
                ("cs-key-length-huge", lambda nd, e: put(nd.buf, e.off + 10, "<H", 0xFFF0), "the faulty file's key length is 0xFFF0")):
            node, i = node_with(b, cs, t)
            e = node.entries[i]
            v = new_variant(b, out, "huge", detail, "refuse", "CrowdStrike directory, node holding the faulty file: " + note)
            v.edit_node(cs, node, lambda nd, fn=fn, e=e: fn(nd, e), note)
        v = new_variant(b, out, "huge", "cs-root-value-length-huge", "refuse",
                        "the CrowdStrike directory's $INDEX_ROOT value length is 0x7FFFFFF0")
        v.edit_record(cs, lambda r: put(r, find_attr(r, 0x90, "$I30").off + 16, "<I", 0x7FFFFFF0), "value length")
        alloc = find_attr(vol.record(cs), 0xA0, "$I30")
        if alloc is not None:
            v = new_variant(b, out, "huge", "cs-alloc-size-huge", "refuse",
                            "the CrowdStrike directory's $INDEX_ALLOCATION data size is 2^50")
            v.edit_record(cs, lambda r: put(r, find_attr(r, 0xA0, "$I30").off + 48, "<Q", 1 << 50), "data size")
            node = [nd for nd in vol.index(cs) if any(e.child is not None for e in nd.entries)][0]
            k = [j for j, e in enumerate(node.entries) if e.child is not None][0]
            e = node.entries[k]
            v = new_variant(b, out, "huge", "cs-child-vcn-huge", "refuse",
                            "a CrowdStrike directory node points to child VCN 2^60")
            v.edit_node(cs, node, lambda nd: put(nd.buf, e.off + e.length - 8, "<Q", 1 << 60), "child VCN 2^60")

    def mftv(detail, fn, note):
        rv(detail, "refuse", 0, fn, note)
    mftv("mft-data-size-huge", lambda r: (put(r, data(r).off + 48, "<Q", 1 << 50), put(r, data(r).off + 56, "<Q", 1 << 50)),
         "$MFT's data size is 2^50 bytes (beyond its allocation)")
    mftv("mft-data-size-tiny", lambda r: (put(r, data(r).off + 48, "<Q", 16 * vol.rs), put(r, data(r).off + 56, "<Q", 16 * vol.rs)),
         "$MFT's data size says 16 records: every other record lies beyond it")
    mftv("mft-bitmap-size-tiny", lambda r: (put(r, find_attr(r, 0xB0).off + 48, "<Q", 1), put(r, find_attr(r, 0xB0).off + 56, "<Q", 1)),
         "$MFT:$BITMAP's size is 1 byte: the bits of every record past 7 lie beyond it")
    mftv("mft-run-length-huge", lambda r: set_runs(r, data(r), [(vol.mft_lcn, 1 << 40)]),
         "$MFT's first run is 2^40 clusters long")
    rv("bitmap-size-tiny", "refuse", 6, lambda r: (put(r, data(r).off + 48, "<Q", 1), put(r, data(r).off + 56, "<Q", 1)),
       "$Bitmap's data size is 1 byte")
    rv("bitmap-size-huge", "refuse", 6, lambda r: (put(r, data(r).off + 48, "<Q", 1 << 50), put(r, data(r).off + 56, "<Q", 1 << 50)),
       "$Bitmap's data size is 2^50")
    for detail, at, fmt, val, note in (
            ("boot-total-sectors-huge", 0x28, "<Q", 1 << 62, "total sectors 2^62"),
            ("boot-mft-lcn-huge", 0x30, "<Q", 1 << 60, "$MFT LCN 2^60"),
            ("boot-mftmirr-lcn-huge", 0x38, "<Q", 1 << 60, "$MFTMirr LCN 2^60"),
            ("boot-clusters-per-record-huge", 0x40, "<B", 0x7F, "127 clusters per MFT record"),
            ("boot-clusters-per-index-huge", 0x44, "<B", 0x7F, "127 clusters per index block")):
        v = new_variant(b, out, "huge", detail, "refuse", "Windows volume boot sector: " + note)
        data_ = struct.pack(fmt, val)
        v.write(vol.off + at, data_, "NTFS boot sector", note)
    return out


def gen_loops(b):
    """Index loops: a child pointer back to the node itself or to an ancestor (fixups valid)."""
    out = []
    vol = b.vol
    for d in PATH_DIRS:
        n = b.dirs[d]
        nodes = vol.index(n)
        blocks = [nd for nd in nodes if nd.where != "root"]
        if not blocks:
            continue
        short = d.split("/")[-1].lower() or "root"
        # A node that already has children: point one of them at the node itself / at its parent.
        inner = [nd for nd in blocks if any(e.child is not None for e in nd.entries)]
        if inner:
            nd = inner[0]
            k = [j for j, e in enumerate(nd.entries) if e.child is not None][0]
            e = nd.entries[k]
            v = new_variant(b, out, "loop", "%s-child-is-self" % short, "refuse",
                            "%s: INDX block %d has an entry whose child is the block itself" % (d, nd.where))
            v.edit_node(n, nd, lambda x, e=e, nd=nd: put(x.buf, e.off + e.length - 8, "<Q", nd.vcn), "child VCN = own VCN")
            nd = vol.index(n)[[x.where for x in vol.index(n)].index(inner[0].where)]
            kids = [e.child for e in nd.entries if e.child is not None]
            if len(kids) >= 2:
                e = [e for e in nd.entries if e.child is not None][1]
                v = new_variant(b, out, "loop", "%s-shared-child" % short, "refuse",
                                "%s: two entries of INDX block %d point at the same child" % (d, nd.where))
                v.edit_node(n, nd, lambda x, e=e: put(x.buf, e.off + e.length - 8, "<Q", kids[0]), "child VCN duplicated")
            # a leaf under it points back up
            leaf = [x for x in vol.index(n) if x.where != "root" and x.vcn == kids[0]][0]
            parent_vcn = inner[0].vcn
        else:
            leaf = blocks[0]
            parent_vcn = leaf.vcn
        end = leaf.entries[-1]
        need(end.last, "%s: leaf without end entry" % d)
        if end.child is None:
            def link(x, entries=leaf.entries, target=parent_vcn):
                # Every entry of the leaf gets a child pointer to `target`: a well-formed internal
                # node whose subtrees are the node itself or its parent.
                for e in reversed(entries):
                    resize_in_node(x, e.off + e.length, 8)
                    put(x.buf, e.off + 8, "<H", e.length + 8)
                    put(x.buf, e.off + 12, "<H", e.flags | 1)
                    put(x.buf, e.off + e.length, "<Q", target)
                x.buf[x.hdr + 12] |= 1
            what = "every entry of INDX block %d gets a child pointer to VCN %d" % (leaf.where, parent_vcn)
            detail = "%s-leaf-points-%s" % (short, "to-itself" if parent_vcn == leaf.vcn else "to-its-parent")
            v = new_variant(b, out, "loop", detail, "refuse", "%s: %s (a cycle)" % (d, what))
            v.edit_node(n, leaf, link, what)
        # The root points at a child beyond the allocation
        root = vol.index(n)[0]
        ce = [e for e in root.entries if e.child is not None]
        if ce:
            e = ce[-1]
            alloc = find_attr(vol.record(n), 0xA0, "$I30")
            beyond = alloc.alloc_size // vol.vcn_unit + 8
            v = new_variant(b, out, "loop", "%s-root-child-beyond-allocation" % short, "refuse",
                            "%s: the root's child VCN %d lies beyond the index allocation" % (d, beyond))
            v.edit_node(n, root, lambda x, e=e: put(x.buf, e.off + e.length - 8, "<Q", beyond), "child VCN beyond")
            free = None
            bm_runs, bm = vol.stream(n, 0xB0, "$I30")
            if bm_runs is None:
                for k in range(alloc.data_size // vol.ibs):
                    if not bm[k // 8] & (1 << (k % 8)):
                        free = k
                        break
            if free is not None:
                root = vol.index(n)[0]
                e = [e for e in root.entries if e.child is not None][-1]
                v = new_variant(b, out, "loop", "%s-root-child-not-in-use" % short, "refuse",
                                "%s: the root points at index block %d, which the index bitmap says is free" % (d, free))
                v.edit_node(n, root, lambda x, e=e, f=free: put(x.buf, e.off + e.length - 8, "<Q", vol.vcn_of_block(f)), "child VCN of a free block")
    return out


def gen_selfref(b):
    out = []
    vol = b.vol
    t = b.t
    if t is None:
        return out
    cs = b.dirs[CS_DIR]
    seq = lambda n: u16(vol.record(n), 0x10)

    def rv(detail, n, fn, note, expect="refuse"):
        v = new_variant(b, out, "selfref", detail, expect, note)
        v.edit_record(n, fn, note)
    rv("target-base-is-itself", t, lambda r: put(r, 0x20, "<Q", t | (seq(t) << 48)),
       "the faulty file's record names itself as its base record")
    rv("target-parent-is-itself", t, lambda r: put(r, find_attr(r, 0x30).value_off, "<Q", t | (seq(t) << 48)),
       "the faulty file's $FILE_NAME names the file itself as its parent directory")
    rv("target-parent-is-root", t, lambda r: put(r, find_attr(r, 0x30).value_off, "<Q", 5 | (seq(5) << 48)),
       "the faulty file's $FILE_NAME names the root as its parent (it is indexed in CrowdStrike)")
    rv("target-record-number-wrong", t, lambda r: put(r, 0x2C, "<I", b.t2 if b.t2 else t + 1),
       "the faulty file's record says it is record %d" % (b.t2 if b.t2 else t + 1), expect="either")
    rv("cs-dir-parent-is-itself", cs, lambda r: put(r, find_attr(r, 0x30).value_off, "<Q", cs | (seq(cs) << 48)),
       "the CrowdStrike directory's $FILE_NAME names itself as its parent")
    rv("mft-base-is-itself", 0, lambda r: put(r, 0x20, "<Q", 0 | (seq(0) << 48)),
       "$MFT's record 0 names itself as its base record")
    if b.t2 is not None:
        v = new_variant(b, out, "selfref", "target-record-duplicates-sibling", "refuse",
                        "the faulty file's record is a copy of the other matching file's record (same names, same clusters)")
        src = bytearray(vol.record(b.t2))
        put(src, 0x2C, "<I", t)
        v.write_over(vol, vol.rec_pieces(t), vol.raw_record(t), fixup(src), "MFT record %d" % t,
                     "replaced by record %d's content (fixups valid)" % b.t2)
    for detail, ref, note in (
            ("entry-points-to-cs-dir", cs | (seq(cs) << 48), "the CrowdStrike directory itself"),
            ("entry-points-to-mft", 0 | (seq(0) << 48), "record 0 ($MFT)"),
            ("entry-points-to-root", 5 | (seq(5) << 48), "record 5 (the root directory)"),
            ("entry-points-beyond-mft", (vol.records + 1000) | (1 << 48), "a record beyond the end of $MFT"),
            ("entry-stale-sequence", t | (((seq(t) + 1) & 0xFFFF) << 48), "the faulty file's record with the wrong sequence number")) + (
            (("entry-points-to-sibling", b.t2 | (seq(b.t2) << 48), "the other matching file's record"),) if b.t2 else ()):
        node, i = node_with(b, cs, t)
        e = node.entries[i]
        v = new_variant(b, out, "selfref", detail, "refuse",
                        "the faulty file's index entry (name unchanged) points to " + note)
        v.edit_node(cs, node, lambda x, e=e, ref=ref: put(x.buf, e.off, "<Q", ref), "file reference changed")
    drv = b.dirs["Windows/System32/drivers"]
    node, i = vol.find_entry(drv, lambda e: e.rec == cs and getattr(e, "ns", 0) != 2)
    e = node.entries[i]
    v = new_variant(b, out, "selfref", "crowdstrike-entry-points-to-drivers", "refuse",
                    "drivers' entry 'CrowdStrike' points to drivers itself (a directory cycle)")
    v.edit_node(drv, node, lambda x: put(x.buf, e.off, "<Q", drv | (seq(drv) << 48)), "file reference changed")
    win = b.dirs["Windows"]
    node, i = vol.find_entry(5, lambda e: e.rec == win and getattr(e, "ns", 0) != 2)
    e = node.entries[i]
    v = new_variant(b, out, "selfref", "windows-entry-points-to-root", "refuse",
                    "the root's entry 'Windows' points to the root itself (a directory cycle)")
    v.edit_node(5, node, lambda x: put(x.buf, e.off, "<Q", 5 | (seq(5) << 48)), "file reference changed")
    return out


def gen_geometry(b, full=True):
    """Bad sector / cluster / record / index sizes and locations in the boot sector."""
    out = []
    vol = b.vol
    backup = vol.off + vol.total_sectors * vol.bps
    has_backup = backup + 512 <= vol.off + vol.size
    part_sectors = vol.size // vol.bps
    cases = [
        ("bytes-per-sector-0", 0x0B, "<H", 0),
        ("bytes-per-sector-256", 0x0B, "<H", 256),
        ("bytes-per-sector-1024", 0x0B, "<H", 1024),
        ("bytes-per-sector-%d" % (4096 if vol.bps == 512 else 512), 0x0B, "<H", 4096 if vol.bps == 512 else 512),
        ("bytes-per-sector-65535", 0x0B, "<H", 65535),
        ("sectors-per-cluster-0", 0x0D, "<B", 0),
        ("sectors-per-cluster-3", 0x0D, "<B", 3),
        ("sectors-per-cluster-2pow127", 0x0D, "<B", 0x81),
        ("sectors-per-cluster-double", 0x0D, "<B", vol.spc * 2 if vol.spc * 2 <= 0x80 else 0x100 - (vol.spc * 2).bit_length() + 1),
        ("clusters-per-record-0", 0x40, "<B", 0),
        ("clusters-per-record-2048B", 0x40, "<B", 0xF5 if vol.rs != 2048 else 0xF6),
        ("clusters-per-record-512B", 0x40, "<B", 0xF7),
        ("clusters-per-index-0", 0x44, "<B", 0),
        ("clusters-per-index-8192B", 0x44, "<B", 0xF3),
        ("total-sectors-past-partition", 0x28, "<Q", part_sectors + 8 * vol.spc),
        ("total-sectors-0", 0x28, "<Q", 0),
        ("total-sectors-below-mft", 0x28, "<Q", vol.mft_lcn * vol.spc),
        ("mft-lcn-is-mirror", 0x30, "<Q", vol.mirr_lcn),
        ("mft-lcn-plus-one", 0x30, "<Q", vol.mft_lcn + 1),
        ("mftmirr-lcn-0", 0x38, "<Q", 0),
        ("mftmirr-lcn-into-mft", 0x38, "<Q", vol.mft_lcn + 1),
        ("mftmirr-lcn-past-volume", 0x38, "<Q", vol.total_clusters + 10),
    ]
    if not full:
        keep = {"bytes-per-sector-%d" % (4096 if vol.bps == 512 else 512), "sectors-per-cluster-double",
                "clusters-per-record-2048B", "total-sectors-past-partition", "mftmirr-lcn-0", "mft-lcn-plus-one"}
        cases = [c for c in cases if c[0] in keep]
    for detail, at, fmt, val, in cases:
        data = struct.pack(fmt, val)
        for both in ((False, True) if has_backup and detail in ("bytes-per-sector-1024", "sectors-per-cluster-double",
                                                                 "clusters-per-record-2048B", "mftmirr-lcn-0") else (False,)):
            v = new_variant(b, out, "geometry", detail + ("-both" if both else ""), "refuse",
                            "Windows volume boot sector%s: field at 0x%02X set to %d" % (" and its backup" if both else "", at, val))
            v.write(vol.off + at, data, "NTFS boot sector", "0x%02X = %d" % (at, val))
            if both:
                v.write(backup + at, data, "NTFS backup boot sector", "0x%02X = %d" % (at, val))
    return out


def gen_partitions(b):
    out = []
    ss = b.ss
    disk_sectors = b.c.size // ss
    win_lba = b.win["offset"] // ss
    win_sectors = b.parts[b.win["partition"]]["size"] // ss if b.win["partition"] else None
    if b.exp["scheme"] == "gpt":
        g = b.gpt
        wi = g.index_of(win_lba)
        others = sorted((u64(g.entry(i), 32), i) for i in range(g.n) if any(g.entry(i)[:16]) and i != wi)
        before = [i for s, i in others if s < win_lba]
        after = [i for s, i in others if s > win_lba]

        def gv(detail, note, changes, copies=("primary", "backup"), seal=True, named=False, expect="refuse"):
            v = new_variant(b, out, "partition", detail, expect, note, named=named)
            for off, data in g.with_entries(changes, copies, seal):
                v.write(off, data, "GPT", note)

        def entry_with(i, **kw):
            e = g.entry(i)
            if "first" in kw:
                put(e, 32, "<Q", kw["first"])
            if "last" in kw:
                put(e, 40, "<Q", kw["last"])
            return e
        win_last = u64(g.entry(wi), 40)
        gv("gpt-windows-entry-start-shifted", "the Windows entry starts 8 sectors late (CRCs valid): no boot sector there",
           {wi: entry_with(wi, first=win_lba + 8)}, named=True)
        gv("gpt-windows-entry-start-beyond-disk", "the Windows entry starts past the end of the disk (CRCs valid)",
           {wi: entry_with(wi, first=disk_sectors + 100, last=disk_sectors + 200)}, named=True)
        gv("gpt-windows-entry-last-before-first", "the Windows entry's last LBA is before its first (CRCs valid)",
           {wi: entry_with(wi, last=win_lba - 1)}, named=True)
        gv("gpt-windows-entry-end-beyond-disk", "the Windows entry ends past the end of the disk (CRCs valid)",
           {wi: entry_with(wi, last=disk_sectors + 1000)}, named=True)
        gv("gpt-windows-entry-shorter-than-volume", "the Windows entry is half as long as the NTFS volume in it (CRCs valid)",
           {wi: entry_with(wi, last=win_lba + (win_last - win_lba) // 2)}, named=True)
        e = g.entry(wi)
        e[33] ^= 0x40
        gv("gpt-windows-entry-flipped-both", "a byte of the Windows entry's first LBA changed in both entry arrays, CRCs not updated",
           {wi: e}, seal=False, named=True)
        gv("gpt-windows-entry-flipped-primary", "a byte of the Windows entry changed in the primary array only, CRC not updated (the backup is intact)",
           {wi: e}, copies=("primary",), seal=False, expect="either")
        if before:
            i = before[-1]
            gv("gpt-overlap-previous-extends-into-windows", "the partition before Windows now ends inside the Windows volume (CRCs valid)",
               {i: entry_with(i, last=win_lba + 64)})
        if after:
            i = after[0]
            gv("gpt-overlap-next-starts-inside-windows", "the partition after Windows now starts inside the Windows volume (CRCs valid)",
               {i: entry_with(i, first=win_last - 64)})
        if before:
            i = before[0]
            gv("gpt-duplicate-windows-entry", "another entry is a copy of the Windows entry (two partitions, same sectors; CRCs valid)",
               {i: g.entry(wi)})
        gv("gpt-windows-entry-over-gpt", "the Windows entry starts at LBA 1, over the GPT header (CRCs valid)",
           {wi: entry_with(wi, first=1)})

        def hv(detail, fn, note, copies=("primary", "backup"), expect="refuse"):
            v = new_variant(b, out, "partition", detail, expect, note)
            for off, data in g.with_header(fn, copies):
                v.write(off, data, "GPT header", note)
        hv("gpt-entries-count-huge", lambda h: put(h, 80, "<I", 0xFFFFFFFF),
           "both GPT headers claim 2^32-1 partition entries (CRCs valid)")
        hv("gpt-entry-size-0", lambda h: put(h, 84, "<I", 0), "both GPT headers say entries are 0 bytes (CRCs valid)")
        hv("gpt-entry-size-huge", lambda h: put(h, 84, "<I", 0x7FFFFF80), "both GPT headers say entries are 2 GiB (CRCs valid)")
        hv("gpt-entries-lba-beyond-disk", lambda h: put(h, 72, "<Q", disk_sectors + 1000),
           "both GPT headers put the entry array past the end of the disk (CRCs valid)")
        hv("gpt-header-size-huge", lambda h: put(h, 12, "<I", 0xFFFF), "both GPT headers claim a 64 KiB header")
        hv("gpt-primary-header-zeroed", lambda h: h.__setitem__(slice(0, len(h)), bytes(len(h))),
           "the primary GPT header is zeroed (the backup is intact)", copies=("primary",), expect="either")
        v = new_variant(b, out, "partition", "gpt-both-headers-zeroed", "refuse",
                        "both GPT headers are zeroed: only the protective MBR is left")
        v.write(g.p_off, bytes(g.hsize), "GPT header", "zeroed")
        v.write(g.b_off, bytes(g.hsize), "GPT backup header", "zeroed")
        v = new_variant(b, out, "partition", "pmbr-zeroed", "either", "the protective MBR is zeroed (both GPT headers intact)")
        v.write(0, bytes(512), "protective MBR", "zeroed")
    elif b.exp["scheme"] == "mbr":
        mbr = bytearray(b.c.read(0, 512))
        ents = mbr_entries(mbr)

        def mv(detail, fn, note, expect="refuse", off=0, named=False):
            s = bytearray(b.c.read(off, 512))
            fn(s)
            v = new_variant(b, out, "partition", detail, expect, note, named=named)
            v.write(off, s, "MBR" if off == 0 else "EBR at %d" % off, note)
        prim = [i for i, e in enumerate(ents) if e["type"] not in (0, 5, 0x0F)]
        wi = [i for i, e in enumerate(ents) if e["start"] == win_lba]
        ext = [i for i, e in enumerate(ents) if e["type"] in (5, 0x0F)]
        first = prim[0]
        e0 = ents[first]
        if wi:
            w = ents[wi[0]]
            mv("mbr-first-extends-into-windows", lambda s: put(s, ents[first]["off"] + 12, "<I", w["start"] - e0["start"] + 64),
               "the first partition now ends inside the Windows volume")
            mv("mbr-windows-starts-inside-first", lambda s: put(s, w["off"] + 8, "<I", e0["start"] + 128),
               "the Windows entry starts inside the first partition", named=True)
            mv("mbr-windows-beyond-disk", lambda s: put(s, w["off"] + 12, "<I", disk_sectors),
               "the Windows entry runs past the end of the disk")
            mv("mbr-windows-shorter-than-volume", lambda s: put(s, w["off"] + 12, "<I", w["size"] // 2),
               "the Windows entry is half as long as its NTFS volume")
            mv("mbr-windows-at-lba0", lambda s: put(s, w["off"] + 8, "<I", 0), "the Windows entry starts at LBA 0, over the MBR")
            mv("mbr-duplicate-entry", lambda s: s.__setitem__(slice(ents[first]["off"], ents[first]["off"] + 16), s[w["off"]:w["off"] + 16]),
               "the first entry is a copy of the Windows entry")
            mv("mbr-windows-type-fat32", lambda s: s.__setitem__(w["off"] + 4, 0x0C),
               "the Windows entry's type is FAT32 (0x0C); the volume is NTFS", expect="either")
            free = [i for i, e in enumerate(ents) if e["type"] == 0]
            if free:
                fo = ents[free[0]]["off"]
                mv("mbr-extra-entry-inside-windows",
                   lambda s: (s.__setitem__(fo + 4, 7), put(s, fo + 8, "<I", w["start"] + 2048), put(s, fo + 12, "<I", 4096)),
                   "an extra NTFS entry lies inside the Windows partition")
        mv("mbr-no-signature", lambda s: s.__setitem__(slice(510, 512), b"\0\0"), "the MBR's 55AA signature is gone", named=True)
        if ext:
            x = ents[ext[0]]
            x_lba = x["start"]
            ebr1 = bytearray(b.c.read(x_lba * ss, 512))
            l1 = mbr_entries(ebr1)
            mv("ebr-chain-loops-to-itself", lambda s: put(s, 446 + 16 + 8, "<I", 0), "the first EBR's next link points to itself",
               off=x_lba * ss)
            mv("ebr-no-signature", lambda s: s.__setitem__(slice(510, 512), b"\0\0"), "the first EBR's signature is gone",
               off=x_lba * ss)
            if l1[1]["type"]:
                ebr2 = (x_lba + l1[1]["start"]) * ss
                def loop_back(s):
                    # The last EBR's (unused) link entry becomes a link to the first EBR.
                    s[446 + 16 + 4] = 0x05
                    put(s, 446 + 16 + 8, "<I", 0)
                    put(s, 446 + 16 + 12, "<I", 1)
                mv("ebr-chain-loops-back", loop_back,
                   "the second EBR's next link points back to the first", off=ebr2)
                p5_end = x_lba + l1[0]["start"] + l1[0]["size"]
                w_start = x_lba + l1[1]["start"] + mbr_entries(b.c.read(ebr2, 512))[0]["start"]
                mv("ebr-previous-logical-extends-into-windows",
                   lambda s: put(s, 446 + 12, "<I", l1[0]["size"] + (w_start - p5_end) + 2048),
                   "the logical partition before Windows now ends 1 MiB inside it", off=x_lba * ss)
                mv("ebr-logical-beyond-extended", lambda s: put(s, 446 + 12, "<I", x["size"] * 2),
                   "the Windows logical partition runs past the end of the extended partition", off=ebr2)
            mv("mbr-extended-too-short", lambda s: put(s, x["off"] + 12, "<I", x["size"] // 4),
               "the extended partition is too short for its logical partitions")
    return out


def gen_vhd(b):
    out = []
    c = b.c
    vol = b.vol
    if c.kind == "vhd-fixed":
        foot = bytearray(c.pread(c.footer_off, 512))

        def fv(detail, fn, note, expect="refuse"):
            f = bytearray(foot)
            fn(f)
            put(f, 64, ">I", vhd_checksum(f))
            v = new_variant(b, out, "vhd", detail, expect, note)
            v.write_file(c.footer_off, f, "VHD footer", note + " (checksum valid)")
        fv("footer-size-larger-than-file", lambda f: put(f, 48, ">Q", c.size + 64 * MiB), "the footer's current size exceeds the file")
        fv("footer-size-smaller-than-partitions", lambda f: put(f, 48, ">Q", c.size // 2), "the footer's current size cuts the Windows partition")
        fv("footer-type-differencing", lambda f: put(f, 60, ">I", 4), "the footer says differencing disk")
        fv("footer-type-dynamic", lambda f: put(f, 60, ">I", 3), "the footer says dynamic but there is no dynamic header")
        v = new_variant(b, out, "vhd", "footer-cookie-damaged", "either",
                        "the footer's cookie is no longer 'conectix': the file reads as a raw disk with 512 extra bytes")
        v.write_file(c.footer_off, b"conectiy", "VHD footer", "cookie")
        return out
    # dynamic
    bs = c.block_size

    def block(voff):
        return c.block_of(voff)

    def bat(blk, val, v, note):
        v.write_file(c.bat_off + 4 * blk, struct.pack(">I", val), "VHD BAT entry %d" % blk, note)
    under = {}
    places = [("boot", vol.off), ("mft", vol.off + vol.mft_lcn * vol.cs)]
    if b.t is not None:
        places.append(("target-record", vol.off + vol.rec_off(b.t)))
        node, _ = node_with(b, b.dirs[CS_DIR], b.t)
        places.append(("cs-index", vol.off + (vol.rec_off(b.dirs[CS_DIR]) if node.where == "root" else node.pieces[0][0])))
        tl = first_lcn(b.data_runs_of(b.t))
        br = b.data_runs_of(6)
        places.append(("bitmap", vol.off + vol.pieces(br, tl // 8, 1)[0][0]))
    for label, voff in places:
        under.setdefault(block(voff), []).append(label)
    for blk, labels in sorted(under.items()):
        need(c.bat[blk] != 0xFFFFFFFF, "%s: block %d under metadata is not allocated" % (b.name, blk))
        v = new_variant(b, out, "vhd", "bat-unallocated-under-%s" % "-and-".join(labels), "refuse",
                        "the BAT entry of block %d (holding the Windows volume's %s) is unallocated: it reads as zeros" % (blk, ", ".join(labels)),
                        named=True)
        bat(blk, 0xFFFFFFFF, v, "unallocated")
    mblk = block(vol.off + vol.mft_lcn * vol.cs)
    allocated = [k for k, e in enumerate(c.bat) if e != 0xFFFFFFFF and k != mblk]
    far = allocated[-1]
    near = [k for k in allocated if k > mblk][0]
    v = new_variant(b, out, "vhd", "bat-alias-other-block-onto-mft", "refuse",
                    "BAT aliasing: block %d points at the same file sectors as block %d (the $MFT block)" % (far, mblk))
    bat(far, c.bat[mblk], v, "alias of block %d" % mblk)
    v = new_variant(b, out, "vhd", "bat-alias-mft-onto-other-block", "refuse",
                    "BAT aliasing: the $MFT block %d points at block %d's sectors" % (mblk, near))
    bat(mblk, c.bat[near], v, "alias of block %d" % near)
    for detail, val, note in (
            ("bat-mft-block-onto-bat", c.bat_off // 512, "the BAT itself"),
            ("bat-mft-block-onto-header", c.header_off // 512, "the dynamic header"),
            ("bat-mft-block-onto-footer-copy", 0, "the footer copy at the start of the file"),
            ("bat-mft-block-beyond-eof", c.file_size // 512 + 4096, "sectors past the end of the file"),
            ("bat-mft-block-unaligned-overlap", c.bat[mblk] + 1, "its own sectors shifted by one sector (overlapping the next block)")):
        v = new_variant(b, out, "vhd", detail, "refuse", "the BAT entry of the $MFT block %d points at %s" % (mblk, note))
        bat(mblk, val, v, note)
    hdr = bytearray(c.pread(c.header_off, 1024))

    def hv(detail, fn, note, expect="refuse"):
        h = bytearray(hdr)
        fn(h)
        put(h, 36, ">I", vhd_dyn_checksum(h))
        v = new_variant(b, out, "vhd", detail, expect, note)
        v.write_file(c.header_off, h, "VHD dynamic header", note + " (checksum valid)")
    hv("header-block-size-0", lambda h: put(h, 32, ">I", 0), "block size 0")
    hv("header-block-size-3MiB", lambda h: put(h, 32, ">I", 3 * MiB), "block size 3 MiB (not a power of two)")
    hv("header-block-size-half", lambda h: put(h, 32, ">I", bs // 2), "block size halved: every block maps wrongly")
    hv("header-block-size-2GiB", lambda h: put(h, 32, ">I", 0x80000000), "block size 2 GiB")
    hv("header-max-table-entries-huge", lambda h: put(h, 28, ">I", 0xFFFFFFFF), "2^32-1 BAT entries (a 16 GiB BAT)")
    hv("header-max-table-entries-short", lambda h: put(h, 28, ">I", 10), "10 BAT entries: the disk's blocks past 10 are unmapped")
    hv("header-table-offset-beyond-eof", lambda h: put(h, 16, ">Q", c.file_size + MiB), "BAT offset past the end of the file")
    hv("header-table-offset-on-header", lambda h: put(h, 16, ">Q", c.header_off), "BAT offset on the dynamic header itself")
    v = new_variant(b, out, "vhd", "header-cookie-damaged", "refuse", "the dynamic header's cookie is no longer 'cxsparse'")
    v.write_file(c.header_off, b"cxsparsf", "VHD dynamic header", "cookie")
    foot = bytearray(c.pread(c.footer_off, 512))

    def fv(detail, fn, note, both=True, expect="refuse"):
        f = bytearray(foot)
        fn(f)
        put(f, 64, ">I", vhd_checksum(f))
        v = new_variant(b, out, "vhd", detail, expect, note)
        v.write_file(c.footer_off, f, "VHD footer", note)
        if both:
            v.write_file(0, f, "VHD footer copy", note)
    fv("footer-type-differencing", lambda f: put(f, 60, ">I", 4), "both footers say differencing disk (checksums valid)")
    fv("footer-size-cuts-windows", lambda f: put(f, 48, ">Q", b.win["offset"] + MiB), "both footers' current size ends 1 MiB into the Windows volume")
    fv("footer-data-offset-beyond-eof", lambda f: put(f, 16, ">Q", c.file_size + MiB), "both footers point the dynamic header past the end of the file")
    fv("footer-copy-disagrees", lambda f: put(f, 48, ">Q", c.size - 512 * 63), "the footer at the end disagrees with the copy at the start (current size)",
       both=False, expect="either")
    v = new_variant(b, out, "vhd", "sector-bitmap-of-mft-block-cleared", "either",
                    "the sector bitmap of the $MFT block says no sector is present")
    v.write_file(c.bat[mblk] * 512, bytes(c.bitmap_size), "VHD sector bitmap of block %d" % mblk, "zeroed")
    return out


def gen_truncation(b):
    out = []
    vol = b.vol
    size = b.c.file_size
    cuts = []
    vend = vol.off + vol.size

    def at_virtual(voff):
        fo = b.c.map(voff, 1)[0][0]
        need(fo is not None, "%s: cut point in an unallocated block" % b.name)
        return fo
    cuts.append(("inside-boot-sector", at_virtual(vol.off + 100), "refuse"))
    cuts.append(("inside-mft-record-5", at_virtual(vol.off + vol.rec_off(5) + 300), "refuse"))
    if b.t is not None:
        cuts.append(("inside-target-record", at_virtual(vol.off + vol.rec_off(b.t) + 512), "refuse"))
        cuts.append(("inside-target-data", at_virtual(vol.off + first_lcn(b.data_runs_of(b.t)) * vol.cs + 100), "refuse"))
    cuts.append(("before-backup-boot-sector", at_virtual(vol.off + vol.total_sectors * vol.bps), "refuse"))
    if b.c.kind == "raw":
        cuts.append(("empty-file", 0, "refuse"))
        if vol.off > 0:
            cuts.append(("before-windows-partition", vol.off - 4096, "refuse"))
            cuts.append(("at-windows-partition-start", vol.off, "refuse"))
        if vend < size:
            cuts.append(("after-windows-partition", vend, "either"))
        if b.exp["scheme"] == "gpt":
            cuts.append(("backup-gpt-header-gone", size - b.ss, "either"))
        cuts.append(("last-byte-gone", size - 1, "refuse" if vend >= size else "either"))
    elif b.c.kind == "vhd-fixed":
        cuts.append(("footer-gone", size - 512, "either"))
    else:
        cuts.append(("footer-gone", size - 512, "either"))
        cuts.append(("inside-last-block", size - 512 - b.c.block_size // 2, "refuse"))
        cuts.append(("inside-bat", b.c.bat_off + 4 * 8, "refuse"))
    for detail, at, expect in cuts:
        v = new_variant(b, out, "truncation", detail, expect, "the file is cut at byte %d (of %d)" % (at, size))
        v.truncate = at
        v.in_walk = expect == "refuse"
        v.check_must_flag = expect == "refuse"
        v.change("file length", at, size - at, "truncated")
    return out


def gen_controls(b):
    """Mutations that provably touch no NTFS structure: the result is fixed (or nothing to fix)."""
    out = []
    expect = "fixed" if b.targets else "nothing"
    v = new_variant(b, out, "control", "slim-base", expect, "the slim copy itself (ordinary files' data as holes), unchanged")
    v.in_walk = False
    v.check_must_flag = False
    vol = b.vol
    other, oruns = b.other_file()
    v = new_variant(b, out, "control", "data-of-unrelated-file", expect,
                    "random bytes written into the data clusters of record %d (a driver): file content, not metadata" % other)
    v.in_walk = False
    v.check_must_flag = False
    v.write(vol.off + first_lcn(oruns) * vol.cs, hashlib.shake_256(v.name.encode()).digest(vol.cs), "file data of record %d" % other, "random content")
    if b.c.kind == "raw":
        lcn = b.free_clusters(2)
        v = new_variant(b, out, "control", "data-in-free-clusters", expect,
                        "random bytes written into two clusters that are free and in no runlist")
        v.in_walk = False
        v.check_must_flag = False
        v.write(vol.off + lcn * vol.cs, hashlib.shake_256(v.name.encode()).digest(2 * vol.cs), "free clusters %d-%d" % (lcn, lcn + 1), "random content")
    return out


def gen_no_match(b):
    """Bases without a target: damage must still be an error, never 'nothing to fix'."""
    out = gen_controls(b)
    vol = b.vol
    v = new_variant(b, out, "silent", "boot-zeroed", "refuse", "the Windows volume's boot sector is all zeros", named=True)
    v.write(vol.off, bytes(512), "NTFS boot sector", "zeroed")
    cs = b.dirs.get(CS_DIR)
    if cs is not None:
        node = [nd for nd in vol.index(cs) if len(nd.entries) > 2][0]
        e = node.entries[0]
        v = new_variant(b, out, "silent", "hidden-by-last-flag", "refuse",
                        "the first entry of a CrowdStrike directory node has the last-entry flag: its names are hidden", named=True)
        v.edit_node(cs, node, lambda nd: put(nd.buf, e.off + 12, "<H", e.flags | 2), "last-entry flag on entry 0")
        v = new_variant(b, out, "fixup", "dir-crowdstrike-stride1", "refuse",
                        "the CrowdStrike directory's record has a fixup mismatch")
        v.edit_raw_record(cs, lambda r: r.__setitem__(510, r[510] ^ 0x5A), "stride 1 end changed")
    drv = b.dirs["Windows/System32/drivers"]
    v = new_variant(b, out, "fixup", "dir-drivers-stride1", "refuse", "the drivers directory's record has a fixup mismatch")
    v.edit_raw_record(drv, lambda r: r.__setitem__(510, r[510] ^ 0x5A), "stride 1 end changed")
    return out


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------

ZERO_4K = bytes(4096)


def data_regions(fd, size):
    pos = 0
    while pos < size:
        try:
            d = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:
                return
            raise
        h = min(os.lseek(fd, d, os.SEEK_HOLE), size)
        yield d, h
        pos = h


def make_slim(b, dst):
    """Copy of the fixture with the `drop` ranges (ordinary files' data) left as holes."""
    drops = []
    for voff, n in b.drop:
        for fo, k in b.c.map(voff, n):
            if fo is not None:
                drops.append((fo, fo + k))
    drops.sort()
    size = b.c.file_size
    src = b.c.f.fileno()
    with open(dst, "wb") as g:
        g.truncate(size)
        gd = g.fileno()
        di = 0
        for start, end in data_regions(src, size):
            p = start
            while p < end:
                n = min(4 * MiB, end - p)
                buf = bytearray(os.pread(src, n, p))
                while di < len(drops) and drops[di][1] <= p:
                    di += 1
                j = di
                while j < len(drops) and drops[j][0] < p + n:
                    a, z = max(drops[j][0], p), min(drops[j][1], p + n)
                    buf[a - p:z - p] = bytes(z - a)
                    j += 1
                i = 0
                while i < n:
                    while i < n and buf[i:i + 4096] == ZERO_4K[:min(4096, n - i)]:
                        i += 4096
                    k = i
                    while k < n and buf[k:k + 4096] != ZERO_4K[:min(4096, n - k)]:
                        k += 4096
                    if k > i:
                        os.pwrite(gd, bytes(buf[i:min(k, n)]), p + i)
                    i = k
                p += n


def write_variant(v, slim, dst):
    b = v.base
    subprocess.run(["cp", "--sparse=always", slim, dst], check=True)
    with open(dst, "r+b") as f:
        fd = f.fileno()
        for voff, data in v.patches:
            pos = 0
            for fo, k in b.c.map(voff, len(data)):
                need(fo is not None, "%s: patch at %d lands in an unallocated VHD block" % (v.name, voff))
                os.pwrite(fd, data[pos:pos + k], fo)
                pos += k
        for foff, data in v.file_patches:
            os.pwrite(fd, data, foff)
        if v.truncate is not None:
            f.truncate(v.truncate)


def verify_variant(v, dst):
    """The variant holds what it claims: rewritten records and INDX blocks have valid fixups (read
    back by this script), and sleuthkit's istat lists the clusters a rewritten runlist meant."""
    b = v.base
    if not v.valid_pieces and not v.istat:
        return
    c = Container(dst, b.c.kind) if not v.file_patches else None
    for pieces in v.valid_pieces:
        raw = b"".join(c.read(b.vol.off + o, n) for o, n in pieces)
        need(raw[:4] in (b"FILE", b"INDX"), "%s: rewritten structure lost its signature" % v.name)
        _, ok = unfixup(raw)
        need(ok, "%s: rewritten structure has a fixup mismatch" % v.name)
    for rec, clusters in v.istat:
        args = ["istat", "-o", str(b.vol.off // 512)]
        if b.c.kind != "raw":
            args += ["-i", "vhd"]
        r = subprocess.run(args + [dst, str(rec)], capture_output=True, text=True)
        need(r.returncode == 0, "%s: istat %d failed: %s" % (v.name, rec, r.stderr))
        text = r.stdout.split("Type: $DATA (128-")[1]
        text = text.split("\n", 1)[1].split("\n\n")[0]
        got = [int(x) for x in text.split()]
        need(got == clusters, "%s: istat lists %s for record %d, the variant meant %s" % (v.name, got[:20], rec, clusters[:20]))


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

PLAN = [
    # fixture, [(generator, arguments, details to keep (prefixes) or None for all)].
    # Every variant is a full sparse image, so the many go to the cheap bases (cs-rootonly: 2.4 MiB
    # on disk, root-only CrowdStrike index; bare-64k: 4.5 MiB, INDX blocks with 512-byte VCNs, DOS
    # names); the 7-11 MiB bases get what is specific to them (GPT / MBR / EBR tables, 512-byte
    # clusters, 4096-byte sectors and records, a depth-3 index, VHD containers) and the key
    # silent-damage cases.
    ("cs-rootonly.raw", [("silent", (), None), ("flips", (2,), None), ("fixups", (), None), ("huge", (True,), None),
                         ("loops", (), None), ("selfref", (), None), ("geometry", (True,), None),
                         ("truncation", (), None), ("controls", (), None)]),
    ("bare-64k.raw", [("silent", (), None), ("flips", (1, True), None), ("fixups", (), None), ("huge", (False,), None),
                      ("loops", (), None), ("selfref", (), None), ("geometry", (False,), None),
                      ("truncation", (), None), ("controls", (), None)]),
    ("gpt-win.raw", [("silent", (), SILENT_KEY), ("flips", (1, ("gpt-entry", "indx-crowdstrike")), None),
                     ("fixups", (), ("indx-crowdstrike", "target-rec2147-stride")), ("loops", (), ("crowdstrike-",)),
                     ("selfref", (), ("entry-points-to-cs-dir", "entry-stale-sequence")),
                     ("partitions", (), None), ("truncation", (), ("before-", "at-", "inside-mft", "after-", "backup-gpt")),
                     ("controls", (), ("slim", "data-of"))]),
    ("mbr-win.raw", [("silent", (), SILENT_KEY), ("flips", (1, ("mbr-table", "target-")), None),
                     ("fixups", (), ("target-", "dir-crowdstrike-stride")), ("partitions", (), None),
                     ("truncation", (), ("inside-target", "before-windows", "after-windows")),
                     ("controls", (), ("slim", "data-of"))]),
    ("gpt-4kn.raw", [("silent", (), ("target-run-into-mft", "target-run-at-lcn0", "target-run-crosslinked-sibling",
                                      "mft-bitmap-run-at-lcn0", "bitmap-run-at-lcn0", "hidden-by-last-flag-on-target",
                                      "orphaned-by-short-node", "boot-zeroed-both")),
                     ("flips", (1, ("target-", "indx-crowdstrike")), None),
                     ("fixups", (), ("target-", "dir-crowdstrike-stride")), ("loops", (), ("crowdstrike-leaf",)),
                     ("geometry", (False,), ("bytes-per-sector",)),
                     ("partitions", (), ("gpt-windows-entry-start-shifted", "gpt-overlap-previous")),
                     ("truncation", (), ("inside-target", "backup-gpt")), ("controls", (), ("slim",))]),
    ("mbr-logical.raw", [("flips", (1, ("mbr-table", "ebr-first")), None), ("partitions", (), None),
                         ("truncation", (), ("at-windows", "after-windows")), ("controls", (), ("slim",))]),
    ("gpt-win-fixed.vhd", [("flips", (0,), None), ("vhd", (), None), ("truncation", (), ("footer", "inside-target")),
                           ("controls", (), ("slim",))]),
    ("gpt-win-dynamic.vhd", [("silent", (), ("target-run-into-mft", "target-run-crosslinked-sibling",
                                              "bitmap-run-at-lcn0", "hidden-by-last-flag-on-target")),
                             ("vhd", (), ("bat-unallocated", "bat-alias")),
                             ("truncation", (), ("footer-gone", "inside-last-block")), ("controls", (), ("slim",))]),
    ("bare-64k-dynamic.vhd", [("flips", (0,), None), ("vhd", (), None), ("truncation", (), None), ("controls", (), None)]),
    ("no-crowdstrike.raw", [("no_match", (), None)]),
    ("cs-empty.raw", [("no_match", (), None)]),
]

GENERATORS = dict(silent=gen_silent, flips=gen_flips, fixups=gen_fixups, huge=gen_huge, loops=gen_loops,
                  selfref=gen_selfref, geometry=gen_geometry, partitions=gen_partitions, vhd=gen_vhd,
                  truncation=gen_truncation, controls=gen_controls, no_match=gen_no_match)


def plan_variants(fixtures):
    bases, variants = [], []
    for name, gens in PLAN:
        b = Base(fixtures, name)
        bases.append(b)
        for g, args, keep in gens:
            made = GENERATORS[g](b, *args)
            variants += [v for v in made if keep is None or v.name.split("--")[-1].startswith(keep)]
    names = [v.name for v in variants]
    dup = sorted({n for n in names if names.count(n) > 1})
    need(not dup, "duplicate variant names: %s" % dup)
    return bases, variants


def stamp_value(fixtures):
    h = hashlib.sha256()
    with open(SCRIPT_PATH, "rb") as f:
        h.update(hashlib.sha256(f.read()).digest())
    with open(os.path.join(fixtures, "manifest.json"), "rb") as f:
        h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def up_to_date(outdir, stamp):
    try:
        with open(os.path.join(outdir, "stamp")) as f:
            if f.read().strip() != stamp:
                return False
        with open(os.path.join(outdir, "manifest.json")) as f:
            man = json.load(f)
        return all(os.path.exists(os.path.join(outdir, "images", v["file"])) for v in man["variants"])
    except (OSError, ValueError, KeyError):
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("fixtures")
    ap.add_argument("outdir")
    ap.add_argument("--force", action="store_true", help="rebuild even if OUTDIR/stamp is current")
    ap.add_argument("--list", action="store_true", help="print the variants without writing them")
    a = ap.parse_args()
    fixtures = os.path.abspath(a.fixtures)
    outdir = os.path.abspath(a.outdir)
    if not os.path.exists(os.path.join(fixtures, "manifest.json")):
        print("no fixtures in %s: run `python3 tests/make-fixtures.py %s` first" % (fixtures, fixtures), file=sys.stderr)
        return 2
    stamp = stamp_value(fixtures)
    if not a.force and not a.list and up_to_date(outdir, stamp):
        print("hostile images in %s are up to date (stamp %s)" % (outdir, stamp[:16]))
        return 0
    t0 = time.time()
    try:
        bases, variants = plan_variants(fixtures)
    except HostileError as e:
        print("HOSTILE IMAGE PLANNING FAILED: %s" % e, file=sys.stderr)
        return 1
    if a.list:
        for v in variants:
            print("%-8s %-70s %s" % (v.expect, v.name, v.note))
        print("%d variants" % len(variants))
        return 0
    parent = os.path.dirname(outdir)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, ".%s.tmp-%d" % (os.path.basename(outdir), os.getpid()))
    ok = False
    try:
        os.makedirs(os.path.join(tmp, "images"))
        os.makedirs(os.path.join(tmp, "_slim"))
        slim = {}
        for b in bases:
            b.compute_drop()
            slim[b.name] = os.path.join(tmp, "_slim", b.name)
            make_slim(b, slim[b.name])
        import concurrent.futures
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            def one(v):
                dst = os.path.join(tmp, "images", v.file)
                write_variant(v, slim[v.base.name], dst)
                verify_variant(v, dst)
            futs = [ex.submit(one, v) for v in variants]
            for i, f in enumerate(futs):
                f.result()
                if (i + 1) % 100 == 0:
                    print("  %d/%d written (%.0f s)" % (i + 1, len(variants), time.time() - t0), flush=True)
        shutil.rmtree(os.path.join(tmp, "_slim"))
        counts = {}
        for v in variants:
            k = "%s/%s" % (v.category, v.expect)
            counts[k] = counts.get(k, 0) + 1
        man = dict(generator="tests/hostile/make-hostile.py", stamp=stamp, fixtures=fixtures,
                   total=len(variants), counts=dict(sorted(counts.items())),
                   variants=[v.manifest() for v in variants])
        with open(os.path.join(tmp, "manifest.json"), "w") as f:
            json.dump(man, f, indent=1)
            f.write("\n")
        with open(os.path.join(tmp, "stamp"), "w") as f:
            f.write(stamp + "\n")
        old = None
        if os.path.exists(outdir):
            old = os.path.join(parent, ".%s.old-%d" % (os.path.basename(outdir), os.getpid()))
            os.rename(outdir, old)
        os.rename(tmp, outdir)
        if old:
            shutil.rmtree(old)
        ok = True
    except HostileError as e:
        print("HOSTILE IMAGE GENERATION FAILED: %s" % e, file=sys.stderr)
        return 1
    finally:
        if not ok and os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    du = subprocess.run(["du", "-sh", outdir], capture_output=True, text=True).stdout.split()[0]
    print("%d hostile images in %s in %.0f s (du -sh: %s)" % (len(variants), outdir, time.time() - t0, du))
    for k, n in sorted(counts.items()):
        print("  %-24s %4d" % (k, n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
