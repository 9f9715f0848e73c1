//! NTFS timestamps (100-ns ticks since 1601-01-01 UTC) as UTC calendar strings, computed without a
//! clock or time-zone data so the core stays pure.

/// Ticks between 1601-01-01 and 1970-01-01.
const EPOCH_DIFF_TICKS: i64 = 116_444_736_000_000_000;

/// Seconds since the Unix epoch (floor) and the remaining 100-ns ticks.
pub fn to_unix(ticks: u64) -> (i64, u32) {
    // Ticks are unsigned on disk: a damaged field of 2^63 or more is a (far-future) time, not a
    // negative number, and must not overflow.
    let t = i128::from(ticks) - i128::from(EPOCH_DIFF_TICKS);
    (
        t.div_euclid(10_000_000) as i64,
        t.rem_euclid(10_000_000) as u32,
    )
}

/// RFC 3339 UTC, e.g. `2024-07-19T04:09:13Z`; a fraction is shown only when it is not zero.
pub fn format_utc(ticks: u64) -> String {
    let (secs, frac) = to_unix(ticks);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    if frac != 0 {
        let f = format!("{frac:07}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// NTFS ticks of a UTC calendar time (for rules and tests).
pub fn from_utc(y: i64, m: u32, d: u32, hh: u32, mm: u32, ss: u32) -> u64 {
    let days = days_from_civil(y, m, d);
    let secs = days * 86_400 + (hh * 3600 + mm * 60 + ss) as i64;
    (secs * 10_000_000 + EPOCH_DIFF_TICKS) as u64
}

// Howard Hinnant's public-domain civil-calendar algorithms.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_known_dates() {
        let t = from_utc(2024, 7, 19, 4, 9, 13);
        assert_eq!(format_utc(t), "2024-07-19T04:09:13Z");
        assert_eq!(format_utc(t + 1_234_500), "2024-07-19T04:09:13.12345Z");
        assert_eq!(format_utc(0), "1601-01-01T00:00:00Z");
        assert_eq!(
            format_utc(from_utc(2000, 2, 29, 23, 59, 59)),
            "2000-02-29T23:59:59Z"
        );
        // 1970-01-01 is the Unix epoch.
        assert_eq!(to_unix(from_utc(1970, 1, 1, 0, 0, 0)), (0, 0));
    }
}
