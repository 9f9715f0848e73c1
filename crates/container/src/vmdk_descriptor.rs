//! A VMware text descriptor (`# Disk DescriptorFile`): the small `.vmdk` that names the files
//! holding the disk's data, in the order the guest sees them. ESXi keeps every disk this way
//! (`disk.vmdk` + `disk-flat.vmdk`), and VMware Workstation's "split into 2 GB files" preallocated
//! disks too (`disk-f001.vmdk`, `disk-f002.vmdk`, …).
//!
//! This module only reads the text and, for a copy of the disk, writes it again with other data
//! file names; the front end opens the files (the core never touches files). kaifuku reads
//! *flat* extents (`FLAT`, `VMFS`: the disk's bytes as they are, from an offset in the file) and
//! hosted *sparse* extents (`SPARSE`: Workstation's growable "split into 2 GB files" disks, each
//! file a sparse extent with its own grain tables, opened by
//! [`crate::open_sparse_extent`]), and refuses everything else by name: ESXi's snapshot and
//! space-efficient extents (`VMFSSPARSE`, `SESPARSE`), raw device mappings, zero extents,
//! read-only or inaccessible extents, and child disks.

use std::fmt;
use std::ops::Range;

/// The largest descriptor read (VMware writes a few hundred bytes; a split disk of 2 TB names
/// about a thousand files).
pub const MAX_DESCRIPTOR_BYTES: u64 = 64 * 1024;

/// The most extents one descriptor may name.
pub const MAX_EXTENTS: usize = 4096;

/// What every descriptor starts with.
pub const SIGNATURE: &[u8] = b"# Disk DescriptorFile";

/// Whether the first bytes of a file are a text descriptor.
pub fn is_descriptor(head: &[u8]) -> bool {
    head.starts_with(SIGNATURE)
}

/// How an extent stores its part of the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtentKind {
    /// `FLAT`: a hosted preallocated file (Workstation, `qemu-img -o subformat=monolithicFlat`).
    Flat,
    /// `VMFS`: the `-flat.vmdk` of an ESXi datastore.
    Vmfs,
    /// `SPARSE`: a hosted sparse extent file (`KDMV` header, grain directory and tables) holding
    /// the extent's sectors (`twoGbMaxExtentSparse`).
    Sparse,
}

impl ExtentKind {
    /// Whether the extent's bytes lie in its file as they are (from `file_offset` on).
    pub fn is_flat(self) -> bool {
        matches!(self, ExtentKind::Flat | ExtentKind::Vmfs)
    }
}

/// One extent: `len` bytes of the disk from `disk_offset` on, stored in `file_name` — for a flat
/// extent from byte `file_offset` on, for a sparse one through the file's own grain tables
/// (`file_offset` 0).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DescribedExtent {
    /// `FLAT` or `VMFS`.
    pub kind: ExtentKind,
    /// The data file's name, in the descriptor's folder.
    pub file_name: String,
    /// Where the extent's data starts in its file, in bytes.
    pub file_offset: u64,
    /// Where the extent starts in the disk, in bytes.
    pub disk_offset: u64,
    /// How many bytes of the disk the extent holds.
    pub len: u64,
}

/// A parsed descriptor whose extents kaifuku can read.
#[derive(Debug, Clone)]
pub struct DiskDescriptor {
    /// `createType` (`vmfs`, `monolithicFlat`, `twoGbMaxExtentFlat`, …), empty when absent.
    pub create_type: String,
    /// The extents in disk order.
    pub extents: Vec<DescribedExtent>,
    text: String,
    /// Where each extent's quoted file name lies in `text` (the quotes excluded).
    name_spans: Vec<Range<usize>>,
}

