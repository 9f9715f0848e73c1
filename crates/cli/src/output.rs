//! Turning planned file writes into files: a sparse copy with the writes applied, an in-place edit
//! guarded by an undo file written and synced first, and restoring from an undo file.

use crate::source::FileSource;
use kaifuku_container::OutputPlan;
use kaifuku_io::ReadAt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use kaifuku_rescue::undo::{fnv1a, fnv1a_fill, UndoEntry, MAGIC as UNDO_MAGIC};

const COPY_CHUNK: usize = 1 << 20;

pub fn write_undo(path: &Path, image_size: u64, entries: &[UndoEntry]) -> io::Result<()> {
    let tmp = partial(path);
    {
        let mut f = File::create(&tmp)?;
        // The encoding is shared with the web page, so both write identical undo files.
        f.write_all(&kaifuku_rescue::undo::encode(image_size, entries))?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    sync_dir(path);
    Ok(())
}

pub fn read_undo(path: &Path) -> io::Result<(u64, Vec<UndoEntry>)> {
    let bad = |m: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a kaifuku undo file: {m}", path.display()),
        )
    };
    let mut f = io::BufReader::new(File::open(path)?);
    let mut magic = [0u8; 16];
    f.read_exact(&mut magic).map_err(|_| bad("too short"))?;
    if &magic != UNDO_MAGIC {
        return Err(bad("wrong signature"));
    }
    let mut u = [0u8; 8];
    let mut next = |f: &mut io::BufReader<File>| -> io::Result<u64> {
        f.read_exact(&mut u).map_err(|_| bad("truncated"))?;
        Ok(u64::from_le_bytes(u))
    };
    let size = next(&mut f)?;
    let count = next(&mut f)?;
    let file_len = std::fs::metadata(path)?.len();
    if count > file_len / 24 {
        return Err(bad("entry count does not fit the file"));
    }
    let mut entries = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let offset = next(&mut f)?;
        let len = next(&mut f)?;
        let new_hash = next(&mut f)?;
        if len > file_len {
            return Err(bad("entry longer than the file"));
        }
        let mut original = vec![0u8; len as usize];
        f.read_exact(&mut original).map_err(|_| bad("truncated"))?;
        entries.push(UndoEntry {
            offset,
            original,
            new_hash,
        });
    }
    Ok((size, entries))
}

fn partial(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".partial");
    PathBuf::from(s)
}

fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

fn undo_entries(source: &FileSource, plan: &OutputPlan) -> io::Result<Vec<UndoEntry>> {
    let mut out = Vec::new();
    for w in &plan.writes {
        let mut original = vec![0u8; w.bytes.len()];
        source.read_at(w.file_offset, &mut original)?;
        out.push(UndoEntry {
            offset: w.file_offset,
            original,
            new_hash: fnv1a(&w.bytes),
        });
    }
    for f in &plan.fills {
        let mut original = vec![0u8; f.len as usize];
        source.read_at(f.file_offset, &mut original)?;
        out.push(UndoEntry {
            offset: f.file_offset,
            original,
            new_hash: fnv1a_fill(f.byte, f.len),
        });
    }
    out.sort_by_key(|e| e.offset);
    Ok(out)
}

/// Applies the planned writes and fills to an open output file.
fn apply(dst: &File, plan: &OutputPlan) -> io::Result<()> {
    for w in &plan.writes {
        dst.write_all_at(&w.bytes, w.file_offset)?;
    }
    for f in &plan.fills {
        let chunk = vec![f.byte; (f.len as usize).min(COPY_CHUNK)];
        let mut done = 0u64;
        while done < f.len {
            let n = (f.len - done).min(COPY_CHUNK as u64) as usize;
            dst.write_all_at(&chunk[..n], f.file_offset + done)?;
            done += n as u64;
        }
    }
    Ok(())
}

