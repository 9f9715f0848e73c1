//! Reparse points that make a directory a link: junctions (mount points) and symbolic links.
//!
//! A path walk that meets one must not take the link's own (usually empty) index for the directory
//! Windows would open: the files are where the link points.

use crate::bytes::{slice, u16_at, u32_at, utf16_name, utf16_units};
use crate::layout::reparse_point;
use crate::record::FileRecord;
use crate::volume::Volume;
use crate::AttributeType;
use crate::NtfsError;
use kaifuku_io::ReadAt;

/// IO_REPARSE_TAG_MOUNT_POINT: a junction (or a volume mount point).
pub const TAG_MOUNT_POINT: u32 = 0xA000_0003;
/// IO_REPARSE_TAG_SYMLINK.
pub const TAG_SYMLINK: u32 = 0xA000_000C;
/// SYMLINK_FLAG_RELATIVE: the target is relative to the link's parent directory.
const SYMLINK_RELATIVE: u32 = 1;

/// Where a reparse point leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReparseTarget {
    /// A junction or symbolic link.
    Link {
        /// The target as stored (`\??\C:\...`, `C:\...`, or a relative path): the substitute
        /// name, or the print name when the substitute name is empty.
        target: String,
        /// A symbolic link relative to the link's own directory.
        relative: bool,
    },
    /// Some other kind of reparse point (deduplication, cloud files, ...).
    Other {
        /// Its reparse tag.
        tag: u32,
    },
}

impl ReparseTarget {
    /// The target as a path on the volume that holds Windows (`C:`), when it is one: `\??\C:\X`
    /// and `C:\X` give `\X`; a relative link resolves against `parent` (the link's directory).
    pub fn on_windows_volume(&self, parent: &str) -> Option<String> {
        let ReparseTarget::Link { target, relative } = self else {
            return None;
        };
        if *relative {
            let mut parts: Vec<&str> = parent.split('\\').filter(|c| !c.is_empty()).collect();
            for c in target.split('\\').filter(|c| !c.is_empty()) {
                match c {
                    "." => {}
                    ".." => {
                        parts.pop()?;
                    }
                    c => parts.push(c),
                }
            }
            return Some(format!("\\{}", parts.join("\\")));
        }
        let t = target.strip_prefix("\\??\\").unwrap_or(target);
        let rest = t
            .strip_prefix("C:")
            .or_else(|| t.strip_prefix("c:"))
            .filter(|r| r.starts_with('\\'))?;
        Some(rest.to_string())
    }
}

impl<R: ReadAt> Volume<R> {
    /// The link a record's `$REPARSE_POINT` makes, if it has one.
    pub fn reparse_target(&self, rec: &FileRecord) -> Result<Option<ReparseTarget>, NtfsError> {
        let Some(v) = self.value(rec, AttributeType::ReparsePoint, "")? else {
            return Ok(None);
        };
        let len = match &v {
            crate::volume::AttrValue::Resident(b) => b.len(),
            crate::volume::AttrValue::NonResident(s) => s.data_size.min(16 * 1024) as usize,
        };
        let b = self.read_value(&v, 0, len)?;
        let tag = u32_at(&b, reparse_point::TAG)?;
        let (buffer_at, relative) = match tag {
            TAG_MOUNT_POINT => (reparse_point::MOUNT_POINT_PATH_BUFFER, false),
            TAG_SYMLINK => (
                reparse_point::SYMLINK_PATH_BUFFER,
                u32_at(&b, reparse_point::SYMLINK_FLAGS)? & SYMLINK_RELATIVE != 0,
            ),
            tag => return Ok(Some(ReparseTarget::Other { tag })),
        };
        let name = |off_at: usize, len_at: usize| -> Result<String, NtfsError> {
            let off = u16_at(&b, off_at)? as usize;
            let n = u16_at(&b, len_at)? as usize;
            Ok(utf16_name(&utf16_units(slice(&b, buffer_at + off, n)?)))
        };
        // The substitute name is what Windows follows; the print name is for people.
        let substitute = name(
            reparse_point::SUBSTITUTE_NAME_OFFSET,
            reparse_point::SUBSTITUTE_NAME_LENGTH,
        )?;
        let target = if substitute.is_empty() {
            name(
                reparse_point::PRINT_NAME_OFFSET,
                reparse_point::PRINT_NAME_LENGTH,
            )?
        } else {
            substitute
        };
        Ok(Some(ReparseTarget::Link { target, relative }))
    }
}

#[cfg(test)]
mod tests {
    use super::ReparseTarget;

    fn link(t: &str, relative: bool) -> ReparseTarget {
        ReparseTarget::Link {
            target: t.into(),
            relative,
        }
    }

    #[test]
    fn targets_on_the_windows_volume() {
        assert_eq!(
            link("\\??\\C:\\Windows\\CS", false).on_windows_volume("\\x"),
            Some("\\Windows\\CS".into())
        );
        assert_eq!(
            link("c:\\A", false).on_windows_volume("\\x"),
            Some("\\A".into())
        );
        assert_eq!(link("\\??\\D:\\A", false).on_windows_volume("\\x"), None);
        assert_eq!(
            link("\\??\\Volume{1234}\\A", false).on_windows_volume("\\x"),
            None
        );
        assert_eq!(
            link("..\\CS-real", true).on_windows_volume("\\Windows\\drivers"),
            Some("\\Windows\\CS-real".into())
        );
        assert_eq!(link("..\\..\\..", true).on_windows_volume("\\A"), None);
        assert_eq!(
            ReparseTarget::Other { tag: 1 }.on_windows_volume("\\"),
            None
        );
    }
}