/// Why a descriptor cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DescriptorError {
    /// Larger than any descriptor VMware writes.
    #[error(
        "the file starts like a VMDK descriptor but is {size} bytes (a descriptor is a few \
         hundred bytes, at most {MAX_DESCRIPTOR_BYTES}): it is damaged or not a descriptor"
    )]
    TooLarge {
        /// The file's size.
        size: u64,
    },
    /// Not UTF-8 text.
    #[error("the VMDK descriptor is not text (it is not UTF-8): it is damaged")]
    NotText,
    /// An extent line that does not read.
    #[error(
        "line {line} of the VMDK descriptor does not read as an extent ({problem}): `{text}`. \
         Compare it with the descriptor VMware wrote, e.g. `RW 83886080 VMFS \"disk-flat.vmdk\"`"
    )]
    BadExtentLine {
        /// The line number (from 1).
        line: usize,
        /// The line as written (at most 200 characters).
        text: String,
        /// What does not read.
        problem: &'static str,
    },
    /// An extent kind kaifuku does not read.
    #[error(
        "line {line} of the VMDK descriptor names a {kind} extent: {why}. Convert the disk to one \
         file first, e.g. `qemu-img convert -f vmdk -O vmdk -o subformat=monolithicSparse \
         DISK.vmdk whole.vmdk` in the folder that holds its files, then open whole.vmdk"
    )]
    UnsupportedExtent {
        /// The line number (from 1).
        line: usize,
        /// The extent kind as written.
        kind: String,
        /// Why kaifuku does not read it.
        why: &'static str,
    },
    /// An extent that is read-only or not accessible.
    #[error(
        "line {line} of the VMDK descriptor marks its extent {access}: VMware would not write \
         there, so kaifuku will not either. Check that this is the disk you meant to repair"
    )]
    ExtentNotWritable {
        /// The line number (from 1).
        line: usize,
        /// `RDONLY` or `NOACCESS`.
        access: String,
    },
    /// A file name that is not a plain name in the descriptor's folder.
    #[error(
        "line {line} of the VMDK descriptor names the data file \"{name}\", which is not a file \
         name in the descriptor's own folder (kaifuku does not follow paths out of it). Put the \
         data files next to the descriptor and edit the line to name them alone"
    )]
    ExtentPath {
        /// The line number (from 1).
        line: usize,
        /// The name as written (at most 200 characters).
        name: String,
    },
    /// No extents at all.
    #[error(
        "the VMDK descriptor names no data file (no extent lines): it is damaged or incomplete"
    )]
    NoExtents,
    /// More extents than any disk has.
    #[error("the VMDK descriptor names more than {MAX_EXTENTS} data files: it is damaged")]
    TooManyExtents,
    /// Sizes that do not fit in 64 bits.
    #[error("the VMDK descriptor's extent sizes add up to more than any disk: it is damaged")]
    TooBig,
    /// A child disk (snapshot, linked clone).
    #[error("{}", crate::error::vmdk_child_message(parent))]
    Child {
        /// The descriptor's `parentFileNameHint`, if it has one.
        parent: String,
    },
}

impl DescriptorError {
    /// Whether the descriptor is refused for what it describes (a kind of disk kaifuku does not
    /// repair) rather than for damage.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            DescriptorError::UnsupportedExtent { .. }
                | DescriptorError::ExtentNotWritable { .. }
                | DescriptorError::Child { .. }
        )
    }
}

/// The file names a descriptor's extent lines quote, whatever their kind (a folder listing uses
/// them to tell a disk's data files from disks of their own). Lenient: lines that do not read
/// are skipped.
pub fn extent_file_names(bytes: &[u8]) -> Vec<String> {
    let Ok(text) = std::str::from_utf8(&bytes[..bytes.len().min(MAX_DESCRIPTOR_BYTES as usize)])
    else {
        return Vec::new();
    };
    text.lines()
        .filter(|l| {
            matches!(
                l.split_whitespace().next(),
                Some("RW" | "RDONLY" | "NOACCESS")
            )
        })
        .filter_map(|l| {
            let open = l.find('"')?;
            let close = open + 1 + l[open + 1..].find('"')?;
            Some(l[open + 1..close].to_string())
        })
        .take(MAX_EXTENTS)
        .collect()
}

