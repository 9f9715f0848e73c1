//! What a logged write changes, as a typed value: the plan shows it to people, the page words it
//! in Japanese and English from the variant (never by parsing an English sentence), and the
//! ownership proof names it in a conflict.
//!
//! The English wording (`Display`) has a fixed shape that reports and tests rely on:
//! "MFT record 42", "index block VCN 8 of directory \X (record 7) $I30", "$Bitmap bytes 0x10..0x11".

use crate::logfile::record::Operation;
use crate::logfile::replay::ReplayPass;
use crate::volume::{RECORD_BITMAP, RECORD_MFT};
use crate::AttributeType;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The structure a write changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChangedStructure {
    /// A file record of `$MFT`; `part` says what inside it changed when the write is about one
    /// attribute (a directory's `$INDEX_ROOT`, a resident bitmap).
    MftRecord {
        /// The record number.
        record: u64,
        /// What inside the record the write is about, if it is about one part.
        part: Option<RecordPart>,
    },
    /// The copy of a file record that `$MFTMirr` keeps (records 0–3).
    MftMirrCopy {
        /// The record number.
        record: u64,
    },
    /// Bytes `start..end` of a non-resident bitmap stream.
    BitmapBytes {
        /// Which bitmap.
        bitmap: BitmapOwner,
        /// First byte changed, from the start of the bitmap.
        start: u64,
        /// Byte just past the last one changed.
        end: u64,
    },
    /// An index block (`$INDEX_ALLOCATION`) of an index.
    IndexBlock {
        /// The block's virtual cluster number in the index allocation.
        vcn: u64,
        /// The file the index belongs to.
        of: IndexOwner,
        /// The index's name (`$I30`, `$O`, `$R`).
        index: String,
    },
    /// The whole `$LogFile`, filled with 0xFF (the journal discarded).
    JournalReset,
    /// A page the journal replay changed, with the log records applied to it in order.
    JournalReplay {
        /// The page.
        page: ReplayedPage,
        /// The log records applied to it.
        applied: Vec<AppliedRecord>,
    },
    /// A `$LogFile` restart page marked clean after the replay.
    JournalMarkedClean {
        /// Which of the two copies.
        copy: RestartCopy,
        /// The log's current LSN written into it (the end of the replayed log).
        lsn: u64,
    },
    /// A `$LogFile` record page written while a 2.0 log is left clean as 1.1 (§17.5 of
    /// `docs/logfile-format.md`): a newer buffer copy written in place, or the page holding the
    /// end of the log written as a 1.1 tail copy.
    JournalLogPage {
        /// Offset in `$LogFile` of the page written.
        offset: u64,
        /// Offset of the page whose bytes it holds (the buffer page, or the page a tail copy
        /// stands for).
        copy_of: u64,
        /// Whether it is a 1.1 tail copy (pages 2 and 3) rather than a page in place.
        tail_copy: bool,
    },
}

/// A page of the volume a journal replay changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReplayedPage {
    /// A file record of `$MFT`.
    Record {
        /// The record number.
        record: u64,
    },
    /// An index block, by its byte offset in the `$INDEX_ALLOCATION` of a record's index.
    IndexBlock {
        /// The record holding the index.
        record: u64,
        /// The index's name.
        index: String,
        /// Byte offset of the block in the index allocation.
        offset: u64,
    },
    /// A page of a non-resident stream (`$MFT:$BITMAP`, `$Bitmap`, ...).
    StreamPage {
        /// The record holding the stream.
        record: u64,
        /// The stream's attribute type code.
        attribute_type: u32,
        /// The stream's name.
        name: String,
        /// First virtual cluster of the page.
        vcn: u64,
    },
}

/// One log record a journal replay applied to a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedRecord {
    /// The record's LSN.
    pub lsn: u64,
    /// The operation applied (the record's redo operation, or its undo operation).
    pub operation: Operation,
    /// Whether it was redone or undone.
    pub pass: ReplayPass,
}

/// One of the two copies of the `$LogFile` restart page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartCopy {
    /// The first (at offset 0).
    First,
    /// The second (one system page in).
    Second,
}

/// A part of a file record that a write is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecordPart {
    /// The resident root of an index.
    IndexRoot {
        /// The index's name.
        index: String,
        /// The file the index belongs to.
        of: IndexOwner,
    },
    /// A resident bitmap.
    Bitmap {
        /// Which bitmap.
        bitmap: BitmapOwner,
    },
}

/// A bitmap the delete changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BitmapOwner {
    /// `$MFT:$BITMAP`: which file records are in use.
    MftBitmap,
    /// `$Bitmap`: which clusters are in use.
    ClusterBitmap,
    /// The `$BITMAP` of an index: which of its blocks are in use.
    IndexBitmap {
        /// The index's name.
        index: String,
        /// The file the index belongs to.
        of: IndexOwner,
    },
}

