//! Everything that can go wrong while opening or mapping a container.
//!
//! The messages are read by people holding a broken VM disk, often in a hurry, so each one says what
//! is wrong in terms of the file they picked and, where there is one, what to do next. Numbers that
//! identify a place in the file are given as plain byte offsets so they can be checked with a hex
//! viewer.

use crate::{Qcow2ClusterKind, Qcow2Feature};
use std::fmt;
use std::io;

/// A container format kaifuku recognises by its signature but cannot read yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OtherFormat {
    /// Hyper-V VHDX (`vhdxfile` at offset 0). Read since VHDX support; kept so older reports
    /// still deserialize.
    Vhdx,
    /// VMware sparse extent (`KDMV` at offset 0), e.g. monolithicSparse or streamOptimized (OVA).
    VmdkSparse,
    /// VMware text descriptor (`# Disk DescriptorFile`): the data lives in other files.
    VmdkDescriptor,
}

impl OtherFormat {
    /// The name `qemu-img -f` uses for this format.
    pub fn qemu_name(self) -> &'static str {
        match self {
            OtherFormat::Vhdx => "vhdx",
            OtherFormat::VmdkSparse | OtherFormat::VmdkDescriptor => "vmdk",
        }
    }
}

impl fmt::Display for OtherFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OtherFormat::Vhdx => "VHDX",
            OtherFormat::VmdkSparse => "VMDK (sparse extent)",
            OtherFormat::VmdkDescriptor => "VMDK (text descriptor)",
        })
    }
}

fn unsupported_message(format: OtherFormat) -> String {
    let q = format.qemu_name();
    let mut msg = format!(
        "this is a {format} image: kaifuku recognises it but cannot read it yet. \
         Convert it to raw first, e.g. `qemu-img convert -f {q} -O raw IMAGE disk.raw` \
         (or to a fixed VHD with `-O vpc -o subformat=fixed,force_size=on`), \
         then open the converted file"
    );
    if format == OtherFormat::VmdkDescriptor {
        msg.push_str(
            ". A descriptor only points to the data files: if there is a single `-flat.vmdk` \
             file next to it, that file already is a raw image and can be opened directly; the \
             command line (`kaifuku fix DISK.vmdk -o fixed.vmdk`) reads a descriptor with its \
             flat data files when they are beside it",
        );
    }
    msg
}

/// Why a VMDK child disk (its descriptor names a parent, `parent` when it gives one) is refused:
/// worded once for the embedded descriptor and the text descriptor.
pub(crate) fn vmdk_child_message(parent: &str) -> String {
    format!(
        "this VMDK is a child disk (a snapshot or linked clone: its descriptor names a parent{}): \
         it only stores the changes made on top of the parent and cannot be read on its own. \
         The command line reads a one-file sparse child (as `qemu-img create -b` makes it) \
         through its parent when the parent is where the child names it; otherwise consolidate \
         the snapshots first (VMware \"Delete All\" snapshots / Consolidate), or with the parent \
         next to it run `qemu-img convert -O vmdk CHILD.vmdk merged.vmdk`, then open the merged \
         image",
        if parent.is_empty() {
            String::new()
        } else {
            format!(" \"{parent}\"")
        }
    )
}