/// Reads a descriptor. `bytes` is the whole file.
pub fn parse(bytes: &[u8]) -> Result<DiskDescriptor, DescriptorError> {
    if bytes.len() as u64 > MAX_DESCRIPTOR_BYTES {
        return Err(DescriptorError::TooLarge {
            size: bytes.len() as u64,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| DescriptorError::NotText)?;
    let mut create_type = String::new();
    let mut parent_cid = None;
    let mut parent_hint = None;
    let mut extents = Vec::new();
    let mut name_spans = Vec::new();
    let mut disk_offset: u64 = 0;
    let mut line_start = 0usize;
    for (index, raw) in text.split_inclusive('\n').enumerate() {
        let start = line_start;
        line_start += raw.len();
        let number = index + 1;
        let line = raw.trim_end_matches(['\n', '\r']);
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let first = trimmed.split_whitespace().next().unwrap_or("");
        if matches!(first, "RW" | "RDONLY" | "NOACCESS") {
            let (extent, span) = extent_line(line, number, disk_offset)?;
            if extents.len() == MAX_EXTENTS {
                return Err(DescriptorError::TooManyExtents);
            }
            disk_offset = disk_offset
                .checked_add(extent.len)
                .ok_or(DescriptorError::TooBig)?;
            name_spans.push(start + span.start..start + span.end);
            extents.push(extent);
            continue;
        }
        if let Some((key, value)) = trimmed.split_once('=') {
            let value = value.trim().trim_matches('"').to_string();
            match key.trim() {
                "createType" => create_type = value,
                "parentCID" => parent_cid = Some(value),
                "parentFileNameHint" => parent_hint = Some(value),
                _ => {}
            }
        }
    }
    if let Some(parent) = parent_of(parent_cid.as_deref(), parent_hint) {
        return Err(DescriptorError::Child { parent });
    }
    if extents.is_empty() {
        return Err(DescriptorError::NoExtents);
    }
    Ok(DiskDescriptor {
        create_type,
        extents,
        text: text.to_string(),
        name_spans,
    })
}

/// The parent a descriptor names (its `parentFileNameHint`, empty when it gives none), from its
/// `parentCID` (`ffffffff` or absent: no parent) and `parentFileNameHint` lines; `None` for a
/// disk of its own.
pub(crate) fn parent_of(parent_cid: Option<&str>, parent_hint: Option<String>) -> Option<String> {
    let no_parent = parent_cid.is_none_or(|p| p.eq_ignore_ascii_case("ffffffff"));
    (!no_parent || parent_hint.is_some()).then(|| parent_hint.unwrap_or_default())
}

/// One extent line: `ACCESS SECTORS KIND "FILE" [OFFSET]`. Returns the extent and where its file
/// name lies in `line`.
fn extent_line(
    line: &str,
    number: usize,
    disk_offset: u64,
) -> Result<(DescribedExtent, Range<usize>), DescriptorError> {
    let bad = |problem| DescriptorError::BadExtentLine {
        line: number,
        text: line.trim().chars().take(200).collect(),
        problem,
    };
    let open = line.find('"');
    let head: Vec<&str> = line[..open.unwrap_or(line.len())]
        .split_whitespace()
        .collect();
    // The kind first: a `ZERO` extent has no file name, and is refused for its kind.
    let kind = match head.get(2).copied().unwrap_or("") {
        "" => return Err(bad("expected access, size and kind before the file name")),
        "FLAT" => ExtentKind::Flat,
        "VMFS" => ExtentKind::Vmfs,
        "SPARSE" => ExtentKind::Sparse,
        other => {
            let why = match other {
                "VMFSSPARSE" | "SESPARSE" => {
                    "its data lies in an ESXi snapshot or space-efficient file (a child of \
                     another disk), which kaifuku does not read"
                }
                "ZERO" => {
                    "it has no data file (it reads as zeros), so nothing there can be repaired"
                }
                "VMFSRDM" | "VMFSRAW" => {
                    "its data lies on a raw device (an RDM), not in a file kaifuku can be given"
                }
                _ => "kaifuku does not know this kind of extent",
            };
            return Err(DescriptorError::UnsupportedExtent {
                line: number,
                kind: other.chars().take(40).collect(),
                why,
            });
        }
    };
    let open = open.ok_or_else(|| bad("no quoted file name"))?;
    let close = line[open + 1..]
        .find('"')
        .map(|i| open + 1 + i)
        .ok_or_else(|| bad("the file name's closing quote is missing"))?;
    let tail: Vec<&str> = line[close + 1..].split_whitespace().collect();
    let [access, sectors, _] = head[..] else {
        return Err(bad("expected access, size and kind before the file name"));
    };
    let sectors: u64 = sectors
        .parse()
        .map_err(|_| bad("the size is not a number of sectors"))?;
    if sectors == 0 {
        return Err(bad("the extent holds no sectors"));
    }
    if access != "RW" {
        return Err(DescriptorError::ExtentNotWritable {
            line: number,
            access: access.to_string(),
        });
    }
    let name = &line[open + 1..close];
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\\', '\0'])
        || name.chars().any(char::is_control)
    {
        return Err(DescriptorError::ExtentPath {
            line: number,
            name: name.chars().take(200).collect(),
        });
    }
    let offset_sectors: u64 = match tail[..] {
        [] => 0,
        [o] => o
            .parse()
            .map_err(|_| bad("the offset after the file name is not a number of sectors"))?,
        _ => return Err(bad("more than an offset follows the file name")),
    };
    if kind == ExtentKind::Sparse && offset_sectors != 0 {
        return Err(bad("a SPARSE extent takes no offset in its file"));
    }
    let too_big = || bad("the size or offset is larger than any disk");
    let len = sectors.checked_mul(512).ok_or_else(too_big)?;
    let file_offset = offset_sectors.checked_mul(512).ok_or_else(too_big)?;
    file_offset.checked_add(len).ok_or_else(too_big)?;
    Ok((
        DescribedExtent {
            kind,
            file_name: name.to_string(),
            file_offset,
            disk_offset,
            len,
        },
        open + 1..close,
    ))
}

impl DiskDescriptor {
    /// The disk's size: every extent's bytes.
    pub fn disk_size(&self) -> u64 {
        self.extents.iter().map(|e| e.len).sum()
    }

    /// The descriptor as read.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The same descriptor naming other data files (one name per extent, in order): every other
    /// byte is kept, so a copy of the disk is described exactly as the original. `None` when the
    /// count differs or a name could not be written in an extent line (a quote, a path, a
    /// control character).
    pub fn with_file_names(&self, names: &[String]) -> Option<String> {
        if names.len() != self.name_spans.len()
            || names.iter().any(|n| {
                n.is_empty() || n.contains(['"', '/', '\\']) || n.chars().any(char::is_control)
            })
        {
            return None;
        }
        let mut out = String::with_capacity(self.text.len() + 64);
        let mut at = 0;
        for (span, name) in self.name_spans.iter().zip(names) {
            out.push_str(&self.text[at..span.start]);
            out.push_str(name);
            at = span.end;
        }
        out.push_str(&self.text[at..]);
        Some(out)
    }
}

impl fmt::Display for ExtentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExtentKind::Flat => "FLAT",
            ExtentKind::Vmfs => "VMFS",
            ExtentKind::Sparse => "SPARSE",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QEMU_SPLIT: &str = "# Disk DescriptorFile\nversion=1\nCID=9bfae281\nparentCID=ffffffff\n\
createType=\"twoGbMaxExtentFlat\"\n\n# Extent description\nRW 4194304 FLAT \"b-f001.vmdk\" 0\n\
RW 4194304 FLAT \"b-f002.vmdk\" 0\nRW 2097152 FLAT \"b-f003.vmdk\" 0\n\n# The Disk Data Base\n#DDB\n\n\
ddb.virtualHWVersion = \"4\"\n";

    const ESXI: &str = "# Disk DescriptorFile\r\nversion=1\r\nencoding=\"UTF-8\"\r\nCID=fffffffe\r\n\
parentCID=ffffffff\r\ncreateType=\"vmfs\"\r\n\r\n# Extent description\r\nRW 83886080 VMFS \"web 01-flat.vmdk\"\r\n\
\r\n# The Disk Data Base\r\nddb.uuid = \"60 00 C2 9f\"\r\n";

    #[test]
    fn qemu_split_flat_descriptor() {
        let d = parse(QEMU_SPLIT.as_bytes()).unwrap();
        assert_eq!(d.create_type, "twoGbMaxExtentFlat");
        assert_eq!(d.extents.len(), 3);
        assert_eq!(d.extents[1].file_name, "b-f002.vmdk");
        assert_eq!(d.extents[1].disk_offset, 4194304 * 512);
        assert_eq!(d.extents[2].len, 2097152 * 512);
        assert_eq!(d.disk_size(), 10 * 1024 * 1024 * 512);
    }

    #[test]
    fn esxi_descriptor_with_crlf_and_spaces_in_the_name() {
        let d = parse(ESXI.as_bytes()).unwrap();
        assert_eq!(d.create_type, "vmfs");
        assert_eq!(
            d.extents,
            vec![DescribedExtent {
                kind: ExtentKind::Vmfs,
                file_name: "web 01-flat.vmdk".into(),
                file_offset: 0,
                disk_offset: 0,
                len: 83886080 * 512,
            }]
        );
        let renamed = d.with_file_names(&["copy-flat.vmdk".into()]).unwrap();
        assert_eq!(renamed, ESXI.replace("web 01-flat.vmdk", "copy-flat.vmdk"));
        assert!(d.with_file_names(&["a\"b".into()]).is_none());
        assert!(d.with_file_names(&[]).is_none());
    }

    #[test]
    fn renaming_keeps_every_other_byte() {
        let d = parse(QEMU_SPLIT.as_bytes()).unwrap();
        let names: Vec<String> = (1..=3).map(|i| format!("out-f{i:03}.vmdk")).collect();
        let renamed = d.with_file_names(&names).unwrap();
        assert_eq!(renamed, QEMU_SPLIT.replace("\"b-f", "\"out-f"));
        let again = parse(renamed.as_bytes()).unwrap();
        assert_eq!(again.extents[2].file_name, "out-f003.vmdk");
        assert_eq!(again.disk_size(), d.disk_size());
    }

    #[test]
    fn extent_names_of_any_kind() {
        let sparse = "# Disk DescriptorFile\nRW 4194304 SPARSE \"c-s001.vmdk\"\nRW 10 ZERO\n\
                      RDONLY 10 VMFSSPARSE \"c-delta.vmdk\"\n";
        assert_eq!(
            extent_file_names(sparse.as_bytes()),
            ["c-s001.vmdk", "c-delta.vmdk"]
        );
        assert_eq!(
            extent_file_names(QEMU_SPLIT.as_bytes()),
            ["b-f001.vmdk", "b-f002.vmdk", "b-f003.vmdk"]
        );
        assert!(parse(sparse.as_bytes()).unwrap_err().is_refusal());
        let split = parse(
            b"# Disk DescriptorFile\nRW 4194304 SPARSE \"c-s001.vmdk\"\nRW 2097152 SPARSE \"c-s002.vmdk\"\n",
        )
        .unwrap();
        assert_eq!(split.extents[1].kind, ExtentKind::Sparse);
        assert_eq!(split.extents[1].disk_offset, 4194304 * 512);
        assert!(!split.extents[1].kind.is_flat());
        assert!(!DescriptorError::NoExtents.is_refusal());
    }

    #[test]
    fn offsets_in_the_file() {
        let d = parse(b"# Disk DescriptorFile\nRW 100 FLAT \"x.bin\" 2048\n").unwrap();
        assert_eq!(d.extents[0].file_offset, 2048 * 512);
        assert_eq!(d.extents[0].len, 100 * 512);
    }

    #[test]
    fn refusals_are_named() {
        let refuse = |text: &str| parse(text.as_bytes()).unwrap_err();
        let head = "# Disk DescriptorFile\n";
        assert!(matches!(
            refuse(&format!("{head}RW 10 VMFSSPARSE \"c-delta.vmdk\"\n")),
            DescriptorError::UnsupportedExtent { line: 2, .. }
        ));
        assert!(matches!(
            refuse(&format!("{head}RW 10 SPARSE \"c-s001.vmdk\" 7\n")),
            DescriptorError::BadExtentLine { line: 2, .. }
        ));
        assert!(matches!(
            refuse(&format!("{head}RW 10 ZERO\n")),
            DescriptorError::UnsupportedExtent { .. }
        ));
        assert!(matches!(
            refuse(&format!("{head}RDONLY 10 FLAT \"a\" 0\n")),
            DescriptorError::ExtentNotWritable { .. }
        ));
        for name in ["../a", "/etc/passwd", "dir/a", "a\\b", "", ".."] {
            assert!(
                matches!(
                    refuse(&format!("{head}RW 10 FLAT \"{name}\" 0\n")),
                    DescriptorError::ExtentPath { .. }
                ),
                "{name}"
            );
        }
        assert!(matches!(
            refuse(&format!("{head}parentCID=12345678\nRW 10 FLAT \"a\" 0\n")),
            DescriptorError::Child { .. }
        ));
        assert!(matches!(
            refuse(&format!(
                "{head}parentFileNameHint=\"base.vmdk\"\nRW 10 FLAT \"a\" 0\n"
            )),
            DescriptorError::Child { .. }
        ));
        assert_eq!(refuse(head), DescriptorError::NoExtents);
        assert!(matches!(
            refuse(&format!("{head}RW 0 FLAT \"a\" 0\n")),
            DescriptorError::BadExtentLine { .. }
        ));
        assert!(matches!(
            refuse(&format!("{head}RW 18446744073709551615 FLAT \"a\" 0\n")),
            DescriptorError::BadExtentLine { .. }
        ));
        assert!(matches!(
            refuse(&format!(
                "{head}RW 18014398509481983 FLAT \"a\" 0\nRW 18014398509481983 FLAT \"b\" 0\nRW 18014398509481983 FLAT \"c\" 0\n"
            )),
            DescriptorError::TooBig
        ));
        assert!(matches!(
            refuse(&format!("{head}RW 10 FLAT \"a\" 0 1\n")),
            DescriptorError::BadExtentLine { .. }
        ));
        assert!(matches!(
            refuse(&format!("{head}RW 10 FLAT \"a\n")),
            DescriptorError::BadExtentLine { .. }
        ));
        assert_eq!(
            parse(&[b'#', 0xFF, 0xFE]).unwrap_err(),
            DescriptorError::NotText
        );
        let big = vec![b' '; MAX_DESCRIPTOR_BYTES as usize + 1];
        assert!(matches!(
            parse(&big).unwrap_err(),
            DescriptorError::TooLarge { .. }
        ));
        let many: String = (0..=MAX_EXTENTS).map(|_| "RW 1 FLAT \"f\"\n").collect();
        assert_eq!(
            refuse(&format!("{head}{many}")),
            DescriptorError::TooManyExtents
        );
    }
}
