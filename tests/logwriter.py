#!/usr/bin/env python3
"""Test-side NTFS journal writer: describe real metadata changes as a Windows-style `$LogFile`.

Usage (CLI):
    logwriter.py PRE POST OUT [--then POST2] [--flush WHAT ...] [--json REPORT]
                 [--lfs2 [--end-page in-place|buffer-only|torn]]

PRE and POST are images of the same NTFS volume (no partition table) before and after a real
operation made by ntfs-3g.  OUT becomes the *crashed* volume: POST with every metadata block the
operation changed put back to its PRE content (the change "not yet flushed"), and PRE's `$LogFile`
replaced by a journal whose records describe the change.  Replaying that journal as Windows would
(docs/logfile-format.md §10) must give POST again on every metadata byte, apart from the page
LSNs and update sequence numbers a replay stamps.  User data clusters keep POST's bytes: NTFS
never journals file data, so after a crash it is on disk or not regardless of the log.

`--then POST2`: a second operation (POST -> POST2) is logged after the first as a transaction
that never reached its `ForgetTransaction`: uncommitted.  Its blocks stay as in POST (unflushed)
unless `--flush` names them: `t1:mft:N`, `t2:mft:N`, `t1:indx:N:VCN`, `t2:indx:N:VCN` put the
after-image of that MFT record / index block on disk with its LSN stamped as Windows' lazy writer
would (a flushed committed page, which a replay must skip by the LSN rule; or a flushed page of
the uncommitted transaction, which only an undo pass removes).

Independent of kaifuku's Rust reader: everything here is written from docs/logfile-format.md
(section numbers cited below) with Python's struct module.  The volume is read with a small
reader of its own (boot sector, `$MFT` run list, record fixups, attributes, index blocks).

`--lfs2` writes an LFS 2.0 log as Windows 8 and later do while the volume is mounted (§17.7):
restart pages version 2.0, records from page 34, page flag 0x0002 on pages holding a client
restart record, and buffer pages instead of tail copies (see `log_image`).  The NTFS checkpoint
tables stay version 0 (the NTFS client's version is independent of the LFS version, §8.1).

What the writer emits (LFS 1.1, one client "NTFS", version-0 NTFS tables as Windows 7 writes
them, §4.6, §8):

* both restart pages (§4.1-§4.3): equal areas, flags 0 (the volume was mounted when it stopped,
  §4.5), `current_lsn` = `restart_lsn` = the checkpoint below, the client's `oldest_lsn` = the
  oldest LSN the checkpoint still needs (§8.1 field 0x68); update sequence arrays (§3);
* the records in log record pages from page 4 (§2), packed per §5.2 (8-aligned, never starting
  with fewer than 0x30 bytes left, spanning records continued at the next page's data offset with
  header flag 0x0001), page headers per §5.1 (`last_lsn`, `last_end_lsn`, `next_record_offset`,
  flag 0x0001, one I/O of all pages: `page_count`/`page_position`), the partly written last page
  also in the two tail copies, pages 2 and 3, whose 0x08 holds its file offset (§5.6);
* the session: a client restart record at the first log page (§5.4, as every sample starts),
  then transaction 1 in slot 0x18 (§10.7): `OpenNonresidentAttribute` for each non-resident
  attribute it touches (redo = a version-0 entry, undo = the name, §8.3), its first half of
  updates, then a checkpoint taken while it is open -- `OpenAttributeTableDump`,
  `AttributeNamesDump`, `DirtyPageTableDump`, `TransactionTableDump` (§8.2-§8.6) and the client
  restart record naming them (§8.1) -- then the rest of its updates and
  `ForgetTransaction/CompensationLogRecord` with undo-next 0 (§10.7: Windows writes no
  `CommitTransaction`);
* the dumps are logged in their own slot 0x40 while transaction 1 holds 0x18: the samples only
  show dumps in 0x18 because no transaction was open at their checkpoints (§8.1, §13 item 1);
* with `--then`, transaction 2 in slot 0x18 after the Forget, without its Forget.

Operation shapes (redo/undo), chosen as Windows writes them (§9.1, §9.2, §10.7):

* a record that becomes in use: `Noop/DeallocateFileRecordSegment` (the undo frees it; 8 zero
  undo bytes as Windows 10, §10.7) then `InitializeFileRecordSegment/Noop` with the record's
  image up to its bytes in use (fixups removed, LSN field as in memory), §9.2;
* a record already in use whose attributes keep their places: `UpdateResidentValue` with redo
  and undo of equal length over the changed bytes of a resident value (§9.2, e.g. the directory's
  `$STANDARD_INFORMATION` times), `attribute_offset` from the attribute's start;
* a new index entry in a directory's `$INDEX_ROOT`: `AddIndexEntryRoot/DeleteIndexEntryRoot`
  (`record_offset` = the root attribute, `attribute_offset` = the entry's place from the
  attribute's start, redo = the entry, §9.2), and in an `INDX` block
  `AddIndexEntryAllocation/DeleteIndexEntryAllocation` (`attribute_offset` from the block's
  start);
* a record that becomes free (a deleted file): `DeallocateFileRecordSegment/InitializeFile
  RecordSegment`, no redo bytes, undo = the header's first 0x18 bytes (the 20H1 sample's LSN
  0x20110A2); its name leaves a `$INDEX_ROOT` with `DeleteIndexEntryRoot/AddIndexEntryRoot`, no
  redo bytes, undo = the entry (LSN 0x201108A);
* changed duplicated information of an existing entry: `UpdateFileNameRoot/...Allocation`,
  0x38 bytes at entry + 0x18 (§9.2);
* bits set in `$MFT:$BITMAP` or `$Bitmap`: `SetBitsInNonresidentBitMap/ClearBitsInNonresident
  BitMap` with one (first bit, count) pair relative to the bitmap page at `target_vcn`, redo and
  undo sharing the same bytes (§7.1, §9.2); cleared bits the other way round;
* MFT targets: `target_attribute` = the `$MFT:$DATA` slot, `target_vcn` / `cluster_block_offset`
  locate the record, `target_block_size` = record size / 512, one LCN per cluster of the block
  (§7.2); index targets the same with the directory's `$INDEX_ALLOCATION` slot; bitmap targets
  block size 0.

Any other difference between PRE and POST in metadata (a record whose attributes move other than
by one index entry, an index block split, `$Secure`, `$UpCase`, ...) makes the writer stop with
its location: it never writes a record it cannot describe exactly.  Before writing, every update
is applied to PRE by this module's own model of §9.2 and the result must equal POST byte for byte.
"""

import argparse
import json
import os
import struct
import sys

SECTOR = 512
PAGE = 4096  # system and log page size (§4.1, every sample)

# Operation codes (§9.1).
NOOP, CLR, INIT_FRS, DEALLOC_FRS = 0x00, 0x01, 0x02, 0x03
CREATE_ATTR, DELETE_ATTR, UPDATE_RESIDENT, UPDATE_NONRES = 0x05, 0x06, 0x07, 0x08
UPDATE_MAPPING, SET_SIZES = 0x09, 0x0B
ADD_ROOT, DEL_ROOT, ADD_ALLOC, DEL_ALLOC = 0x0C, 0x0D, 0x0E, 0x0F
UPDATE_FN_ROOT, UPDATE_FN_ALLOC = 0x13, 0x14
SET_BITS, CLEAR_BITS = 0x15, 0x16
FORGET, OPEN_ATTR = 0x1B, 0x1C
OAT_DUMP, NAMES_DUMP, DPT_DUMP, TT_DUMP = 0x1D, 0x1E, 0x1F, 0x20

