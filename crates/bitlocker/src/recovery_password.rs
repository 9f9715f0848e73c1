//! The 48-digit recovery password: 8 groups of 6 digits, each 11 times a 16-bit number; the 8
//! numbers are the 128-bit key that key stretching starts from.

use crate::error::RecoveryPasswordFault;
use crate::secret::Secret;

/// Largest value a group can hold: 11 × (2^16 − 1).
const GROUP_MAX: u32 = 11 * 0xFFFF;

/// Checks the first `count` complete groups of what has been typed so far, for a form that says
/// which group is wrong while the user types. Separators (dashes, spaces) are ignored; an
/// incomplete last group is not judged.
pub fn check_typed_groups(typed: &str) -> Result<(), RecoveryPasswordFault> {
    let digits = digits_of(typed)?;
    if digits.len() > 48 {
        return Err(RecoveryPasswordFault::WrongLength {
            digits: digits.len(),
        });
    }
    for (i, group) in digits.chunks_exact(6).enumerate() {
        group_value(group, i)?;
    }
    Ok(())
}

/// The 16-byte key of a recovery password written with or without dashes or spaces.
pub fn recovery_key(text: &str) -> Result<Secret, RecoveryPasswordFault> {
    let digits = digits_of(text)?;
    if digits.len() != 48 {
        return Err(RecoveryPasswordFault::WrongLength {
            digits: digits.len(),
        });
    }
    let mut key = Vec::with_capacity(16);
    for (i, group) in digits.chunks_exact(6).enumerate() {
        key.extend_from_slice(&group_value(group, i)?.to_le_bytes());
    }
    Ok(Secret::new(key))
}

fn digits_of(text: &str) -> Result<Vec<u8>, RecoveryPasswordFault> {
    let mut digits = Vec::with_capacity(48);
    for c in text.trim().chars() {
        match c {
            '0'..='9' => digits.push(c as u8 - b'0'),
            '-' | ' ' | '\u{2010}'..='\u{2015}' | '\u{2212}' | '\t' => {}
            _ => return Err(RecoveryPasswordFault::NotADigit),
        }
    }
    Ok(digits)
}

fn group_value(group: &[u8], index: usize) -> Result<u16, RecoveryPasswordFault> {
    let value = group.iter().fold(0u32, |v, d| v * 10 + *d as u32);
    if value % 11 != 0 || value > GROUP_MAX {
        return Err(RecoveryPasswordFault::MistypedGroup {
            group: index as u8 + 1,
        });
    }
    Ok((value / 11) as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "235818-357951-253979-013365-241120-245575-342914-591910";

    #[test]
    fn accepts_separators_and_none() {
        let a = recovery_key(GOOD).unwrap();
        let b = recovery_key(&GOOD.replace('-', " ")).unwrap();
        let c = recovery_key(&GOOD.replace('-', "")).unwrap();
        assert_eq!(a.expose(), b.expose());
        assert_eq!(a.expose(), c.expose());
        assert_eq!(&a.expose()[0..2], &(235818u32 / 11).to_le_bytes()[0..2]);
    }

    #[test]
    fn names_the_mistyped_group() {
        let typo = GOOD.replacen("253979", "253978", 1);
        assert_eq!(
            recovery_key(&typo).unwrap_err(),
            RecoveryPasswordFault::MistypedGroup { group: 3 }
        );
        // 11 × 65536 is a multiple of 11 but too large for 16 bits.
        let too_big = GOOD.replacen("591910", "720896", 1);
        assert_eq!(
            recovery_key(&too_big).unwrap_err(),
            RecoveryPasswordFault::MistypedGroup { group: 8 }
        );
        assert_eq!(
            recovery_key("235818-357951").unwrap_err(),
            RecoveryPasswordFault::WrongLength { digits: 12 }
        );
        assert_eq!(
            recovery_key("23581x").unwrap_err(),
            RecoveryPasswordFault::NotADigit
        );
    }

    #[test]
    fn judges_complete_groups_while_typing() {
        assert_eq!(check_typed_groups("235818-35795"), Ok(()));
        assert_eq!(
            check_typed_groups("235818-357952"),
            Err(RecoveryPasswordFault::MistypedGroup { group: 2 })
        );
    }
}
