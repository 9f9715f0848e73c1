//! Why an NTFS volume could not be read or edited, as typed values.
//!
//! Every case is a variant with its facts as fields, so the rescue layer can put it in its JSON
//! report (stable snake_case codes under `"code"`) and a front end can word each one in its own
//! language with an exhaustive `match`. The English wording lives in one `Display` per type; it is
//! what the command line prints.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::index::NodeId;

/// Why an NTFS volume could not be read. Messages say what is wrong and, where there is one, what
/// to do next.
#[derive(Debug, thiserror::Error)]
pub enum NtfsError {
    /// The boot sector does not carry the NTFS OEM ID.
    #[error("not an NTFS volume (no NTFS boot sector)")]
    NotNtfs,
    /// The boot sector carries BitLocker's OEM ID: the NTFS inside cannot be read without the key.
    #[error("the volume is encrypted with BitLocker (-FVE-FS-); give its 48-digit recovery password, its password, its startup key (.BEK) or a key list to unlock it")]
    BitLocker,
    /// The boot sector says NTFS but its geometry is impossible; nothing past it is read.
    #[error("the NTFS boot sector is damaged: {0}")]
    BadBootSector(BootSectorFault),
    /// An on-disk structure contradicts itself or another one.
    #[error("NTFS structure damaged: {0}")]
    Corrupt(Damage),
    /// Something kaifuku does not handle (yet), although NTFS allows it.
    #[error("not supported yet: {0}")]
    Unsupported(Unsupported),
    /// A request kaifuku will not carry out, whatever the version (e.g. deleting a system file).
    #[error("{0}")]
    Refused(Refusal),
    /// The image could not be read.
    #[error("reading the image failed while {what}: {source}")]
    Io {
        /// What was being read, in words ("reading an MFT record").
        what: &'static str,
        /// The read error of the layer below.
        #[source]
        source: std::io::Error,
    },
    /// The `ntfs` crate refused what it was asked to read; its own message.
    #[error("the ntfs reader failed: {0}")]
    Reader(String),
}

impl NtfsError {
    pub(crate) fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> NtfsError {
        move |source| NtfsError::Io { what, source }
    }

    /// A damaged `structure` with no more precise location than `detail` gives.
    pub(crate) fn damaged(structure: Structure, detail: impl Into<String>) -> NtfsError {
        NtfsError::Corrupt(Damage::new(structure, None, detail))
    }

    /// A damaged `structure` found `at` a location.
    pub(crate) fn damaged_at(
        structure: Structure,
        at: Location,
        detail: impl Into<String>,
    ) -> NtfsError {
        NtfsError::Corrupt(Damage::new(structure, Some(at), detail))
    }
}

impl From<ntfs::NtfsError> for NtfsError {
    fn from(e: ntfs::NtfsError) -> Self {
        NtfsError::Reader(e.to_string())
    }
}

/// Damage found in an on-disk structure: which structure, where, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Damage {
    /// The kind of structure that is damaged.
    pub structure: Structure,
    /// Where it is, when the reader knows.
    pub at: Option<Location>,
    /// The finding in technical English, complete as shown to the user (it repeats the structure
    /// and location in words).
    pub detail: String,
}

