//! `explain`: the on-disk structures behind an inspection and a plan, as annotated bytes. For
//! training and for anyone who wants to check kaifuku's reading in a hex viewer: the partition
//! table, each NTFS boot sector, the directory walk from the root to the rule's directory (per
//! directory the index entry that leads on), each matched file's MFT record and first bytes, and
//! every patch of the plan with its bytes before and after and the field each changed byte
//! falls in.
//!
//! Everything is typed ([`FieldName`], [`FieldValue`], [`StructureKind`]) so a front end words it
//! in its own language; nothing here is parsed back from text. Only the structures shown are
//! read, through the same reader as the inspection and the plan (the block cache has most of them
//! already).

use crate::inspect::{FileSystem, InspectReport, Outcome};
use crate::plan::{FixOptions, Plan};
use crate::rule::{RuleSet, Verdict};
use crate::session::Session;
use crate::vocabulary::FixError;
use kaifuku_container::ContainerInfo;
use kaifuku_io::{PatchData, ReadAt, Slice};
use kaifuku_ntfs::edit::{BitmapOwner, ChangedStructure, IndexOwner, RecordPart, ReplayedPage};
use kaifuku_ntfs::index::NodeId;
use kaifuku_ntfs::layout::{
    attribute, boot_sector, file_name, file_record, index_block, index_entry, index_header,
    index_root, multi_sector, standard_information,
};
use kaifuku_ntfs::{AttributeType, FileRecord, Namespace, NtfsError, Volume};
use kaifuku_partition::types::PartitionType;
use kaifuku_partition::Scheme;
use serde::{Deserialize, Serialize};

/// Which structure a view shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StructureKind {
    /// The master boot record in the disk's first sector; `protective` when it only guards a
    /// GPT.
    Mbr {
        /// Whether it is the protective MBR of a GPT disk.
        protective: bool,
    },
    /// The primary GPT header (LBA 1).
    GptHeader,
    /// One used entry of the GPT partition entry array.
    GptEntry {
        /// The partition's number (entry index + 1).
        partition: u32,
    },
    /// The first sector of an NTFS volume.
    NtfsBootSector {
        /// The partition holding the volume (`None`: a bare volume).
        partition: Option<u32>,
    },
    /// A step of the walk from the root: the entry in `directory`'s index that leads to `name`.
    IndexEntry {
        /// The directory's path on the volume.
        directory: String,
        /// The directory's MFT record.
        directory_record: u64,
        /// The index node the entry sits in.
        node: NodeId,
        /// The name the entry carries.
        name: String,
        /// The MFT record the entry points at.
        record: u64,
    },
    /// The MFT record of a file the rule matched, as stored (update sequence in place).
    MftRecord {
        /// The record number.
        record: u64,
        /// The file's path on the volume.
        path: String,
    },
    /// The first bytes of a matched file's data.
    FileStart {
        /// The file's MFT record.
        record: u64,
        /// The file's path on the volume.
        path: String,
    },
}

/// The name of one field of a structure. Entries of the MBR carry their slot (0–3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "field", rename_all = "snake_case")]
pub enum FieldName {
    // MBR
    /// Boot code (first-stage loader).
    BootCode,
    /// The disk signature Windows uses to tell disks apart.
    DiskSignature,
    /// An MBR entry's status (0x80: active, the one the BIOS boots).
    MbrStatus {
        /// The entry slot (0–3).
        slot: u8,
    },
    /// An MBR entry's partition type byte (0xEE: protective, 0x07: NTFS).
    MbrType {
        /// The entry slot (0–3).
        slot: u8,
    },
    /// An MBR entry's first sector.
    MbrFirstLba {
        /// The entry slot (0–3).
        slot: u8,
    },
    /// An MBR entry's length in sectors.
    MbrSectors {
        /// The entry slot (0–3).
        slot: u8,
    },
    /// The 0x55 0xAA signature that ends a boot sector.
    BootSignature,
    // GPT header
    /// `EFI PART`.
    GptSignature,
    /// The GPT revision.
    GptRevision,
    /// The header's size.
    GptHeaderSize,
    /// CRC-32 of the header.
    GptHeaderCrc,
    /// The LBA of this header.
    GptCurrentLba,
    /// The LBA of the backup header.
    GptBackupLba,
    /// The first LBA partitions may use.
    GptFirstUsableLba,
    /// The last LBA partitions may use.
    GptLastUsableLba,
    /// The disk's GUID.
    GptDiskGuid,
    /// Where the partition entry array starts.
    GptEntriesLba,
    /// How many entries the array has.
    GptEntryCount,
    /// The size of one entry.
    GptEntrySize,
    /// CRC-32 of the entry array.
    GptEntriesCrc,
    // GPT entry
    /// The partition type GUID (says what the partition is for).
    GptTypeGuid,
    /// The partition's own GUID.
    GptPartitionGuid,
    /// The partition's first LBA.
    GptFirstLba,
    /// The partition's last LBA.
    GptLastLba,
    /// Attribute bits.
    GptAttributes,
    /// The partition's name.
    GptName,
    // NTFS boot sector
    /// The OEM id, `NTFS    `.
    OemId,
    /// Bytes per sector.
    BytesPerSector,
    /// Sectors per cluster (the value is the cluster size in bytes).
    SectorsPerCluster,
    /// Sectors in the volume.
    TotalSectors,
    /// The first cluster of `$MFT`.
    MftLcn,
    /// The first cluster of `$MFTMirr`.
    MftMirrLcn,
    /// Size of a file record (the value is in bytes).
    ClustersPerFileRecord,
    /// Size of an index block (the value is in bytes).
    ClustersPerIndexBlock,
    /// The volume serial number.
    VolumeSerial,
    // multi-sector header (file records, index blocks)
    /// `FILE` or `INDX`.
    Signature,
    /// Where the update sequence array is.
    UpdateSequenceOffset,
    /// Its length in u16 (the number + one per sector).
    UpdateSequenceCount,
    /// The `$LogFile` sequence number of the last logged change.
    LogSequenceNumber,
    /// The update sequence number the sector ends must carry.
    UpdateSequenceNumber,
    /// The saved bytes of each sector end.
    UpdateSequenceArray,
    /// The last two bytes of a sector, replaced by the update sequence number on disk.
    SectorEnd,
    // file record header
    /// The sequence number (raised each time the record is freed).
    SequenceNumber,
    /// The number of names (hard links) in directories.
    LinkCount,
    /// Where the first attribute starts.
    FirstAttributeOffset,
    /// In use / directory.
    RecordFlags,
    /// Bytes of the record in use.
    BytesInUse,
    /// Bytes of the record allocated.
    BytesAllocated,
    /// The base record (0 for a base record).
    BaseRecord,
    /// The next attribute instance number.
    NextAttributeId,
    /// The record's own number.
    RecordNumber,
    // attributes
    /// An attribute's type code.
    AttributeTypeCode,
    /// An attribute's length.
    AttributeLength,
    /// The end-of-attributes marker 0xFFFFFFFF.
    AttributesEnd,
    /// `$STANDARD_INFORMATION` creation time.
    SiCreated,
    /// `$STANDARD_INFORMATION` last-modified time (what the rule judges the version by).
    SiModified,
    /// `$STANDARD_INFORMATION` record-change time.
    SiMftChanged,
    /// `$STANDARD_INFORMATION` last-access time.
    SiAccessed,
    /// DOS file attributes.
    FileAttributes,
    /// `$FILE_NAME`: the directory the name is in.
    FnParent,
    /// `$FILE_NAME` allocated size.
    FnAllocatedSize,
    /// `$FILE_NAME` data size.
    FnDataSize,
    /// `$FILE_NAME` name length.
    FnNameLength,
    /// `$FILE_NAME` namespace (Win32, DOS 8.3, both, POSIX).
    FnNamespace,
    /// `$FILE_NAME` name.
    FnName,
    /// A non-resident attribute's allocated size.
    AllocatedSize,
    /// A non-resident attribute's data size.
    DataSize,
    /// A non-resident attribute's runs (mapping pairs).
    DataRuns,
    /// A resident attribute's value.
    ResidentValue,
    // indexes
    /// `$INDEX_ROOT`: the attribute type indexed.
    IndexedAttributeType,
    /// `$INDEX_ROOT`: the collation rule.
    CollationRule,
    /// `$INDEX_ROOT`: the size of the index's blocks.
    IndexBlockSize,
    /// An index block's VCN.
    IndexBlockVcn,
    /// Where the node's entries start.
    EntriesOffset,
    /// Bytes of the node in use.
    IndexLength,
    /// Bytes of the node allocated.
    IndexAllocatedSize,
    /// Whether the node has children.
    IndexFlags,
    /// An index entry's file reference.
    EntryFileReference,
    /// An index entry's length.
    EntryLength,
    /// An index entry's key length.
    EntryKeyLength,
    /// An index entry's flags (has a child node, last entry).
    EntryFlags,
    /// The VCN of the child node an entry leads down to.
    EntrySubnode,
    // data and bitmaps
    /// The first bytes of a file's data.
    FirstBytes,
    /// Bits of `$MFT:$BITMAP` (one per file record).
    MftBitmapBits,
    /// Bits of `$Bitmap` (one per cluster).
    ClusterBitmapBits,
    /// Bits of a directory's index `$BITMAP` (one per index block).
    IndexBitmapBits,
    /// Journal (`$LogFile`) bytes.
    JournalBytes,
}