/// Copies `input` to `output` keeping holes (SEEK_DATA/SEEK_HOLE where the file system has them,
/// otherwise skipping all-zero chunks), applies `writes`, and optionally writes the undo file.
/// The output appears under its name only when complete.
pub fn write_copy(
    input: &Path,
    output: &Path,
    plan: &OutputPlan,
    undo: Option<&Path>,
    source: &FileSource,
) -> io::Result<()> {
    let size = source.size();
    let tmp = partial(output);
    let result = (|| {
        let src = File::open(input)?;
        let dst = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        dst.set_len(size)?;
        copy_sparse(&src, &dst, size)?;
        apply(&dst, plan)?;
        dst.sync_all()?;
        if let Some(u) = undo {
            write_undo(u, size, &undo_entries(source, plan)?)?;
        }
        std::fs::rename(&tmp, output)?;
        sync_dir(output);
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn copy_sparse(src: &File, dst: &File, size: u64) -> io::Result<()> {
    use nix::unistd::{lseek, Whence};
    let mut buf = vec![0u8; COPY_CHUNK];
    let mut pos: u64 = 0;
    while pos < size {
        // Next data region; on file systems or devices without SEEK_DATA, treat all as data.
        let data = match lseek(src, pos as i64, Whence::SeekData) {
            Ok(d) => d as u64,
            Err(nix::errno::Errno::ENXIO) => break, // only a hole remains
            Err(_) => pos,
        };
        let hole = match lseek(src, data as i64, Whence::SeekHole) {
            Ok(h) => (h as u64).min(size),
            Err(_) => size,
        };
        let mut at = data;
        while at < hole {
            let n = ((hole - at) as usize).min(COPY_CHUNK);
            src.read_exact_at(&mut buf[..n], at)?;
            // Zero chunks stay holes in the output (it was set_len to the full size).
            if buf[..n].iter().any(|b| *b != 0) {
                dst.write_all_at(&buf[..n], at)?;
            }
            at += n as u64;
        }
        pos = hole.max(pos + 1);
    }
    Ok(())
}

/// Edits the image itself: the undo file is written and synced before the first byte changes.
pub fn write_in_place(
    image: &Path,
    plan: &OutputPlan,
    undo: &Path,
    source: &FileSource,
) -> io::Result<()> {
    write_undo(undo, source.size(), &undo_entries(source, plan)?)?;
    let f = OpenOptions::new().write(true).open(image)?;
    apply(&f, plan)?;
    f.sync_all()
}

/// Restores the original bytes recorded in an undo file. Refuses when the image is not the one
/// the fix wrote (different size, or the fixed bytes changed since), unless `force`.
pub fn undo(image: &Path, undo_file: &Path, force: bool) -> Result<usize, String> {
    let (size, entries) = read_undo(undo_file).map_err(|e| e.to_string())?;
    let source =
        FileSource::open(image).map_err(|e| format!("cannot open {}: {e}", image.display()))?;
    if source.size() != size {
        return Err(format!(
            "{} is {} bytes but the undo file was made for a {size}-byte image; is it the right image?",
            image.display(),
            source.size()
        ));
    }
    for e in &entries {
        let mut cur = vec![0u8; e.original.len()];
        source
            .read_at(e.offset, &mut cur)
            .map_err(|er| format!("reading {}: {er}", image.display()))?;
        if fnv1a(&cur) != e.new_hash && cur != e.original && !force {
            return Err(format!(
                "bytes at offset {} are neither what the fix wrote nor the originals: the image changed since the fix (was it booted?). Restoring could damage it; use --force to restore anyway",
                e.offset
            ));
        }
    }
    let f = OpenOptions::new()
        .write(true)
        .open(image)
        .map_err(|e| format!("cannot open {} for writing: {e}", image.display()))?;
    for e in &entries {
        f.write_all_at(&e.original, e.offset)
            .map_err(|er| format!("writing {}: {er}", image.display()))?;
    }
    f.sync_all().map_err(|e| e.to_string())?;
    Ok(entries.len())
}