impl Damage {
    /// Damage to `structure` at `at`, described by `detail`.
    pub fn new(structure: Structure, at: Option<Location>, detail: impl Into<String>) -> Damage {
        Damage {
            structure,
            at,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

/// The on-disk structures damage is reported in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Structure {
    /// A field of a structure the bounds-checked field reader was not told the name of lies
    /// outside the bytes read for it.
    Unknown,
    /// `$MFT`: its own record, its `$DATA` map, its size.
    Mft,
    /// `$MFTMirr`, the copy of the first `$MFT` records.
    MftMirr,
    /// A file record (`FILE`) of `$MFT`: header, in-use state, sequence, names.
    FileRecord,
    /// An attribute header or value inside a file record.
    Attribute,
    /// An `$ATTRIBUTE_LIST` and the extension records it names.
    AttributeList,
    /// The mapping pairs (runlist) of a non-resident attribute, or the clusters they claim.
    Runlist,
    /// The update sequence array (fixups) of a multi-sector record.
    UpdateSequence,
    /// An `$INDEX_ROOT` attribute.
    IndexRoot,
    /// An `$INDEX_ALLOCATION` attribute or one of its `INDX` blocks.
    IndexAllocation,
    /// A node of an index B+ tree (root or block): its header, order, depth, children.
    IndexNode,
    /// An entry of an index node.
    IndexEntry,
    /// The `$BITMAP` of an index, marking which `INDX` blocks are in use.
    IndexBitmap,
    /// A directory: its index as a whole, or a name it lists.
    Directory,
    /// `$UpCase`, the table that orders names.
    UpCase,
    /// `$LogFile`, the journal.
    LogFile,
    /// `$Bitmap`, the volume's cluster allocation bitmap.
    Bitmap,
    /// `$MFT:$BITMAP`, the record allocation bitmap.
    MftBitmap,
    /// `$Volume` and its `$VOLUME_INFORMATION`.
    VolumeInformation,
    /// `$STANDARD_INFORMATION` of a file.
    StandardInformation,
    /// `$FILE_NAME` of a file.
    FileName,
    /// A file under `\$Extend` (`$ObjId`, `$Quota`, `$Reparse`, ...) or the directory itself.
    Extend,
    /// A file's data stream.
    FileData,
}

/// Where a damaged structure is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Location {
    /// A file record, by its number in `$MFT`.
    MftRecord {
        /// Record number.
        record: u64,
    },
    /// A byte offset inside a file record whose number the code did not have at hand.
    RecordOffset {
        /// Offset from the start of the record.
        offset: u64,
    },
    /// A node of a directory's index.
    IndexNode {
        /// The directory's record number, when known.
        directory: Option<u64>,
        /// The node: root or block by VCN.
        node: NodeId,
    },
    /// A cluster of the volume.
    Cluster {
        /// Logical cluster number.
        lcn: u64,
    },
    /// A byte offset inside an attribute's value.
    StreamOffset {
        /// Offset from the start of the value.
        offset: u64,
    },
    /// A directory, by its path on the volume.
    Path {
        /// Path with backslashes from the volume's root.
        path: String,
    },
    /// A byte offset inside `$LogFile`'s data (a restart page or a log record page).
    LogOffset {
        /// Offset from the start of `$LogFile`.
        offset: u64,
    },
    /// A record of `$LogFile`, by its log sequence number.
    LogRecord {
        /// The record's LSN.
        lsn: u64,
    },
}

/// What is wrong with a boot sector that announces NTFS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum BootSectorFault {
    /// The last two bytes are not `55 AA`.
    MissingEndSignature,
    /// Bytes per sector is not a power of two from 256 to 4096.
    BytesPerSector {
        /// The value found.
        value: u32,
    },
    /// Sectors per cluster is 0.
    ZeroSectorsPerCluster,
    /// The sectors-per-cluster byte encodes a power of two beyond 2^12.
    SectorsPerClusterCode {
        /// The byte found.
        byte: u8,
    },
    /// Sectors per cluster is not a power of two.
    SectorsPerClusterNotPowerOfTwo {
        /// The value found.
        value: u32,
    },
    /// The cluster size exceeds NTFS's 2 MiB maximum.
    ClusterTooLarge {
        /// Cluster size in bytes.
        cluster_size: u32,
    },
    /// Total sectors times bytes per sector does not fit 64 bits.
    TotalSectorsOverflow,
    /// The volume described is empty or larger than the space holding it.
    Truncated {
        /// The size the boot sector describes, in bytes.
        described: u64,
        /// The bytes actually there.
        present: u64,
    },
    /// The backup boot sector after the volume's last sector is not there.
    BackupBeyondEnd {
        /// Where the backup boot sector would be.
        backup_at: u64,
        /// The bytes actually there.
        present: u64,
    },
    /// `$MFT` or `$MFTMirr` lies outside the volume (or at cluster 0).
    MftOutsideVolume {
        /// `$MFT`'s cluster.
        mft_lcn: u64,
        /// `$MFTMirr`'s cluster.
        mftmirr_lcn: u64,
        /// Clusters in the volume.
        total_clusters: u64,
    },
    /// `$MFT` and `$MFTMirr` share their cluster.
    MftAndMirrorShareCluster {
        /// The shared cluster.
        lcn: u64,
    },
    /// A record size code is outside 2^8..2^20.
    RecordSizeCode {
        /// File or index record.
        record: RecordKind,
        /// The signed code found.
        size_code: i8,
    },
    /// A record size is not a power of two from 256 to 65536.
    ImplausibleRecordSize {
        /// File or index record.
        record: RecordKind,
        /// The size the code gives, in bytes.
        size: u64,
    },
}