/// A field's value, typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FieldValue {
    /// A count, offset, LBA or cluster number.
    Number {
        /// The value.
        value: u64,
    },
    /// A code or bit set, shown in hex.
    Hex {
        /// The value.
        value: u64,
    },
    /// A size the structure encodes (`encoded`, e.g. sectors per cluster or a negative power of
    /// two) and what it means in bytes.
    Size {
        /// As the structure stores it.
        encoded: i64,
        /// In bytes.
        bytes: u64,
    },
    /// Text (ASCII or UTF-16 as stored).
    Text {
        /// The text.
        text: String,
    },
    /// A GUID, as Windows writes it.
    Guid {
        /// The GUID.
        guid: String,
    },
    /// An NTFS time: 100 ns ticks since 1601, and as UTC.
    Time {
        /// 100 ns ticks since 1601-01-01 UTC.
        ticks: u64,
        /// The same time as RFC 3339 UTC.
        utc: String,
    },
    /// A file reference: record number and sequence number.
    FileReference {
        /// The MFT record number.
        record: u64,
        /// The sequence number.
        sequence: u16,
    },
    /// A file record's flags.
    RecordFlags {
        /// Whether the record is in use.
        in_use: bool,
        /// Whether the record is a directory.
        directory: bool,
    },
    /// A `$FILE_NAME` namespace.
    Namespace {
        /// The namespace.
        namespace: Namespace,
    },
    /// An attribute type.
    Attribute {
        /// The type code as stored.
        code: u32,
        /// The attribute type, when kaifuku knows the code.
        attribute: Option<AttributeType>,
    },
    /// Runs of a non-resident attribute.
    Runs {
        /// The runs, in VCN order.
        runs: Vec<RunView>,
    },
    /// Bytes, in hex (at most the first 16).
    Bytes {
        /// The bytes in hex.
        hex: String,
    },
    /// Nothing to decode (boot code, reserved bytes).
    Opaque,
}

/// One run of a non-resident attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunView {
    /// First virtual cluster.
    pub vcn: u64,
    /// First logical cluster on the volume (`None`: sparse).
    pub lcn: Option<u64>,
    /// Clusters.
    pub length: u64,
}

/// A named field: `len` bytes at `offset` in the structure's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// Offset in the structure's bytes.
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
    /// What it is.
    pub name: FieldName,
    /// What it says.
    pub value: FieldValue,
}

/// A structure's bytes, where they are, and its fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StructureView {
    /// Which structure.
    pub what: StructureKind,
    /// Byte offset on the virtual disk of the first byte (for raw images: in the file).
    pub disk_offset: u64,
    /// The bytes as stored (index entries: as NTFS reads them, update sequence applied).
    #[serde(serialize_with = "hex_bytes", deserialize_with = "from_hex")]
    pub bytes: Vec<u8>,
    /// The fields, in order of offset.
    pub fields: Vec<Field>,
}

/// A partition and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionView {
    /// Its number.
    pub number: u32,
    /// First byte on the virtual disk.
    pub start: u64,
    /// Size in bytes.
    pub size: u64,
    /// First sector.
    pub first_lba: u64,
    /// Last sector.
    pub last_lba: u64,
    /// Its type.
    pub type_name: PartitionType,
    /// What its first sector holds.
    pub filesystem: FileSystem,
    /// Whether it is the Windows volume: NTFS holding `\Windows\System32`.
    pub windows: bool,
}

/// A file the rule matched, with what decides its fate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetView {
    /// Its path on the volume.
    pub path: String,
    /// Its MFT record.
    pub record: u64,
    /// The record's sequence number.
    pub sequence: u16,
    /// Its number of names.
    pub link_count: u16,
    /// Its 8.3 name, when it has one.
    pub dos_name: Option<String>,
    /// `$STANDARD_INFORMATION` last-modified time (UTC).
    pub modified: String,
    /// Which version the rule judges it.
    pub verdict: Verdict,
    /// Whether its first bytes are the known-bad header.
    pub header_matches: Option<bool>,
    /// Whether its data is all zeros.
    pub all_zero: bool,
}

/// A bit a patch flips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedBit {
    /// Bit number in its bitmap: the record number (`$MFT:$BITMAP`) or cluster (`$Bitmap`).
    pub bit: u64,
    /// Whether it is set after the fix.
    pub set_after: bool,
}

/// A run of changed bytes inside a patch and the field it falls in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedRun {
    /// Offset in the patch.
    pub offset: usize,
    /// Length.
    pub len: usize,
    /// The field of the structure the bytes belong to, when known.
    pub field: Option<FieldName>,
    /// For bitmaps: the bits that flip.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bits: Vec<ChangedBit>,
}

/// One patch of the plan, before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchView {
    /// Byte offset on the virtual disk.
    pub disk_offset: u64,
    /// The structure it changes.
    pub label: ChangedStructure,
    /// The bytes now (empty for a fill: a reset journal is not read).
    #[serde(serialize_with = "hex_bytes", deserialize_with = "from_hex")]
    pub before: Vec<u8>,
    /// The bytes after the fix (empty for a fill).
    #[serde(serialize_with = "hex_bytes", deserialize_with = "from_hex")]
    pub after: Vec<u8>,
    /// For a fill: the byte and length written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fill: Option<(u8, u64)>,
    /// Which bytes differ and what they are.
    pub changed: Vec<ChangedRun>,
}

/// A structure that could not be read for the explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExplainGap {
    /// What was being read.
    pub reading: GapKind,
    /// The reader's error (English).
    pub detail: String,
}

/// What an [`ExplainGap`] was reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GapKind {
    /// The partition table sectors.
    PartitionTable,
    /// A volume (its boot sector and `$MFT`).
    Volume {
        /// The partition (`None`: a bare volume).
        partition: Option<u32>,
    },
    /// The walk to a directory.
    PathWalk {
        /// Whether the record is a directory.
        directory: String,
    },
    /// A matched file.
    Target {
        /// The file's path on the volume.
        path: String,
    },
    /// The structure under a patch.
    Patch {
        /// The patch's offset on the virtual disk.
        disk_offset: u64,
    },
}

/// Everything `explain` shows about an image.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// What inspection concluded.
    pub outcome: Outcome,
    /// The container, when the file opened as one.
    pub container: Option<ContainerInfo>,
    /// How the disk is divided.
    pub scheme: Option<Scheme>,
    /// The partitions (or the bare volume).
    pub partitions: Vec<PartitionView>,
    /// The annotated structures, from the partition table to the matched files.
    pub structures: Vec<StructureView>,
    /// The matched files.
    pub targets: Vec<TargetView>,
    /// The plan's patches, before and after (empty without a plan).
    pub patches: Vec<PatchView>,
    /// Why no plan was made, when inspection found matches but planning refused or failed.
    pub plan_problem: Option<FixError>,
    /// Structures that could not be read.
    pub gaps: Vec<ExplainGap>,
}

fn hex_bytes<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(b))
}

fn from_hex<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(d)?;
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| serde::de::Error::custom("bytes must be pairs of hex digits"))
        })
        .collect()
}

/// Lowercase hex without separators.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn le(b: &[u8], off: usize, len: usize) -> u64 {
    b.get(off..off + len)
        .map(|s| {
            s.iter()
                .rev()
                .fold(0u64, |acc, &x| (acc << 8) | u64::from(x))
        })
        .unwrap_or(0)
}

fn guid(b: &[u8]) -> String {
    if b.len() < 16 {
        return String::new();
    }
    format!(
        "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{}",
        le(b, 0, 4),
        le(b, 4, 2),
        le(b, 6, 2),
        b[8],
        b[9],
        b[10..16]
            .iter()
            .map(|x| format!("{x:02X}"))
            .collect::<String>()
    )
}

fn utf16(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

fn ascii(b: &[u8]) -> String {
    b.iter()
        .map(|&c| {
            if c.is_ascii_graphic() || c == b' ' {
                c as char
            } else {
                '.'
            }
        })
        .collect()
}

fn time(ticks: u64) -> FieldValue {
    FieldValue::Time {
        ticks,
        utc: kaifuku_ntfs::time::format_utc(ticks),
    }
}

fn file_ref(v: u64) -> FieldValue {
    let r = kaifuku_ntfs::FileRef::from_u64(v);
    FieldValue::FileReference {
        record: r.record,
        sequence: r.sequence,
    }
}

/// Collects fields, dropping any that would reach past the bytes.
struct Fields<'a> {
    bytes: &'a [u8],
    out: Vec<Field>,
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Fields {
            bytes,
            out: Vec::new(),
        }
    }
    fn add(&mut self, offset: usize, len: usize, name: FieldName, value: FieldValue) {
        if len > 0 && offset + len <= self.bytes.len() {
            self.out.push(Field {
                offset,
                len,
                name,
                value,
            });
        }
    }
    fn num(&mut self, offset: usize, len: usize, name: FieldName) {
        let value = le(self.bytes, offset, len);
        self.add(offset, len, name, FieldValue::Number { value });
    }
    fn hex(&mut self, offset: usize, len: usize, name: FieldName) {
        let value = le(self.bytes, offset, len);
        self.add(offset, len, name, FieldValue::Hex { value });
    }
    fn finish(mut self) -> Vec<Field> {
        self.out
            .sort_by_key(|f| (f.offset, std::cmp::Reverse(f.len)));
        self.out
    }
}