/// The file an index belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IndexOwner {
    /// A directory, by its path (for people) and record number.
    Directory {
        /// The directory's path on the volume, e.g. `\Windows\System32`.
        path: String,
        /// Its MFT record.
        record: u64,
    },
    /// `$Extend\$ObjId` (object ids → files).
    ObjectIds,
    /// `$Extend\$Reparse` (reparse points).
    ReparsePoints,
}

impl fmt::Display for ChangedStructure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChangedStructure::MftRecord { record, part: None } => write!(f, "MFT record {record}"),
            ChangedStructure::MftRecord {
                record,
                part: Some(part),
            } => write!(f, "MFT record {record} ({part})"),
            ChangedStructure::MftMirrCopy { record } => {
                write!(f, "$MFTMirr copy of MFT record {record}")
            }
            ChangedStructure::BitmapBytes { bitmap, start, end } => {
                write!(f, "{bitmap} bytes {start:#x}..{end:#x}")
            }
            ChangedStructure::IndexBlock { vcn, of, index } => {
                write!(f, "index block VCN {vcn} of {of} {index}")
            }
            ChangedStructure::JournalReset => f.write_str("$LogFile (reset to 0xFF)"),
            ChangedStructure::JournalReplay { page, applied } => {
                f.write_str("journal replay: ")?;
                for (i, a) in applied.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                write!(f, " {page}")
            }
            ChangedStructure::JournalMarkedClean { copy, lsn } => {
                let which = match copy {
                    RestartCopy::First => "first",
                    RestartCopy::Second => "second",
                };
                write!(
                    f,
                    "journal replay: $LogFile {which} restart page marked clean at LSN {lsn:#x}"
                )
            }
            ChangedStructure::JournalLogPage {
                offset,
                copy_of,
                tail_copy: false,
            } => write!(
                f,
                "journal replay: $LogFile page at {offset:#x} written from its newer buffer copy at {copy_of:#x}"
            ),
            ChangedStructure::JournalLogPage {
                offset,
                copy_of,
                tail_copy: true,
            } => write!(
                f,
                "journal replay: $LogFile page at {offset:#x} written as the tail copy of the last page at {copy_of:#x}"
            ),
        }
    }
}

impl fmt::Display for AppliedRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pass = match self.pass {
            ReplayPass::Redo => "redo",
            ReplayPass::Undo => "undo",
        };
        write!(f, "{pass} LSN {:#x} {:?}", self.lsn, self.operation)
    }
}

impl ReplayedPage {
    /// For a stream page, the stream as NTFS names it: `$MFT:$BITMAP`, `$Bitmap`, or "record 5's
    /// attribute 0x80 $X" for the others (an identifier, the same in every language).
    pub fn stream_name(&self) -> Option<String> {
        match self {
            ReplayedPage::StreamPage {
                record,
                attribute_type,
                name,
                ..
            } => {
                let mft_bitmap = (RECORD_MFT, AttributeType::Bitmap.code());
                let cluster_bitmap = (RECORD_BITMAP, AttributeType::Data.code());
                Some(match (*record, *attribute_type) {
                    k if k == mft_bitmap => "$MFT:$BITMAP".to_string(),
                    k if k == cluster_bitmap => "$Bitmap".to_string(),
                    _ => format!("record {record}'s attribute {attribute_type:#x} {name}"),
                })
            }
            ReplayedPage::Record { .. } | ReplayedPage::IndexBlock { .. } => None,
        }
    }
}

impl fmt::Display for ReplayedPage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayedPage::Record { record } => write!(f, "MFT record {record}"),
            ReplayedPage::IndexBlock {
                record,
                index,
                offset,
            } => write!(
                f,
                "index block at byte {offset:#x} of record {record}'s {index}"
            ),
            ReplayedPage::StreamPage { vcn, .. } => {
                let stream = self.stream_name().unwrap_or_default();
                write!(f, "{stream} page at VCN {vcn}")
            }
        }
    }
}

impl fmt::Display for RecordPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordPart::IndexRoot { index, of } => write!(f, "$INDEX_ROOT {index} of {of}"),
            RecordPart::Bitmap { bitmap } => bitmap.fmt(f),
        }
    }
}

impl fmt::Display for BitmapOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BitmapOwner::MftBitmap => f.write_str("$MFT:$BITMAP"),
            BitmapOwner::ClusterBitmap => f.write_str("$Bitmap"),
            BitmapOwner::IndexBitmap { index, of } => write!(f, "index bitmap {index} of {of}"),
        }
    }
}