impl fmt::Display for BootSectorFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootSectorFault::MissingEndSignature => {
                f.write_str("the end-of-sector signature 55 AA is missing")
            }
            BootSectorFault::BytesPerSector { value } => write!(
                f,
                "bytes per sector is {value}; NTFS uses a power of two from 256 to 4096"
            ),
            BootSectorFault::ZeroSectorsPerCluster => f.write_str("sectors per cluster is 0"),
            BootSectorFault::SectorsPerClusterCode { byte } => {
                write!(f, "sectors per cluster byte {byte:#x} is out of range")
            }
            BootSectorFault::SectorsPerClusterNotPowerOfTwo { value } => {
                write!(f, "sectors per cluster is {value}, not a power of two")
            }
            BootSectorFault::ClusterTooLarge { cluster_size } => write!(
                f,
                "cluster size {cluster_size} exceeds the NTFS maximum of 2 MiB"
            ),
            BootSectorFault::TotalSectorsOverflow => f.write_str("total sector count overflows"),
            BootSectorFault::Truncated { described, present } => write!(
                f,
                "the boot sector describes a {described}-byte volume but only {present} bytes are there — the image may be truncated"
            ),
            BootSectorFault::BackupBeyondEnd { backup_at, present } => write!(
                f,
                "the volume's backup boot sector (byte {backup_at}) lies beyond the {present} bytes that are there — the image may be truncated"
            ),
            BootSectorFault::MftOutsideVolume {
                mft_lcn,
                mftmirr_lcn,
                total_clusters,
            } => write!(
                f,
                "$MFT at cluster {mft_lcn} or $MFTMirr at cluster {mftmirr_lcn} lies outside the volume's {total_clusters} clusters"
            ),
            BootSectorFault::MftAndMirrorShareCluster { lcn } => {
                write!(f, "$MFT and $MFTMirr both at cluster {lcn}")
            }
            BootSectorFault::RecordSizeCode { record, size_code } => {
                write!(f, "{record} size code {size_code} is out of range")
            }
            BootSectorFault::ImplausibleRecordSize { record, size } => {
                write!(f, "{record} size {size} is not a plausible record size")
            }
        }
    }
}

/// The two record sizes a boot sector sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// A file record of `$MFT`.
    FileRecord,
    /// An `INDX` block of an index.
    IndexRecord,
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordKind::FileRecord => "file record",
            RecordKind::IndexRecord => "index record",
        })
    }
}

/// What a link on the way to a directory points at, when kaifuku cannot follow it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum LinkDestination {
    /// A junction or symbolic link to a path (elsewhere than this volume, or relative to a place
    /// kaifuku cannot resolve).
    Path {
        /// The path the link names, as stored.
        path: String,
    },
    /// A reparse point that is no link kaifuku knows.
    OtherReparsePoint {
        /// Its reparse tag.
        tag: u32,
    },
}

impl fmt::Display for LinkDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkDestination::Path { path } => f.write_str(path),
            LinkDestination::OtherReparsePoint { tag } => {
                write!(f, "a reparse point of tag {tag:#010x}")
            }
        }
    }
}