OP_NAMES = {
    NOOP: "Noop", CLR: "CompensationLogRecord", INIT_FRS: "InitializeFileRecordSegment",
    DEALLOC_FRS: "DeallocateFileRecordSegment", CREATE_ATTR: "CreateAttribute",
    DELETE_ATTR: "DeleteAttribute", UPDATE_RESIDENT: "UpdateResidentValue",
    UPDATE_NONRES: "UpdateNonresidentValue", UPDATE_MAPPING: "UpdateMappingPairs",
    SET_SIZES: "SetNewAttributeSizes", ADD_ROOT: "AddIndexEntryRoot", DEL_ROOT: "DeleteIndexEntryRoot",
    ADD_ALLOC: "AddIndexEntryAllocation", DEL_ALLOC: "DeleteIndexEntryAllocation",
    UPDATE_FN_ROOT: "UpdateFileNameRoot", UPDATE_FN_ALLOC: "UpdateFileNameAllocation",
    SET_BITS: "SetBitsInNonresidentBitMap", CLEAR_BITS: "ClearBitsInNonresidentBitMap",
    FORGET: "ForgetTransaction", OPEN_ATTR: "OpenNonresidentAttribute",
    OAT_DUMP: "OpenAttributeTableDump", NAMES_DUMP: "AttributeNamesDump",
    DPT_DUMP: "DirtyPageTableDump", TT_DUMP: "TransactionTableDump",
}

AT_STANDARD_INFORMATION, AT_FILE_NAME, AT_DATA = 0x10, 0x30, 0x80
AT_INDEX_ROOT, AT_INDEX_ALLOCATION, AT_BITMAP = 0x90, 0xA0, 0xB0


class Unsupported(Exception):
    """A change the writer cannot describe exactly: the test must not go on."""


def u16(b, o):
    return struct.unpack_from("<H", b, o)[0]


def u32(b, o):
    return struct.unpack_from("<I", b, o)[0]


def u64(b, o):
    return struct.unpack_from("<Q", b, o)[0]


def align8(n):
    return (n + 7) & ~7


# ---------------------------------------------------------------------------
# Multi-sector protection (§3; the same scheme as FILE and INDX records)
# ---------------------------------------------------------------------------

def unfixup(block):
    """The block with the update sequence array's saved words put back; raises on a torn block."""
    b = bytearray(block)
    usa_ofs, usa_cnt = u16(b, 4), u16(b, 6)
    usn = u16(b, usa_ofs)
    for i in range(1, usa_cnt):
        end = i * SECTOR - 2
        if u16(b, end) != usn:
            raise Unsupported("torn block (sector %d does not end with the update sequence number)" % i)
        b[end:end + 2] = b[usa_ofs + 2 * i:usa_ofs + 2 * i + 2]
    return b


def fixup(block, usn):
    """Protect a block in memory form: save each sector's last word, stamp `usn` there."""
    b = bytearray(block)
    usa_ofs, usa_cnt = u16(b, 4), u16(b, 6)
    struct.pack_into("<H", b, usa_ofs, usn)
    for i in range(1, usa_cnt):
        end = i * SECTOR - 2
        b[usa_ofs + 2 * i:usa_ofs + 2 * i + 2] = b[end:end + 2]
        struct.pack_into("<H", b, end, usn)
    return bytes(b)


def norm(block):
    """A block in memory form without its page LSN and update sequence number."""
    b = bytearray(block)
    if b[:4] in (b"FILE", b"INDX"):
        b[8:16] = bytes(8)
        usa_ofs, usa_cnt = u16(b, 4), u16(b, 6)
        # The whole array: its saved words are the sector ends, already put back in place.
        b[usa_ofs:usa_ofs + 2 * usa_cnt] = bytes(2 * usa_cnt)
    return bytes(b)


def masked(block):
    """A protected block (FILE/INDX) without what a replay stamps: fixups undone, page LSN (+0x08)
    and update sequence number zeroed.  A free record that is not a valid block stays as is."""
    if block[:4] not in (b"FILE", b"INDX"):
        return bytes(block)
    return norm(unfixup(block))


# ---------------------------------------------------------------------------
# A small read-only NTFS reader
# ---------------------------------------------------------------------------

def runlist(b, off, end):
    """Decode mapping pairs into [(vcn, lcn or None, length)]."""
    runs, vcn, lcn = [], 0, 0
    while off < end and b[off]:
        h = b[off]
        nl, no = h & 0xF, h >> 4
        length = int.from_bytes(b[off + 1:off + 1 + nl], "little")
        if no:
            lcn += int.from_bytes(b[off + 1 + nl:off + 1 + nl + no], "little", signed=True)
            runs.append((vcn, lcn, length))
        else:
            runs.append((vcn, None, length))
        vcn += length
        off += 1 + nl + no
    return runs


def attributes(rec):
    """[(offset, type, name, header/value info)] of an MFT record in memory form."""
    out = []
    off = u16(rec, 0x14)
    while off + 8 <= len(rec):
        t = u32(rec, off)
        if t == 0xFFFFFFFF:
            break
        length = u32(rec, off + 4)
        if length < 0x18 or off + length > len(rec):
            raise Unsupported("attribute at 0x%x has a bad length" % off)
        nonres = rec[off + 8]
        nlen, noff = rec[off + 9], u16(rec, off + 10)
        name = rec[off + noff:off + noff + 2 * nlen].decode("utf-16-le")
        a = dict(offset=off, type=t, name=name, length=length, nonresident=bool(nonres))
        if nonres:
            a["runs"] = runlist(rec, off + u16(rec, off + 0x20), off + length)
            a["data_size"] = u64(rec, off + 0x30)
        else:
            a["value_length"], a["value_offset"] = u32(rec, off + 0x10), u16(rec, off + 0x14)
        out.append(a)
        off += length
    return out


def find_attr(rec, type_, name=""):
    for a in attributes(rec):
        if a["type"] == type_ and a["name"] == name:
            return a
    return None


