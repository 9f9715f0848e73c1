//! Named on-disk layouts: where each field of the NTFS structures kaifuku reads and writes lies,
//! and the enums for the values that have names (attribute types, file-name namespaces).
//!
//! The reader (`record`, `index`, `volume`), the edit layer and the checker all address fields
//! through these names, so a field has one offset in the whole crate. Offsets are in bytes from
//! the start of the structure named by the module; values are little-endian on disk.

use serde::{Deserialize, Serialize};

use crate::bytes::{u16_at, u32_at, u64_at, u8_at};
use crate::NtfsError;

/// The header every multi-sector structure (`FILE`, `INDX`, `RSTR`, `RCRD`) starts with.
pub mod multi_sector {
    /// The four-byte signature (`FILE`, `INDX`, ...).
    pub const SIGNATURE: usize = 0x00;
    /// u16: offset of the update sequence array.
    pub const USA_OFFSET: usize = 0x04;
    /// u16: entries in the update sequence array (the number itself plus one per 512 bytes).
    pub const USA_COUNT: usize = 0x06;
    /// Length of this header; the update sequence array lies after it.
    pub const HEADER_LENGTH: usize = 0x08;
}

/// The NTFS boot sector (BIOS parameter block and NTFS extension).
pub mod boot_sector {
    /// Eight bytes: `NTFS    `, or `-FVE-FS-` on a BitLocker volume.
    pub const OEM_ID: usize = 0x03;
    /// u16: bytes per sector.
    pub const BYTES_PER_SECTOR: usize = 0x0B;
    /// u8: sectors per cluster; above 0x80 a negative power of two.
    pub const SECTORS_PER_CLUSTER: usize = 0x0D;
    /// u64: sectors in the volume (the backup boot sector follows them).
    pub const TOTAL_SECTORS: usize = 0x28;
    /// u64: cluster of `$MFT`.
    pub const MFT_LCN: usize = 0x30;
    /// u64: cluster of `$MFTMirr`.
    pub const MFTMIRR_LCN: usize = 0x38;
    /// i8: file record size: clusters when positive, else 2^-n bytes.
    pub const FILE_RECORD_SIZE: usize = 0x40;
    /// i8: index block size, coded like [`FILE_RECORD_SIZE`].
    pub const INDEX_RECORD_SIZE: usize = 0x44;
    /// u64: volume serial number.
    pub const SERIAL: usize = 0x48;
    /// Two bytes `55 AA` that end the sector.
    pub const END_SIGNATURE: usize = 0x1FE;
}

/// A restart page of `$LogFile` (`RSTR`, or `CHKD` after chkdsk), after its multi-sector header.
pub mod restart_page {
    /// u64: the last LSN chkdsk saw (`CHKD` pages only).
    pub const CHKDSK_LSN: usize = 0x08;
    /// u32: the system page size the log was written with.
    pub const SYSTEM_PAGE_SIZE: usize = 0x10;
    /// u32: the size of a log record page.
    pub const LOG_PAGE_SIZE: usize = 0x14;
    /// u16: offset of the restart area.
    pub const RESTART_AREA_OFFSET: usize = 0x18;
    /// i16: minor version of the log.
    pub const MINOR_VERSION: usize = 0x1A;
    /// i16: major version of the log (2 on Windows 8 and later).
    pub const MAJOR_VERSION: usize = 0x1C;
    /// Where the restart area may start at the earliest.
    pub const HEADER_LENGTH: usize = 0x1E;
}

/// The restart area inside a restart page; offsets from its start.
pub mod restart_area {
    /// u64: the current log sequence number.
    pub const CURRENT_LSN: usize = 0x00;
    /// u16: entries in the client array.
    pub const CLIENT_COUNT: usize = 0x08;
    /// u16: first free client, or [`NO_CLIENT`].
    pub const CLIENT_FREE_LIST: usize = 0x0A;
    /// u16: first client in use, or [`NO_CLIENT`].
    pub const CLIENT_IN_USE_LIST: usize = 0x0C;
    /// u16: [`FLAG_VOLUME_IS_CLEAN`].
    pub const FLAGS: usize = 0x0E;
    /// u32: bits of an LSN that count laps of the circular log.
    pub const SEQ_NUMBER_BITS: usize = 0x10;
    /// u16: length of the area and its client array.
    pub const RESTART_AREA_LENGTH: usize = 0x14;
    /// u16: offset of the client array from the start of the area.
    pub const CLIENT_ARRAY_OFFSET: usize = 0x16;
    /// u64: usable size of the log.
    pub const LOG_FILE_SIZE: usize = 0x18;
    /// u32: client data length of the record at the current LSN.
    pub const LAST_LSN_DATA_LENGTH: usize = 0x20;
    /// u16: length of a log record header.
    pub const RECORD_HEADER_LENGTH: usize = 0x24;
    /// u16: where records start in a log record page.
    pub const LOG_PAGE_DATA_OFFSET: usize = 0x26;
    /// u32: changes each time the log is opened.
    pub const OPEN_COUNT: usize = 0x28;
    /// The bytes of the area kaifuku needs to be there.
    pub const LENGTH: usize = 0x30;
    /// Flag: the volume was shut down cleanly and the log needs no replay.
    pub const FLAG_VOLUME_IS_CLEAN: u16 = 0x0002;
    /// A client list that is empty.
    pub const NO_CLIENT: u16 = 0xFFFF;
}

/// A log client record in the restart area's client array; offsets from its start.
pub mod log_client {
    /// u64: the oldest LSN the client still needs.
    pub const OLDEST_LSN: usize = 0x00;
    /// u64: LSN of the client's latest client restart record (the checkpoint).
    pub const RESTART_LSN: usize = 0x08;
    /// u16: previous client in its list.
    pub const PREV_CLIENT: usize = 0x10;
    /// u16: next client in its list.
    pub const NEXT_CLIENT: usize = 0x12;
    /// u16: sequence number that record headers of this client carry.
    pub const SEQ_NUMBER: usize = 0x14;
    /// u32: length of the name in bytes.
    pub const NAME_LENGTH: usize = 0x1C;
    /// UTF-16 name, 128 bytes ("NTFS").
    pub const NAME: usize = 0x20;
    /// Bytes of the name field.
    pub const NAME_CAPACITY: usize = 0x80;
    /// Bytes of one client record.
    pub const LENGTH: usize = 0xA0;
}