/// The fields of an MBR sector.
pub fn mbr_fields(b: &[u8]) -> Vec<Field> {
    let mut f = Fields::new(b);
    f.add(0, 440, FieldName::BootCode, FieldValue::Opaque);
    f.hex(440, 4, FieldName::DiskSignature);
    for slot in 0..4u8 {
        let base = 446 + 16 * slot as usize;
        if b.get(base + 4).copied().unwrap_or(0) == 0 {
            continue;
        }
        f.hex(base, 1, FieldName::MbrStatus { slot });
        f.hex(base + 4, 1, FieldName::MbrType { slot });
        f.num(base + 8, 4, FieldName::MbrFirstLba { slot });
        f.num(base + 12, 4, FieldName::MbrSectors { slot });
    }
    f.hex(510, 2, FieldName::BootSignature);
    f.finish()
}

/// The fields of a GPT header.
pub fn gpt_header_fields(b: &[u8]) -> Vec<Field> {
    let mut f = Fields::new(b);
    let sig = ascii(b.get(0..8).unwrap_or_default());
    f.add(
        0,
        8,
        FieldName::GptSignature,
        FieldValue::Text { text: sig },
    );
    f.hex(8, 4, FieldName::GptRevision);
    f.num(12, 4, FieldName::GptHeaderSize);
    f.hex(16, 4, FieldName::GptHeaderCrc);
    f.num(24, 8, FieldName::GptCurrentLba);
    f.num(32, 8, FieldName::GptBackupLba);
    f.num(40, 8, FieldName::GptFirstUsableLba);
    f.num(48, 8, FieldName::GptLastUsableLba);
    let g = guid(b.get(56..72).unwrap_or_default());
    f.add(56, 16, FieldName::GptDiskGuid, FieldValue::Guid { guid: g });
    f.num(72, 8, FieldName::GptEntriesLba);
    f.num(80, 4, FieldName::GptEntryCount);
    f.num(84, 4, FieldName::GptEntrySize);
    f.hex(88, 4, FieldName::GptEntriesCrc);
    f.finish()
}

/// The fields of a GPT partition entry.
pub fn gpt_entry_fields(b: &[u8]) -> Vec<Field> {
    let mut f = Fields::new(b);
    let g = |r: std::ops::Range<usize>| FieldValue::Guid {
        guid: guid(b.get(r).unwrap_or_default()),
    };
    f.add(0, 16, FieldName::GptTypeGuid, g(0..16));
    f.add(16, 16, FieldName::GptPartitionGuid, g(16..32));
    f.num(32, 8, FieldName::GptFirstLba);
    f.num(40, 8, FieldName::GptLastLba);
    f.hex(48, 8, FieldName::GptAttributes);
    let name = utf16(b.get(56..128).unwrap_or_default());
    f.add(56, 72, FieldName::GptName, FieldValue::Text { text: name });
    f.finish()
}

/// A size byte of the NTFS boot sector: positive counts clusters, negative is a power of two.
fn encoded_size(raw: u8, cluster_size: u64) -> FieldValue {
    let encoded = raw as i8 as i64;
    let bytes = if encoded > 0 {
        encoded as u64 * cluster_size
    } else {
        1u64.checked_shl((-encoded) as u32).unwrap_or(0)
    };
    FieldValue::Size { encoded, bytes }
}

/// The fields of an NTFS boot sector.
pub fn ntfs_boot_fields(b: &[u8]) -> Vec<Field> {
    use boot_sector as bs;
    let mut f = Fields::new(b);
    let oem = ascii(b.get(bs::OEM_ID..bs::OEM_ID + 8).unwrap_or_default());
    f.add(
        bs::OEM_ID,
        8,
        FieldName::OemId,
        FieldValue::Text { text: oem },
    );
    f.num(bs::BYTES_PER_SECTOR, 2, FieldName::BytesPerSector);
    let sector = le(b, bs::BYTES_PER_SECTOR, 2);
    let spc = b.get(bs::SECTORS_PER_CLUSTER).copied().unwrap_or(0);
    // 1..=128 sectors, or (from 0xF4) a negative power of two of bytes.
    let cluster = if spc <= 0x80 {
        u64::from(spc) * sector
    } else {
        1u64.checked_shl((-(spc as i8 as i64)) as u32).unwrap_or(0)
    };
    f.add(
        bs::SECTORS_PER_CLUSTER,
        1,
        FieldName::SectorsPerCluster,
        FieldValue::Size {
            encoded: i64::from(spc),
            bytes: cluster,
        },
    );
    f.num(bs::TOTAL_SECTORS, 8, FieldName::TotalSectors);
    f.num(bs::MFT_LCN, 8, FieldName::MftLcn);
    f.num(bs::MFTMIRR_LCN, 8, FieldName::MftMirrLcn);
    let rec = b.get(bs::FILE_RECORD_SIZE).copied().unwrap_or(0);
    f.add(
        bs::FILE_RECORD_SIZE,
        1,
        FieldName::ClustersPerFileRecord,
        encoded_size(rec, cluster),
    );
    let idx = b.get(bs::INDEX_RECORD_SIZE).copied().unwrap_or(0);
    f.add(
        bs::INDEX_RECORD_SIZE,
        1,
        FieldName::ClustersPerIndexBlock,
        encoded_size(idx, cluster),
    );
    f.hex(bs::SERIAL, 8, FieldName::VolumeSerial);
    f.hex(bs::END_SIGNATURE, 2, FieldName::BootSignature);
    f.finish()
}

/// The multi-sector header of a `FILE` or `INDX` structure as stored: signature, update
/// sequence, and the end of each sector that carries the update sequence number on disk.
fn multi_sector_fields(f: &mut Fields<'_>, b: &[u8], sector: usize) {
    let sig = ascii(b.get(0..4).unwrap_or_default());
    f.add(
        multi_sector::SIGNATURE,
        4,
        FieldName::Signature,
        FieldValue::Text { text: sig },
    );
    f.num(multi_sector::USA_OFFSET, 2, FieldName::UpdateSequenceOffset);
    f.num(multi_sector::USA_COUNT, 2, FieldName::UpdateSequenceCount);
    f.num(0x08, 8, FieldName::LogSequenceNumber);
    let usa = le(b, multi_sector::USA_OFFSET, 2) as usize;
    let count = le(b, multi_sector::USA_COUNT, 2) as usize;
    if usa >= multi_sector::HEADER_LENGTH && count > 1 {
        f.hex(usa, 2, FieldName::UpdateSequenceNumber);
        let len = 2 * (count - 1);
        let saved = b.get(usa + 2..usa + 2 + len).unwrap_or_default();
        f.add(
            usa + 2,
            len,
            FieldName::UpdateSequenceArray,
            FieldValue::Bytes { hex: hex(saved) },
        );
        for k in 1..count {
            f.hex(k * sector - 2, 2, FieldName::SectorEnd);
        }
    }
}

/// The fields of one index entry at `at` in `b` whose key is a `$FILE_NAME` (`$I30`).
fn index_entry_fields(f: &mut Fields<'_>, b: &[u8], at: usize) {
    use index_entry as ie;
    let length = le(b, at + ie::LENGTH, 2) as usize;
    let flags = le(b, at + ie::FLAGS, 2) as u16;
    if flags & ie::FLAG_END == 0 {
        f.add(
            at + ie::FILE_REF,
            8,
            FieldName::EntryFileReference,
            file_ref(le(b, at, 8)),
        );
    }
    f.num(at + ie::LENGTH, 2, FieldName::EntryLength);
    f.num(at + ie::KEY_LENGTH, 2, FieldName::EntryKeyLength);
    f.hex(at + ie::FLAGS, 2, FieldName::EntryFlags);
    if flags & ie::FLAG_END == 0 && le(b, at + ie::KEY_LENGTH, 2) as usize >= file_name::NAME {
        file_name_fields(f, b, at + ie::KEY);
    }
    if flags & ie::FLAG_NODE != 0 && length >= ie::HEADER_LENGTH + ie::CHILD_VCN_LENGTH {
        f.num(at + length - 8, 8, FieldName::EntrySubnode);
    }
}

