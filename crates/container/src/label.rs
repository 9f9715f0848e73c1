//! What a write to the container file changes, as a typed value: the plan table shows it, the
//! page words it in Japanese and English from the variants (never by parsing the English).

use serde::{Deserialize, Serialize};
use std::fmt;

/// What one [`crate::FileWrite`] or [`crate::FileFill`] changes in the container file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FileWriteLabel {
    /// Bytes `start..end` of the virtual disk, at the place the container keeps them.
    VirtualBytes {
        /// First virtual-disk byte written.
        start: u64,
        /// Virtual-disk byte just past the last one written.
        end: u64,
        /// The container unit holding them, for formats that store the disk in units.
        unit: Option<ContainerUnit>,
        /// How the bytes are written.
        how: WriteHow,
    },
    /// A dynamic VHD block's sector bitmap: `sectors` sectors of virtual bytes `start..end` are
    /// marked as holding data (their bytes are written whole by a `VirtualBytes` write).
    VhdSectorBitmap {
        /// The block whose bitmap changes.
        block: u64,
        /// How many sectors are marked.
        sectors: u64,
        /// First virtual-disk byte of the first sector marked.
        start: u64,
        /// Virtual-disk byte just past the last sector marked.
        end: u64,
    },
    /// One of the two VHDX headers, rewritten as the specification requires of a writer: a higher
    /// sequence number, new FileWriteGuid and DataWriteGuid, and (after a log replay) no log.
    VhdxHeader {
        /// Which header: 1 (at 64 KiB) or 2 (at 128 KiB).
        slot: u8,
        /// Its new sequence number.
        sequence: u64,
        /// Whether the log GUID was cleared because the log's entries were written out.
        log_emptied: bool,
    },
    /// File bytes `start..end` as the VHDX log's replay leaves them (written out so that the log
    /// can be emptied).
    VhdxLogReplay {
        /// First file byte written.
        start: u64,
        /// File byte just past the last one written.
        end: u64,
        /// Whether planned changes of the virtual disk fall into these bytes too.
        with_patches: bool,
    },
    /// Metadata of a re-streamed streamOptimized VMDK, written after its new grains.
    VmdkStream {
        /// Which structure.
        part: VmdkStreamPart,
    },
    /// Metadata of a qcow2 image that a fix changes when it stores clusters anew.
    Qcow2Metadata {
        /// Which structure.
        part: Qcow2Part,
    },
    /// The allocation table entry of a unit added at the end of the file, pointing at it.
    UnitTableEntry {
        /// The unit.
        unit: ContainerUnit,
    },
    /// Zeros from the old end of the file to the first unit added after it (units are aligned).
    AlignmentPadding,
    /// A dynamic VHD's footer, written again at the new end of the file after the blocks added.
    VhdFooterMoved,
}

/// The qcow2 structures a fix writes when it stores guest clusters anew at the end of the file
/// (clusters that were compressed, zero, unallocated or shared with a snapshot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Qcow2Part {
    /// An entry of the active L1 table, pointing at a new L2 table.
    L1Entry {
        /// The entry's index (which L2 table).
        index: u64,
    },
    /// An entry of an existing L2 table, pointing at the guest cluster's new place.
    L2Entry {
        /// The guest cluster the entry maps.
        cluster: u64,
    },
    /// A new L2 table, stored at the end of the file.
    NewL2Table {
        /// Its index in the L1 table.
        index: u64,
    },
    /// Reference counts in an existing refcount block: clusters taken into use or released.
    RefcountBlock {
        /// How many reference counts change in this write.
        count: u64,
    },
    /// A new refcount block, stored at the end of the file.
    NewRefcountBlock {
        /// Its index in the refcount table.
        index: u64,
    },
    /// An entry of the refcount table, pointing at a new refcount block.
    RefcountTableEntry {
        /// The entry's index.
        index: u64,
    },
}

/// The structures a re-streamed streamOptimized VMDK writes besides its grains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VmdkStreamPart {
    /// The header at the start of the file, now deferring to the footer (`GD_AT_END`).
    Header,
    /// The grain tables, each after its marker, the patched grains' entries pointing at the new
    /// grains.
    GrainTables {
        /// How many tables.
        count: u64,
    },
    /// The grain directory after its marker.
    GrainDirectory,
    /// The footer marker and the footer (the header with the new directory's place).
    Footer,
    /// The end-of-stream marker, the file's last sector.
    EndOfStream,
}