/// A log record page (`RCRD`) header; offsets from the page start.
pub mod record_page {
    /// u64: LSN of the last record starting in the page (the page's file offset in 1.1 tail copies).
    pub const LAST_LSN: usize = 0x08;
    /// u32: [`FLAG_RECORD_END`], [`FLAG_CLIENT_RESTART`].
    pub const FLAGS: usize = 0x10;
    /// u16: pages written together in one I/O.
    pub const PAGE_COUNT: usize = 0x14;
    /// u16: 1-based position of this page in that I/O.
    pub const PAGE_POSITION: usize = 0x16;
    /// u16: offset just past the last record that ends in the page.
    pub const NEXT_RECORD_OFFSET: usize = 0x18;
    /// u64: LSN of the last record that ends in the page.
    pub const LAST_END_LSN: usize = 0x20;
    /// u32: in 2.0 buffer pages, the file offset of the page they stand for.
    pub const BUFFER_TARGET_OFFSET: usize = 0x3C;
    /// Flag: some record ends in this page.
    pub const FLAG_RECORD_END: u32 = 0x0001;
    /// Flag (2.0): the page holds a client restart record.
    pub const FLAG_CLIENT_RESTART: u32 = 0x0002;
}

/// The header of an LFS log record (0x30 bytes); offsets from the record start.
pub mod log_record {
    /// u64: the record's own LSN.
    pub const THIS_LSN: usize = 0x00;
    /// u64: previous record of the same transaction, 0 for the first.
    pub const CLIENT_PREVIOUS_LSN: usize = 0x08;
    /// u64: next record to undo for the transaction, 0 for none.
    pub const CLIENT_UNDO_NEXT_LSN: usize = 0x10;
    /// u32: bytes of client data after the header.
    pub const CLIENT_DATA_LENGTH: usize = 0x18;
    /// u16: the client's sequence number.
    pub const CLIENT_SEQ_NUMBER: usize = 0x1C;
    /// u16: the client's index in the client array.
    pub const CLIENT_INDEX: usize = 0x1E;
    /// u32: 1 client record, 2 client restart record.
    pub const RECORD_TYPE: usize = 0x20;
    /// u32: offset of the transaction's entry in the transaction table.
    pub const TRANSACTION_ID: usize = 0x24;
    /// u16: [`FLAG_SPANS_PAGES`] and, on Windows 8 and later, 0x0002 / 0x0004.
    pub const FLAGS: usize = 0x28;
    /// Length of the header.
    pub const HEADER_LENGTH: usize = 0x30;
    /// Flag: the record continues on the next page(s).
    pub const FLAG_SPANS_PAGES: u16 = 0x0001;
}

/// The NTFS header at the start of a client record's data; offsets from the client data.
pub mod log_operation {
    /// u16: redo operation code.
    pub const REDO_OPERATION: usize = 0x00;
    /// u16: undo operation code.
    pub const UNDO_OPERATION: usize = 0x02;
    /// u16: offset of the redo bytes.
    pub const REDO_OFFSET: usize = 0x04;
    /// u16: length of the redo bytes.
    pub const REDO_LENGTH: usize = 0x06;
    /// u16: offset of the undo bytes.
    pub const UNDO_OFFSET: usize = 0x08;
    /// u16: length of the undo bytes.
    pub const UNDO_LENGTH: usize = 0x0A;
    /// u16: offset of an entry of the open attribute table.
    pub const TARGET_ATTRIBUTE: usize = 0x0C;
    /// u16: entries in the LCN list.
    pub const LCNS_TO_FOLLOW: usize = 0x0E;
    /// u16: offset of the attribute in the record (or of the data in the page).
    pub const RECORD_OFFSET: usize = 0x10;
    /// u16: offset inside the attribute (or of the index entry in the block).
    pub const ATTRIBUTE_OFFSET: usize = 0x12;
    /// u16: offset of the target block from `target_vcn`, in 512-byte units.
    pub const CLUSTER_BLOCK_OFFSET: usize = 0x14;
    /// u16: size of the target block in 512-byte units (0 for bitmaps and plain data).
    pub const TARGET_BLOCK_SIZE: usize = 0x16;
    /// u64: first VCN of the target page.
    pub const TARGET_VCN: usize = 0x18;
    /// u64 each: the LCN list; one slot is always there.
    pub const LCN_LIST: usize = 0x20;
}

/// The NTFS restart area: the client data of a client restart record (the checkpoint).
pub mod client_restart {
    /// u32: 0 for version-0 tables (Windows 7), 1 for version-1 tables (Windows 8 and later).
    pub const MAJOR_VERSION: usize = 0x00;
    /// u32: minor version.
    pub const MINOR_VERSION: usize = 0x04;
    /// u64: the last record written before this checkpoint's table dumps.
    pub const CHECKPOINT_START_LSN: usize = 0x08;
    /// u64: the open attribute table dump, 0 when not dumped.
    pub const OPEN_ATTRIBUTE_TABLE_LSN: usize = 0x10;
    /// u64: the attribute names dump.
    pub const ATTRIBUTE_NAMES_LSN: usize = 0x18;
    /// u64: the dirty page table dump.
    pub const DIRTY_PAGE_TABLE_LSN: usize = 0x20;
    /// u64: the transaction table dump.
    pub const TRANSACTION_TABLE_LSN: usize = 0x28;
    /// u32: bytes of the open attribute table dump.
    pub const OPEN_ATTRIBUTE_TABLE_LENGTH: usize = 0x30;
    /// u32: bytes of the attribute names dump.
    pub const ATTRIBUTE_NAMES_LENGTH: usize = 0x34;
    /// u32: bytes of the dirty page table dump.
    pub const DIRTY_PAGE_TABLE_LENGTH: usize = 0x38;
    /// u32: bytes of the transaction table dump.
    pub const TRANSACTION_TABLE_LENGTH: usize = 0x3C;
    /// u64: the lowest change-journal USN to recheck.
    pub const LOWEST_USN: usize = 0x40;
    /// u64: an LSN near the current session's start (meaning unsettled).
    pub const SESSION_LSN: usize = 0x48;
    /// u32: bytes per cluster of the volume.
    pub const BYTES_PER_CLUSTER: usize = 0x50;
    /// u64: file reference of `$UsnJrnl`.
    pub const USN_JOURNAL_REFERENCE: usize = 0x58;
    /// u64: the change journal's USN base.
    pub const USN_BASE: usize = 0x60;
    /// u64: the oldest LSN still needed.
    pub const OLDEST_LSN: usize = 0x68;
    /// The shortest client restart data read (ntfsrecover accepts 0x68; Windows writes 0x70).
    pub const MIN_LENGTH: usize = 0x68;
}