/// Why a container could not be opened, mapped or planned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContainerError {
    /// The underlying reader failed (I/O error, file changed size while open, ...).
    #[error("could not read {what} at file offset {offset}: {source}")]
    Read {
        /// The structure being read, in words ("the VHD footer area").
        what: String,
        /// Where in the file the read started.
        offset: u64,
        /// What the reader said.
        #[source]
        source: io::Error,
    },

    /// A VMDK image: refused with the `qemu-img convert` command that makes it
    /// readable, rather than misread as a raw disk.
    #[error("{}", unsupported_message(*.0))]
    UnsupportedFormat(OtherFormat),

    /// A virtual size so close to 2^64 bytes that it cannot be rounded to a whole MiB and given a
    /// footer: only a damaged header claims it.
    #[error(
        "the virtual disk claims {virtual_size} bytes, too large to write as a fixed VHD; the \
         image's header is damaged"
    )]
    TooLargeForFixedVhd {
        /// The virtual size the image claims.
        virtual_size: u64,
    },

    /// A differencing VHD holds only the changes on top of a parent image: alone it is no disk to
    /// repair.
    #[error(
        "this is a differencing VHD: it only stores the changes made on top of a parent image and \
         cannot be repaired on its own. Merge it into its parent first (Hyper-V \"Edit Disk\" → \
         Merge), or with the parent file next to it run \
         `qemu-img convert -O vpc -o subformat=fixed,force_size=on CHILD.vhd merged.vhd`, \
         then open the merged image"
    )]
    DifferencingVhd,

    /// The footer's disk type is none of the three the specification defines.
    #[error(
        "VHD disk type {0} is unknown (2 = fixed, 3 = dynamic, 4 = differencing); the footer is \
         damaged or the file was written by a tool kaifuku does not know"
    )]
    UnknownVhdDiskType(u32),

    /// A footer or dynamic header with a major version other than 1: its layout is unknown.
    #[error(
        "the VHD {structure} has format version {}.{} but only 1.x is defined; the file is damaged \
         or was written by a tool kaifuku does not know",
        .version >> 16,
        .version & 0xffff
    )]
    UnsupportedVhdVersion {
        /// Which structure: "footer" or "dynamic disk header".
        structure: &'static str,
        /// Major version in the high 16 bits, minor in the low, as stored.
        version: u32,
    },

    /// The file ends before a structure that must be there: a cut-off copy or download.
    #[error(
        "the file is only {file_size} bytes, too short to hold {what} ({needed} bytes); it is \
         truncated (was the copy or download complete?)"
    )]
    FileTooSmall {
        /// The structure that does not fit.
        what: &'static str,
        /// Bytes that structure needs.
        needed: u64,
        /// Bytes the file has.
        file_size: u64,
    },

    /// The footer's bytes do not add up to its checksum: one of them changed.
    #[error(
        "VHD footer checksum mismatch: stored {stored:#010x}, computed {computed:#010x} — the file is \
         damaged or truncated"
    )]
    FooterChecksum {
        /// The checksum in the file.
        stored: u32,
        /// The checksum of the bytes as read.
        computed: u32,
    },

    /// A dynamic VHD's two footers disagree, so other tools may see a different disk than kaifuku.
    #[error(
        "the two copies of the VHD footer differ (the one at the start of the file and the one at \
         its end): the file is damaged, and tools that read the first copy would see another disk. \
         Export or copy the image again"
    )]
    FooterCopiesDiffer,

    /// The header's block table size runs past the file's data: the header is damaged.
    #[error(
        "the VHD header declares a block allocation table of {entries} entries ({bytes} bytes from \
         file offset {offset}), which does not fit before the end of the file's data at {data_end}: \
         the header is damaged"
    )]
    DeclaredTableTooLarge {
        /// Entries the header declares.
        entries: u32,
        /// Bytes those entries take.
        bytes: u64,
        /// Where the table starts in the file.
        offset: u64,
        /// Where the file's data ends (the footer starts).
        data_end: u64,
    },

    /// The dynamic disk header's bytes do not add up to its checksum.
    #[error(
        "VHD dynamic disk header checksum mismatch: stored {stored:#010x}, computed \
         {computed:#010x} — the file is damaged or truncated"
    )]
    HeaderChecksum {
        /// The checksum in the file.
        stored: u32,
        /// The checksum of the bytes as read.
        computed: u32,
    },

    /// The footer points at a dynamic disk header that is not there.
    #[error(
        "the VHD footer says the dynamic disk header is at file offset {offset}, but no header \
         (cookie `cxsparse`) is there — the file is damaged"
    )]
    MissingDynamicHeader {
        /// Where the footer says the header is.
        offset: u64,
    },

    /// The file shows signs of a VHD but lacks its footer: kaifuku refuses to guess it is raw.
    #[error(
        "the file looks like a VHD (a `conectix` footer copy at its start, or part of a footer \
         near its end) but has no complete VHD footer in its last 512 bytes: it is truncated or \
         damaged. Copy or download the image again and check that the copy is complete"
    )]
    MissingFooter,

    /// A structure the VHD needs lies past the end of the file's data.
    #[error(
        "the VHD is truncated: {what} needs file bytes {start}..{end}, but the data area of the \
         file ends at {data_end} (file size {file_size}). Copy or download the image again and \
         check that the copy is complete"
    )]
    Truncated {
        /// The structure that is cut off.
        what: &'static str,
        /// First file byte it needs.
        start: u64,
        /// File offset just past the last byte it needs.
        end: u64,
        /// Where the file's data ends (the footer starts).
        data_end: u64,
        /// Bytes the file has.
        file_size: u64,
    },

    /// A differencing VHDX holds only the changes on top of a parent image.
    #[error(
        "this is a differencing VHDX: it only stores the changes made on top of a parent image \
         and cannot be repaired on its own. Merge it into its parent first (Hyper-V \"Edit Disk\" \
         → Merge, or `Merge-VHD` in PowerShell), or with the parent file next to it run \
         `qemu-img convert -O vhdx CHILD.vhdx merged.vhdx`, then open the merged image"
    )]
    DifferencingVhdx,

    /// A VHDX structure is damaged or lies outside the file.
    #[error(
        "{what} at file offset {offset}: {detail}. The VHDX is damaged or truncated (or was \
         written by a tool kaifuku does not know); export or copy the image again"
    )]
    VhdxDamaged {
        /// The structure, in words ("the VHDX region table").
        what: String,
        /// Where in the file it (or the field at fault) is.
        offset: u64,
        /// What is wrong with it.
        detail: String,
    },

    /// A VMDK sparse extent header field that no valid image has.
    #[error(
        "the VMDK header field {field} ({value}) {problem} — the header is damaged or the file \
         is truncated. Copy or export the image again, or check it with `qemu-img check IMAGE`"
    )]
    VmdkHeader {
        /// The field, as VMware's specification names it.
        field: &'static str,
        /// Its value as stored.
        value: u64,
        /// What is wrong with it.
        problem: &'static str,
    },

    /// A streamOptimized VMDK that must be re-streamed whole (it does not end as the format
    /// wants) with more grain tables than kaifuku holds in memory.
    #[error(
        "this streamOptimized VMDK does not end as the stream format wants (an end-of-stream \
         marker after its footer), so its fix would re-stream it whole, writing its {tables} grain \
         tables ({bytes} bytes) again: more than the {limit} bytes kaifuku holds in memory. \
         Convert it to raw (`qemu-img convert -f vmdk -O raw IMAGE disk.raw`) and fix that, or \
         check the file with `qemu-img check IMAGE`"
    )]
    VmdkRestreamTooLarge {
        /// Grain tables the directory points at.
        tables: u64,
        /// Bytes they take.
        bytes: u64,
        /// What kaifuku holds at most.
        limit: u64,
    },

    /// A streamOptimized VMDK whose footer (which holds the grain directory's place) is missing.
    #[error(
        "the VMDK says its grain directory is given by the footer, but the last 1536 bytes of the \
         file (from file offset {file_offset}) are not a footer marker, a header copy and an \
         end-of-stream marker: the file is truncated or damaged. Copy or download it again and \
         check that the copy is complete"
    )]
    VmdkFooter {
        /// Where the footer marker should start.
        file_offset: u64,
    },

    /// The VMDK's embedded text descriptor is missing or unreadable.
    #[error("the VMDK's embedded descriptor {problem}")]
    VmdkDescriptor {
        /// What is wrong with it.
        problem: &'static str,
    },

    /// A grain directory or grain table entry that no valid image has.
    #[error(
        "the VMDK {table} entry at file offset {entry_offset} ({entry}) {problem} — the image is \
         damaged. Check it with `qemu-img check IMAGE`"
    )]
    VmdkEntry {
        /// Which table: "grain directory", "grain table".
        table: &'static str,
        /// Where the entry is in the file.
        entry_offset: u64,
        /// The entry as stored (a sector number).
        entry: u32,
        /// What is wrong with it.
        problem: &'static str,
    },

    /// A compressed grain whose marker or data is wrong.
    #[error(
        "the compressed VMDK grain at file offset {file_offset} {problem} — the image is damaged. \
         Export or download it again"
    )]
    VmdkCompressedGrain {
        /// Where the grain's marker starts.
        file_offset: u64,
        /// What is wrong with it.
        problem: &'static str,
    },

    /// The primary and redundant grain tables map a grain to be written differently.
    #[error(
        "the VMDK's grain tables and their redundant copy disagree about grain {grain} (primary: \
         sector {primary}, redundant: sector {redundant}). kaifuku reads through the primary \
         tables, as VMware and QEMU do, but will not write into a grain whose place is in doubt: \
         either copy may be the damaged one. Convert the image (`qemu-img convert -O vmdk -o \
         subformat=monolithicSparse IMAGE new.vmdk`, which reads the primary tables) and repair \
         that, after checking that the converted disk is the one you expect"
    )]
    VmdkTablesDisagree {
        /// The grain (virtual offset / grain size).
        grain: u64,
        /// The primary table's entry.
        primary: u32,
        /// The redundant table's entry.
        redundant: u32,
    },

    /// A VMDK child disk holds only the changes on top of a parent disk.
    #[error("{}", vmdk_child_message(parent))]
    VmdkChild {
        /// The descriptor's `parentFileNameHint`, if it has one.
        parent: String,
    },

    /// A patch in a VMDK grain whose whole grain table is missing.
    #[error(
        "a patch at virtual offset {offset} lands in VMDK grain {grain}, whose grain table is \
         missing from the file (it reads as zeros); kaifuku adds grains but not grain tables. \
         Convert the image to raw (`qemu-img convert -f vmdk -O raw IMAGE disk.raw`), repair that, and convert it \
         back with `qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse` if you need \
         a VMDK"
    )]
    PatchInUnallocatedVmdkGrain {
        /// Where the patch starts on the virtual disk.
        offset: u64,
        /// The grain (virtual offset / grain size).
        grain: u64,
    },

    /// A dynamic disk block size that no writer uses and the mapping cannot work with.
    #[error(
        "the VHD block size {0} is invalid (it must be a power of two from 512 bytes to 256 MiB) — \
         the dynamic disk header is damaged"
    )]
    BadBlockSize(u32),

    /// The block table has fewer entries than the virtual size needs: part of the disk would have
    /// no mapping.
    #[error(
        "the VHD block allocation table has {max_table_entries} entries but a {virtual_size}-byte \
         disk with {block_size}-byte blocks needs {needed} — the dynamic disk header is damaged"
    )]
    TableTooSmall {
        /// Entries the header declares.
        max_table_entries: u32,
        /// Entries the virtual size needs.
        needed: u64,
        /// Size of the disk the guest sees.
        virtual_size: u64,
        /// Bytes per block.
        block_size: u64,
    },

    /// A block table larger than kaifuku keeps in memory ([`crate::MAX_BAT_BYTES`]).
    #[error(
        "the VHD block allocation table would be {bytes} bytes, more than the {limit} bytes \
         kaifuku accepts — the header is damaged, or convert the image to raw \
         (`qemu-img convert -f vpc -O raw IMAGE disk.raw`)"
    )]
    TableTooLarge {
        /// Size the table would have.
        bytes: u64,
        /// The largest table kaifuku accepts.
        limit: u64,
    },

    /// A block table entry points outside the file's data area.
    #[error(
        "VHD block {block}: the allocation table puts it at file bytes {start}..{end}, outside the \
         data area of the file (which ends at {data_end}) — the table is damaged or the file is \
         truncated"
    )]
    BlockOutsideFile {
        /// Index of the block in the table.
        block: u64,
        /// First file byte of the block (bitmap included).
        start: u64,
        /// File offset just past the block.
        end: u64,
        /// Where the file's data ends (the footer starts).
        data_end: u64,
    },

    /// Two blocks, or a block and the metadata, share file bytes: writing one would change the
    /// other.
    #[error(
        "VHD block {block} at file bytes {start}..{end} overlaps {other} — the block allocation \
         table is damaged"
    )]
    BlockOverlap {
        /// Index of the block in the table.
        block: u64,
        /// First file byte of the block (bitmap included).
        start: u64,
        /// File offset just past the block.
        end: u64,
        /// What it overlaps, in words (another block, the header, the table).
        other: String,
    },

    /// An impossible value: a file field whose arithmetic overflows, or (when planning) a fill the
    /// container cannot take as it is (overlapping a byte patch, not sector-aligned in a dynamic
    /// VHD).
    #[error("the VHD field {0} holds an impossible value (arithmetic on it overflows) — the file is damaged")]
    Overflow(&'static str),

    /// Two planned file writes (or fills) share file bytes: a bug in kaifuku's planner, refused
    /// before anything is written.
    #[error(
        "kaifuku planned two writes to the same file bytes ({}..{} and {}..{}) — this is a bug \
         in kaifuku, and nothing was written; please report it with this image's `kaifuku \
         inspect` output",
        first.0, first.1, second.0, second.1
    )]
    PlannedWritesOverlap {
        /// The first write's file byte range.
        first: (u64, u64),
        /// The write that starts inside it.
        second: (u64, u64),
    },

    /// A mapping request past the end of the virtual disk.
    #[error("offset {offset} is past the end of the {virtual_size}-byte virtual disk")]
    OutOfRange {
        /// The virtual offset asked for.
        offset: u64,
        /// Size of the disk the guest sees.
        virtual_size: u64,
    },

    /// A VMDK child whose parent is not the disk it was made on (the parent changed since).
    #[error(
        "this VMDK child disk was made on a parent whose CID was {recorded}, but the parent found \
         beside it has CID {found}: the parent was changed (or replaced) after the child was \
         made, and reading the child through it would give a disk that never existed. Find the \
         parent the child was made on"
    )]
    VmdkParentChanged {
        /// The CID the child recorded for its parent (`parentCID`).
        recorded: String,
        /// The CID of the parent found.
        found: String,
    },

    /// A chain of backing files deeper than kaifuku follows.
    #[error(
        "the chain of backing files is more than {limit} deep (or loops back on itself): merge it \
         first (`qemu-img convert -O qcow2 IMAGE merged.qcow2`) and repair the merged image"
    )]
    BackingChainTooLong {
        /// How deep kaifuku follows.
        limit: usize,
    },

    /// A planned patch that does not fit in the virtual disk: a bug in the plan, refused before
    /// any write.
    #[error(
        "a patch of {len} bytes at virtual offset {offset} does not fit in the {virtual_size}-byte \
         virtual disk"
    )]
    PatchOutOfRange {
        /// Where the patch starts on the virtual disk.
        offset: u64,
        /// Length of the patch.
        len: u64,
        /// Size of the disk the guest sees.
        virtual_size: u64,
    },

    /// A qcow2 image using a feature kaifuku does not handle, refused with what to do.
    #[error("{}", qcow2_feature_message(*.0))]
    Qcow2Unsupported(Qcow2Feature),

    /// A qcow2 header field that no valid image has.
    #[error(
        "the qcow2 header field {field} ({value}) {problem} — the header is damaged or the file \
         is truncated. Copy or export the image again, or check it with `qemu-img check IMAGE`"
    )]
    Qcow2Header {
        /// The field, as the qcow2 specification names it.
        field: &'static str,
        /// Its value as stored.
        value: u64,
        /// What is wrong with it.
        problem: &'static str,
    },

    /// An L1, L2 or refcount table entry that no valid image has.
    #[error(
        "the qcow2 {table} entry at file offset {entry_offset} ({entry:#018x}) {problem} — the \
         image is damaged. Check it with `qemu-img check IMAGE`"
    )]
    Qcow2Entry {
        /// Which table: "L1 table", "L2 table", "refcount table".
        table: &'static str,
        /// Where the entry is in the file.
        entry_offset: u64,
        /// The entry as stored.
        entry: u64,
        /// What is wrong with it.
        problem: &'static str,
    },

    /// Compressed cluster data that does not inflate to a whole cluster.
    #[error(
        "the compressed qcow2 cluster at file offset {file_offset} does not decompress to a whole \
         cluster — the image is damaged. Check it with `qemu-img check IMAGE`"
    )]
    Qcow2Compressed {
        /// Where the compressed data starts in the file.
        file_offset: u64,
    },

    /// A qcow2 data cluster whose reference count or mapping contradicts the tables.
    #[error(
        "the qcow2 cluster at file offset {host_offset} {problem} — the image's reference counts \
         are damaged. Repair them with `qemu-img check -r all IMAGE` and try again"
    )]
    Qcow2Refcount {
        /// Where the cluster is in the file.
        host_offset: u64,
        /// What is wrong.
        problem: &'static str,
    },

    /// A qcow2 data cluster that lies on the image's own metadata.
    #[error(
        "the qcow2 data cluster at file offset {host_offset} overlaps {what} — the L2 table is \
         damaged; writing there would destroy the image. Check it with `qemu-img check IMAGE`"
    )]
    Qcow2Overlap {
        /// Where the cluster is in the file.
        host_offset: u64,
        /// The structure it overlaps.
        what: &'static str,
    },

    /// A patch in a qcow2 cluster that cannot be written in place.
    #[error(
        "a patch at virtual offset {offset} lands in qcow2 cluster {cluster}, {}",
        qcow2_cluster_message(*.kind)
    )]
    PatchInQcow2Cluster {
        /// Where the patch starts on the virtual disk.
        offset: u64,
        /// The guest cluster (virtual offset / cluster size).
        cluster: u64,
        /// Why it cannot be written in place.
        kind: Qcow2ClusterKind,
    },

    /// A patch in a dynamic VHD block that has no space in the file, where a new block would lie
    /// past what a 32-bit sector number in the block table reaches.
    #[error(
        "a patch at virtual offset {offset} lands in VHD block {block}, which has no space in the \
         file, and a new block would lie past the 2 TiB a VHD's block table reaches. Convert the \
         image to a fixed VHD (`qemu-img convert -f vpc -O vpc -o subformat=fixed,force_size=on \
         IMAGE fixed.vhd`) or to raw and repair that instead"
    )]
    PatchInUnallocatedBlock {
        /// Where the patch starts on the virtual disk.
        offset: u64,
        /// Index of the unallocated block.
        block: u64,
    },
}