/// The fields of a `$FILE_NAME` value at `at`.
fn file_name_fields(f: &mut Fields<'_>, b: &[u8], at: usize) {
    use file_name as fname;
    f.add(
        at + fname::PARENT,
        8,
        FieldName::FnParent,
        file_ref(le(b, at + fname::PARENT, 8)),
    );
    f.num(at + fname::ALLOCATED_SIZE, 8, FieldName::FnAllocatedSize);
    f.num(at + fname::DATA_SIZE, 8, FieldName::FnDataSize);
    f.hex(at + fname::FILE_ATTRIBUTES, 4, FieldName::FileAttributes);
    f.num(at + fname::NAME_LENGTH, 1, FieldName::FnNameLength);
    let ns = b.get(at + fname::NAMESPACE).copied().unwrap_or(0);
    f.add(
        at + fname::NAMESPACE,
        1,
        FieldName::FnNamespace,
        FieldValue::Namespace {
            namespace: Namespace::from_byte(ns),
        },
    );
    let chars = b.get(at + fname::NAME_LENGTH).copied().unwrap_or(0) as usize;
    let start = at + fname::NAME;
    let name = utf16(b.get(start..start + 2 * chars).unwrap_or_default());
    f.add(
        start,
        2 * chars,
        FieldName::FnName,
        FieldValue::Text { text: name },
    );
}

/// The fields of an index node header at `at` and of its entries.
fn index_node_fields(f: &mut Fields<'_>, b: &[u8], at: usize) {
    use index_header as ih;
    f.num(at + ih::ENTRIES_OFFSET, 4, FieldName::EntriesOffset);
    f.num(at + ih::INDEX_LENGTH, 4, FieldName::IndexLength);
    f.num(at + ih::ALLOCATED_SIZE, 4, FieldName::IndexAllocatedSize);
    f.hex(at + ih::FLAGS, 1, FieldName::IndexFlags);
    let mut pos = at + le(b, at + ih::ENTRIES_OFFSET, 4) as usize;
    let end = (at + le(b, at + ih::INDEX_LENGTH, 4) as usize).min(b.len());
    while pos + index_entry::HEADER_LENGTH <= end {
        let len = le(b, pos + index_entry::LENGTH, 2) as usize;
        let flags = le(b, pos + index_entry::FLAGS, 2) as u16;
        index_entry_fields(f, b, pos);
        if len < index_entry::HEADER_LENGTH || flags & index_entry::FLAG_END != 0 {
            break;
        }
        pos += len;
    }
}

/// The fields of a `$I30` index block as stored.
pub fn index_block_fields(b: &[u8], sector: usize) -> Vec<Field> {
    let mut f = Fields::new(b);
    multi_sector_fields(&mut f, b, sector);
    f.num(index_block::VCN, 8, FieldName::IndexBlockVcn);
    index_node_fields(&mut f, b, index_block::HEADER);
    f.finish()
}

/// The fields of a file record as stored (`raw`), its attributes read from the fixed-up copy.
pub fn record_fields(raw: &[u8], fixed: &FileRecord, sector: usize) -> Vec<Field> {
    use file_record as fr;
    let mut f = Fields::new(raw);
    multi_sector_fields(&mut f, raw, sector);
    f.num(fr::SEQUENCE, 2, FieldName::SequenceNumber);
    f.num(fr::LINK_COUNT, 2, FieldName::LinkCount);
    f.num(fr::FIRST_ATTRIBUTE, 2, FieldName::FirstAttributeOffset);
    f.add(
        fr::FLAGS,
        2,
        FieldName::RecordFlags,
        FieldValue::RecordFlags {
            in_use: fixed.in_use(),
            directory: fixed.is_directory(),
        },
    );
    f.num(fr::BYTES_IN_USE, 4, FieldName::BytesInUse);
    f.num(fr::BYTES_ALLOCATED, 4, FieldName::BytesAllocated);
    f.add(
        fr::BASE_RECORD,
        8,
        FieldName::BaseRecord,
        file_ref(le(raw, fr::BASE_RECORD, 8)),
    );
    f.num(fr::NEXT_INSTANCE, 2, FieldName::NextAttributeId);
    f.num(fr::RECORD_NUMBER, 4, FieldName::RecordNumber);
    let b = &fixed.bytes;
    let Ok(attributes) = fixed.attributes() else {
        return f.finish();
    };
    let mut end = None;
    for a in &attributes {
        let at = a.offset;
        f.add(
            at + attribute::TYPE,
            4,
            FieldName::AttributeTypeCode,
            FieldValue::Attribute {
                code: a.type_code,
                attribute: AttributeType::from_code(a.type_code),
            },
        );
        f.num(at + attribute::LENGTH, 4, FieldName::AttributeLength);
        end = Some(at + a.raw.len());
        if a.non_resident {
            use attribute::non_resident as nr;
            f.num(at + nr::ALLOCATED_SIZE, 8, FieldName::AllocatedSize);
            f.num(at + nr::DATA_SIZE, 8, FieldName::DataSize);
            let mp = le(b, at + nr::MAPPING_PAIRS_OFFSET, 2) as usize;
            let runs = a
                .runs()
                .unwrap_or_default()
                .into_iter()
                .map(|r| RunView {
                    vcn: r.vcn,
                    lcn: r.lcn,
                    length: r.length,
                })
                .collect();
            f.add(
                at + mp,
                a.raw.len().saturating_sub(mp),
                FieldName::DataRuns,
                FieldValue::Runs { runs },
            );
            continue;
        }
        let (Ok(vo), Ok(value)) = (a.resident_value_offset(), a.resident_value()) else {
            continue;
        };
        if a.is(AttributeType::StandardInformation) {
            use standard_information as si;
            let t = |o: usize| time(le(b, vo + o, 8));
            f.add(vo + si::CREATED, 8, FieldName::SiCreated, t(si::CREATED));
            f.add(vo + si::MODIFIED, 8, FieldName::SiModified, t(si::MODIFIED));
            f.add(
                vo + si::MFT_CHANGED,
                8,
                FieldName::SiMftChanged,
                t(si::MFT_CHANGED),
            );
            f.add(vo + si::ACCESSED, 8, FieldName::SiAccessed, t(si::ACCESSED));
            f.hex(vo + si::TIMES_LENGTH, 4, FieldName::FileAttributes);
        } else if a.is(AttributeType::FileName) {
            file_name_fields(&mut f, b, vo);
        } else if a.is(AttributeType::IndexRoot) {
            f.add(
                vo + index_root::INDEXED_TYPE,
                4,
                FieldName::IndexedAttributeType,
                FieldValue::Attribute {
                    code: le(b, vo, 4) as u32,
                    attribute: AttributeType::from_code(le(b, vo, 4) as u32),
                },
            );
            f.hex(vo + index_root::COLLATION, 4, FieldName::CollationRule);
            f.num(vo + index_root::BLOCK_SIZE, 4, FieldName::IndexBlockSize);
            index_node_fields(&mut f, b, vo + index_root::HEADER);
        } else {
            let shown = &value[..value.len().min(16)];
            f.add(
                vo,
                value.len(),
                FieldName::ResidentValue,
                FieldValue::Bytes { hex: hex(shown) },
            );
        }
    }
    if let Some(e) = end {
        f.hex(e, 4, FieldName::AttributesEnd);
    }
    f.finish()
}

/// The smallest field covering byte `at`.
fn field_at(fields: &[Field], at: usize) -> Option<FieldName> {
    fields
        .iter()
        .filter(|f| f.offset <= at && at < f.offset + f.len)
        .min_by_key(|f| f.len)
        .map(|f| f.name)
}

/// Explains `image`: inspects it with `rules` (one rule, or a [`RuleSet`]), plans the fix when
/// there is something to fix, and shows the structures both read and the plan's patches. Never
/// fails: what could not be read is listed in [`Explanation::gaps`].
pub fn explain<R: ReadAt>(
    image: R,
    rules: impl Into<RuleSet>,
    options: &FixOptions,
) -> Explanation {
    explain_session(&mut Session::open(image, rules), options)
}

/// [`explain`] for a session that may have inspected and planned already (the page's worker):
/// its report and plan are shown, not made again; a plan is made (with `options`) only when
/// there is none and inspection found matches.
pub fn explain_session<R: ReadAt>(session: &mut Session<R>, options: &FixOptions) -> Explanation {
    let outcome = session.inspect().outcome;
    let (plan, plan_problem) = match session.planned() {
        Some(fix) => (Some(fix.plan.clone()), None),
        None if outcome == Outcome::Matches => match session.plan(options) {
            Ok(fix) => (Some(fix.plan.clone()), None),
            Err(e) => (None, Some(e)),
        },
        None => (None, None),
    };
    let report = session.report().expect("inspected above").clone();
    let mut out = Explanation {
        outcome,
        container: report.container.clone(),
        scheme: report.partitions.as_ref().map(|t| t.scheme),
        partitions: Vec::new(),
        structures: Vec::new(),
        targets: Vec::new(),
        patches: Vec::new(),
        plan_problem,
        gaps: Vec::new(),
    };
    let Ok(disk) = session.container() else {
        return out;
    };
    explain_disk(disk, &report, plan.as_ref(), &mut out);
    out
}