/// The header of a dumped restart table (open attributes, dirty pages, transactions).
pub mod restart_table {
    /// u16: bytes per entry.
    pub const ENTRY_SIZE: usize = 0x00;
    /// u16: allocated entries.
    pub const ENTRY_COUNT: usize = 0x02;
    /// u16: entries in use.
    pub const ENTRIES_IN_USE: usize = 0x04;
    /// u32: first free entry's offset, 0 for none.
    pub const FIRST_FREE: usize = 0x10;
    /// u32: last free entry's offset.
    pub const LAST_FREE: usize = 0x14;
    /// Length of the header; entries follow.
    pub const HEADER_LENGTH: usize = 0x18;
    /// u32 at the start of every entry: this value when the entry is in use.
    pub const ENTRY_IN_USE: u32 = 0xFFFF_FFFF;
}

/// An open attribute table entry, version 1 (Windows 8 and later), 0x28 bytes.
pub mod open_attribute_v1 {
    /// u32: bytes per index buffer (0 when not an index).
    pub const BYTES_PER_INDEX_BUFFER: usize = 0x04;
    /// u32: attribute type.
    pub const ATTRIBUTE_TYPE: usize = 0x08;
    /// u8: dirty pages seen.
    pub const DIRTY_PAGES_SEEN: usize = 0x0C;
    /// u64: file reference.
    pub const FILE_REFERENCE: usize = 0x10;
    /// u64: LSN when opened.
    pub const OPEN_LSN: usize = 0x18;
    /// Length of the entry.
    pub const LENGTH: usize = 0x28;
}

/// An open attribute table entry, version 0 (Windows 7 and earlier), 0x2C bytes.
pub mod open_attribute_v0 {
    /// u64: file reference.
    pub const FILE_REFERENCE: usize = 0x08;
    /// u64: LSN when opened.
    pub const OPEN_LSN: usize = 0x10;
    /// u8: dirty pages seen.
    pub const DIRTY_PAGES_SEEN: usize = 0x18;
    /// u32: attribute type.
    pub const ATTRIBUTE_TYPE: usize = 0x1C;
    /// u32: bytes per index buffer (0 when not an index).
    pub const BYTES_PER_INDEX_BUFFER: usize = 0x28;
    /// Length of the entry.
    pub const LENGTH: usize = 0x2C;
}

/// A dirty page table entry, version 1; the LCN list follows.
pub mod dirty_page_v1 {
    /// u32: the open attribute table entry of the page's attribute.
    pub const TARGET_ATTRIBUTE: usize = 0x04;
    /// u32: bytes of the page.
    pub const TRANSFER_LENGTH: usize = 0x08;
    /// u32: entries in the LCN list.
    pub const LCN_COUNT: usize = 0x0C;
    /// u64: first VCN of the page.
    pub const VCN: usize = 0x10;
    /// u64: the first record that dirtied the page.
    pub const OLDEST_LSN: usize = 0x18;
    /// u64 each: LCNs of the page's clusters.
    pub const LCN_LIST: usize = 0x20;
}

/// A dirty page table entry, version 0; the LCN list follows.
pub mod dirty_page_v0 {
    /// u32: the open attribute table entry of the page's attribute.
    pub const TARGET_ATTRIBUTE: usize = 0x04;
    /// u32: bytes of the page.
    pub const TRANSFER_LENGTH: usize = 0x08;
    /// u32: entries in the LCN list.
    pub const LCN_COUNT: usize = 0x0C;
    /// u64: first VCN of the page (unaligned).
    pub const VCN: usize = 0x14;
    /// u64: the first record that dirtied the page (unaligned).
    pub const OLDEST_LSN: usize = 0x1C;
    /// u64 each: LCNs of the page's clusters.
    pub const LCN_LIST: usize = 0x24;
}

/// A transaction table entry, 0x28 bytes in both versions.
pub mod transaction_entry {
    /// u8: 0 none, 1 active, 2 prepared, 3 committed.
    pub const STATE: usize = 0x04;
    /// u64: first record of the transaction.
    pub const FIRST_LSN: usize = 0x08;
    /// u64: last record written.
    pub const PREVIOUS_LSN: usize = 0x10;
    /// u64: next record to undo.
    pub const UNDO_NEXT_LSN: usize = 0x18;
    /// u32: records to undo.
    pub const UNDO_RECORDS: usize = 0x20;
    /// u32: bytes to undo.
    pub const UNDO_BYTES: usize = 0x24;
    /// Length of the entry.
    pub const LENGTH: usize = 0x28;
}

