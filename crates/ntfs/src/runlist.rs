//! Mapping pairs: how a non-resident attribute's VCNs map to clusters of the volume.

use crate::NtfsError;
use crate::{Location, Structure};

/// A run of `length` clusters starting at `vcn`; `lcn` is `None` for a sparse (unallocated) run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// First virtual cluster of the run within the attribute.
    pub vcn: u64,
    /// First volume cluster, or `None` for a sparse run (reads as zeros).
    pub lcn: Option<u64>,
    /// Clusters in the run.
    pub length: u64,
}

/// Decodes mapping pairs that start at VCN `first_vcn`.
pub fn decode_runlist(b: &[u8], first_vcn: u64) -> Result<Vec<Run>, NtfsError> {
    let corrupt = |m: &str| NtfsError::damaged(Structure::Runlist, format!("mapping pairs: {m}"));
    let mut runs = Vec::new();
    let mut pos = 0usize;
    let mut vcn = first_vcn;
    let mut lcn: i64 = 0;
    loop {
        let header = *b
            .get(pos)
            .ok_or_else(|| corrupt("no terminating zero byte"))?;
        if header == 0 {
            break;
        }
        let len_bytes = (header & 0x0F) as usize;
        let off_bytes = (header >> 4) as usize;
        if len_bytes == 0 || len_bytes > 8 || off_bytes > 8 {
            return Err(corrupt(&format!("invalid header byte {header:#x}")));
        }
        let field = |start: usize, n: usize, signed: bool| -> Result<i64, NtfsError> {
            let s = b
                .get(start..start + n)
                .ok_or_else(|| corrupt("truncated"))?;
            let mut v: u64 = 0;
            for (i, byte) in s.iter().enumerate() {
                v |= (*byte as u64) << (8 * i);
            }
            if signed && n < 8 && s[n - 1] & 0x80 != 0 {
                v |= !0u64 << (8 * n);
            }
            Ok(v as i64)
        };
        let length = field(pos + 1, len_bytes, false)?;
        if length <= 0 {
            return Err(corrupt("run of zero or negative length"));
        }
        let run_lcn = if off_bytes == 0 {
            None
        } else {
            lcn = lcn
                .checked_add(field(pos + 1 + len_bytes, off_bytes, true)?)
                .ok_or_else(|| corrupt("LCN overflow"))?;
            if lcn < 0 {
                return Err(corrupt("negative LCN"));
            }
            Some(lcn as u64)
        };
        runs.push(Run {
            vcn,
            lcn: run_lcn,
            length: length as u64,
        });
        vcn = vcn
            .checked_add(length as u64)
            .ok_or_else(|| corrupt("VCN overflow"))?;
        pos += 1 + len_bytes + off_bytes;
    }
    Ok(runs)
}

/// Maps the byte range `offset .. offset+len` of an attribute stream to volume byte ranges
/// (`None` = sparse, reads as zeros). Fails when the range is not covered by the runs.
pub fn map_range(
    runs: &[Run],
    cluster_size: u64,
    offset: u64,
    len: u64,
) -> Result<Vec<(Option<u64>, u64)>, NtfsError> {
    // Run fields come from a damaged image: a VCN or LCN near 2^64 must be an error, not an
    // overflow.
    let overflow = || {
        NtfsError::damaged(
            Structure::Runlist,
            format!("stream range {offset}+{len} maps beyond the largest byte offset"),
        )
    };
    let mut out = Vec::new();
    let mut pos = offset;
    let end = offset.checked_add(len).ok_or_else(overflow)?;
    while pos < end {
        let vcn = pos / cluster_size;
        let run = runs
            .iter()
            .find(|r| vcn >= r.vcn && vcn - r.vcn < r.length)
            .ok_or_else(|| {
                NtfsError::damaged_at(
                    Structure::Runlist,
                    Location::StreamOffset { offset: pos },
                    format!("stream offset {pos} is not covered by the attribute's runs"),
                )
            })?;
        let run_end = run
            .vcn
            .checked_add(run.length)
            .and_then(|e| e.checked_mul(cluster_size))
            .ok_or_else(overflow)?;
        let n = run_end.min(end) - pos;
        let within = pos - run.vcn * cluster_size;
        let at = match run.lcn {
            Some(l) => Some(
                l.checked_mul(cluster_size)
                    .and_then(|b| b.checked_add(within))
                    .ok_or_else(overflow)?,
            ),
            None => None,
        };
        out.push((at, n));
        pos += n;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_relative_and_sparse_runs() {
        // 0x21: len 1 byte, off 2 bytes. Run 1: 0x10 clusters at 0x1000.
        // 0x01: sparse 5 clusters. 0x11: 3 clusters at LCN -0x10 relative (0xFF0).
        let b = [0x21, 0x10, 0x00, 0x10, 0x01, 0x05, 0x11, 0x03, 0xF0, 0x00];
        let runs = decode_runlist(&b, 0).unwrap();
        assert_eq!(
            runs,
            vec![
                Run {
                    vcn: 0,
                    lcn: Some(0x1000),
                    length: 0x10
                },
                Run {
                    vcn: 0x10,
                    lcn: None,
                    length: 5
                },
                Run {
                    vcn: 0x15,
                    lcn: Some(0xFF0),
                    length: 3
                },
            ]
        );
        let m = map_range(&runs, 512, 0x10 * 512 - 4, 8 + 5 * 512).unwrap();
        assert_eq!(
            m,
            vec![
                (Some(0x1010 * 512 - 4), 4),
                (None, 5 * 512),
                (Some(0xFF0 * 512), 4)
            ]
        );
        assert!(decode_runlist(&[0x21, 0x10], 0).is_err());
    }
}