/// The unit of a container that holds some bytes of the virtual disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ContainerUnit {
    /// A block of a dynamic VHD.
    VhdBlock {
        /// The block's number in the block allocation table.
        block: u64,
    },
    /// A payload block of a VHDX.
    VhdxBlock {
        /// The block's number (virtual offset / block size).
        block: u64,
    },
    /// A guest cluster of a qcow2 image.
    Qcow2Cluster {
        /// The guest cluster's number (virtual offset / cluster size).
        cluster: u64,
    },
    /// A grain of a VMDK sparse extent.
    VmdkGrain {
        /// The grain's number (virtual offset / grain size).
        grain: u64,
    },
}

/// How the bytes of a [`FileWriteLabel::VirtualBytes`] are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteHow {
    /// The planned bytes, as they are.
    Bytes,
    /// One byte repeated over the range (the journal reset).
    Filled,
    /// Whole sectors: sectors that held no data before are zero-filled around the patch, as they
    /// read before.
    WholeSectors,
    /// The whole unit holding the bytes, patched and compressed again, stored anew at the end
    /// of the file (a streamOptimized VMDK grain).
    Recompressed,
    /// The whole unit holding the bytes, patched and stored anew, uncompressed, at the end of the
    /// file (a qcow2 cluster that was compressed, zero, unallocated or shared with a snapshot).
    Relocated,
    /// In a unit added at the end of the file (it had no place in the file and read as zeros):
    /// the patches, and zeros around them.
    NewUnit,
    /// The whole unit, the parent disk's bytes with the patches laid over them, added at the end
    /// of a child disk's file (the child did not hold it).
    FromBacking,
}

impl FileWriteLabel {
    /// Virtual-disk bytes written in place (raw and fixed images: the same offsets).
    pub fn virtual_bytes(start: u64, end: u64, how: WriteHow) -> Self {
        FileWriteLabel::VirtualBytes {
            start,
            end,
            unit: None,
            how,
        }
    }
}

impl fmt::Display for FileWriteLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileWriteLabel::VirtualBytes {
                start,
                end,
                unit,
                how,
            } => {
                write!(f, "virtual disk bytes {start:#x}..{end:#x}")?;
                let how = match how {
                    WriteHow::Bytes => None,
                    WriteHow::Filled => Some("filled"),
                    WriteHow::WholeSectors => Some(
                        "whole sectors: previously unused sectors are zero-filled around the patch",
                    ),
                    WriteHow::Recompressed => {
                        Some("the whole grain, compressed again and stored at the end of the file")
                    }
                    WriteHow::Relocated => {
                        Some("the whole cluster, stored anew at the end of the file")
                    }
                    WriteHow::NewUnit => Some("in a new block at the end of the file"),
                    WriteHow::FromBacking => Some(
                        "the whole grain, filled from the parent disk, added at the end of the file",
                    ),
                };
                match (unit, how) {
                    (None, None) => Ok(()),
                    (None, Some(how)) => write!(f, " ({how})"),
                    (Some(unit), None) => write!(f, " ({unit})"),
                    (Some(unit), Some(how)) => write!(f, " ({unit}, {how})"),
                }
            }
            FileWriteLabel::VhdSectorBitmap {
                block,
                sectors,
                start,
                end,
            } => write!(
                f,
                "VHD block {block} sector bitmap: mark {sectors} sector(s) of virtual bytes \
                 {start:#x}..{end:#x} as in use"
            ),
            FileWriteLabel::VhdxHeader {
                slot,
                sequence,
                log_emptied,
            } => write!(
                f,
                "VHDX header {slot} (sequence {sequence}, new FileWriteGuid and DataWriteGuid{})",
                if *log_emptied { ", log emptied" } else { "" }
            ),
            FileWriteLabel::VhdxLogReplay {
                start,
                end,
                with_patches,
            } => write!(
                f,
                "file bytes {start:#x}..{end:#x} (VHDX log replay{})",
                if *with_patches {
                    ", with the patches in them"
                } else {
                    ""
                }
            ),
            FileWriteLabel::VmdkStream { part } => write!(f, "{part}"),
            FileWriteLabel::Qcow2Metadata { part } => write!(f, "{part}"),
            FileWriteLabel::UnitTableEntry { unit } => {
                write!(
                    f,
                    "allocation table entry of {unit} (pointing at its new place)"
                )
            }
            FileWriteLabel::AlignmentPadding => {
                f.write_str("zeros up to the first new block (blocks are aligned)")
            }
            FileWriteLabel::VhdFooterMoved => {
                f.write_str("VHD footer, at the new end of the file after the blocks added")
            }
        }
    }
}