/// A file record (`FILE`) of `$MFT`, after its multi-sector header.
pub mod file_record {
    /// The signature of a file record.
    pub const SIGNATURE: &[u8; 4] = b"FILE";
    /// u16: sequence number, incremented each time the record is freed.
    pub const SEQUENCE: usize = 0x10;
    /// u16: number of `$FILE_NAME` attributes that are hard links (a base record's names).
    pub const LINK_COUNT: usize = 0x12;
    /// u16: offset of the first attribute.
    pub const FIRST_ATTRIBUTE: usize = 0x14;
    /// u16: [`FLAG_IN_USE`], [`FLAG_DIRECTORY`].
    pub const FLAGS: usize = 0x16;
    /// u32: bytes of the record in use (up to and including the end marker).
    pub const BYTES_IN_USE: usize = 0x18;
    /// u32: bytes allocated for the record (the file record size).
    pub const BYTES_ALLOCATED: usize = 0x1C;
    /// u64: reference to the base record; zero in a base record.
    pub const BASE_RECORD: usize = 0x20;
    /// u16: the instance number the next new attribute gets.
    pub const NEXT_INSTANCE: usize = 0x28;
    /// u32: the record's own number (NTFS 3.1 records, whose update sequence array is at 0x30).
    pub const RECORD_NUMBER: usize = 0x2C;
    /// Length of the NTFS 3.1 header, which ends with [`RECORD_NUMBER`]; its update sequence
    /// array follows (older records put the array at 0x2A and carry no number).
    pub const HEADER_LENGTH: usize = 0x30;

    /// Flag: the record holds a live file.
    pub const FLAG_IN_USE: u16 = 0x0001;
    /// Flag: the record holds a directory (it has an `$I30` index).
    pub const FLAG_DIRECTORY: u16 = 0x0002;

    /// Whether record bytes as read carry the `FILE` signature (the header lies in the first
    /// sector, so fixups do not matter here).
    pub fn has_signature(raw: &[u8]) -> bool {
        raw.get(..4) == Some(SIGNATURE.as_slice())
    }

    /// Whether record bytes as read are a file record in use.
    pub fn is_in_use(raw: &[u8]) -> bool {
        has_signature(raw) && crate::bytes::u16_at(raw, FLAGS).unwrap_or(0) & FLAG_IN_USE != 0
    }
}

/// The header of an attribute inside a file record: the common part, then the resident or the
/// non-resident part.
pub mod attribute {
    /// u32: the attribute type code ([`super::AttributeType`]), or [`END_MARKER`].
    pub const TYPE: usize = 0x00;
    /// u32: length of the attribute, header and value (8-aligned).
    pub const LENGTH: usize = 0x04;
    /// u8: 0 resident, 1 non-resident.
    pub const NON_RESIDENT: usize = 0x08;
    /// u8: name length in UTF-16 units.
    pub const NAME_LENGTH: usize = 0x09;
    /// u16: offset of the name.
    pub const NAME_OFFSET: usize = 0x0A;
    /// u16: [`FLAG_COMPRESSED`], [`FLAG_ENCRYPTED`], [`FLAG_SPARSE`].
    pub const FLAGS: usize = 0x0C;
    /// u16: the attribute's instance number, unique in its record.
    pub const INSTANCE: usize = 0x0E;

    /// The type code that ends the attribute list of a record.
    pub const END_MARKER: u32 = 0xFFFF_FFFF;
    /// The shortest attribute there is: a resident header with an empty value.
    pub const MIN_LENGTH: usize = 0x18;

    /// Flag: the value is compressed.
    pub const FLAG_COMPRESSED: u16 = 0x0001;
    /// Flag: the value is encrypted (EFS).
    pub const FLAG_ENCRYPTED: u16 = 0x4000;
    /// Flag: the value is sparse.
    pub const FLAG_SPARSE: u16 = 0x8000;

    /// The resident part of the header.
    pub mod resident {
        /// u32: length of the value.
        pub const VALUE_LENGTH: usize = 0x10;
        /// u16: offset of the value from the attribute's start.
        pub const VALUE_OFFSET: usize = 0x14;
        /// Where the resident header ends; a value starts here or later.
        pub const HEADER_LENGTH: usize = 0x18;
    }

    /// The non-resident part of the header.
    pub mod non_resident {
        /// u64: first VCN this extent maps.
        pub const LOWEST_VCN: usize = 0x10;
        /// u64: last VCN this extent maps.
        pub const HIGHEST_VCN: usize = 0x18;
        /// u16: offset of the mapping pairs (runlist).
        pub const MAPPING_PAIRS_OFFSET: usize = 0x20;
        /// u64: bytes allocated (whole clusters); valid in the extent starting at VCN 0.
        pub const ALLOCATED_SIZE: usize = 0x28;
        /// u64: the value's size.
        pub const DATA_SIZE: usize = 0x30;
        /// u64: bytes written so far; reads past it return zeros.
        pub const INITIALIZED_SIZE: usize = 0x38;
        /// Where the (uncompressed) non-resident header ends.
        pub const HEADER_LENGTH: usize = 0x40;
    }
}

/// One entry of an `$ATTRIBUTE_LIST` value.
pub mod attribute_list_entry {
    /// u32: attribute type code.
    pub const TYPE: usize = 0x00;
    /// u16: length of the entry.
    pub const LENGTH: usize = 0x04;
    /// u8: name length in UTF-16 units.
    pub const NAME_LENGTH: usize = 0x06;
    /// u8: offset of the name.
    pub const NAME_OFFSET: usize = 0x07;
    /// u64: first VCN of the extent the entry lists.
    pub const LOWEST_VCN: usize = 0x08;
    /// u64: reference to the record holding the extent.
    pub const RECORD: usize = 0x10;
    /// u16: the attribute's instance number in that record.
    pub const INSTANCE: usize = 0x18;
    /// The shortest entry (no name).
    pub const MIN_LENGTH: usize = 0x1A;
}

/// The value of `$STANDARD_INFORMATION`: times as 100 ns ticks since 1601 (UTC).
pub mod standard_information {
    /// u64: creation time.
    pub const CREATED: usize = 0x00;
    /// u64: last data change.
    pub const MODIFIED: usize = 0x08;
    /// u64: last change of the file record.
    pub const MFT_CHANGED: usize = 0x10;
    /// u64: last access.
    pub const ACCESSED: usize = 0x18;
    /// The four times: the least a value must hold.
    pub const TIMES_LENGTH: usize = 0x20;
}