/// Things NTFS allows that kaifuku does not handle (yet). Each says what to do instead where
/// there is something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Unsupported {
    /// Removing an index entry would grow a node beyond its block; NTFS would split the block.
    IndexSplit {
        /// The node that would overflow.
        node: NodeId,
        /// Bytes the node would need.
        needed: u64,
        /// Bytes the node has room for.
        available: u64,
    },
    /// An index node's new contents overflow its block.
    IndexBlockOverflow {
        /// The node.
        node: NodeId,
    },
    /// Removing an entry would leave an internal index block empty; NTFS would merge blocks.
    IndexMerge {
        /// The internal block.
        node: NodeId,
        /// The directory, in words (its path).
        directory: String,
    },
    /// A resident attribute would have to grow beyond the free space of its file record.
    RecordFull {
        /// Bytes the attribute would grow by.
        grow_by: u64,
    },
    /// The file asked to be deleted is a directory.
    TargetIsDirectory {
        /// The name it was asked by.
        name: String,
        /// Its MFT record.
        record: u64,
    },
    /// The file asked to be deleted has an `$ATTRIBUTE_LIST` (its attributes span records).
    AttributeListOnTarget {
        /// The name it was asked by.
        name: String,
        /// Its base MFT record.
        record: u64,
    },
    /// An index collates its keys by a rule kaifuku does not implement.
    IndexCollation {
        /// The record holding the index.
        record: u64,
        /// The index's name (`$I30`, `$O`, ...).
        index: String,
        /// The collation rule number.
        rule: u32,
    },
    /// A non-resident attribute is too large to hold in memory whole.
    AttributeTooLarge {
        /// Its attribute type code.
        type_code: u32,
        /// Its data size in bytes.
        size: u64,
    },
    /// Compressed or encrypted file data, which only the `ntfs` crate reads, and it failed.
    CompressedOrEncryptedData {
        /// The file's MFT record.
        record: u64,
    },
    /// A link on the way to the rule's directory leads somewhere kaifuku cannot follow.
    UnfollowableLink {
        /// The link's path.
        link: String,
        /// What it points at.
        destination: LinkDestination,
    },
    /// More links on one path than kaifuku follows (a loop, most likely).
    TooManyLinks {
        /// The path looked up.
        path: String,
        /// Links followed before giving up.
        max_hops: usize,
    },
    /// `$LogFile` was written in a log file service version kaifuku does not read (only 1.1 and
    /// 2.0 are known).
    LogVersion {
        /// Major version of the restart page.
        major: i16,
        /// Minor version of the restart page.
        minor: i16,
    },
    /// The journal holds a change, or is in a state, the replay does not understand exactly.
    JournalReplay {
        /// The log record's LSN.
        lsn: u64,
        /// Its operation's name.
        operation: String,
        /// What is not understood.
        detail: String,
    },
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsupported::IndexSplit {
                node,
                needed,
                available,
            } => write!(
                f,
                "index node {node:?} has no room for the change ({needed} > {available} bytes); NTFS would split the block, which kaifuku does not do yet"
            ),
            Unsupported::IndexBlockOverflow { node } => {
                write!(f, "index node {node:?} overflows its block")
            }
            Unsupported::IndexMerge { node, directory } => write!(
                f,
                "removing this entry would leave internal index block {node:?} of {directory} empty; NTFS would merge blocks, which kaifuku does not do yet"
            ),
            Unsupported::RecordFull { grow_by } => write!(
                f,
                "the MFT record has no room to grow an attribute by {grow_by} bytes (it would need moving to another record)"
            ),
            Unsupported::TargetIsDirectory { name, record } => write!(
                f,
                "{name} (MFT record {record}) is a directory; kaifuku deletes files only"
            ),
            Unsupported::AttributeListOnTarget { name, record } => write!(
                f,
                "{name} (MFT record {record}) has an $ATTRIBUTE_LIST (its attributes span several MFT records); deleting such a file offline is not supported yet — delete it from Windows Recovery instead"
            ),
            Unsupported::IndexCollation {
                record,
                index,
                rule,
            } => write!(
                f,
                "record {record}: index {index} uses collation rule {rule:#x}"
            ),
            Unsupported::AttributeTooLarge { type_code, size } => write!(
                f,
                "attribute {type_code:#x} of {size} bytes is too large to load whole"
            ),
            Unsupported::CompressedOrEncryptedData { record } => write!(
                f,
                "record {record}: compressed or encrypted data cannot be read without the ntfs reader"
            ),
            Unsupported::UnfollowableLink { link, destination } => write!(
                f,
                "{link} is a link to {destination}, which kaifuku cannot follow on this volume; fix the volume it leads to, or name the real directory with the command line's --path"
            ),
            Unsupported::TooManyLinks { path, max_hops } => write!(
                f,
                "{path}: more than {max_hops} links on the way; kaifuku does not follow link loops"
            ),
            Unsupported::LogVersion { major, minor } => write!(
                f,
                "the journal ($LogFile) is version {major}.{minor}; kaifuku reads versions 1.1 and 2.0 only. Let Windows (or chkdsk) open the volume first"
            ),
            Unsupported::JournalReplay {
                lsn,
                operation,
                detail,
            } => write!(
                f,
                "kaifuku cannot replay the journal as Windows would: log record {lsn:#x} ({operation}): {detail}"
            ),
        }
    }
}