fn qcow2_feature_message(feature: Qcow2Feature) -> &'static str {
    match feature {
        Qcow2Feature::Version => {
            "this qcow image has a version other than 2 or 3 (version 1 is the old qcow format); \
             convert it with `qemu-img convert -O qcow2 IMAGE new.qcow2` (or `-O raw`) and open \
             the converted file"
        }
        Qcow2Feature::Encryption => {
            "this qcow2 image is encrypted; kaifuku cannot read encrypted images. Convert it to \
             an unencrypted image with `qemu-img convert` and the key (`--object secret,...`), \
             then open that"
        }
        Qcow2Feature::BackingFile => {
            "this qcow2 image has a backing file: it only holds the changes made on top of that \
             file and cannot be read on its own. The command line reads the chain when the \
             backing file is where the image's header says (`kaifuku fix IMAGE` then changes the \
             image only); the page does not read backing files: use the command line, or merge \
             the chain with `qemu-img convert -O qcow2 IMAGE merged.qcow2` and open the merged \
             image"
        }
        Qcow2Feature::ExternalDataFile => {
            "this qcow2 image keeps its data in an external data file, which kaifuku does not \
             read. Convert it with `qemu-img convert -O qcow2 IMAGE whole.qcow2` and open that"
        }
        Qcow2Feature::Dirty => {
            "this qcow2 image is marked dirty: QEMU did not close it cleanly and its reference \
             counts may be wrong. Repair it first with `qemu-img check -r all IMAGE` (on a copy \
             if you want to keep the original), then open it again"
        }
        Qcow2Feature::MarkedCorrupt => {
            "this qcow2 image is marked corrupt: QEMU found its metadata inconsistent. Repair it \
             first with `qemu-img check -r all IMAGE` (on a copy if you want to keep the \
             original), then open it again"
        }
        Qcow2Feature::CompressionType => {
            "this qcow2 image compresses clusters with zstd, which kaifuku does not read. \
             Convert it with `qemu-img convert -O qcow2 IMAGE new.qcow2` (no compression) and \
             open that"
        }
        Qcow2Feature::UnknownFeatures => {
            "this qcow2 image uses incompatible features kaifuku does not know (`qemu-img info` \
             names them). Convert it with `qemu-img convert -O qcow2 -o compat=1.1 IMAGE \
             new.qcow2` and open that"
        }
        Qcow2Feature::Bitmaps => {
            "this qcow2 image carries persistent dirty bitmaps, which a repair in place would \
             leave stale. Remove them (`qemu-img bitmap --remove IMAGE NAME`) or convert the \
             image with `qemu-img convert -O qcow2 IMAGE new.qcow2`, then repair that"
        }
    }
}