/// The value of `$FILE_NAME` (also the key of a `$I30` index entry).
pub mod file_name {
    /// u64: reference to the parent directory.
    pub const PARENT: usize = 0x00;
    /// u64: creation time (a copy, updated when the name changes).
    pub const CREATED: usize = 0x08;
    /// u64: last data change (a copy).
    pub const MODIFIED: usize = 0x10;
    /// u64: last change of the file record (a copy).
    pub const MFT_CHANGED: usize = 0x18;
    /// u64: last access (a copy).
    pub const ACCESSED: usize = 0x20;
    /// u64: allocated size of the data (a copy).
    pub const ALLOCATED_SIZE: usize = 0x28;
    /// u64: size of the data (a copy).
    pub const DATA_SIZE: usize = 0x30;
    /// u32: DOS/Windows file attributes.
    pub const FILE_ATTRIBUTES: usize = 0x38;
    /// u8: name length in UTF-16 units.
    pub const NAME_LENGTH: usize = 0x40;
    /// u8: the name's namespace ([`super::Namespace`]).
    pub const NAMESPACE: usize = 0x41;
    /// The name, UTF-16LE.
    pub const NAME: usize = 0x42;
}

/// The value of `$REPARSE_POINT`: a tag, then the reparse data. For junctions and symbolic
/// links the data starts with the offsets and lengths of two names in a path buffer.
pub mod reparse_point {
    /// u32: the reparse tag (which filter owns the data).
    pub const TAG: usize = 0x00;
    /// u16: length of the reparse data.
    pub const DATA_LENGTH: usize = 0x04;
    /// u16: offset of the substitute name (the path Windows follows) in the path buffer.
    pub const SUBSTITUTE_NAME_OFFSET: usize = 0x08;
    /// u16: its length in bytes.
    pub const SUBSTITUTE_NAME_LENGTH: usize = 0x0A;
    /// u16: offset of the print name (the path shown to people) in the path buffer.
    pub const PRINT_NAME_OFFSET: usize = 0x0C;
    /// u16: its length in bytes.
    pub const PRINT_NAME_LENGTH: usize = 0x0E;
    /// Where the path buffer of a junction (mount point) starts.
    pub const MOUNT_POINT_PATH_BUFFER: usize = 0x10;
    /// u32: flags of a symbolic link (SYMLINK_FLAG_RELATIVE).
    pub const SYMLINK_FLAGS: usize = 0x10;
    /// Where the path buffer of a symbolic link starts, after its flags.
    pub const SYMLINK_PATH_BUFFER: usize = 0x14;
}

/// The key of an `$Extend\$Reparse:$R` entry: which file carries which tag.
pub mod reparse_key {
    /// u32: the reparse tag.
    pub const TAG: usize = 0x00;
    /// u64: reference to the file carrying the reparse point.
    pub const FILE_REF: usize = 0x04;
    /// The key's length.
    pub const LENGTH: usize = 0x0C;
}

/// The data of an `$Extend\$ObjId:$O` entry (its key is the 16-byte object id).
pub mod object_id_data {
    /// u64: reference to the file carrying the object id.
    pub const FILE_REF: usize = 0x00;
    /// Length of an object id: the `$O` key, and the first bytes of `$OBJECT_ID`.
    pub const ID_LENGTH: usize = 16;
}

/// The value of `$VOLUME_INFORMATION` in `$Volume`.
pub mod volume_information {
    /// u8: major NTFS version.
    pub const MAJOR_VERSION: usize = 0x08;
    /// u8: minor NTFS version.
    pub const MINOR_VERSION: usize = 0x09;
    /// u16: volume flags.
    pub const FLAGS: usize = 0x0A;
    /// Flag: run chkdsk at the next mount.
    pub const FLAG_DIRTY: u16 = 0x0001;
}

/// The value of `$INDEX_ROOT`: what the index holds, then an index header.
pub mod index_root {
    /// u32: the attribute type indexed (`$FILE_NAME` for `$I30`, 0 for view indexes).
    pub const INDEXED_TYPE: usize = 0x00;
    /// u32: the collation rule.
    pub const COLLATION: usize = 0x04;
    /// u32: bytes per `INDX` block.
    pub const BLOCK_SIZE: usize = 0x08;
    /// u8: clusters per block (512-byte units when blocks are smaller than a cluster).
    pub const CLUSTERS_PER_BLOCK: usize = 0x0C;
    /// Where the index header ([`super::index_header`]) starts.
    pub const HEADER: usize = 0x10;

    /// Collation rule: `$FILE_NAME` keys by upcased name.
    pub const COLLATION_FILE_NAME: u32 = 0x01;
    /// Collation rule: one little-endian u32 (`$Quota:$Q`).
    pub const COLLATION_NTOFS_ULONG: u32 = 0x10;
    /// Collation rule: a sequence of little-endian u32 (`$ObjId:$O`, `$Reparse:$R`).
    pub const COLLATION_NTOFS_ULONGS: u32 = 0x13;
}

/// An `INDX` block of `$INDEX_ALLOCATION`: a multi-sector header, then an index header.
pub mod index_block {
    /// The signature of an index block.
    pub const SIGNATURE: &[u8; 4] = b"INDX";
    /// u64: the block's own VCN.
    pub const VCN: usize = 0x10;
    /// Where the index header ([`super::index_header`]) starts.
    pub const HEADER: usize = 0x18;
}

/// The index header shared by the root and the blocks; offsets are relative to it.
pub mod index_header {
    /// u32: offset of the first entry.
    pub const ENTRIES_OFFSET: usize = 0x00;
    /// u32: bytes in use, from the header to the end of the END entry.
    pub const INDEX_LENGTH: usize = 0x04;
    /// u32: bytes available for entries.
    pub const ALLOCATED_SIZE: usize = 0x08;
    /// u8: [`FLAG_HAS_CHILDREN`].
    pub const FLAGS: usize = 0x0C;
    /// Length of the header; entries start at or after it.
    pub const LENGTH: usize = 0x10;