/// Requests kaifuku will not carry out, whatever the version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Refusal {
    /// The file is one of NTFS's own (records 0–23 or anything under `\$Extend`): freeing it
    /// would destroy the volume.
    SystemFile {
        /// The name it was asked by.
        name: String,
        /// Its MFT record.
        record: u64,
    },
    /// The file has several long names and a DOS name in the directory: which long name the DOS
    /// name belongs to is not recorded, so removing one pair could take the wrong short name.
    AmbiguousDosName {
        /// The name it was asked by.
        name: String,
        /// Its MFT record.
        record: u64,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::SystemFile { name, record } => write!(
                f,
                "{name} (MFT record {record}) is one of NTFS's own system files; kaifuku never deletes those"
            ),
            Refusal::AmbiguousDosName { name, record } => write!(
                f,
                "{name} (MFT record {record}) has several long names and a DOS name in this directory; which long name the DOS name belongs to is not recorded, so kaifuku does not guess"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_snake_case_and_round_trip() {
        let cases = [
            (
                serde_json::to_value(NodeId::Block(3)).unwrap(),
                serde_json::json!({"Block": 3}),
            ),
            (
                serde_json::to_value(Unsupported::IndexSplit {
                    node: NodeId::Root,
                    needed: 600,
                    available: 400,
                })
                .unwrap(),
                serde_json::json!({"code": "index_split", "node": "Root", "needed": 600, "available": 400}),
            ),
            (
                serde_json::to_value(Refusal::AmbiguousDosName {
                    name: "A.SYS".into(),
                    record: 70,
                })
                .unwrap(),
                serde_json::json!({"code": "ambiguous_dos_name", "name": "A.SYS", "record": 70}),
            ),
            (
                serde_json::to_value(Damage::new(
                    Structure::MftBitmap,
                    Some(Location::MftRecord { record: 0 }),
                    "x",
                ))
                .unwrap(),
                serde_json::json!({"structure": "mft_bitmap", "at": {"code": "mft_record", "record": 0}, "detail": "x"}),
            ),
            (
                serde_json::to_value(BootSectorFault::RecordSizeCode {
                    record: RecordKind::IndexRecord,
                    size_code: -40,
                })
                .unwrap(),
                serde_json::json!({"code": "record_size_code", "record": "index_record", "size_code": -40}),
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
        let link = Unsupported::UnfollowableLink {
            link: "\\Windows".into(),
            destination: LinkDestination::OtherReparsePoint { tag: 0x8000_0017 },
        };
        let json = serde_json::to_string(&link).unwrap();
        assert_eq!(serde_json::from_str::<Unsupported>(&json).unwrap(), link);
    }

    #[test]
    fn english_reads_as_the_command_line_prints_it() {
        let e = NtfsError::Unsupported(Unsupported::UnfollowableLink {
            link: "\\Windows".into(),
            destination: LinkDestination::OtherReparsePoint { tag: 0x8000_0017 },
        });
        assert_eq!(
            e.to_string(),
            "not supported yet: \\Windows is a link to a reparse point of tag 0x80000017, which kaifuku cannot follow on this volume; fix the volume it leads to, or name the real directory with the command line's --path"
        );
        let e = NtfsError::BadBootSector(BootSectorFault::SectorsPerClusterCode { byte: 0xF0 });
        assert_eq!(
            e.to_string(),
            "the NTFS boot sector is damaged: sectors per cluster byte 0xf0 is out of range"
        );
        let e = NtfsError::Refused(Refusal::SystemFile {
            name: "$MFT".into(),
            record: 0,
        });
        assert_eq!(
            e.to_string(),
            "$MFT (MFT record 0) is one of NTFS's own system files; kaifuku never deletes those"
        );
        let e = NtfsError::Unsupported(Unsupported::IndexSplit {
            node: NodeId::Block(4),
            needed: 4100,
            available: 4072,
        });
        assert_eq!(
            e.to_string(),
            "not supported yet: index node Block(4) has no room for the change (4100 > 4072 bytes); NTFS would split the block, which kaifuku does not do yet"
        );
    }
}