/// The same views re-read from the fixed image: `fixed` is the image as the fix wrote it (the
/// output file, or the original with the planned writes laid over it); `original` the session
/// that planned that fix. The fixed image is opened and explained from scratch (partition table,
/// boot sectors, the walk to the rule's directory, which no longer leads to the deleted file);
/// then the records of the files that were matched before are read again, as stored (now not in
/// use), and every patched range is read again from the fixed image and compared with the
/// original, so the changed bits shown are the ones the fixed image really has. A plan that
/// replays a journal is shown in its two steps: the replay as planned (the replayed disk is on
/// no image), then the deletions against the replayed disk, read again from the fixed image.
/// `None` before a plan.
pub fn explain_fixed<R: ReadAt, F: ReadAt>(original: &Session<R>, fixed: F) -> Option<Explanation> {
    let planned = original.planned()?;
    let original_disk = original.container().ok()?;
    let mut after = Session::open(fixed, original.rules().clone());
    let mut out = explain_session(
        &mut after,
        &FixOptions {
            discard_journal: false,
        },
    );
    // Nothing is planned on the fixed image: the rule no longer matches there.
    out.patches.clear();
    let Ok(fixed_disk) = after.container() else {
        return Some(out);
    };
    for v in &planned.report.volumes {
        for m in v.results().flat_map(|r| &r.matches) {
            let opened = Slice::new(fixed_disk, v.offset, v.size)
                .map_err(io_err("cutting out the volume"))
                .and_then(Volume::open);
            let shown =
                opened.and_then(|vol| target(&vol, v.offset, m.file.mft_record, &m.path, &mut out));
            if let Err(e) = shown {
                gap(
                    &mut out,
                    GapKind::Target {
                        path: m.path.clone(),
                    },
                    e,
                );
            }
        }
    }
    match &planned.plan.steps {
        None => patch_views(
            original_disk,
            &planned.report,
            &planned.plan.patches,
            Some(fixed_disk),
            &mut out,
        ),
        // The replay's step as planned (the replayed disk is on no image: the deletions changed
        // it further), then the deletions' step against the replayed disk, read again from the
        // fixed image.
        Some(steps) => {
            patch_views::<_, &R>(
                original_disk,
                &planned.report,
                &steps.replay,
                None,
                &mut out,
            );
            match replayed_disk(original_disk, &steps.replay) {
                Ok(replayed) => patch_views(
                    &replayed,
                    &planned.report,
                    &steps.fix,
                    Some(fixed_disk),
                    &mut out,
                ),
                Err(e) => gap(
                    &mut out,
                    GapKind::Patch {
                        disk_offset: steps.fix.first().map_or(0, |p| p.offset),
                    },
                    e,
                ),
            }
        }
    }
    Some(out)
}

fn gap(out: &mut Explanation, reading: GapKind, e: impl std::fmt::Display) {
    out.gaps.push(ExplainGap {
        reading,
        detail: e.to_string(),
    });
}

fn read<R: ReadAt>(disk: &R, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut b = vec![0u8; len];
    disk.read_at(offset, &mut b)?;
    Ok(b)
}

fn explain_disk<R: ReadAt>(
    disk: &R,
    report: &InspectReport,
    plan: Option<&Plan>,
    out: &mut Explanation,
) {
    if let Some(table) = &report.partitions {
        for p in &table.partitions {
            let volume = report
                .volumes
                .iter()
                .position(|v| v.partition == Some(p.number));
            out.partitions.push(PartitionView {
                number: p.number,
                start: p.start,
                size: p.size,
                first_lba: p.first_lba,
                last_lba: p.last_lba,
                type_name: p.type_name,
                filesystem: volume
                    .map(|i| report.volumes[i].filesystem)
                    .unwrap_or(FileSystem::Unknown),
                windows: volume.is_some_and(|i| report.windows_volumes.contains(&i)),
            });
        }
        if let Err(e) = partition_structures(disk, table, out) {
            gap(out, GapKind::PartitionTable, e);
        }
    }
    // A volume whose journal the plan replays is shown as the replay leaves it, where inspect
    // found the rule's matches (on the image a file the journal creates is not there yet).
    let replayed = match plan.and_then(|p| p.steps.as_ref()) {
        Some(steps) => match replayed_disk(disk, &steps.replay) {
            Ok(replayed) => Some(replayed),
            Err(e) => {
                gap(
                    out,
                    GapKind::Patch {
                        disk_offset: steps.replay.first().map_or(0, |p| p.offset),
                    },
                    e,
                );
                return;
            }
        },
        None => None,
    };
    let volumes = replayed.unwrap_or_else(|| kaifuku_io::Overlay::new(disk));
    for (i, v) in report.volumes.iter().enumerate() {
        if v.filesystem != FileSystem::Ntfs {
            continue;
        }
        let reading = GapKind::Volume {
            partition: v.partition,
        };
        let sector = match read(&volumes, v.offset, 512) {
            Ok(s) => s,
            Err(e) => {
                gap(out, reading, e);
                continue;
            }
        };
        out.structures.push(StructureView {
            what: StructureKind::NtfsBootSector {
                partition: v.partition,
            },
            disk_offset: v.offset,
            fields: ntfs_boot_fields(&sector),
            bytes: sector,
        });
        // The walk is shown once per directory a rule found here.
        let mut walked: Vec<&str> = Vec::new();
        let results: Vec<_> = v
            .results()
            .filter(|r| r.directory_exists)
            .filter(|r| {
                let first = !walked.contains(&r.directory.as_str());
                walked.push(&r.directory);
                first
            })
            .collect();
        if !report.windows_volumes.contains(&i) || results.is_empty() {
            continue;
        }
        let vol = match Slice::new(&volumes, v.offset, v.size)
            .map_err(io_err("cutting out the volume"))
            .and_then(Volume::open)
        {
            Ok(vol) => vol,
            Err(e) => {
                gap(out, reading, e);
                continue;
            }
        };
        for rule in &results {
            let names: Vec<String> = v
                .results()
                .filter(|r| r.directory == rule.directory)
                .flat_map(|r| &r.matches)
                .map(|m| m.file.name.clone())
                .collect();
            if let Err(e) = walk(&vol, v.offset, &rule.directory, &names, out) {
                gap(
                    out,
                    GapKind::PathWalk {
                        directory: rule.directory.clone(),
                    },
                    e,
                );
            }
        }
        for m in v.results().flat_map(|r| &r.matches) {
            out.targets.push(TargetView {
                path: m.path.clone(),
                record: m.file.mft_record,
                sequence: m.file.sequence,
                link_count: m.file.link_count,
                dos_name: m.file.dos_name.clone(),
                modified: m.file.modified.clone(),
                verdict: m.verdict,
                header_matches: m.header_matches,
                all_zero: m.file.all_zero,
            });
            if let Err(e) = target(&vol, v.offset, m.file.mft_record, &m.path, out) {
                gap(
                    out,
                    GapKind::Target {
                        path: m.path.clone(),
                    },
                    e,
                );
            }
        }
    }
    let Some(plan) = plan else { return };
    match &plan.steps {
        None => patch_views::<_, &R>(disk, report, &plan.patches, None, out),
        // A replaying plan in its two steps, each shown against the disk before it: the replay
        // against the image, the deletions against the replayed disk.
        Some(steps) => {
            patch_views::<_, &R>(disk, report, &steps.replay, None, out);
            patch_views::<_, &R>(&volumes, report, &steps.fix, None, out);
        }
    }
}

/// Adds the views of `patches` against `before` to `out`; with `reread`, the bytes after are
/// read again from that disk (the fixed image) instead of taken from the patches.
fn patch_views<B: ReadAt, F: ReadAt>(
    before: &B,
    report: &InspectReport,
    patches: &[kaifuku_io::Patch<ChangedStructure>],
    reread: Option<&F>,
    out: &mut Explanation,
) {
    for p in patches {
        let view = match reread {
            None => patch_view(before, report, p),
            Some(fixed) => {
                let data = match &p.data {
                    PatchData::Bytes(b) => read(fixed, p.offset, b.len()).map(PatchData::Bytes),
                    PatchData::Fill { byte, len } => Ok(PatchData::Fill {
                        byte: *byte,
                        len: *len,
                    }),
                };
                data.map_err(io_err("re-reading a patch")).and_then(|data| {
                    patch_view(
                        before,
                        report,
                        &kaifuku_io::Patch {
                            offset: p.offset,
                            data,
                            label: p.label.clone(),
                        },
                    )
                })
            }
        };
        match view {
            Ok(v) => out.patches.push(v),
            Err(e) => gap(
                out,
                GapKind::Patch {
                    disk_offset: p.offset,
                },
                e,
            ),
        }
    }
}

/// `disk` with a journal replay's patches laid over it (in memory, as the plan made them).
fn replayed_disk<'a, R: ReadAt>(
    disk: &'a R,
    replay: &[kaifuku_io::Patch<ChangedStructure>],
) -> Result<kaifuku_io::Overlay<&'a R>, NtfsError> {
    let mut replayed = kaifuku_io::Overlay::new(disk);
    for p in replay {
        match &p.data {
            PatchData::Bytes(b) => replayed.write(p.offset, b),
            PatchData::Fill { byte, len } => replayed.fill(p.offset, *len, *byte),
        }
        .map_err(io_err("laying the journal replay over the image"))?;
    }
    Ok(replayed)
}