    /// Flag: the node's entries point at child blocks (LARGE_INDEX in the root).
    pub const FLAG_HAS_CHILDREN: u8 = 0x01;
}

/// An index entry: a header, the key, and in a node with children the child's VCN in its last
/// eight bytes.
pub mod index_entry {
    /// u64: the file the entry names (`$I30`).
    pub const FILE_REF: usize = 0x00;
    /// u16: offset of the data (view indexes such as `$O`, `$Q`; overlaps `FILE_REF`).
    pub const DATA_OFFSET: usize = 0x00;
    /// u16: length of the data (view indexes; overlaps `FILE_REF`).
    pub const DATA_LENGTH: usize = 0x02;
    /// u16: length of the entry (8-aligned).
    pub const LENGTH: usize = 0x08;
    /// u16: length of the key.
    pub const KEY_LENGTH: usize = 0x0A;
    /// u16: [`FLAG_NODE`], [`FLAG_END`].
    pub const FLAGS: usize = 0x0C;
    /// Where the key starts.
    pub const KEY: usize = 0x10;
    /// Length of the entry header.
    pub const HEADER_LENGTH: usize = 0x10;
    /// Bytes the child VCN takes at the end of an entry with [`FLAG_NODE`].
    pub const CHILD_VCN_LENGTH: usize = 8;

    /// Flag: the entry's last eight bytes are a child block's VCN.
    pub const FLAG_NODE: u16 = 0x01;
    /// Flag: the last entry of a node, with no key.
    pub const FLAG_END: u16 = 0x02;
}

/// The attribute types of NTFS 3.x, by their type codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeType {
    /// `$STANDARD_INFORMATION` (0x10): times, DOS attributes, security and quota ids.
    StandardInformation,
    /// `$ATTRIBUTE_LIST` (0x20): where the attributes of a file spread over several records are.
    AttributeList,
    /// `$FILE_NAME` (0x30): one name of the file in one directory.
    FileName,
    /// `$OBJECT_ID` (0x40): the file's object id, also keyed in `$Extend\$ObjId:$O`.
    ObjectId,
    /// `$SECURITY_DESCRIPTOR` (0x50): an old-style per-file security descriptor.
    SecurityDescriptor,
    /// `$VOLUME_NAME` (0x60): the volume label.
    VolumeName,
    /// `$VOLUME_INFORMATION` (0x70): NTFS version and volume flags.
    VolumeInformation,
    /// `$DATA` (0x80): a data stream.
    Data,
    /// `$INDEX_ROOT` (0x90): the root node of an index.
    IndexRoot,
    /// `$INDEX_ALLOCATION` (0xA0): the `INDX` blocks of an index.
    IndexAllocation,
    /// `$BITMAP` (0xB0): which index blocks (or `$MFT` records) are in use.
    Bitmap,
    /// `$REPARSE_POINT` (0xC0): junctions, symbolic links and other reparse data.
    ReparsePoint,
    /// `$EA_INFORMATION` (0xD0): sizes of the extended attributes.
    EaInformation,
    /// `$EA` (0xE0): extended attributes.
    Ea,
    /// `$LOGGED_UTILITY_STREAM` (0x100): e.g. EFS metadata.
    LoggedUtilityStream,
}

impl AttributeType {
    /// Every type, in type-code order.
    pub const ALL: [AttributeType; 15] = [
        AttributeType::StandardInformation,
        AttributeType::AttributeList,
        AttributeType::FileName,
        AttributeType::ObjectId,
        AttributeType::SecurityDescriptor,
        AttributeType::VolumeName,
        AttributeType::VolumeInformation,
        AttributeType::Data,
        AttributeType::IndexRoot,
        AttributeType::IndexAllocation,
        AttributeType::Bitmap,
        AttributeType::ReparsePoint,
        AttributeType::EaInformation,
        AttributeType::Ea,
        AttributeType::LoggedUtilityStream,
    ];

    /// The type code on disk.
    pub const fn code(self) -> u32 {
        match self {
            AttributeType::StandardInformation => 0x10,
            AttributeType::AttributeList => 0x20,
            AttributeType::FileName => 0x30,
            AttributeType::ObjectId => 0x40,
            AttributeType::SecurityDescriptor => 0x50,
            AttributeType::VolumeName => 0x60,
            AttributeType::VolumeInformation => 0x70,
            AttributeType::Data => 0x80,
            AttributeType::IndexRoot => 0x90,
            AttributeType::IndexAllocation => 0xA0,
            AttributeType::Bitmap => 0xB0,
            AttributeType::ReparsePoint => 0xC0,
            AttributeType::EaInformation => 0xD0,
            AttributeType::Ea => 0xE0,
            AttributeType::LoggedUtilityStream => 0x100,
        }
    }

    /// The type with this code; `None` for codes NTFS does not define (damage, or the end
    /// marker).
    pub fn from_code(code: u32) -> Option<AttributeType> {
        AttributeType::ALL.into_iter().find(|t| t.code() == code)
    }

    /// The name NTFS gives the type (`$DATA`), as messages show it.
    pub const fn name(self) -> &'static str {
        match self {
            AttributeType::StandardInformation => "$STANDARD_INFORMATION",
            AttributeType::AttributeList => "$ATTRIBUTE_LIST",
            AttributeType::FileName => "$FILE_NAME",
            AttributeType::ObjectId => "$OBJECT_ID",
            AttributeType::SecurityDescriptor => "$SECURITY_DESCRIPTOR",
            AttributeType::VolumeName => "$VOLUME_NAME",
            AttributeType::VolumeInformation => "$VOLUME_INFORMATION",
            AttributeType::Data => "$DATA",
            AttributeType::IndexRoot => "$INDEX_ROOT",
            AttributeType::IndexAllocation => "$INDEX_ALLOCATION",
            AttributeType::Bitmap => "$BITMAP",
            AttributeType::ReparsePoint => "$REPARSE_POINT",
            AttributeType::EaInformation => "$EA_INFORMATION",
            AttributeType::Ea => "$EA",
            AttributeType::LoggedUtilityStream => "$LOGGED_UTILITY_STREAM",
        }
    }
}