impl fmt::Display for Qcow2Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Qcow2Part::L1Entry { index } => {
                write!(
                    f,
                    "qcow2 L1 table entry {index} (pointing at a new L2 table)"
                )
            }
            Qcow2Part::L2Entry { cluster } => write!(
                f,
                "qcow2 L2 table entry of cluster {cluster} (pointing at its new place)"
            ),
            Qcow2Part::NewL2Table { index } => write!(f, "qcow2 L2 table {index} (new)"),
            Qcow2Part::RefcountBlock { count } => write!(
                f,
                "qcow2 reference counts ({count}: clusters taken into use or released)"
            ),
            Qcow2Part::NewRefcountBlock { index } => {
                write!(f, "qcow2 refcount block {index} (new)")
            }
            Qcow2Part::RefcountTableEntry { index } => write!(
                f,
                "qcow2 refcount table entry {index} (pointing at a new refcount block)"
            ),
        }
    }
}

impl fmt::Display for VmdkStreamPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VmdkStreamPart::Header => f.write_str(
                "VMDK header (the grain directory is now at the end: gdOffset GD_AT_END)",
            ),
            VmdkStreamPart::GrainTables { count } => write!(
                f,
                "VMDK grain tables ({count}, each after its marker, pointing at the new grains)"
            ),
            VmdkStreamPart::GrainDirectory => {
                f.write_str("VMDK grain directory (after its marker)")
            }
            VmdkStreamPart::Footer => f.write_str("VMDK footer marker and footer"),
            VmdkStreamPart::EndOfStream => f.write_str("VMDK end-of-stream marker"),
        }
    }
}

impl fmt::Display for ContainerUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContainerUnit::VhdBlock { block } => write!(f, "VHD block {block}"),
            ContainerUnit::VhdxBlock { block } => write!(f, "VHDX block {block}"),
            ContainerUnit::Qcow2Cluster { cluster } => write!(f, "qcow2 cluster {cluster}"),
            ContainerUnit::VmdkGrain { grain } => write!(f, "VMDK grain {grain}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The English shapes the CLI's plan table and reports have always had.
    #[test]
    fn english_wording_keeps_its_shape() {
        let vhd = Some(ContainerUnit::VhdBlock { block: 3 });
        let cases = [
            (
                FileWriteLabel::virtual_bytes(0x10, 0x20, WriteHow::Bytes),
                "virtual disk bytes 0x10..0x20",
            ),
            (
                FileWriteLabel::virtual_bytes(0x10, 0x20, WriteHow::Filled),
                "virtual disk bytes 0x10..0x20 (filled)",
            ),
            (
                FileWriteLabel::VirtualBytes {
                    start: 0x10,
                    end: 0x20,
                    unit: vhd,
                    how: WriteHow::Filled,
                },
                "virtual disk bytes 0x10..0x20 (VHD block 3, filled)",
            ),
            (
                FileWriteLabel::VirtualBytes {
                    start: 0x10,
                    end: 0x20,
                    unit: vhd,
                    how: WriteHow::Bytes,
                },
                "virtual disk bytes 0x10..0x20 (VHD block 3)",
            ),
            (
                FileWriteLabel::VirtualBytes {
                    start: 0x0,
                    end: 0x200,
                    unit: vhd,
                    how: WriteHow::WholeSectors,
                },
                "virtual disk bytes 0x0..0x200 (VHD block 3, whole sectors: previously unused \
                 sectors are zero-filled around the patch)",
            ),
            (
                FileWriteLabel::VirtualBytes {
                    start: 0x10,
                    end: 0x20,
                    unit: Some(ContainerUnit::Qcow2Cluster { cluster: 7 }),
                    how: WriteHow::Filled,
                },
                "virtual disk bytes 0x10..0x20 (qcow2 cluster 7, filled)",
            ),
            (
                FileWriteLabel::VhdSectorBitmap {
                    block: 2,
                    sectors: 8,
                    start: 0x400,
                    end: 0x1400,
                },
                "VHD block 2 sector bitmap: mark 8 sector(s) of virtual bytes 0x400..0x1400 as in use",
            ),
            (
                FileWriteLabel::VirtualBytes {
                    start: 0x10000,
                    end: 0x20000,
                    unit: Some(ContainerUnit::Qcow2Cluster { cluster: 1 }),
                    how: WriteHow::Relocated,
                },
                "virtual disk bytes 0x10000..0x20000 (qcow2 cluster 1, the whole cluster, stored \
                 anew at the end of the file)",
            ),
            (
                FileWriteLabel::Qcow2Metadata {
                    part: Qcow2Part::RefcountBlock { count: 3 },
                },
                "qcow2 reference counts (3: clusters taken into use or released)",
            ),
        ];
        for (label, english) in cases {
            assert_eq!(label.to_string(), english);
            let json = serde_json::to_string(&label).expect("serialises");
            let back: FileWriteLabel = serde_json::from_str(&json).expect("deserialises");
            assert_eq!(back, label, "{json}");
        }
    }
}
