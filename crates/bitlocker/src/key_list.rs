//! A key list: recovery passwords exported from Entra ID or Active Directory as CSV (`Id,Key`,
//! one protector GUID and its 48-digit recovery password per line).

use crate::error::BitLockerError;
use crate::guid::Guid;

/// One line of a key list. `Debug` hides the password.
#[derive(Clone)]
pub struct KeyListEntry {
    /// The protector ("Key ID") the password belongs to.
    pub id: Guid,
    /// The recovery password as written.
    pub recovery_password: String,
}

impl std::fmt::Debug for KeyListEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyListEntry({}, <recovery password>)", self.id)
    }
}

impl Drop for KeyListEntry {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.recovery_password);
    }
}

/// Reads a key list. A header line (any line whose first field is not a GUID and which has no
/// 48-digit second field, such as `Id,Key`, `KeyId,RecoveryKey` or `"Key ID","Recovery Key"`) and
/// blank lines are skipped; fields may be quoted; the separator is a comma, semicolon or tab; the
/// GUID may have braces; the password may use dashes or spaces. Further columns are ignored.
pub fn parse_key_list(text: &str) -> Result<Vec<KeyListEntry>, BitLockerError> {
    let mut entries = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim().trim_start_matches('\u{feff}');
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line
            .split([',', ';', '\t'])
            .map(|f| f.trim().trim_matches('"').trim())
            .collect();
        let id = fields.first().and_then(|f| Guid::parse(f));
        let password = fields.get(1).filter(|f| {
            f.chars().filter(|c| c.is_ascii_digit()).count() == 48
                && f.chars()
                    .all(|c| c.is_ascii_digit() || c == '-' || c == ' ')
        });
        match (id, password) {
            (Some(id), Some(password)) => entries.push(KeyListEntry {
                id,
                recovery_password: password.to_string(),
            }),
            (None, None) if entries.is_empty() => {} // a header
            _ => return Err(BitLockerError::KeyListLine { line: index + 1 }),
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_header_variants_and_separators() {
        let text = "\u{feff}\"Id\",\"Key\"\r\n\
            {3E55195C-8811-4D9B-97B4-2B9E5F8F5384},\"235818-357951-253979-013365-241120-245575-342914-591910\"\r\n\
            \r\n\
            64311dea-4587-4029-924a-ba299647998e;235818 357951 253979 013365 241120 245575 342914 591910\n";
        let list = parse_key_list(text).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(
            list[0].id.to_string(),
            "3E55195C-8811-4D9B-97B4-2B9E5F8F5384"
        );
        assert_eq!(
            list[1].id.to_string(),
            "64311DEA-4587-4029-924A-BA299647998E"
        );
        assert!(!format!("{list:?}").contains("235818"));
    }

    #[test]
    fn refuses_a_broken_line_and_names_it() {
        let text = "KeyId,RecoveryKey\n3e55195c-8811-4d9b-97b4-2b9e5f8f5384,12345\n";
        assert!(matches!(
            parse_key_list(text),
            Err(BitLockerError::KeyListLine { line: 2 })
        ));
    }
}