/// The namespace of a `$FILE_NAME`: which naming rules the name follows. A file with a long name
/// that is not a valid 8.3 name carries it twice, once as [`Namespace::Win32`] and once as
/// [`Namespace::Dos`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Namespace {
    /// 0: any Unicode except `/` and NUL, case-sensitive (hard links made by POSIX tools).
    Posix,
    /// 1: a long name whose 8.3 twin is a separate [`Namespace::Dos`] name.
    Win32,
    /// 2: the 8.3 twin of a [`Namespace::Win32`] name.
    Dos,
    /// 3: a name valid in both, stored once.
    Win32AndDos,
    /// Any other byte: no NTFS version writes one, so the name is damaged.
    Unknown(u8),
}

impl Namespace {
    /// The namespace a stored byte names.
    pub fn from_byte(b: u8) -> Namespace {
        match b {
            0 => Namespace::Posix,
            1 => Namespace::Win32,
            2 => Namespace::Dos,
            3 => Namespace::Win32AndDos,
            b => Namespace::Unknown(b),
        }
    }

    /// The byte stored on disk.
    pub fn byte(self) -> u8 {
        match self {
            Namespace::Posix => 0,
            Namespace::Win32 => 1,
            Namespace::Dos => 2,
            Namespace::Win32AndDos => 3,
            Namespace::Unknown(b) => b,
        }
    }

    /// The namespace's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Namespace::Posix => "POSIX",
            Namespace::Win32 => "Win32",
            Namespace::Dos => "DOS",
            Namespace::Win32AndDos => "Win32&DOS",
            Namespace::Unknown(_) => "unknown",
        }
    }
}

/// The index header of a node, as stored (not yet judged: each reader checks what it needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexHeader {
    /// Where the header lies in the node's bytes (0x10 in a root value, 0x18 in a block).
    pub at: usize,
    /// Offset of the first entry, from the header.
    pub entries_offset: usize,
    /// Bytes in use from the header to the end of the END entry.
    pub index_length: usize,
    /// Bytes available from the header.
    pub allocated_size: usize,
    /// Whether the entries point at child blocks.
    pub has_children: bool,
}

impl IndexHeader {
    /// Reads the header at `at` of a node's bytes.
    pub fn read(bytes: &[u8], at: usize) -> Result<IndexHeader, NtfsError> {
        // Fields in the order the reader has always read them, so a header cut short is reported
        // at the same field.
        let entries_offset = u32_at(bytes, at + index_header::ENTRIES_OFFSET)? as usize;
        let index_length = u32_at(bytes, at + index_header::INDEX_LENGTH)? as usize;
        let flags = u8_at(bytes, at + index_header::FLAGS)?;
        let allocated_size = u32_at(bytes, at + index_header::ALLOCATED_SIZE)? as usize;
        Ok(IndexHeader {
            at,
            entries_offset,
            index_length,
            allocated_size,
            has_children: flags & index_header::FLAG_HAS_CHILDREN != 0,
        })
    }

    /// Reads the header at `at` with every field past the end of `bytes` read as zero, for the
    /// checker, which reports what is wrong rather than stopping at it.
    pub fn read_or_zero(bytes: &[u8], at: usize) -> IndexHeader {
        let field = |off: usize| u32_at(bytes, at + off).unwrap_or(0) as usize;
        IndexHeader {
            at,
            entries_offset: field(index_header::ENTRIES_OFFSET),
            index_length: field(index_header::INDEX_LENGTH),
            allocated_size: field(index_header::ALLOCATED_SIZE),
            has_children: bytes
                .get(at + index_header::FLAGS)
                .is_some_and(|f| f & index_header::FLAG_HAS_CHILDREN != 0),
        }
    }

    /// Offset of the first entry in the node's bytes.
    pub fn entries_start(&self) -> usize {
        self.at + self.entries_offset
    }

    /// Offset in the node's bytes where the entries in use end.
    pub fn entries_end(&self) -> usize {
        self.at + self.index_length
    }
}

/// An index entry's header and child pointer as stored, with where the entry lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntryHeader {
    /// Offset of the entry in the node's bytes.
    pub offset: usize,
    /// The first eight bytes: a file reference in `$I30`; data offset and length in view indexes.
    pub file_ref: u64,
    /// Length of the entry.
    pub length: usize,
    /// Length of its key.
    pub key_length: usize,
    /// Its flags ([`index_entry::FLAG_NODE`], [`index_entry::FLAG_END`]).
    pub flags: u16,
    /// The child block's VCN, when [`index_entry::FLAG_NODE`] is set.
    pub child: Option<u64>,
}

impl IndexEntryHeader {
    /// Whether the entry carries a child pointer.
    pub fn has_child_flag(&self) -> bool {
        self.flags & index_entry::FLAG_NODE != 0
    }

    /// Whether this is the END entry that closes its node.
    pub fn is_end(&self) -> bool {
        self.flags & index_entry::FLAG_END != 0
    }

    /// Offset of the data of a view-index entry, from the entry's start.
    pub fn data_offset(&self) -> usize {
        (self.file_ref & 0xFFFF) as usize
    }

    /// Length of the data of a view-index entry.
    pub fn data_length(&self) -> usize {
        ((self.file_ref >> 16) & 0xFFFF) as usize
    }

    /// Where the key and data may lie: the entry minus its child pointer.
    pub fn body_end(&self) -> usize {
        self.length
            - if self.has_child_flag() {
                index_entry::CHILD_VCN_LENGTH
            } else {
                0
            }
    }
}

