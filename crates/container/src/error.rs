//! Everything that can go wrong while opening or mapping a container.
//!
//! The messages are read by people holding a broken VM disk, often in a hurry, so each one says what
//! is wrong in terms of the file they picked and, where there is one, what to do next. Numbers that
//! identify a place in the file are given as plain byte offsets so they can be checked with a hex
//! viewer.

use std::fmt;
use std::io;

/// A container format kaifuku recognises by its signature but cannot read yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OtherFormat {
    /// Hyper-V VHDX (`vhdxfile` at offset 0).
    Vhdx,
    /// VMware sparse extent (`KDMV` at offset 0), e.g. monolithicSparse or streamOptimized (OVA).
    VmdkSparse,
    /// VMware text descriptor (`# Disk DescriptorFile`): the data lives in other files.
    VmdkDescriptor,
    /// QEMU copy-on-write v2/v3 (`QFI\xfb` at offset 0).
    Qcow2,
}

impl OtherFormat {
    /// The name `qemu-img -f` uses for this format.
    pub fn qemu_name(self) -> &'static str {
        match self {
            OtherFormat::Vhdx => "vhdx",
            OtherFormat::VmdkSparse | OtherFormat::VmdkDescriptor => "vmdk",
            OtherFormat::Qcow2 => "qcow2",
        }
    }
}

impl fmt::Display for OtherFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OtherFormat::Vhdx => "VHDX",
            OtherFormat::VmdkSparse => "VMDK (sparse extent)",
            OtherFormat::VmdkDescriptor => "VMDK (text descriptor)",
            OtherFormat::Qcow2 => "qcow2",
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
            ". A descriptor only points to the data files: run qemu-img in the folder that holds \
             them, and if there is a single `-flat.vmdk` file next to it, that file already is a \
             raw image and can be opened directly",
        );
    }
    msg
}

/// Why a container could not be opened, mapped or planned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContainerError {
    /// The underlying reader failed (I/O error, file changed size while open, ...).
    #[error("could not read {what} at file offset {offset}: {source}")]
    Read {
        what: String,
        offset: u64,
        #[source]
        source: io::Error,
    },

    #[error("{}", unsupported_message(*.0))]
    UnsupportedFormat(OtherFormat),

    #[error(
        "this is a differencing VHD: it only stores the changes made on top of a parent image and \
         cannot be repaired on its own. Merge it into its parent first (Hyper-V \"Edit Disk\" → \
         Merge), or with the parent file next to it run \
         `qemu-img convert -O vpc -o subformat=fixed,force_size=on CHILD.vhd merged.vhd`, \
         then open the merged image"
    )]
    DifferencingVhd,

    #[error(
        "VHD disk type {0} is unknown (2 = fixed, 3 = dynamic, 4 = differencing); the footer is \
         damaged or the file was written by a tool kaifuku does not know"
    )]
    UnknownVhdDiskType(u32),

    #[error(
        "the VHD {structure} has format version {}.{} but only 1.x is defined; the file is damaged \
         or was written by a tool kaifuku does not know",
        .version >> 16,
        .version & 0xffff
    )]
    UnsupportedVhdVersion {
        structure: &'static str,
        version: u32,
    },

    #[error(
        "the file is only {file_size} bytes, too short to hold {what} ({needed} bytes); it is \
         truncated (was the copy or download complete?)"
    )]
    FileTooSmall {
        what: &'static str,
        needed: u64,
        file_size: u64,
    },

    #[error(
        "VHD footer checksum mismatch: stored {stored:#010x}, computed {computed:#010x} — the file is \
         damaged or truncated"
    )]
    FooterChecksum { stored: u32, computed: u32 },

    #[error(
        "the two copies of the VHD footer differ (the one at the start of the file and the one at \
         its end): the file is damaged, and tools that read the first copy would see another disk. \
         Export or copy the image again"
    )]
    FooterCopiesDiffer,

    #[error(
        "the VHD header declares a block allocation table of {entries} entries ({bytes} bytes from \
         file offset {offset}), which does not fit before the end of the file's data at {data_end}: \
         the header is damaged"
    )]
    DeclaredTableTooLarge {
        entries: u32,
        bytes: u64,
        offset: u64,
        data_end: u64,
    },

    #[error(
        "VHD dynamic disk header checksum mismatch: stored {stored:#010x}, computed \
         {computed:#010x} — the file is damaged or truncated"
    )]
    HeaderChecksum { stored: u32, computed: u32 },

    #[error(
        "the VHD footer says the dynamic disk header is at file offset {offset}, but no header \
         (cookie `cxsparse`) is there — the file is damaged"
    )]
    MissingDynamicHeader { offset: u64 },

    #[error(
        "the file looks like a VHD (a `conectix` footer copy at its start, or part of a footer \
         near its end) but has no complete VHD footer in its last 512 bytes: it is truncated or \
         damaged. Copy or download the image again and check that the copy is complete"
    )]
    MissingFooter,

    #[error(
        "the VHD is truncated: {what} needs file bytes {start}..{end}, but the data area of the \
         file ends at {data_end} (file size {file_size}). Copy or download the image again and \
         check that the copy is complete"
    )]
    Truncated {
        what: &'static str,
        start: u64,
        end: u64,
        data_end: u64,
        file_size: u64,
    },

    #[error(
        "the VHD block size {0} is invalid (it must be a power of two from 512 bytes to 256 MiB) — \
         the dynamic disk header is damaged"
    )]
    BadBlockSize(u32),

    #[error(
        "the VHD block allocation table has {max_table_entries} entries but a {virtual_size}-byte \
         disk with {block_size}-byte blocks needs {needed} — the dynamic disk header is damaged"
    )]
    TableTooSmall {
        max_table_entries: u32,
        needed: u64,
        virtual_size: u64,
        block_size: u64,
    },

    #[error(
        "the VHD block allocation table would be {bytes} bytes, more than the {limit} bytes \
         kaifuku accepts — the header is damaged, or convert the image to raw \
         (`qemu-img convert -f vpc -O raw IMAGE disk.raw`)"
    )]
    TableTooLarge { bytes: u64, limit: u64 },

    #[error(
        "VHD block {block}: the allocation table puts it at file bytes {start}..{end}, outside the \
         data area of the file (which ends at {data_end}) — the table is damaged or the file is \
         truncated"
    )]
    BlockOutsideFile {
        block: u64,
        start: u64,
        end: u64,
        data_end: u64,
    },

    #[error(
        "VHD block {block} at file bytes {start}..{end} overlaps {other} — the block allocation \
         table is damaged"
    )]
    BlockOverlap {
        block: u64,
        start: u64,
        end: u64,
        other: String,
    },

    #[error("the VHD field {0} holds an impossible value (arithmetic on it overflows) — the file is damaged")]
    Overflow(&'static str),

    #[error("offset {offset} is past the end of the {virtual_size}-byte virtual disk")]
    OutOfRange { offset: u64, virtual_size: u64 },

    #[error(
        "a patch of {len} bytes at virtual offset {offset} does not fit in the {virtual_size}-byte \
         virtual disk"
    )]
    PatchOutOfRange {
        offset: u64,
        len: u64,
        virtual_size: u64,
    },

    #[error(
        "a patch at virtual offset {offset} lands in VHD block {block}, which has no space in the \
         file (unallocated); kaifuku does not allocate new blocks. Convert the image to a fixed VHD \
         (`qemu-img convert -f vpc -O vpc -o subformat=fixed,force_size=on IMAGE fixed.vhd`) or to \
         raw and repair that instead"
    )]
    PatchInUnallocatedBlock { offset: u64, block: u64 },
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
