//! An output plan as whole-page writes, for storage that is written in pages of 512 bytes (an
//! Azure page blob's `Put Page`): every run of pages a change touches, with the bytes at its edges
//! that no change covers read from the image as it is. Shared by the command line and the page,
//! which both fix page blobs where they live.

use crate::{FileFill, FileWrite, OutputPlan};
use kaifuku_io::ReadAt;

/// The page size: a page write covers whole pages, at page-aligned offsets.
pub const PAGE: u64 = 512;

/// The changes of `plan` as whole-page writes: every run of pages a write or fill touches, with
/// the bytes at its edges that no change covers read from `source` (the blob as it is), then the
/// changes laid over them. Runs are in offset order and do not overlap; none is longer than
/// `max_run` bytes (the journal reset's fill is not held whole).
pub fn page_runs<R: ReadAt>(
    plan: &OutputPlan,
    source: &R,
    max_run: u64,
    mut each: impl FnMut(u64, &[u8]) -> Result<(), String>,
) -> Result<(), String> {
    enum Change<'a> {
        Bytes(&'a FileWrite),
        Fill(&'a FileFill),
    }
    let mut changes: Vec<(u64, u64, Change)> = plan
        .writes
        .iter()
        .map(|w| (w.file_offset, w.end(), Change::Bytes(w)))
        .chain(
            plan.fills
                .iter()
                .map(|f| (f.file_offset, f.file_offset + f.len, Change::Fill(f))),
        )
        .filter(|(s, e, _)| e > s)
        .collect();
    changes.sort_by_key(|c| c.0);
    // Page-aligned runs covering the changes (touching or overlapping pages merged).
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for (s, e, _) in &changes {
        let (a, b) = (s / PAGE * PAGE, e.div_ceil(PAGE) * PAGE);
        match runs.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => runs.push((a, b)),
        }
    }
    let size = source.size();
    let mut first_change = 0usize;
    for (run_start, run_end) in runs {
        if run_end > size {
            return Err(format!(
                "a change ends at byte {run_end}, past the blob's {size} bytes"
            ));
        }
        let mut at = run_start;
        while at < run_end {
            let end = (at + max_run.max(PAGE) / PAGE * PAGE).min(run_end);
            let mut buf = vec![0u8; (end - at) as usize];
            // What the changes cover of this window; the rest keeps the blob's bytes.
            let mut covered = vec![false; buf.len()];
            while first_change < changes.len() && changes[first_change].1 <= at {
                first_change += 1;
            }
            for (s, e, c) in changes[first_change..].iter() {
                if *s >= end {
                    break;
                }
                let (from, to) = ((*s).max(at), (*e).min(end));
                if from >= to {
                    continue;
                }
                let (bf, bt) = ((from - at) as usize, (to - at) as usize);
                match c {
                    Change::Bytes(w) => buf[bf..bt].copy_from_slice(
                        &w.bytes[(from - w.file_offset) as usize..(to - w.file_offset) as usize],
                    ),
                    Change::Fill(f) => buf[bf..bt].fill(f.byte),
                }
                covered[bf..bt].fill(true);
            }
            // Only the pages at a run's edges can be partly covered: read what they keep.
            for page in (0..buf.len()).step_by(PAGE as usize) {
                let p = &covered[page..page + PAGE as usize];
                if p.iter().all(|c| *c) {
                    continue;
                }
                let mut orig = vec![0u8; PAGE as usize];
                source
                    .read_at(at + page as u64, &mut orig)
                    .map_err(|e| e.to_string())?;
                for (i, c) in p.iter().enumerate() {
                    if !c {
                        buf[page + i] = orig[i];
                    }
                }
            }
            each(at, &buf)?;
            at = end;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FileWriteLabel, WriteHow};

    #[test]
    fn changes_become_whole_pages_with_their_edges_kept() {
        let image: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8).collect();
        let label = |a, b| FileWriteLabel::virtual_bytes(a, b, WriteHow::Bytes);
        let plan = OutputPlan {
            writes: vec![
                FileWrite {
                    file_offset: 10,
                    bytes: vec![1; 5],
                    label: label(10, 15),
                },
                FileWrite {
                    file_offset: 600,
                    bytes: vec![2; 4],
                    label: label(600, 604),
                },
            ],
            fills: vec![FileFill {
                file_offset: 3000,
                len: 2100,
                byte: 0xFF,
                label: label(3000, 5100),
            }],
            file_size: None,
        };
        let mut got = Vec::new();
        page_runs(&plan, &image, 1024, |at, b| {
            got.push((at, b.to_vec()));
            Ok(())
        })
        .unwrap();
        let mut expected = image.clone();
        expected[10..15].fill(1);
        expected[600..604].fill(2);
        expected[3000..5100].fill(0xFF);
        // Pages 0-1 (one run), then 2560..5120 cut into windows of at most 1024 bytes.
        let starts: Vec<u64> = got.iter().map(|g| g.0).collect();
        assert_eq!(starts, vec![0, 2560, 3584, 4608]);
        let mut rebuilt = image.clone();
        for (at, b) in &got {
            assert_eq!(at % PAGE, 0);
            assert_eq!(b.len() as u64 % PAGE, 0);
            assert!(b.len() <= 1024);
            rebuilt[*at as usize..*at as usize + b.len()].copy_from_slice(b);
        }
        assert_eq!(rebuilt, expected);
    }
}