/// Why the walk over a node's entries stopped before its END entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryChainBreak {
    /// Fewer than an entry header's bytes are left before the end of the entries in use, and no
    /// END entry came.
    NoEnd,
    /// An entry's length is below the header's, not 8-aligned, or runs past the entries in use.
    BadLength {
        /// The entry as read.
        entry: IndexEntryHeader,
    },
    /// An entry has the child flag but is too short to hold the child VCN.
    NoRoomForChild {
        /// The entry as read.
        entry: IndexEntryHeader,
    },
}

/// Walks the chain of entries of one index node: the one entry parser of the crate, used by the
/// reader (`index`), the edit layer (through the reader) and the checker. It checks only what it
/// must to find the next entry (lengths, room for the child VCN) and stops after the END entry
/// or at the first break; what an entry means is judged by its caller.
#[derive(Debug, Clone)]
pub struct EntryChain<'a> {
    bytes: &'a [u8],
    next: usize,
    end: usize,
    done: bool,
}

impl<'a> EntryChain<'a> {
    /// The entries of the node whose header is `header`; `header` must have been checked to
    /// keep its entries inside `bytes`.
    pub fn new(bytes: &'a [u8], header: &IndexHeader) -> EntryChain<'a> {
        EntryChain {
            bytes,
            next: header.entries_start(),
            end: header.entries_end().min(bytes.len()),
            done: false,
        }
    }

    /// Offset after the last entry returned: after END, where the entries in use should end.
    pub fn position(&self) -> usize {
        self.next
    }

    fn read_entry(&self, off: usize) -> Result<IndexEntryHeader, EntryChainBreak> {
        let b = self.bytes;
        let field_u16 = |at: usize| u16_at(b, off + at).unwrap_or(0) as usize;
        let mut entry = IndexEntryHeader {
            offset: off,
            file_ref: u64_at(b, off + index_entry::FILE_REF).unwrap_or(0),
            length: field_u16(index_entry::LENGTH),
            key_length: field_u16(index_entry::KEY_LENGTH),
            flags: field_u16(index_entry::FLAGS) as u16,
            child: None,
        };
        if entry.length < index_entry::HEADER_LENGTH
            || entry.length & 7 != 0
            || off + entry.length > self.end
        {
            return Err(EntryChainBreak::BadLength { entry });
        }
        if entry.has_child_flag() {
            if entry.length < index_entry::HEADER_LENGTH + index_entry::CHILD_VCN_LENGTH {
                return Err(EntryChainBreak::NoRoomForChild { entry });
            }
            entry.child = u64_at(b, off + entry.length - index_entry::CHILD_VCN_LENGTH).ok();
        }
        Ok(entry)
    }
}

impl Iterator for EntryChain<'_> {
    type Item = Result<IndexEntryHeader, EntryChainBreak>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.next + index_entry::HEADER_LENGTH > self.end {
            self.done = true;
            return Some(Err(EntryChainBreak::NoEnd));
        }
        match self.read_entry(self.next) {
            Ok(entry) => {
                self.next += entry.length;
                self.done = entry.is_end();
                Some(Ok(entry))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_types_round_trip_their_codes() {
        for t in AttributeType::ALL {
            assert_eq!(AttributeType::from_code(t.code()), Some(t));
        }
        assert_eq!(AttributeType::from_code(attribute::END_MARKER), None);
        assert_eq!(AttributeType::Data.name(), "$DATA");
    }

    #[test]
    fn namespaces_round_trip_their_bytes() {
        for b in 0..=255u8 {
            assert_eq!(Namespace::from_byte(b).byte(), b);
        }
        assert_eq!(Namespace::from_byte(2), Namespace::Dos);
    }

    /// A node with one 0x18-byte entry with a child pointer and an END entry with one.
    #[test]
    fn entry_chain_reads_entries_and_stops_after_end() {
        let mut b = vec![0u8; 0x10 + 0x18 + 0x18];
        b[0..4].copy_from_slice(&0x10u32.to_le_bytes());
        b[4..8].copy_from_slice(&(0x10u32 + 0x30).to_le_bytes());
        b[8..12].copy_from_slice(&(0x10u32 + 0x30).to_le_bytes());
        b[0x0C] = 1;
        let e = 0x10;
        b[e + 8..e + 10].copy_from_slice(&0x18u16.to_le_bytes());
        b[e + 0x0C..e + 0x0E].copy_from_slice(&1u16.to_le_bytes());
        b[e + 0x10..e + 0x18].copy_from_slice(&7u64.to_le_bytes());
        let e = 0x28;
        b[e + 8..e + 10].copy_from_slice(&0x18u16.to_le_bytes());
        b[e + 0x0C..e + 0x0E].copy_from_slice(&3u16.to_le_bytes());
        b[e + 0x10..e + 0x18].copy_from_slice(&9u64.to_le_bytes());
        let h = IndexHeader::read(&b, 0).unwrap();
        assert!(h.has_children);
        let mut chain = EntryChain::new(&b, &h);
        let got: Vec<_> = chain.by_ref().collect();
        assert_eq!(got.len(), 2);
        let first = got[0].unwrap();
        assert_eq!(
            (first.offset, first.child, first.is_end()),
            (0x10, Some(7), false)
        );
        let end = got[1].unwrap();
        assert_eq!((end.offset, end.child, end.is_end()), (0x28, Some(9), true));
        assert_eq!(chain.position(), b.len());
    }

    #[test]
    fn entry_chain_reports_a_broken_length() {
        let mut b = vec![0u8; 0x30];
        b[0..4].copy_from_slice(&0x10u32.to_le_bytes());
        b[4..8].copy_from_slice(&0x30u32.to_le_bytes());
        b[8..12].copy_from_slice(&0x30u32.to_le_bytes());
        b[0x10 + 8..0x10 + 10].copy_from_slice(&0x0Cu16.to_le_bytes());
        let h = IndexHeader::read(&b, 0).unwrap();
        let got: Vec<_> = EntryChain::new(&b, &h).collect();
        assert!(matches!(got[..], [Err(EntryChainBreak::BadLength { .. })]));
    }
}