fn partition_structures<R: ReadAt>(
    disk: &R,
    table: &kaifuku_partition::PartitionTable,
    out: &mut Explanation,
) -> std::io::Result<()> {
    if table.scheme == Scheme::None {
        return Ok(());
    }
    let mbr = read(disk, 0, 512)?;
    out.structures.push(StructureView {
        what: StructureKind::Mbr {
            protective: table.scheme == Scheme::Gpt,
        },
        disk_offset: 0,
        fields: mbr_fields(&mbr),
        bytes: mbr,
    });
    if table.scheme != Scheme::Gpt {
        return Ok(());
    }
    let ss = u64::from(table.sector_size);
    let header = read(disk, ss, 92)?;
    let entries_lba = le(&header, 72, 8);
    let entry_size = le(&header, 84, 4);
    out.structures.push(StructureView {
        what: StructureKind::GptHeader,
        disk_offset: ss,
        fields: gpt_header_fields(&header),
        bytes: header,
    });
    for p in &table.partitions {
        let at = entries_lba * ss + u64::from(p.number - 1) * entry_size;
        let entry = read(disk, at, entry_size as usize)?;
        out.structures.push(StructureView {
            what: StructureKind::GptEntry {
                partition: p.number,
            },
            disk_offset: at,
            fields: gpt_entry_fields(&entry),
            bytes: entry,
        });
    }
    Ok(())
}

/// Where byte `at` of a structure lying in `pieces` (volume offset, length) is on the volume.
fn volume_offset(pieces: &[(u64, u64)], mut at: u64) -> Option<u64> {
    for &(off, len) in pieces {
        if at < len {
            return Some(off + at);
        }
        at -= len;
    }
    None
}

fn misplaced(what: &'static str) -> NtfsError {
    io_err(what)(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "the structure lies outside its recorded location",
    ))
}

/// The walk from the root to `directory`, then the entries of `names` in it.
fn walk<R: ReadAt>(
    vol: &Volume<R>,
    volume_at: u64,
    directory: &str,
    names: &[String],
    out: &mut Explanation,
) -> Result<(), NtfsError> {
    let mut dir = vol.read_record(kaifuku_ntfs::volume::RECORD_ROOT)?;
    let mut path = String::new();
    let components: Vec<&str> = directory.split('\\').filter(|c| !c.is_empty()).collect();
    let steps = components
        .iter()
        .map(|c| (c.to_string(), true))
        .chain(names.iter().map(|n| (n.clone(), false)));
    for (name, descend) in steps {
        let index = vol.directory(&dir)?;
        let units: Vec<u16> = name.encode_utf16().collect();
        let Some(entry) = index.lookup(vol, &units)? else {
            return Ok(());
        };
        let node = index.node(vol, entry.node)?;
        let bytes = node
            .bytes
            .get(entry.offset..entry.offset + entry.length)
            .ok_or_else(|| misplaced("an index entry"))?
            .to_vec();
        let at = match entry.node {
            NodeId::Root => {
                let attrs = dir.attributes()?;
                let root = attrs
                    .iter()
                    .find(|a| {
                        a.is(AttributeType::IndexRoot)
                            && a.name == "$I30".encode_utf16().collect::<Vec<_>>()
                    })
                    .ok_or_else(|| misplaced("an index root"))?;
                let in_record = root.resident_value_offset()? + entry.offset;
                volume_offset(&vol.record_location(dir.number)?, in_record as u64)
            }
            NodeId::Block(vcn) => volume_offset(&index.block_location(vcn)?, entry.offset as u64),
        }
        .ok_or_else(|| misplaced("an index entry"))?;
        let mut f = Fields::new(&bytes);
        index_entry_fields(&mut f, &bytes, 0);
        let fields = f.finish();
        let shown = if path.is_empty() {
            "\\".to_string()
        } else {
            path.clone()
        };
        out.structures.push(StructureView {
            what: StructureKind::IndexEntry {
                directory: shown,
                directory_record: dir.number,
                node: entry.node,
                name: entry.name(),
                record: entry.file_ref.record,
            },
            disk_offset: volume_at + at,
            bytes,
            fields,
        });
        if descend {
            path = format!("{path}\\{}", entry.name());
            dir = vol.read_live(entry.file_ref)?;
        }
    }
    Ok(())
}

/// A matched file's record as stored, and its first bytes.
fn target<R: ReadAt>(
    vol: &Volume<R>,
    volume_at: u64,
    record: u64,
    path: &str,
    out: &mut Explanation,
) -> Result<(), NtfsError> {
    let pieces = vol.record_location(record)?;
    let raw = vol.read_record_raw(record)?;
    let fixed = vol.read_record(record)?;
    let sector = vol.boot().bytes_per_sector as usize;
    out.structures.push(StructureView {
        what: StructureKind::MftRecord {
            record,
            path: path.to_string(),
        },
        disk_offset: volume_at + pieces.first().map_or(0, |p| p.0),
        fields: record_fields(&raw, &fixed, sector),
        bytes: raw,
    });
    // The first cluster of the unnamed $DATA, when it is non-resident.
    let first = fixed
        .attributes()?
        .iter()
        .find(|a| a.is(AttributeType::Data) && a.name.is_empty() && a.non_resident)
        .map(|a| Ok::<_, NtfsError>((a.runs()?, a.data_size()?)))
        .transpose()?;
    if let Some((runs, size)) = first {
        if let Some(lcn) = runs.first().and_then(|r| r.lcn) {
            let len = size.min(16) as usize;
            let at = lcn * vol.cluster_size();
            let mut bytes = vec![0u8; len];
            vol.reader()
                .read_at(at, &mut bytes)
                .map_err(io_err("reading a file's first bytes"))?;
            out.structures.push(StructureView {
                what: StructureKind::FileStart {
                    record,
                    path: path.to_string(),
                },
                disk_offset: volume_at + at,
                fields: vec![Field {
                    offset: 0,
                    len,
                    name: FieldName::FirstBytes,
                    value: FieldValue::Bytes { hex: hex(&bytes) },
                }],
                bytes,
            });
        }
    }
    Ok(())
}