class Volume:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.img = bytearray(f.read())
        b = self.img
        if b[3:11] != b"NTFS    ":
            raise Unsupported("%s is not a bare NTFS volume" % path)
        self.sector = u16(b, 0x0B)
        self.cluster = self.sector * b[0x0D]
        self.mft_lcn = u64(b, 0x30)
        c = struct.unpack_from("<b", b, 0x40)[0]
        self.rec_size = self.cluster * c if c > 0 else 1 << -c
        c = struct.unpack_from("<b", b, 0x44)[0]
        self.idx_size = self.cluster * c if c > 0 else 1 << -c
        rec0 = unfixup(b[self.mft_lcn * self.cluster:self.mft_lcn * self.cluster + self.rec_size])
        self.mft_runs = find_attr(rec0, AT_DATA)["runs"]
        self.mft_records = find_attr(rec0, AT_DATA)["data_size"] // self.rec_size

    def lcn_of(self, runs, vcn):
        for v, lcn, n in runs:
            if v <= vcn < v + n:
                if lcn is None:
                    raise Unsupported("VCN %d is sparse" % vcn)
                return lcn + vcn - v
        raise Unsupported("VCN %d is not mapped" % vcn)

    def record_pos(self, n):
        """(byte offset, target VCN, cluster block offset, LCNs) of MFT record n (§7.2)."""
        byte = n * self.rec_size
        vcn, within = divmod(byte, self.cluster)
        nclusters = max(1, self.rec_size // self.cluster)
        lcns = [self.lcn_of(self.mft_runs, vcn + i) for i in range(nclusters)]
        return lcns[0] * self.cluster + within, vcn, within // SECTOR, lcns

    def raw_record(self, n):
        pos = self.record_pos(n)[0]
        return bytes(self.img[pos:pos + self.rec_size])

    def record(self, n):
        raw = self.raw_record(n)
        return unfixup(raw) if raw[:4] == b"FILE" else None

    def attr_runs(self, recno, type_, name=""):
        a = find_attr(self.record(recno), type_, name)
        if a is None or not a["nonresident"]:
            return None
        return a["runs"]

    def clusters(self, runs):
        for v, lcn, n in runs:
            if lcn is not None:
                for i in range(n):
                    yield v + i, lcn + i


# ---------------------------------------------------------------------------
# The model of the operations (§9.2), used to check that the log reproduces POST
# ---------------------------------------------------------------------------

def model_apply(vol_block, op):
    """Apply one redo operation (dict from `Op`) to a block in memory form; returns the new block."""
    b = bytearray(vol_block)
    code, ro, ao, data = op["redo"], op["record_offset"], op["attribute_offset"], op["redo_data"]
    if code == INIT_FRS:
        b[0:len(data)] = data
    elif code == DEALLOC_FRS:
        # §9.2: in use cleared, the sequence number incremented (never to 0), nothing else.
        struct.pack_into("<H", b, 0x16, u16(b, 0x16) & ~1)
        struct.pack_into("<H", b, 0x10, (u16(b, 0x10) + 1) & 0xFFFF or 1)
    elif code == UPDATE_RESIDENT:
        if len(data) != len(op["undo_data"]):
            raise Unsupported("resizing UpdateResidentValue is not modelled")
        b[ro + ao:ro + ao + len(data)] = data
    elif code == ADD_ROOT:
        at = ro + ao
        used = u32(b, 0x18)
        b[at + len(data):used + len(data)] = b[at:used]
        b[at:at + len(data)] = data
        n = len(data)
        struct.pack_into("<I", b, 0x18, used + n)                      # bytes in use
        struct.pack_into("<I", b, ro + 4, u32(b, ro + 4) + n)          # attribute length
        struct.pack_into("<I", b, ro + 0x10, u32(b, ro + 0x10) + n)    # value length
        ih = ro + u16(b, ro + 0x14) + 0x10                             # index header
        struct.pack_into("<I", b, ih + 4, u32(b, ih + 4) + n)          # entries length
        struct.pack_into("<I", b, ih + 8, u32(b, ih + 8) + n)          # allocated length
    elif code == DEL_ROOT:
        # The entry's bytes leave the root; what followed moves down over them. The bytes past the
        # new end stay as they were (ntfs-3g's memmove; no reader looks past bytes in use).
        at = ro + ao
        used = u32(b, 0x18)
        n = u16(b, at + 8)
        b[at:used - n] = b[at + n:used]
        struct.pack_into("<I", b, 0x18, used - n)
        struct.pack_into("<I", b, ro + 4, u32(b, ro + 4) - n)
        struct.pack_into("<I", b, ro + 0x10, u32(b, ro + 0x10) - n)
        ih = ro + u16(b, ro + 0x14) + 0x10
        struct.pack_into("<I", b, ih + 4, u32(b, ih + 4) - n)
        struct.pack_into("<I", b, ih + 8, u32(b, ih + 8) - n)
    elif code == ADD_ALLOC:
        at = ro + ao
        ih = ro + 0x18
        end = ih + u32(b, ih + 4)
        n = len(data)
        b[at + n:end + n] = b[at:end]
        b[at:at + n] = data
        struct.pack_into("<I", b, ih + 4, u32(b, ih + 4) + n)
    elif code == SET_SIZES:
        alloc, init, size = struct.unpack_from("<QQQ", data)
        struct.pack_into("<Q", b, ro + 0x28, alloc)
        struct.pack_into("<Q", b, ro + 0x38, init)
        struct.pack_into("<Q", b, ro + 0x30, size)
    elif code in (UPDATE_FN_ROOT, UPDATE_FN_ALLOC):
        at = ro + ao + 0x18
        b[at:at + len(data)] = data
    elif code in (SET_BITS, CLEAR_BITS):
        first, count = struct.unpack_from("<II", data)
        base = ro * 8
        for i in range(first + base, first + base + count):
            if code == SET_BITS:
                b[i >> 3] |= 1 << (i & 7)
            else:
                b[i >> 3] &= ~(1 << (i & 7)) & 0xFF
    elif code == NOOP:
        pass
    else:
        raise Unsupported("no model for %s" % OP_NAMES.get(code, code))
    return bytes(b)


# ---------------------------------------------------------------------------
# From two images to update operations
# ---------------------------------------------------------------------------

def index_entries(b, start, end):
    """[(offset, bytes)] of the index entries from `start` to the end entry (inclusive)."""
    out, off = [], start
    while off < end:
        length = u16(b, off + 8)
        if length < 0x10 or off + length > end:
            raise Unsupported("index entry at 0x%x has a bad length" % off)
        out.append((off, bytes(b[off:off + length])))
        if b[off + 12] & 2:
            break
        off += length
    return out


def same_key(e1, e2):
    """Two $I30 entries name the same file: same file reference and same key bytes from the name."""
    return e1[0:8] == e2[0:8] and e1[0x50:] == e2[0x50:] and len(e1) == len(e2)


def entry_ops(pre_entries, post_entries, add_code, upd_code, base_adjust, removals=False):
    """Index entry changes between two entry lists of one node: ([(entry offset, bytes)] inserted,
    [(entry offset, pre bytes, post bytes)] with duplicated information changed), and with
    `removals` also [(entry offset, bytes)] removed, each offset where the entry is once the
    removals before it are done (entries are either inserted or removed in one node, not both)."""
    inserted, updated, removed = [], [], []
    i = j = 0
    gone = 0
    while j < len(post_entries):
        po, pe = post_entries[j]
        if i < len(pre_entries) and same_key(pre_entries[i][1], pe):
            if pre_entries[i][1] != pe:
                pre_e = pre_entries[i][1]
                if pre_e[:0x18] != pe[:0x18] or pre_e[0x50:] != pe[0x50:]:
                    raise Unsupported("an index entry changed outside its duplicated information")
                updated.append((po, pre_e, pe))
            i += 1
        elif removals and i < len(pre_entries) and not any(same_key(pre_entries[i][1], e)
                                                           for _, e in post_entries[j:]):
            removed.append((pre_entries[i][0] - gone, pre_entries[i][1]))
            gone += len(pre_entries[i][1])
            i += 1
            continue
        else:
            inserted.append((po, pe))
        j += 1
    if i != len(pre_entries) or (removed and inserted):
        raise Unsupported("index entries were removed or reordered")
    if removals:
        return inserted, updated, removed
    return inserted, updated


class Change:
    """The ordered update operations of one operation (one transaction)."""

    def __init__(self):
        self.ops = []          # dicts, see `op()`
        self.targets = {}      # key -> (kind, location, pre block, post block)
        self.freed = []        # records in use in PRE and free in POST


def op(redo, undo, kind, key, record_offset=0, attribute_offset=0, redo_data=b"", undo_data=b"",
       same_bytes=False):
    return dict(redo=redo, undo=undo, kind=kind, key=key, record_offset=record_offset,
                attribute_offset=attribute_offset, redo_data=bytes(redo_data), undo_data=bytes(undo_data),
                same_bytes=same_bytes)


def diff_volumes(pre, post):
    """Describe POST - PRE as update operations, grouped per target block."""
    if (pre.cluster, pre.rec_size, pre.idx_size, pre.mft_lcn) != (post.cluster, post.rec_size, post.idx_size, post.mft_lcn):
        raise Unsupported("the two images are not the same volume")
    if pre.mft_runs != post.mft_runs:
        raise Unsupported("$MFT changed its runs (MFT growth is not described)")
    ch = Change()
    vol = post
    covered = set()  # byte ranges (start, end) of metadata the operations describe or replace

    def block_range(start, size):
        covered.add((start, start + size))

    # Never part of the comparison: the journal itself, and $MFTMirr (a replay rewrites it).
    log_runs = post.attr_runs(2, AT_DATA)
    for _, lcn in post.clusters(log_runs):
        block_range(lcn * vol.cluster, vol.cluster)
    ch.mirror = []
    for _, lcn in post.clusters(post.attr_runs(1, AT_DATA)):
        block_range(lcn * vol.cluster, vol.cluster)
        ch.mirror.append(lcn * vol.cluster)

    new_records, dirs = [], []
    for n in range(post.mft_records):
        pos = post.record_pos(n)[0]
        block_range(pos, post.rec_size)
        a, b = pre.raw_record(n), post.raw_record(n)
        if masked(a) == masked(b):
            continue
        ra, rb = pre.record(n), post.record(n)
        key = ("mft", n)
        if ra is not None and rb is not None and u16(ra, 0x16) & 1 and not (u16(rb, 0x16) & 1):
            # A deleted file: as Windows logs it (the 20H1 sample, LSN 0x20110A2),
            # `DeallocateFileRecordSegment` with no redo bytes and the header's first 0x18 bytes
            # as its undo. ntfs-3g, which made POST, also zeroes the link count; Windows logs no
            # change of it, so the operation does not describe it (see `verify_change`).
            na, nb = bytearray(masked(a)), bytearray(masked(b))
            for o in (0x10, 0x12, 0x16):
                na[o:o + 2] = nb[o:o + 2] = bytes(2)
            if na != nb:
                raise Unsupported("record %d: freed with other changes" % n)
            ch.targets[key] = ("mft", n, masked(a), masked(b))
            ch.freed.append(n)
            ch.ops.append(op(DEALLOC_FRS, INIT_FRS, "mft", key, undo_data=bytes(ra[:0x18])))
            continue
        if rb is None or not (u16(rb, 0x16) & 1):
            raise Unsupported("record %d is damaged in POST" % n)
        ch.targets[key] = ("mft", n, masked(a), masked(b))
        if ra is None or not (u16(ra, 0x16) & 1):
            new_records.append(n)
            used = u32(rb, 0x18)
            # The image covers the bytes in use (§9.2); when the record keeps stale bytes past
            # them (ntfs-3g leaves an old end marker after a resident value moved out), the
            # image goes on to the last of those, so that the replay gives the same bytes.
            tail_pre = masked(a) if ra is not None else bytes(a)
            tail_post = masked(b)
            diffs = [i for i in range(used, len(tail_post)) if tail_post[i] != tail_pre[i]]
            image = bytes(rb[:max(used, align8(diffs[-1] + 1) if diffs else 0)])
            ch.ops.append(op(NOOP, DEALLOC_FRS, "mft", key, undo_data=bytes(8)))
            ch.ops.append(op(INIT_FRS, NOOP, "mft", key, redo_data=image))
            ch.ops[-1]["new"] = ch.ops[-2]["new"] = True
        else:
            dirs.append(n)
            describe_record(ch, key, ra, rb)

    # Index blocks of every directory whose record or index allocation is present.
    for n in range(post.mft_records):
        rb = post.record(n)
        if rb is None or not (u16(rb, 0x16) & 1) or not (u16(rb, 0x16) & 2):
            continue
        runs = post.attr_runs(n, AT_INDEX_ALLOCATION, "$I30")
        if runs is None:
            continue
        pre_runs = pre.attr_runs(n, AT_INDEX_ALLOCATION, "$I30") if pre.record(n) is not None else None
        if pre_runs != runs:
            raise Unsupported("directory %d: index allocation changed (new or split index blocks)" % n)
        per_block = max(1, vol.idx_size // vol.cluster)
        vcns = sorted(v for v, _ in post.clusters(runs))
        for vcn in vcns[::per_block]:
            lcns = [vol.lcn_of(runs, vcn + i) for i in range(per_block)]
            start = lcns[0] * vol.cluster
            block_range(start, vol.idx_size)
            a = bytes(pre.img[start:start + vol.idx_size])
            b = bytes(post.img[start:start + vol.idx_size])
            if a[:4] != b"INDX" and b[:4] != b"INDX":
                continue
            if masked(a) == masked(b):
                continue
            if a[:4] != b"INDX" or b[:4] != b"INDX":
                raise Unsupported("directory %d: index block %d is new (split) or freed" % (n, vcn))
            key = ("indx", n, vcn)
            ch.targets[key] = ("indx", (n, vcn, lcns), masked(a), masked(b))
            pa, pb = unfixup(a), unfixup(b)
            ea = index_entries(pa, 0x18 + u32(pa, 0x18), 0x18 + u32(pa, 0x1C))
            eb = index_entries(pb, 0x18 + u32(pb, 0x18), 0x18 + u32(pb, 0x1C))
            inserted, updated = entry_ops(ea, eb, ADD_ALLOC, UPDATE_FN_ALLOC, 0)
            for po, pre_e, post_e in updated:
                ch.ops.append(op(UPDATE_FN_ALLOC, UPDATE_FN_ALLOC, "indx", key, attribute_offset=po,
                                 redo_data=post_e[0x18:0x50], undo_data=pre_e[0x18:0x50]))
            for po, e in inserted:
                ch.ops.append(op(ADD_ALLOC, DEL_ALLOC, "indx", key, attribute_offset=po, redo_data=e,
                                 undo_data=e))

    # Bitmaps: $MFT:$BITMAP and $Bitmap, one operation per run of changed bits per cluster.
    for recno, type_ in ((0, AT_BITMAP), (6, AT_DATA)):
        runs = post.attr_runs(recno, type_)
        if runs is None or runs != pre.attr_runs(recno, type_):
            raise Unsupported("record %d's bitmap is resident or moved" % recno)
        for vcn, lcn in post.clusters(runs):
            start = lcn * vol.cluster
            block_range(start, vol.cluster)
            a, b = pre.img[start:start + vol.cluster], post.img[start:start + vol.cluster]
            if a == b:
                continue
            key = ("bitmap", recno, vcn)
            ch.targets[key] = ("bitmap", (recno, type_, vcn, lcn), bytes(a), bytes(b))
            bit = 0
            nbits = vol.cluster * 8
            while bit < nbits:
                x, y = (a[bit >> 3] >> (bit & 7)) & 1, (b[bit >> 3] >> (bit & 7)) & 1
                if x == y:
                    bit += 1
                    continue
                first = bit
                while bit < nbits and ((a[bit >> 3] >> (bit & 7)) & 1) == x and ((b[bit >> 3] >> (bit & 7)) & 1) == y:
                    bit += 1
                data = struct.pack("<II", first, bit - first)
                code, undo = (SET_BITS, CLEAR_BITS) if y else (CLEAR_BITS, SET_BITS)
                ch.ops.append(op(code, undo, "bitmap", key, redo_data=data, undo_data=data, same_bytes=True))

    # Anything else that differs must be user data of a file the POST records own.
    owned = set()
    for n in range(post.mft_records):
        rb = post.record(n)
        if rb is None or not (u16(rb, 0x16) & 1) or n < 16:
            continue
        for a in attributes(rb):
            if a["nonresident"] and a["type"] == AT_DATA:
                for _, lcn in post.clusters(a["runs"]):
                    owned.add(lcn)
    other = []
    ranges = sorted(covered)
    step = vol.cluster
    for start in range(0, len(post.img), step):
        if pre.img[start:start + step] == post.img[start:start + step] or (start // step) in owned:
            continue
        for sec in range(start, start + step, SECTOR):
            if pre.img[sec:sec + SECTOR] == post.img[sec:sec + SECTOR]:
                continue
            if not any(s <= sec and sec + SECTOR <= e for s, e in ranges):
                other.append(start // step)
                break
    if other:
        raise Unsupported("clusters changed that are neither described metadata nor file data: %s"
                          % other[:16])
    # Windows logs the allocation before the records that use it, the record before its name
    # in the index: bitmaps first, then new records, then the rest (§10.7's order of a create).
    ch.ops.sort(key=lambda o: 0 if o["kind"] == "bitmap" else 1 if o.get("new") else 2)
    verify_change(ch, pre, post)
    return ch


def describe_record(ch, key, ra, rb):
    """Update operations for an in-use record whose attributes keep their order: one index entry
    added to its $INDEX_ROOT, and resident values changed in place."""
    aa, ab = attributes(ra), attributes(rb)
    if [(a["type"], a["name"]) for a in aa] != [(b["type"], b["name"]) for b in ab]:
        raise Unsupported("record %d: attributes added or removed" % key[1])
    ha, hb = bytearray(norm(ra)[:u16(ra, 0x14)]), bytearray(norm(rb)[:u16(rb, 0x14)])
    ha[0x18:0x1C] = hb[0x18:0x1C] = bytes(4)  # bytes in use grows with an index entry
    if ha != hb:
        raise Unsupported("record %d: header changed" % key[1])
    work = bytes(ra)
    for a, b in zip(aa, ab):
        cur = {x["offset"]: x for x in attributes(work)}
        a_now = [x for x in attributes(work) if x["type"] == a["type"] and x["name"] == a["name"]][0]
        off = a_now["offset"]
        if a["type"] == AT_INDEX_ROOT and a["name"] == "$I30":
            ih_a = off + a_now["value_offset"] + 0x10
            ih_b = b["offset"] + b["value_offset"] + 0x10
            ea = index_entries(work, ih_a + u32(work, ih_a), ih_a + u32(work, ih_a + 4))
            eb = index_entries(rb, ih_b + u32(rb, ih_b), ih_b + u32(rb, ih_b + 4))
            # Offsets relative to the attribute's start (§7.2).
            ea = [(o - off, e) for o, e in ea]
            eb = [(o - b["offset"], e) for o, e in eb]
            inserted, updated, removed = entry_ops(ea, eb, ADD_ROOT, UPDATE_FN_ROOT, off, removals=True)
            # A removal as Windows logs one (the 20H1 sample, LSN 0x201108A): no redo bytes, the
            # entry as the undo bytes.
            for po, e in removed:
                o = op(DEL_ROOT, ADD_ROOT, "mft", key, record_offset=off, attribute_offset=po,
                       undo_data=e)
                ch.ops.append(o)
                work = model_apply(work, o)
            for po, pre_e, post_e in updated:
                o = op(UPDATE_FN_ROOT, UPDATE_FN_ROOT, "mft", key, record_offset=off, attribute_offset=po,
                       redo_data=post_e[0x18:0x50], undo_data=pre_e[0x18:0x50])
                ch.ops.append(o)
                work = model_apply(work, o)
            for po, e in inserted:
                o = op(ADD_ROOT, DEL_ROOT, "mft", key, record_offset=off, attribute_offset=po,
                       redo_data=e, undo_data=e)
                ch.ops.append(o)
                work = model_apply(work, o)
            continue
        if a["nonresident"] or b["nonresident"]:
            va = bytearray(work[off:off + a_now["length"]])
            vb = rb[b["offset"]:b["offset"] + b["length"]]
            if va == vb:
                continue
            # Only the sizes may change (the MFT's initialized part growing inside its allocation):
            # SetNewAttributeSizes with allocated, initialized, data size in that order (§9.2).
            va[0x28:0x40] = vb[0x28:0x40]
            if not (a["nonresident"] and b["nonresident"]) or va != vb:
                raise Unsupported("record %d: non-resident attribute 0x%x changed beyond its sizes"
                                  % (key[1], a["type"]))
            sizes = lambda r, o: struct.pack("<QQQ", u64(r, o + 0x28), u64(r, o + 0x38), u64(r, o + 0x30))
            o = op(SET_SIZES, SET_SIZES, "mft", key, record_offset=off,
                   redo_data=sizes(rb, b["offset"]), undo_data=sizes(work, off))
            ch.ops.append(o)
            work = model_apply(work, o)
            continue
        va = work[off:off + a_now["length"]]
        vb = rb[b["offset"]:b["offset"] + b["length"]]
        if va == vb:
            continue
        if len(va) != len(vb) or va[:0x18] != vb[:0x18]:
            raise Unsupported("record %d: attribute 0x%x resized" % (key[1], a["type"]))
        first = next(i for i in range(len(va)) if va[i] != vb[i])
        last = max(i for i in range(len(va)) if va[i] != vb[i]) + 1
        o = op(UPDATE_RESIDENT, UPDATE_RESIDENT, "mft", key, record_offset=off, attribute_offset=first,
               redo_data=vb[first:last], undo_data=va[first:last])
        ch.ops.append(o)
        work = model_apply(work, o)


def verify_change(ch, pre, post):
    """Apply the operations with this module's model to PRE's blocks: every target must become
    POST's block (page LSN and update sequence number aside)."""
    state = {k: (t[2] if t[0] != "mft" or t[2][:4] == b"FILE" else bytes(len(t[2])))
             for k, t in ch.targets.items()}
    for o in ch.ops:
        kind = ch.targets[o["key"]][0]
        blk = state[o["key"]]
        if kind == "indx":
            # INDX ops: record_offset 0 = the block; the model works on the whole block.
            blk = model_apply(blk, o)
        else:
            blk = model_apply(blk, o)
        state[o["key"]] = blk
    for k, t in ch.targets.items():
        got, want = state[k], t[3]
        got = norm(got)
        if k[0] == "mft" and k[1] in ch.freed:
            # ntfs-3g zeroes a freed record's link count; no operation describes that (§9.2).
            want = bytearray(want)
            want[0x12:0x14] = got[0x12:0x14]
            want = bytes(want)
        if got != want:
            first = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]), None)
            raise Unsupported("the operations do not reproduce %s (first difference at 0x%x)" % (k, first or 0))


# ---------------------------------------------------------------------------
# The log
# ---------------------------------------------------------------------------

class Log:
    """Lays LFS records into pages (§5) and writes the restart pages (§4)."""

    def __init__(self, size, major=1, minor=1):
        if (major, minor) not in ((1, 1), (2, 0)):
            raise Unsupported("only LFS 1.1 and 2.0 are written")
        self.major, self.minor = major, minor
        self.size = size & ~(PAGE - 1)
        self.seq_bits = 67 - self.size.bit_length()
        self.data_bits = 64 - self.seq_bits
        self.seq = 2               # a session starting on an even lap (§5.4)
        # 1.1: tail copies in pages 2-3, records from page 4; 2.0: buffer pages 2-33, records
        # from page 34 (§4.6, §17.2).
        self.first_page = (34 if major == 2 else 4) * PAGE
        self.pos = self.first_page + 0x40
        self.records = []          # (lsn, offset, bytes)
        self.restart_lsns = set()  # client restart records (2.0 page flag 0x0002, §17.2)

    def lsn_at(self, offset):
        return (self.seq << self.data_bits) | (offset // 8)

    def next_lsn(self):
        return self.lsn_at(self.pos)

    def append(self, header_fields, client_data):
        """Place one record at the current position; returns its LSN."""
        pos = self.pos
        if PAGE - pos % PAGE < 0x30:
            pos = (pos // PAGE + 1) * PAGE + 0x40
        lsn = self.lsn_at(pos)
        rec_len = 0x30 + len(client_data)
        spans = pos % PAGE + rec_len > PAGE
        prev, undo_next, rtype, tid = header_fields
        if rtype == 2:
            self.restart_lsns.add(lsn)
        hdr = struct.pack("<QQQIHHIIH6x", lsn, prev, undo_next, len(client_data), 0, 0, rtype, tid,
                          1 if spans else 0)
        data = hdr + client_data
        # Lay the bytes into pages; a spanning record continues at the next page's data offset.
        offsets, left, at = [], data, pos
        while left:
            room = PAGE - at % PAGE
            offsets.append((at, left[:room]))
            left = left[room:]
            if left:
                at = (at // PAGE + 1) * PAGE + 0x40
                if at >= self.size:
                    raise Unsupported("the log is full")
            else:
                at += len(offsets[-1][1])
        self.records.append((lsn, pos, offsets, at))
        self.pos = align8(at)
        if self.pos % PAGE == 0:
            self.pos += 0x40
        return lsn

    def pages(self):
        """{page offset: protected page bytes} of every record page, and the last page's offset."""
        content = {}
        info = {}
        for lsn, pos, pieces, end in self.records:
            for at, chunk in pieces:
                p = at - at % PAGE
                page = content.setdefault(p, bytearray(b"\0" * PAGE))
                page[at % PAGE:at % PAGE + len(chunk)] = chunk
            start_page = pos - pos % PAGE
            end_page = (end - 1) - (end - 1) % PAGE
            i = info.setdefault(start_page, dict(last_lsn=0, last_end_lsn=0, next=0))
            i["last_lsn"] = max(i["last_lsn"], lsn)
            if lsn in self.restart_lsns and self.major == 2:
                i["restart"] = True
            j = info.setdefault(end_page, dict(last_lsn=0, last_end_lsn=0, next=0))
            j["last_end_lsn"] = max(j["last_end_lsn"], lsn)
            j["next"] = max(j["next"], end - end_page)
        order = sorted(content)
        out = {}
        for k, p in enumerate(order):
            i = info.get(p, dict(last_lsn=0, last_end_lsn=0, next=0))
            if not i["last_end_lsn"] or not i["last_lsn"]:
                raise Unsupported("a page without a record starting and ending in it (records too long)")
            page = content[p]
            page[0:4] = b"RCRD"
            flags = 1 | (2 if i.get("restart") else 0)
            struct.pack_into("<HHQIHHH6xQ", page, 4, 0x28, 9, i["last_lsn"], flags, len(order), k + 1,
                             i["next"], i["last_end_lsn"])
            out[p] = page
        return out, order[-1], info[order[-1]]["last_end_lsn"]


def client_data(redo, undo, ops_fields, lcns, redo_data, undo_data, same_bytes=False, undo_len=None):
    """NTFS client data (§7.1): header, LCN list, redo bytes, undo bytes."""
    target_attr, record_offset, attribute_offset, cbo, block_size, vcn = ops_fields
    n = len(lcns)
    head = 0x20 + 8 * max(1, n)
    redo_off = head
    body = bytearray(redo_data) + bytes(align8(len(redo_data)) - len(redo_data))
    if same_bytes:
        undo_off = redo_off
    else:
        undo_off = head + len(body)
        body += bytes(undo_data) + bytes(align8(len(undo_data)) - len(undo_data))
    hdr = struct.pack("<HHHHHHHHHHHHQ", redo, undo, redo_off, len(redo_data), undo_off,
                      len(undo_data) if undo_len is None else undo_len, target_attr, n,
                      record_offset, attribute_offset, cbo, block_size, vcn)
    lcn_bytes = b"".join(struct.pack("<Q", l) for l in lcns) if n else struct.pack("<q", -1)
    return hdr + lcn_bytes + bytes(body)


class Writer:
    """Builds the session of §10.7 for one or two changes."""

    OAT_V0 = 0x2C

    def __init__(self, vol, lfs2=False):
        self.vol = vol
        log_rec = vol.record(2)
        self.log_runs = find_attr(log_rec, AT_DATA)["runs"]
        self.log_size = find_attr(log_rec, AT_DATA)["data_size"]
        self.log = Log(self.log_size, *((2, 0) if lfs2 else (1, 1)))
        self.slots = {}          # (recno, type, name) -> slot offset
        self.slot_info = {}
        self.dirty = {}          # (slot, vcn) -> (oldest lsn, lcn)
        self.lsn_of_target = {}  # target key -> last LSN that changed it
        self.listing = []        # what every record was written with, for the judge

    def slot(self, recno, type_, name=""):
        k = (recno, type_, name)
        if k not in self.slots:
            self.slots[k] = 0x18 + self.OAT_V0 * len(self.slots)
        return self.slots[k]

    def oat_entry(self, recno, type_, name, open_lsn):
        seq = u16(self.vol.record(recno), 0x10)
        e = bytearray(self.OAT_V0)
        struct.pack_into("<IIQQBBHI", e, 0, 0xFFFFFFFF, 0, recno | (seq << 48), open_lsn, 0,
                         1 if name else 0, 0, type_)
        struct.pack_into("<I", e, 0x28, self.vol.idx_size if type_ == AT_INDEX_ALLOCATION else 0)
        return bytes(e)

    def add(self, tx, redo, undo, fields, lcns, redo_data=b"", undo_data=b"", rtype=1, same_bytes=False,
            key=None, undo_next=None):
        cd = client_data(redo, undo, fields, lcns, redo_data, undo_data, same_bytes)
        prev = tx["last"] if tx else 0
        un = prev if undo_next is None else undo_next
        lsn = self.log.append((prev, un, rtype, tx["id"] if tx else 0), cd)
        if tx is not None:
            tx["last"] = lsn
            tx.setdefault("first", lsn)
            tx["count"] = tx.get("count", 0) + 1
        self.listing.append(dict(lsn=lsn, redo=redo, undo=undo, transaction=tx["id"] if tx else 0,
                                 target_attribute=fields[0], lcns=list(lcns), target_vcn=fields[5],
                                 record_offset=fields[1], attribute_offset=fields[2],
                                 cluster_index=fields[3], redo_length=len(redo_data),
                                 undo_length=len(undo_data), key=key))
        if key is not None and lcns:
            self.lsn_of_target[key] = lsn
            dk = (fields[0], fields[5])
            if dk not in self.dirty:
                self.dirty[dk] = (lsn, lcns[0])
        return lsn

    def restart_record(self, tables):
        """A client restart record (§8.1), tables = dict of dump LSNs/lengths."""
        d = bytearray(0x70)
        struct.pack_into("<IIQQQQQIIIIQQI4xQQQ", d, 0, 0, 0, tables.get("start", 0),
                         tables.get("oat", (0, 0))[0], tables.get("names", (0, 0))[0],
                         tables.get("dpt", (0, 0))[0], tables.get("tt", (0, 0))[0],
                         tables.get("oat", (0, 0))[1], tables.get("names", (0, 0))[1],
                         tables.get("dpt", (0, 0))[1], tables.get("tt", (0, 0))[1],
                         0, self.log.seq << self.log.data_bits, self.vol.cluster, 0, 0,
                         tables.get("oldest", 0))
        lsn = self.log.append((0, 0, 2, 0), bytes(d))
        self.listing.append(dict(lsn=lsn, restart=True, oldest=tables.get("oldest", 0),
                                 start=tables.get("start", 0)))
        return lsn

    def fields_for(self, o):
        v = self.vol
        kind = o["kind"]
        if kind == "mft":
            n = o["key"][1]
            _, vcn, cbo, lcns = v.record_pos(n)
            return (self.slot(0, AT_DATA), o["record_offset"], o["attribute_offset"], cbo, v.rec_size // SECTOR, vcn), lcns
        if kind == "indx":
            _, n, vcn = o["key"]
            runs = v.attr_runs(n, AT_INDEX_ALLOCATION, "$I30")
            per = max(1, v.idx_size // v.cluster)
            lcns = [v.lcn_of(runs, vcn + i) for i in range(per)]
            return (self.slot(n, AT_INDEX_ALLOCATION, "$I30"), 0, o["attribute_offset"], 0, v.idx_size // SECTOR, vcn), lcns
        _, recno, vcn = o["key"]
        type_ = AT_BITMAP if recno == 0 else AT_DATA
        lcn = v.lcn_of(v.attr_runs(recno, type_), vcn)
        return (self.slot(recno, type_), 0, 0, 0, 0, vcn), [lcn]

    def open_attributes(self, tx, ops):
        for o in ops:
            if o["kind"] == "mft":
                k = (0, AT_DATA, "")
            elif o["kind"] == "indx":
                k = (o["key"][1], AT_INDEX_ALLOCATION, "$I30")
            else:
                k = (o["key"][1], AT_BITMAP if o["key"][1] == 0 else AT_DATA, "")
            if k in self.slots:
                continue
            s = self.slot(*k)
            entry = self.oat_entry(k[0], k[1], k[2], self.log.next_lsn())
            self.slot_info[s] = (k, entry)
            self.add(tx, OPEN_ATTR, NOOP, (s, 0, 0, 0, 0, 0), [], entry, k[2].encode("utf-16-le"))

    def checkpoint(self, open_tx):
        """Dumps (in their own slot 0x40, §8.1) and the client restart record."""
        start = self.log.records[-1][0]
        dtx = dict(id=0x18 + 0x28, last=0)
        tables = dict(start=start)
        # Open attribute table (§8.2, §8.3 version 0).
        ents = [self.slot_info[s][1] for s in sorted(self.slot_info)]
        t = self.table(self.OAT_V0, ents, 32)
        tables["oat"] = (self.add(dtx, OAT_DUMP, NOOP, (0, 0, 0, 0, 0, 0), [], t), len(t))
        # Attribute names (§8.4).
        names = b""
        for s in sorted(self.slot_info):
            nm = self.slot_info[s][0][2]
            if nm:
                u = nm.encode("utf-16-le")
                names += struct.pack("<HH", s, len(u)) + u + b"\0\0"
        names += bytes(4)
        tables["names"] = (self.add(dtx, NAMES_DUMP, NOOP, (0, 0, 0, 0, 0, 0), [], names), len(names))
        # Dirty pages (§8.5 version 0, one LCN per page).
        ents = []
        for (slot, vcn), (oldest, lcn) in sorted(self.dirty.items()):
            e = bytearray(0x2C)
            struct.pack_into("<IIIII", e, 0, 0xFFFFFFFF, slot, self.vol.cluster, 1, 0)
            struct.pack_into("<QQQ", e, 0x14, vcn, oldest, lcn)
            ents.append(bytes(e))
        t = self.table(0x2C, ents, 48)
        tables["dpt"] = (self.add(dtx, DPT_DUMP, NOOP, (0, 0, 0, 0, 0, 0), [], t), len(t))
        # Transactions (§8.6): the open one, active, in slot 0x18.
        e = struct.pack("<IB3xQQQII", 0xFFFFFFFF, 1, open_tx["first"], open_tx["last"], open_tx["last"],
                        open_tx["count"], 0)
        t = self.table(0x28, [e], 16)
        tables["tt"] = (self.add(dtx, TT_DUMP, NOOP, (0, 0, 0, 0, 0, 0), [], t), len(t))
        tables["oldest"] = min([open_tx["first"]] + [v[0] for v in self.dirty.values()] + [start])
        lsn = self.restart_record(tables)
        self.checkpoint_lsn, self.oldest = lsn, tables["oldest"]
        return lsn

    @staticmethod
    def table(entry_size, entries, slots):
        """A restart table (§8.2) of `slots` allocated entries, the used ones first; each free slot
        holds the offset of the next free one (0 for the last), as the samples' tables do."""
        body = bytearray(b"".join(entries))
        free = [0x18 + entry_size * i for i in range(len(entries), slots)]
        for k, at in enumerate(free):
            e = bytearray(entry_size)
            struct.pack_into("<I", e, 0, free[k + 1] if k + 1 < len(free) else 0)
            body += e
        hdr = struct.pack("<HHH6xIII", entry_size, slots, len(entries), 0xFFFFFFFF,
                          free[0] if free else 0, free[-1] if free else 0)
        return hdr + bytes(body)

    def transaction(self, tx, change, ops, forget, checkpoint_after=None):
        self.open_attributes(tx, ops)
        for i, o in enumerate(ops):
            fields, lcns = self.fields_for(o)
            self.add(tx, o["redo"], o["undo"], fields, lcns, o["redo_data"], o["undo_data"],
                     same_bytes=o["same_bytes"], key=o["key"])
            if checkpoint_after is not None and i == checkpoint_after:
                self.checkpoint(tx)
        if forget:
            self.add(tx, FORGET, CLR, (0, 0, 0, 0, 0, 0), [], undo_next=0)

    def restart_pages(self, out, usns=(1, 2)):
        """Both restart pages (§4), equal areas, flags 0: the volume stopped while mounted."""
        pages = []
        for usn in usns:
            p = bytearray(b"\0" * PAGE)
            p[0:4] = b"RSTR"
            struct.pack_into("<HHQIIHhh", p, 4, 0x1E, 9, 0, PAGE, PAGE, 0x30, self.log.minor, self.log.major)
            area = struct.pack("<QHHHHIHHQIHHI", self.checkpoint_lsn, 1, 0xFFFF, 0, 0,
                               self.log.seq_bits, 0x40 + 0xA0, 0x40, self.log.size, 0x70, 0x30, 0x40,
                               0x4B414946)
            p[0x30:0x30 + len(area)] = area
            name = "NTFS".encode("utf-16-le")
            client = struct.pack("<QQHHH6xI", self.oldest, self.checkpoint_lsn, 0xFFFF, 0xFFFF, 0, len(name)) + name
            p[0x70:0x70 + len(client)] = client
            pages.append(fixup(p, usn))
        return pages


def log_image(writer, end_page="in-place"):
    """The whole $LogFile content: 0xFF where nothing was written (as mkntfs leaves it).

    2.0 logs (§17.7): the last page also as a buffer page in the first group (page 2: 0x08 keeps
    `last_lsn`, 0x3C = its offset, count and position as in place), and an older copy of the
    first record page in the second group (page 18: `last_lsn` and `last_end_lsn` of its first
    record only), which a reader must not prefer.  `end_page`: "in-place" (the last page written
    in place too), "buffer-only" (never written in place: 0xFF there) or "torn" (in place with
    one sector's update sequence number broken)."""
    size = writer.log_size
    img = bytearray(b"\xff" * size)
    r0, r1 = writer.restart_pages(None)
    img[0:PAGE] = r0
    img[PAGE:2 * PAGE] = r1
    pages, last, last_end = writer.log.pages()
    for k, (off, page) in enumerate(sorted(pages.items())):
        img[off:off + PAGE] = fixup(page, 1 + k)
    # The log's last page as an older lap left it (a log that has wrapped before, as every
    # Windows log of some age has, §5.5): one record of lap seq - 1 filling the page's end.
    # ntfsrecover walks back from the first log page into the last one and needs an RCRD page
    # there whose last record ends at the page end.
    last_page = (writer.log.size // PAGE - 1) * PAGE
    old_lsn = ((writer.log.seq - 1) << writer.log.data_bits) | ((last_page + 0xF00) // 8)
    stale = bytearray(PAGE)
    stale[0:4] = b"RCRD"
    struct.pack_into("<HHQIHHH6xQ", stale, 4, 0x28, 9, old_lsn, 1, 1, 1, 0xF00, old_lsn)
    stale[0xF00:0xF30] = struct.pack("<QQQIHHIIH6x", old_lsn, 0, 0, 0xD0, 0, 0, 1, 0x18, 0)
    stale[0xF30:0xF58] = client_data(NOOP, NOOP, (0, 0, 0, 0, 0, 0), [], b"", b"")
    img[last_page:last_page + PAGE] = fixup(stale, 0x200)
    if writer.log.major == 1:
        # The partly written last page also as the two tail copies (§5.6): 0x08 = its file offset.
        tail = bytearray(pages[last])
        struct.pack_into("<Q", tail, 8, last)
        for k, at in enumerate((2 * PAGE, 3 * PAGE)):
            img[at:at + PAGE] = fixup(tail, 0x100 + k)
        return bytes(img)
    buffer = bytearray(pages[last])
    struct.pack_into("<I", buffer, 0x3C, last)
    img[2 * PAGE:3 * PAGE] = fixup(buffer, 0x300)
    first = min(pages)
    firsts = [(lsn, end) for lsn, pos, _, end in writer.log.records if pos - pos % PAGE == first
              and (end - 1) - (end - 1) % PAGE == first]
    if firsts:
        lsn, end = min(firsts)
        older = bytearray(pages[first])
        struct.pack_into("<Q", older, 8, lsn)
        struct.pack_into("<H", older, 0x18, end - first)
        struct.pack_into("<Q", older, 0x20, lsn)
        older[end - first:] = bytes(PAGE - (end - first))
        struct.pack_into("<I", older, 0x3C, first)
        img[18 * PAGE:19 * PAGE] = fixup(older, 0x280)
    if end_page == "buffer-only":
        img[last:last + PAGE] = b"\xff" * PAGE
    elif end_page == "torn":
        # The third sector's last two bytes no longer match the update sequence number.
        img[last + 3 * 512 - 2] ^= 0xFF
    elif end_page != "in-place":
        raise Unsupported("end page %r" % end_page)
    return bytes(img)


def write_log(vol_img, vol, data):
    """Write `data` over the $LogFile clusters of a volume image (bytearray)."""
    runs = find_attr(vol.record(2), AT_DATA)["runs"]
    for v, lcn in vol.clusters(runs):
        chunk = data[v * vol.cluster:(v + 1) * vol.cluster]
        if chunk:
            vol_img[lcn * vol.cluster:lcn * vol.cluster + len(chunk)] = chunk


def build(pre_path, post_path, out_path, post2_path=None, flush=(), report=None, lfs2=False,
          end_page="in-place"):
    pre, post = Volume(pre_path), Volume(post_path)
    ch1 = diff_volumes(pre, post)
    ch2 = None
    post2 = None
    if post2_path:
        post2 = Volume(post2_path)
        ch2 = diff_volumes(post, post2)
    w = Writer(post, lfs2)
    w.restart_record(dict(start=0))  # the session's first record (§5.4)
    t1 = dict(id=0x18, last=0)
    half = max(0, len(ch1.ops) // 2 - 1)
    w.transaction(t1, ch1, ch1.ops, forget=True, checkpoint_after=half)
    t2 = None
    if ch2:
        w.slots_before_t2 = dict(w.slots)
        t2 = dict(id=0x18, last=0)
        w.transaction(t2, ch2, ch2.ops, forget=False)
    data = log_image(w, end_page)

    # The crashed volume: POST with the described metadata back at PRE's bytes, then flushed
    # blocks at their after-image with the LSN of the last record that changed them.
    out = bytearray(post.img)
    for key, t in ch1.targets.items():
        put_block(out, pre, post, key, t, pre.img)
    # $MFTMirr is written with the MFT records it copies: unflushed too.
    for pos in ch1.mirror:
        out[pos:pos + post.cluster] = pre.img[pos:pos + post.cluster]
    for spec in flush:
        which, kind, *rest = spec.split(":")
        key = (kind,) + tuple(int(x) for x in rest)
        ch, src = (ch1, post) if which == "t1" else (ch2, post2)
        if ch is None or key not in ch.targets:
            raise Unsupported("--flush %s: no such changed block" % spec)
        put_block(out, pre, post, key, ch.targets[key], src.img, lsn=w.lsn_of_target[key])
    write_log(out, post, data)
    with open(out_path, "wb") as f:
        f.write(out)
    rep = dict(
        lfs_version="%d.%d" % (w.log.major, w.log.minor), end_page_offset=w.log.pages()[1],
        log_size=w.log_size, seq_number_bits=w.log.seq_bits, checkpoint_lsn=w.checkpoint_lsn,
        oldest_lsn=w.oldest, end_lsn=w.log.records[-1][0],
        records=[{k: (v if not isinstance(v, tuple) else list(v)) for k, v in r.items()} for r in w.listing],
        t1_targets=[list(k) for k in ch1.targets], t2_targets=[list(k) for k in ch2.targets] if ch2 else [],
        flushed=list(flush), lsn_of_target={":".join(map(str, k)): v for k, v in w.lsn_of_target.items()},
    )
    if report:
        with open(report, "w") as f:
            json.dump(rep, f, indent=1)
    return rep


def put_block(out, pre, post, key, target, src_img, lsn=None):
    """Copy one target block from `src_img` into `out`; stamp `lsn` at +0x08 when given (the
    field is not at a sector end, so the fixups stay valid)."""
    kind = target[0]
    if kind == "mft":
        pos, size = post.record_pos(key[1])[0], post.rec_size
    elif kind == "indx":
        pos, size = target[1][2][0] * post.cluster, post.idx_size
    else:
        pos, size = target[1][3] * post.cluster, post.cluster
    out[pos:pos + size] = src_img[pos:pos + size]
    if lsn is not None:
        if kind == "bitmap":
            return
        struct.pack_into("<Q", out, pos + 8, lsn)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pre")
    ap.add_argument("post")
    ap.add_argument("out")
    ap.add_argument("--then", dest="post2")
    ap.add_argument("--flush", action="append", default=[])
    ap.add_argument("--json")
    ap.add_argument("--lfs2", action="store_true", help="write an LFS 2.0 log (§17.7)")
    ap.add_argument("--end-page", default="in-place", choices=("in-place", "buffer-only", "torn"))
    a = ap.parse_args()
    try:
        rep = build(a.pre, a.post, a.out, a.post2, a.flush, a.json, a.lfs2, a.end_page)
    except Unsupported as e:
        print("logwriter: %s" % e, file=sys.stderr)
        return 2
    print("%d records, checkpoint 0x%x, end 0x%x" % (len(rep["records"]), rep["checkpoint_lsn"], rep["end_lsn"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