fn qcow2_cluster_message(kind: Qcow2ClusterKind) -> &'static str {
    match kind {
        Qcow2ClusterKind::SharedTable => {
            "whose L2 table is shared with an internal snapshot: changing it would change the \
             snapshot too, and kaifuku does not copy tables. Delete the snapshots you do not need \
             (`qemu-img snapshot -l IMAGE`, `qemu-img snapshot -d NAME IMAGE`) or convert the \
             image (`qemu-img convert -O qcow2 IMAGE current.qcow2` keeps the current state \
             only), and repair that"
        }
        Qcow2ClusterKind::RefcountTableFull => {
            "which must be stored anew at the end of the file, but the image's refcount table has \
             no room to count the new clusters (kaifuku does not grow the refcount table). \
             Convert the image (`qemu-img convert -O qcow2 IMAGE new.qcow2`) or to raw, and \
             repair that"
        }
    }
}

impl ContainerError {
    /// True when the image looks intact but is something kaifuku does not handle (a format it
    /// only recognises, a differencing VHD, a patch that would need a new VHD block): a refusal
    /// with advice, as opposed to a damaged file or a failed read.
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self,
            ContainerError::UnsupportedFormat(_)
                | ContainerError::DifferencingVhd
                | ContainerError::PatchInUnallocatedBlock { .. }
                | ContainerError::Qcow2Unsupported(_)
                | ContainerError::PatchInQcow2Cluster { .. }
                | ContainerError::DifferencingVhdx
                | ContainerError::VmdkChild { .. }
                | ContainerError::PatchInUnallocatedVmdkGrain { .. }
        )
    }

    pub(crate) fn read(what: impl Into<String>, offset: u64, source: io::Error) -> Self {
        ContainerError::Read {
            what: what.into(),
            offset,
            source,
        }
    }
}

/// Lets [`crate::Container`] report mapping failures through [`kaifuku_io::ReadAt`]. Reads past the
/// end stay `UnexpectedEof` and reader failures keep their kind; damaged metadata is `InvalidData`.
impl From<ContainerError> for io::Error {
    fn from(e: ContainerError) -> io::Error {
        let kind = match &e {
            ContainerError::Read { source, .. } => source.kind(),
            ContainerError::OutOfRange { .. } => io::ErrorKind::UnexpectedEof,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}