/// The patch's bytes before and after, with each changed run named by the field it falls in.
fn patch_view<R: ReadAt>(
    disk: &R,
    report: &InspectReport,
    p: &kaifuku_io::Patch<ChangedStructure>,
) -> Result<PatchView, NtfsError> {
    let (after, fill) = match &p.data {
        PatchData::Bytes(b) => (b.clone(), None),
        PatchData::Fill { byte, len } => {
            return Ok(PatchView {
                disk_offset: p.offset,
                label: p.label.clone(),
                before: Vec::new(),
                after: Vec::new(),
                fill: Some((*byte, *len)),
                changed: vec![ChangedRun {
                    offset: 0,
                    len: *len as usize,
                    field: Some(FieldName::JournalBytes),
                    bits: Vec::new(),
                }],
            })
        }
    };
    let before = read(disk, p.offset, after.len()).map_err(io_err("reading a patch"))?;
    let volume = report
        .volumes
        .iter()
        .find(|v| v.offset <= p.offset && p.offset < v.offset + v.size)
        .ok_or_else(|| misplaced("a patch"))?;
    let vol =
        Volume::open(Slice::new(disk, volume.offset, volume.size).map_err(io_err("a volume"))?)?;
    let in_volume = p.offset - volume.offset;
    // The structure under the patch: its fields and where it starts on the volume.
    let sector = vol.boot().bytes_per_sector as usize;
    let record_size = u64::from(vol.boot().file_record_size);
    let structure: Option<(u64, Vec<Field>)> = match &p.label {
        ChangedStructure::MftRecord { record, .. } => {
            let start = vol.record_location(*record)?.first().map_or(0, |x| x.0);
            let raw = vol.read_record_raw(*record)?;
            let fixed = vol.read_record(*record)?;
            Some((start, record_fields(&raw, &fixed, sector)))
        }
        // The record before the replay may not be one yet (a creation the replay finishes):
        // its bytes are then shown without field names.
        ChangedStructure::JournalReplay {
            page: ReplayedPage::Record { record },
            ..
        } => (|| -> Result<_, NtfsError> {
            let start = vol.record_location(*record)?.first().map_or(0, |x| x.0);
            let raw = vol.read_record_raw(*record)?;
            let fixed = vol.read_record(*record)?;
            Ok((start, record_fields(&raw, &fixed, sector)))
        })()
        .ok(),
        ChangedStructure::MftMirrCopy { record } => {
            let start = vol.boot().mftmirr_lcn * vol.cluster_size() + record * record_size;
            let raw = read(vol.reader(), start, record_size as usize)
                .map_err(io_err("reading $MFTMirr"))?;
            let fixed = vol.read_record(*record)?;
            Some((start, record_fields(&raw, &fixed, sector)))
        }
        ChangedStructure::IndexBlock {
            vcn,
            of: IndexOwner::Directory { record, .. },
            ..
        } => {
            let dir = vol.read_record(*record)?;
            let index = vol.directory(&dir)?;
            let pieces = index.block_location(*vcn)?;
            let start = pieces.first().map_or(0, |x| x.0);
            let mut raw = Vec::new();
            for (off, len) in pieces {
                raw.extend(
                    read(vol.reader(), off, len as usize)
                        .map_err(io_err("reading an index block"))?,
                );
            }
            Some((start, index_block_fields(&raw, sector)))
        }
        _ => None,
    };
    let bitmap_field = match &p.label {
        ChangedStructure::BitmapBytes { bitmap, .. }
        | ChangedStructure::MftRecord {
            part: Some(RecordPart::Bitmap { bitmap }),
            ..
        } => Some(match bitmap {
            BitmapOwner::MftBitmap => FieldName::MftBitmapBits,
            BitmapOwner::ClusterBitmap => FieldName::ClusterBitmapBits,
            BitmapOwner::IndexBitmap { .. } => FieldName::IndexBitmapBits,
        }),
        ChangedStructure::JournalReplay {
            page: ReplayedPage::StreamPage { .. },
            ..
        } => replayed_bitmap(&p.label).map(|(_, field)| field),
        // Replayed records and index blocks are named by their own structure, or not at all.
        ChangedStructure::JournalReplay { .. } => None,
        ChangedStructure::JournalReset
        | ChangedStructure::JournalMarkedClean { .. }
        | ChangedStructure::JournalLogPage { .. } => Some(FieldName::JournalBytes),
        _ => None,
    };
    // Bit numbers of the two volume bitmaps come from where the byte is in the bitmap's own
    // stream, found through its runs.
    let bitmap_stream = match &p.label {
        ChangedStructure::BitmapBytes {
            bitmap: BitmapOwner::MftBitmap,
            ..
        } => Some(stream_runs(
            &vol,
            kaifuku_ntfs::volume::RECORD_MFT,
            AttributeType::Bitmap,
        )?),
        ChangedStructure::BitmapBytes {
            bitmap: BitmapOwner::ClusterBitmap,
            ..
        } => Some(stream_runs(
            &vol,
            kaifuku_ntfs::volume::RECORD_BITMAP,
            AttributeType::Data,
        )?),
        label => match replayed_bitmap(label) {
            Some((record, _)) => Some(stream_runs(
                &vol,
                record,
                if record == kaifuku_ntfs::volume::RECORD_MFT {
                    AttributeType::Bitmap
                } else {
                    AttributeType::Data
                },
            )?),
            None => None,
        },
    };
    let mut changed = Vec::new();
    let mut i = 0;
    while i < after.len() {
        if before[i] == after[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i < after.len() && before[i] != after[i] {
            i += 1;
        }
        // A run is split where the field changes, so each run names one field.
        let name_of = |k: usize| -> Option<FieldName> {
            if let Some((s, fields)) = &structure {
                let at = (in_volume + k as u64).checked_sub(*s)? as usize;
                return field_at(fields, at);
            }
            bitmap_field
        };
        let mut run_start = start;
        for k in start + 1..=i {
            if k == i || name_of(k) != name_of(run_start) {
                let mut bits = Vec::new();
                if let Some(runs) = &bitmap_stream {
                    for j in run_start..k {
                        let Some(byte) =
                            stream_position(runs, vol.cluster_size(), in_volume + j as u64)
                        else {
                            continue;
                        };
                        let flipped = before[j] ^ after[j];
                        for b in 0..8 {
                            if flipped & (1 << b) != 0 {
                                bits.push(ChangedBit {
                                    bit: byte * 8 + b,
                                    set_after: after[j] & (1 << b) != 0,
                                });
                            }
                        }
                    }
                }
                changed.push(ChangedRun {
                    offset: run_start,
                    len: k - run_start,
                    field: name_of(run_start),
                    bits,
                });
                run_start = k;
            }
        }
    }
    Ok(PatchView {
        disk_offset: p.offset,
        label: p.label.clone(),
        before,
        after,
        fill,
        changed,
    })
}

/// The volume bitmap a journal replay's stream page lies in (`$MFT:$BITMAP` or `$Bitmap`): its
/// record and the field its bytes are.
fn replayed_bitmap(label: &ChangedStructure) -> Option<(u64, FieldName)> {
    let ChangedStructure::JournalReplay {
        page:
            ReplayedPage::StreamPage {
                record,
                attribute_type,
                name,
                ..
            },
        ..
    } = label
    else {
        return None;
    };
    if !name.is_empty() {
        return None;
    }
    match (*record, *attribute_type) {
        (kaifuku_ntfs::volume::RECORD_MFT, t) if t == AttributeType::Bitmap.code() => {
            Some((*record, FieldName::MftBitmapBits))
        }
        (kaifuku_ntfs::volume::RECORD_BITMAP, t) if t == AttributeType::Data.code() => {
            Some((*record, FieldName::ClusterBitmapBits))
        }
        _ => None,
    }
}

fn io_err(what: &'static str) -> impl FnOnce(std::io::Error) -> NtfsError {
    move |source| NtfsError::Io { what, source }
}

/// The runs of a system file's non-resident attribute.
fn stream_runs<R: ReadAt>(
    vol: &Volume<R>,
    record: u64,
    kind: AttributeType,
) -> Result<Vec<kaifuku_ntfs::runlist::Run>, NtfsError> {
    let mut runs = Vec::new();
    for r in vol.records_of(&vol.read_record(record)?)? {
        for a in r.attributes()? {
            if a.is(kind) && a.name.is_empty() && a.non_resident {
                runs.extend(a.runs()?);
            }
        }
    }
    Ok(runs)
}

/// Where volume byte `at` is in the stream mapped by `runs`.
fn stream_position(runs: &[kaifuku_ntfs::runlist::Run], cluster: u64, at: u64) -> Option<u64> {
    runs.iter().find_map(|r| {
        let lcn = r.lcn?;
        let start = lcn * cluster;
        (start <= at && at < start + r.length * cluster).then(|| r.vcn * cluster + (at - start))
    })
}

// ---------------------------------------------------------------------------------------------
// English wording (the command line's); the page words the same values in Japanese and English.

impl std::fmt::Display for FieldName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use FieldName as N;
        match self {
            N::BootCode => f.write_str("boot code"),
            N::DiskSignature => f.write_str("disk signature"),
            N::MbrStatus { slot } => write!(f, "entry {slot}: status (0x80 = active)"),
            N::MbrType { slot } => write!(f, "entry {slot}: partition type"),
            N::MbrFirstLba { slot } => write!(f, "entry {slot}: first sector"),
            N::MbrSectors { slot } => write!(f, "entry {slot}: sectors"),
            N::BootSignature => f.write_str("boot signature 55 AA"),
            N::GptSignature => f.write_str("GPT signature"),
            N::GptRevision => f.write_str("revision"),
            N::GptHeaderSize => f.write_str("header size"),
            N::GptHeaderCrc => f.write_str("header CRC-32"),
            N::GptCurrentLba => f.write_str("this header's LBA"),
            N::GptBackupLba => f.write_str("backup header's LBA"),
            N::GptFirstUsableLba => f.write_str("first usable LBA"),
            N::GptLastUsableLba => f.write_str("last usable LBA"),
            N::GptDiskGuid => f.write_str("disk GUID"),
            N::GptEntriesLba => f.write_str("partition entries LBA"),
            N::GptEntryCount => f.write_str("number of entries"),
            N::GptEntrySize => f.write_str("entry size"),
            N::GptEntriesCrc => f.write_str("entries CRC-32"),
            N::GptTypeGuid => f.write_str("partition type GUID"),
            N::GptPartitionGuid => f.write_str("partition GUID"),
            N::GptFirstLba => f.write_str("first LBA"),
            N::GptLastLba => f.write_str("last LBA"),
            N::GptAttributes => f.write_str("attributes"),
            N::GptName => f.write_str("name"),
            N::OemId => f.write_str("OEM id"),
            N::BytesPerSector => f.write_str("bytes per sector"),
            N::SectorsPerCluster => f.write_str("sectors per cluster → cluster size"),
            N::TotalSectors => f.write_str("total sectors"),
            N::MftLcn => f.write_str("$MFT first cluster (LCN)"),
            N::MftMirrLcn => f.write_str("$MFTMirr first cluster (LCN)"),
            N::ClustersPerFileRecord => f.write_str("file record size"),
            N::ClustersPerIndexBlock => f.write_str("index block size"),
            N::VolumeSerial => f.write_str("volume serial number"),
            N::Signature => f.write_str("signature"),
            N::UpdateSequenceOffset => f.write_str("update sequence offset"),
            N::UpdateSequenceCount => f.write_str("update sequence count"),
            N::LogSequenceNumber => f.write_str("$LogFile sequence number (LSN)"),
            N::UpdateSequenceNumber => f.write_str("update sequence number"),
            N::UpdateSequenceArray => f.write_str("update sequence array (saved sector ends)"),
            N::SectorEnd => f.write_str("sector end (holds the update sequence number)"),
            N::SequenceNumber => f.write_str("sequence number"),
            N::LinkCount => f.write_str("link count"),
            N::FirstAttributeOffset => f.write_str("first attribute offset"),
            N::RecordFlags => f.write_str("flags"),
            N::BytesInUse => f.write_str("bytes in use"),
            N::BytesAllocated => f.write_str("bytes allocated"),
            N::BaseRecord => f.write_str("base record"),
            N::NextAttributeId => f.write_str("next attribute id"),
            N::RecordNumber => f.write_str("record number"),
            N::AttributeTypeCode => f.write_str("attribute type"),
            N::AttributeLength => f.write_str("attribute length"),
            N::AttributesEnd => f.write_str("end of attributes"),
            N::SiCreated => f.write_str("$STANDARD_INFORMATION created"),
            N::SiModified => f.write_str("$STANDARD_INFORMATION modified"),
            N::SiMftChanged => f.write_str("$STANDARD_INFORMATION record changed"),
            N::SiAccessed => f.write_str("$STANDARD_INFORMATION accessed"),
            N::FileAttributes => f.write_str("file attributes"),
            N::FnParent => f.write_str("$FILE_NAME parent directory"),
            N::FnAllocatedSize => f.write_str("$FILE_NAME allocated size"),
            N::FnDataSize => f.write_str("$FILE_NAME data size"),
            N::FnNameLength => f.write_str("$FILE_NAME name length"),
            N::FnNamespace => f.write_str("$FILE_NAME namespace"),
            N::FnName => f.write_str("$FILE_NAME name"),
            N::AllocatedSize => f.write_str("allocated size"),
            N::DataSize => f.write_str("data size"),
            N::DataRuns => f.write_str("data runs"),
            N::ResidentValue => f.write_str("resident value"),
            N::IndexedAttributeType => f.write_str("indexed attribute"),
            N::CollationRule => f.write_str("collation rule"),
            N::IndexBlockSize => f.write_str("index block size"),
            N::IndexBlockVcn => f.write_str("index block VCN"),
            N::EntriesOffset => f.write_str("entries offset"),
            N::IndexLength => f.write_str("index length"),
            N::IndexAllocatedSize => f.write_str("index allocated size"),
            N::IndexFlags => f.write_str("index flags (1 = has children)"),
            N::EntryFileReference => f.write_str("entry: file reference"),
            N::EntryLength => f.write_str("entry: length"),
            N::EntryKeyLength => f.write_str("entry: key length"),
            N::EntryFlags => f.write_str("entry: flags (1 = child node, 2 = last)"),
            N::EntrySubnode => f.write_str("entry: child node VCN"),
            N::FirstBytes => f.write_str("first bytes"),
            N::MftBitmapBits => f.write_str("$MFT:$BITMAP bits (one per file record)"),
            N::ClusterBitmapBits => f.write_str("$Bitmap bits (one per cluster)"),
            N::IndexBitmapBits => f.write_str("index $BITMAP bits (one per index block)"),
            N::JournalBytes => f.write_str("$LogFile bytes"),
        }
    }
}