impl fmt::Display for IndexOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IndexOwner::Directory { path, record } => {
                write!(f, "directory {path} (record {record})")
            }
            IndexOwner::ObjectIds => f.write_str("$Extend\\$ObjId"),
            IndexOwner::ReparsePoints => f.write_str("$Extend\\$Reparse"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The English shapes reports, the CLI's plan table and its tests rely on.
    #[test]
    fn english_wording_keeps_its_shape() {
        let dir = IndexOwner::Directory {
            path: "\\Windows\\System32\\drivers\\etc".into(),
            record: 67,
        };
        let cases = [
            (
                ChangedStructure::MftRecord {
                    record: 2146,
                    part: None,
                },
                "MFT record 2146",
            ),
            (
                ChangedStructure::MftRecord {
                    record: 67,
                    part: Some(RecordPart::IndexRoot {
                        index: "$I30".into(),
                        of: dir.clone(),
                    }),
                },
                "MFT record 67 ($INDEX_ROOT $I30 of directory \\Windows\\System32\\drivers\\etc (record 67))",
            ),
            (
                ChangedStructure::MftRecord {
                    record: 0,
                    part: Some(RecordPart::Bitmap {
                        bitmap: BitmapOwner::MftBitmap,
                    }),
                },
                "MFT record 0 ($MFT:$BITMAP)",
            ),
            (
                ChangedStructure::MftMirrCopy { record: 3 },
                "$MFTMirr copy of MFT record 3",
            ),
            (
                ChangedStructure::BitmapBytes {
                    bitmap: BitmapOwner::ClusterBitmap,
                    start: 0x6f,
                    end: 0x70,
                },
                "$Bitmap bytes 0x6f..0x70",
            ),
            (
                ChangedStructure::BitmapBytes {
                    bitmap: BitmapOwner::IndexBitmap {
                        index: "$O".into(),
                        of: IndexOwner::ObjectIds,
                    },
                    start: 0,
                    end: 1,
                },
                "index bitmap $O of $Extend\\$ObjId bytes 0x0..0x1",
            ),
            (
                ChangedStructure::IndexBlock {
                    vcn: 16,
                    of: dir,
                    index: "$I30".into(),
                },
                "index block VCN 16 of directory \\Windows\\System32\\drivers\\etc (record 67) $I30",
            ),
            (ChangedStructure::JournalReset, "$LogFile (reset to 0xFF)"),
            (
                ChangedStructure::JournalReplay {
                    page: ReplayedPage::Record { record: 67 },
                    applied: vec![
                        AppliedRecord {
                            lsn: 0x100b4d,
                            operation: Operation::AddIndexEntryRoot,
                            pass: ReplayPass::Redo,
                        },
                        AppliedRecord {
                            lsn: 0x100b60,
                            operation: Operation::DeleteIndexEntryRoot,
                            pass: ReplayPass::Undo,
                        },
                    ],
                },
                "journal replay: redo LSN 0x100b4d AddIndexEntryRoot, undo LSN 0x100b60 \
                 DeleteIndexEntryRoot MFT record 67",
            ),
            (
                ChangedStructure::JournalReplay {
                    page: ReplayedPage::StreamPage {
                        record: 6,
                        attribute_type: 0x80,
                        name: String::new(),
                        vcn: 2,
                    },
                    applied: vec![AppliedRecord {
                        lsn: 0x20,
                        operation: Operation::ClearBitsInNonresidentBitMap,
                        pass: ReplayPass::Redo,
                    }],
                },
                "journal replay: redo LSN 0x20 ClearBitsInNonresidentBitMap $Bitmap page at VCN 2",
            ),
            (
                ChangedStructure::JournalMarkedClean {
                    copy: RestartCopy::Second,
                    lsn: 0x42,
                },
                "journal replay: $LogFile second restart page marked clean at LSN 0x42",
            ),
            (
                ChangedStructure::JournalLogPage {
                    offset: 0x30000,
                    copy_of: 0x12000,
                    tail_copy: false,
                },
                "journal replay: $LogFile page at 0x30000 written from its newer buffer copy at 0x12000",
            ),
            (
                ChangedStructure::JournalLogPage {
                    offset: 0x3000,
                    copy_of: 0x30000,
                    tail_copy: true,
                },
                "journal replay: $LogFile page at 0x3000 written as the tail copy of the last page at 0x30000",
            ),
        ];
        for (value, english) in cases {
            assert_eq!(value.to_string(), english);
            let json = serde_json::to_string(&value).expect("serialises");
            let back: ChangedStructure = serde_json::from_str(&json).expect("deserialises");
            assert_eq!(back, value, "{json}");
        }
    }
}