impl std::fmt::Display for FieldValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldValue::Number { value } => write!(f, "{value}"),
            FieldValue::Hex { value } => write!(f, "{value:#x}"),
            FieldValue::Size { encoded, bytes } => write!(f, "{bytes} bytes (stored as {encoded})"),
            FieldValue::Text { text } => write!(f, "{text:?}"),
            FieldValue::Guid { guid } => f.write_str(guid),
            FieldValue::Time { utc, .. } => f.write_str(utc),
            FieldValue::FileReference { record, sequence } => {
                write!(f, "record {record}, sequence {sequence}")
            }
            FieldValue::RecordFlags { in_use, directory } => {
                let kind = if *directory { "directory" } else { "file" };
                let state = if *in_use { "in use" } else { "not in use" };
                write!(f, "{state}, {kind}")
            }
            FieldValue::Namespace { namespace } => f.write_str(match namespace {
                Namespace::Posix => "POSIX",
                Namespace::Win32 => "Win32 (long name)",
                Namespace::Dos => "DOS (8.3 name)",
                Namespace::Win32AndDos => "Win32 and DOS",
                Namespace::Unknown(_) => "unknown",
            }),
            FieldValue::Attribute { code, attribute } => match attribute {
                Some(a) => write!(f, "{} ({code:#x})", a.name()),
                None => write!(f, "{code:#x}"),
            },
            FieldValue::Runs { runs } => {
                for (i, r) in runs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    match r.lcn {
                        Some(lcn) => {
                            write!(f, "VCN {}: {} cluster(s) at LCN {lcn}", r.vcn, r.length)?
                        }
                        None => write!(f, "VCN {}: {} sparse cluster(s)", r.vcn, r.length)?,
                    }
                }
                Ok(())
            }
            FieldValue::Bytes { hex } => f.write_str(hex),
            FieldValue::Opaque => Ok(()),
        }
    }
}

impl std::fmt::Display for StructureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StructureKind::Mbr { protective: true } => f.write_str("Protective MBR (sector 0)"),
            StructureKind::Mbr { protective: false } => f.write_str("MBR (sector 0)"),
            StructureKind::GptHeader => f.write_str("GPT header (LBA 1)"),
            StructureKind::GptEntry { partition } => {
                write!(f, "GPT partition entry of partition {partition}")
            }
            StructureKind::NtfsBootSector { partition: Some(p) } => {
                write!(f, "NTFS boot sector of partition {p}")
            }
            StructureKind::NtfsBootSector { partition: None } => f.write_str("NTFS boot sector"),
            StructureKind::IndexEntry {
                directory,
                directory_record,
                node,
                name,
                record,
            } => {
                let node = match node {
                    NodeId::Root => "$INDEX_ROOT".to_string(),
                    NodeId::Block(vcn) => format!("index block VCN {vcn}"),
                };
                write!(
                    f,
                    "Index entry in {directory} (MFT record {directory_record}, {node}): {name} → MFT record {record}"
                )
            }
            StructureKind::MftRecord { record, path } => {
                write!(f, "MFT record {record}: {path}")
            }
            StructureKind::FileStart { record, path } => {
                write!(f, "First bytes of {path} (MFT record {record})")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbr_entries_are_named_by_slot_and_empty_slots_left_out() {
        let mut sector = vec![0u8; 512];
        sector[446 + 4] = 0xEE;
        sector[446 + 8..446 + 12].copy_from_slice(&1u32.to_le_bytes());
        sector[446 + 12..446 + 16].copy_from_slice(&131_071u32.to_le_bytes());
        sector[510] = 0x55;
        sector[511] = 0xAA;
        let fields = mbr_fields(&sector);
        let value = |name: FieldName| fields.iter().find(|f| f.name == name).map(|f| &f.value);
        assert_eq!(
            value(FieldName::MbrType { slot: 0 }),
            Some(&FieldValue::Hex { value: 0xEE })
        );
        assert_eq!(
            value(FieldName::MbrSectors { slot: 0 }),
            Some(&FieldValue::Number { value: 131_071 })
        );
        assert_eq!(value(FieldName::MbrType { slot: 1 }), None);
        assert_eq!(
            value(FieldName::BootSignature),
            Some(&FieldValue::Hex { value: 0xAA55 })
        );
    }

    #[test]
    fn the_smallest_field_names_a_byte() {
        let fields = vec![
            Field {
                offset: 0,
                len: 16,
                name: FieldName::ResidentValue,
                value: FieldValue::Opaque,
            },
            Field {
                offset: 4,
                len: 2,
                name: FieldName::SequenceNumber,
                value: FieldValue::Number { value: 1 },
            },
        ];
        assert_eq!(field_at(&fields, 5), Some(FieldName::SequenceNumber));
        assert_eq!(field_at(&fields, 6), Some(FieldName::ResidentValue));
        assert_eq!(field_at(&fields, 16), None);
    }

    #[test]
    fn views_read_back_what_they_serialise() {
        let view = StructureView {
            what: StructureKind::IndexEntry {
                directory: "\\Windows".into(),
                directory_record: 64,
                node: NodeId::Block(3),
                name: "System32".into(),
                record: 65,
            },
            disk_offset: 4096,
            bytes: vec![0x41, 0x00, 0xff],
            fields: vec![Field {
                offset: 0,
                len: 3,
                name: FieldName::MbrStatus { slot: 2 },
                value: FieldValue::Runs {
                    runs: vec![RunView {
                        vcn: 0,
                        lcn: Some(7),
                        length: 2,
                    }],
                },
            }],
        };
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["bytes"], "4100ff");
        assert_eq!(json["fields"][0]["name"]["field"], "mbr_status");
        assert_eq!(serde_json::from_value::<StructureView>(json).unwrap(), view);
        let patch = PatchView {
            disk_offset: 10,
            label: ChangedStructure::MftRecord {
                record: 126,
                part: None,
            },
            before: vec![1],
            after: vec![0],
            fill: None,
            changed: vec![ChangedRun {
                offset: 0,
                len: 1,
                field: Some(FieldName::RecordFlags),
                bits: vec![ChangedBit {
                    bit: 126,
                    set_after: false,
                }],
            }],
        };
        let json = serde_json::to_value(&patch).unwrap();
        assert_eq!(serde_json::from_value::<PatchView>(json).unwrap(), patch);
    }
}
