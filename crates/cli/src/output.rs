//! Turning planned file writes into files: a sparse copy with the writes applied (or the image
//! written onto a block device), an in-place edit guarded by an undo file made durable first, and
//! restoring from an undo file.
//!
//! Files are written under a temporary name in their target directory, synced, then renamed; a run
//! that fails removes what it created, so it leaves either complete files or nothing.

use crate::paths::Target;
use crate::source::{split, FileSource};
use kaifuku_container::vmdk_descriptor::{DiskDescriptor, ExtentKind};
use kaifuku_container::{Format, OutputPlan};
use kaifuku_io::ReadAt;
use kaifuku_rescue::undo::{self, Identity, Piece, UndoFile, CHUNK};
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A file being written under a temporary name; removed when dropped unless committed.
struct TempFile {
    path: PathBuf,
    file: File,
    committed: bool,
}

impl TempFile {
    /// A new file `.NAME.kaifuku-PID-N.tmp` in `dir` (never an existing one).
    fn create(dir: &Path, name: &OsStr) -> io::Result<TempFile> {
        let mut n = 0u32;
        loop {
            let mut tmp = OsStr::new(".").to_owned();
            tmp.push(name);
            tmp.push(format!(".kaifuku-{}-{n}.tmp", std::process::id()));
            let path = dir.join(tmp);
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => {
                    return Ok(TempFile {
                        path,
                        file,
                        committed: false,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// Renames the file to `to`; with `replace` false, fails if `to` exists.
    fn commit(mut self, to: &Path, replace: bool) -> io::Result<()> {
        if replace {
            fs::rename(&self.path, to)?;
        } else {
            rename_noreplace(&self.path, to)?;
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
    match renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE) {
        Ok(()) => Ok(()),
        // File systems without RENAME_NOREPLACE: check, then rename.
        Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOSYS) => {
            if fs::symlink_metadata(to).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} appeared meanwhile", to.display()),
                ));
            }
            fs::rename(from, to)
        }
        Err(e) => Err(io::Error::from(e)),
    }
}

pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Context for an error: `what` failed because of `e`.
fn ctx(what: impl std::fmt::Display) -> impl FnOnce(io::Error) -> String {
    move |e| format!("{what}: {e}")
}

fn file_name_of(t: &Target) -> std::ffi::OsString {
    t.final_path()
        .file_name()
        .map(|n| n.to_owned())
        .unwrap_or_else(|| "kaifuku".into())
}

/// The undo file written and synced under a temporary name next to its target.
fn undo_temp(t: &Target, pieces: &[Piece], source: &FileSource) -> Result<TempFile, String> {
    let dir = t.dir();
    let tmp = TempFile::create(&dir, &file_name_of(t)).map_err(ctx(format!(
        "cannot create the undo file in {}",
        dir.display()
    )))?;
    let result = (|| {
        let mut w = BufWriter::with_capacity(CHUNK, &tmp.file);
        undo::write_to(pieces, source, |b| w.write_all(b))?;
        w.flush()?;
        drop(w);
        tmp.file.sync_all()
    })();
    result.map_err(ctx(format!(
        "cannot write the undo file in {}",
        dir.display()
    )))?;
    Ok(tmp)
}

/// Makes the synced undo file visible under its name (never replacing a file) and durable.
fn commit_undo(tmp: TempFile, t: &Target) -> Result<PathBuf, String> {
    let to = t.final_path();
    tmp.commit(&to, false)
        .map_err(ctx(format!("cannot create the undo file {}", to.display())))?;
    if let Err(e) = sync_dir(&t.dir()) {
        let _ = fs::remove_file(&to);
        return Err(format!(
            "cannot make the undo file {} durable: {e}",
            to.display()
        ));
    }
    Ok(to)
}

/// The disk's planned writes and fills as one plan per data file of a disk read through a VMware
/// descriptor: a flat part's at its place in the file, a sparse part's mapped through the
/// extent's own grain tables — refused, before anything is written, when a change lands in a
/// grain with no space in the file.
pub fn per_file_plans(source: &FileSource, plan: &OutputPlan) -> Result<Vec<OutputPlan>, String> {
    use kaifuku_container::{FileFill, FileWrite};
    use kaifuku_io::{Patch, PatchData};
    let parts = source.parts();
    let mut plans: Vec<OutputPlan> = parts
        .iter()
        .map(|_| OutputPlan {
            writes: Vec::new(),
            fills: Vec::new(),
            file_size: None,
        })
        .collect();
    let mut sparse: Vec<Vec<Patch<()>>> = parts.iter().map(|_| Vec::new()).collect();
    let outside = |offset: u64| {
        format!(
            "a change at disk offset {offset} lies outside the disk's data files — please report this"
        )
    };
    for w in &plan.writes {
        let mut covered = 0u64;
        for (i, at, within, n) in split(parts, w.file_offset, w.bytes.len() as u64) {
            let bytes = w.bytes[within as usize..(within + n) as usize].to_vec();
            covered += n;
            if parts[i].sparse.is_some() {
                sparse[i].push(Patch {
                    offset: at,
                    data: PatchData::Bytes(bytes),
                    label: (),
                });
            } else {
                plans[i].writes.push(FileWrite {
                    file_offset: at,
                    bytes,
                    label: w.label.clone(),
                });
            }
        }
        if covered != w.bytes.len() as u64 {
            return Err(outside(w.file_offset));
        }
    }
    for f in &plan.fills {
        let mut covered = 0u64;
        for (i, at, _, n) in split(parts, f.file_offset, f.len) {
            covered += n;
            if parts[i].sparse.is_some() {
                sparse[i].push(Patch {
                    offset: at,
                    data: PatchData::Fill {
                        byte: f.byte,
                        len: n,
                    },
                    label: (),
                });
            } else {
                plans[i].fills.push(FileFill {
                    file_offset: at,
                    len: n,
                    byte: f.byte,
                    label: f.label.clone(),
                });
            }
        }
        if covered != f.len {
            return Err(outside(f.file_offset));
        }
    }
    for ((part, patches), out) in parts.iter().zip(&sparse).zip(plans.iter_mut()) {
        if let (Some(c), false) = (&part.sparse, patches.is_empty()) {
            let mapped = c
                .plan_output(patches)
                .map_err(|e| format!("{}: {e}", part.path.display()))?;
            if mapped.file_size.is_some() {
                return Err(format!(
                    "{}: the change would resize this data file, which kaifuku does not do",
                    part.path.display()
                ));
            }
            *out = mapped;
        }
    }
    Ok(plans)
}

/// Applies each data file's plan (from [`per_file_plans`]) to its open file and syncs it.
fn apply_per_file(files: &[File], plans: &[OutputPlan]) -> io::Result<()> {
    for (f, p) in files.iter().zip(plans) {
        apply(f, p)?;
        f.sync_all()?;
    }
    Ok(())
}

/// Applies the planned writes and fills to an open output file.
fn apply(dst: &File, plan: &OutputPlan) -> io::Result<()> {
    for w in &plan.writes {
        dst.write_all_at(&w.bytes, w.file_offset)?;
    }
    for f in &plan.fills {
        let chunk = vec![f.byte; (f.len as usize).min(CHUNK)];
        let mut done = 0u64;
        while done < f.len {
            let n = (f.len - done).min(CHUNK as u64) as usize;
            dst.write_all_at(&chunk[..n], f.file_offset + done)?;
            done += n as u64;
        }
    }
    Ok(())
}

/// An output block device opened for writing, exclusively (Linux refuses `O_EXCL` on a device
/// that is mounted or otherwise claimed), with its size.
pub struct Device {
    file: File,
    pub size: u64,
}

/// Opens the block device `path` to receive an image of `image_size` bytes in `format`. The device
/// must hold the whole image; a VHD must fill it exactly (its footer sits at the end).
pub fn open_device(path: &Path, image_size: u64, format: Format) -> Result<Device, String> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_EXCL)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(nix::libc::EBUSY) {
                format!(
                    "the block device {} is in use (mounted?); unmount it first",
                    path.display()
                )
            } else {
                format!("cannot open the block device {}: {e}", path.display())
            }
        })?;
    let size = {
        use std::io::Seek;
        (&file)
            .seek(io::SeekFrom::End(0))
            .map_err(ctx(format!("cannot size {}", path.display())))?
    };
    if size < image_size {
        return Err(format!(
            "the block device {} ({size} bytes) is smaller than the image ({image_size} bytes); nothing was written",
            path.display()
        ));
    }
    if format != Format::Raw && size != image_size {
        return Err(format!(
            "the block device {} ({size} bytes) is larger than the {format} image ({image_size} bytes): its footer would not be at the end of the device; convert the image to raw first (qemu-img convert -O raw)",
            path.display()
        ));
    }
    Ok(Device { file, size })
}

/// The identity an undo file for an output on this device carries: what `kaifuku undo` will find
/// there (a raw disk the size of the device; a VHD fills the device exactly).
pub fn device_identity(dev: &Device, image: Identity) -> Identity {
    match image.kind {
        Format::Raw => Identity {
            file_size: dev.size,
            virtual_size: dev.size,
            kind: Format::Raw,
        },
        _ => image,
    }
}

/// Writes the fixed image to `out` (a new or replaced regular file, or a block device opened
/// with [`open_device`]) and the undo file, if any. A regular output appears only when complete;
/// on failure nothing is left behind (the undo file neither).
pub fn write_copy(
    source: &FileSource,
    out: &Target,
    data_files_for: Option<&OsStr>,
    device: Option<Device>,
    plan: &OutputPlan,
    undo: Option<(&Target, &[Piece])>,
) -> Result<Vec<PathBuf>, String> {
    // The output's size: the image's, unless the fix changes it (a re-streamed VMDK, whose writes
    // cover every byte past the part of the image kept).
    let size = plan.file_size.unwrap_or(source.size());
    let kept = size.min(source.size());
    if let Some(dev) = device {
        let shown = out.final_path();
        // The undo file first: if it cannot be written, the device is not touched.
        let undo_tmp = match undo {
            Some((t, pieces)) => Some(undo_temp(t, pieces, source)?),
            None => None,
        };
        (|| {
            copy_disk(source, &dev.file, kept)?;
            apply(&dev.file, plan)?;
            dev.file.sync_all()
        })()
        .map_err(|e| {
            format!(
                "writing the block device {} failed part way ({e}): it now holds neither its old contents nor the fixed image",
                shown.display()
            )
        })?;
        if let (Some(tmp), Some((t, _))) = (undo_tmp, undo) {
            commit_undo(tmp, t).map_err(|e| {
                format!(
                    "{e} (the fixed image was written to {}; restore the original from the input image if needed)",
                    shown.display()
                )
            })?;
        }
        return Ok(Vec::new());
    }

    if let Some(descriptor) = source.descriptor() {
        return write_described_copy(source, descriptor, out, data_files_for, plan, undo);
    }
    let dir = out.dir();
    let final_path = out.final_path();
    let out_tmp = TempFile::create(&dir, &file_name_of(out)).map_err(ctx(format!(
        "cannot create the output in {}",
        dir.display()
    )))?;
    (|| {
        out_tmp.file.set_len(size)?;
        copy_file(&source.parts()[0].file, 0, &out_tmp.file, 0, kept, true)?;
        apply(&out_tmp.file, plan)?;
        out_tmp.file.sync_all()
    })()
    .map_err(ctx(format!(
        "cannot write the output {}",
        final_path.display()
    )))?;
    let undo_tmp = match undo {
        Some((t, pieces)) => Some(undo_temp(t, pieces, source)?),
        None => None,
    };
    // Both files are complete and synced: only the renames are left.
    let undo_final = match (undo_tmp, undo) {
        (Some(tmp), Some((t, _))) => Some(commit_undo(tmp, t)?),
        _ => None,
    };
    let remove_undo = || {
        if let Some(u) = &undo_final {
            let _ = fs::remove_file(u);
        }
    };
    if let Err(e) = out_tmp.commit(&final_path, true) {
        remove_undo();
        return Err(format!(
            "cannot create the output {}: {e}",
            final_path.display()
        ));
    }
    if let Err(e) = sync_dir(&dir) {
        let _ = fs::remove_file(&final_path);
        remove_undo();
        return Err(format!(
            "cannot make the output {} durable: {e}",
            final_path.display()
        ));
    }
    Ok(Vec::new())
}

/// Writes the fixed image as a fixed VHD (`--output-format vhd-fixed`) to `out`, a new or
/// replaced regular file: the virtual disk read through `container` (the input's stored runs
/// copied, its unallocated and all-zero runs left as holes, compressed runs inflated), the plan's
/// `patches` of the virtual disk laid over it, zeros up to the whole MiB, then the footer. The file
/// appears only when complete and synced; on failure nothing is left behind.
pub fn write_fixed_vhd<R: ReadAt>(
    source: &FileSource,
    container: &kaifuku_container::Container<R>,
    patches: &[kaifuku_io::Patch<()>],
    vhd: &kaifuku_container::FixedVhdOutput,
    out: &Target,
) -> Result<(), String> {
    use kaifuku_container::Extent;
    use kaifuku_io::PatchData;
    let dir = out.dir();
    let final_path = out.final_path();
    let tmp = TempFile::create(&dir, &file_name_of(out)).map_err(ctx(format!(
        "cannot create the output in {}",
        dir.display()
    )))?;
    let written = || -> Result<(), String> {
        let shown = final_path.display().to_string();
        let io_err = |e: io::Error| format!("cannot write the output {shown}: {e}");
        tmp.file.set_len(vhd.file_size()).map_err(&io_err)?;
        let mut buf = vec![0u8; CHUNK];
        let size = container.virtual_size();
        let mut pos = 0u64;
        while pos < size {
            let extent = container
                .map(pos)
                .map_err(|e| format!("cannot read the image's disk at byte {pos}: {e}"))?;
            let len = extent.len().min(size - pos);
            match extent {
                Extent::Zero { .. } => {}
                Extent::InFile { file_offset, .. } => {
                    for (i, at, within, n) in split(source.parts(), file_offset, len) {
                        let part = &source.parts()[i];
                        if part.sparse.is_none() {
                            copy_range_sparse(&part.file, at, &tmp.file, pos + within, n, &mut buf)
                                .map_err(&io_err)?;
                            continue;
                        }
                        let mut done = 0u64;
                        while done < n {
                            let k = (n - done).min(buf.len() as u64) as usize;
                            let from = file_offset + within + done;
                            source.read_at(from, &mut buf[..k]).map_err(|e| {
                                format!("cannot read the image's disk at byte {from}: {e}")
                            })?;
                            if buf[..k].iter().any(|b| *b != 0) {
                                tmp.file
                                    .write_all_at(&buf[..k], pos + within + done)
                                    .map_err(&io_err)?;
                            }
                            done += k as u64;
                        }
                    }
                }
                // Read through the container: it inflates compressed data and reads what the
                // image does not hold from its backing file.
                Extent::Compressed { .. } | Extent::Backing { .. } => {
                    let mut done = 0u64;
                    while done < len {
                        let n = (len - done).min(buf.len() as u64) as usize;
                        container.read_at(pos + done, &mut buf[..n]).map_err(|e| {
                            format!("cannot read the image's disk at byte {}: {e}", pos + done)
                        })?;
                        if buf[..n].iter().any(|b| *b != 0) {
                            tmp.file
                                .write_all_at(&buf[..n], pos + done)
                                .map_err(&io_err)?;
                        }
                        done += n as u64;
                    }
                }
            }
            pos += len;
        }
        for p in patches {
            match &p.data {
                PatchData::Bytes(b) => tmp.file.write_all_at(b, p.offset).map_err(&io_err)?,
                PatchData::Fill { byte, len } => {
                    let chunk = vec![*byte; CHUNK.min(*len as usize)];
                    let mut done = 0u64;
                    while done < *len {
                        let n = (*len - done).min(chunk.len() as u64) as usize;
                        tmp.file
                            .write_all_at(&chunk[..n], p.offset + done)
                            .map_err(&io_err)?;
                        done += n as u64;
                    }
                }
            }
        }
        tmp.file
            .write_all_at(&vhd.footer, vhd.disk_size)
            .map_err(&io_err)?;
        tmp.file.sync_all().map_err(&io_err)
    };
    written()?;
    tmp.commit(&final_path, true).map_err(ctx(format!(
        "cannot create the output {}",
        final_path.display()
    )))?;
    if let Err(e) = sync_dir(&dir) {
        let _ = fs::remove_file(&final_path);
        return Err(format!(
            "cannot make the output {} durable: {e}",
            final_path.display()
        ));
    }
    Ok(())
}

/// Copies `len` bytes of `src` from `from` to `dst` at `to`, a fresh file: the source's holes and
/// all-zero chunks are skipped and stay holes there.
fn copy_range_sparse(
    src: &File,
    from: u64,
    dst: &File,
    to: u64,
    len: u64,
    buf: &mut [u8],
) -> io::Result<()> {
    use nix::unistd::{lseek, Whence};
    let end = from + len;
    let mut pos = from;
    while pos < end {
        // Next data region; on file systems or devices without SEEK_DATA, treat all as data.
        let data = match lseek(src, pos as i64, Whence::SeekData) {
            Ok(d) => (d as u64).clamp(pos, end),
            Err(nix::errno::Errno::ENXIO) => end, // only a hole remains
            Err(_) => pos,
        };
        if data >= end {
            break;
        }
        let hole = match lseek(src, data as i64, Whence::SeekHole) {
            Ok(h) => (h as u64).clamp(data, end),
            Err(_) => end,
        };
        let hole = if hole == data { end } else { hole };
        let mut at = data;
        while at < hole {
            let n = ((hole - at) as usize).min(buf.len());
            src.read_exact_at(&mut buf[..n], at)?;
            if buf[..n].iter().any(|b| *b != 0) {
                dst.write_all_at(&buf[..n], to + (at - from))?;
            }
            at += n as u64;
        }
        pos = hole;
    }
    Ok(())
}

/// Writes a new file at `to` (never replacing one): `write` fills a temporary file in `dir`, which
/// is then synced, renamed to `to` (failing if `to` appeared meanwhile) and made durable. On any
/// failure nothing is left behind.
pub fn write_new_file(
    dir: &Path,
    to: &Path,
    write: impl FnOnce(&File) -> Result<(), String>,
) -> Result<(), String> {
    let name = to
        .file_name()
        .map(|n| n.to_owned())
        .unwrap_or_else(|| "kaifuku".into());
    let tmp = TempFile::create(dir, &name)
        .map_err(ctx(format!("cannot create a file in {}", dir.display())))?;
    write(&tmp.file)?;
    tmp.file
        .sync_all()
        .map_err(ctx(format!("cannot write {}", to.display())))?;
    tmp.commit(to, false)
        .map_err(ctx(format!("cannot create {}", to.display())))?;
    if let Err(e) = sync_dir(dir) {
        let _ = fs::remove_file(to);
        return Err(format!("cannot make {} durable: {e}", to.display()));
    }
    Ok(())
}

/// Copies the first `size` bytes of the disk to `dst` (a device) at the same offsets, through
/// the files that hold them.
fn copy_disk(source: &FileSource, dst: &File, size: u64) -> io::Result<()> {
    for (i, at, within, n) in split(source.parts(), 0, size) {
        if source.parts()[i].sparse.is_none() {
            copy_file(&source.parts()[i].file, at, dst, within, n, false)?;
            continue;
        }
        // A sparse extent: its disk as the extent reads it (grains with no space read as zeros).
        let mut buf = vec![0u8; CHUNK];
        let mut done = 0u64;
        while done < n {
            let len = (n - done).min(CHUNK as u64) as usize;
            source.read_at(within + done, &mut buf[..len])?;
            if buf[..len].iter().any(|b| *b != 0) {
                dst.write_all_at(&buf[..len], within + done)?;
            } else {
                zero_range(dst, within + done, len as u64)?;
            }
            done += len as u64;
        }
    }
    Ok(())
}

/// Copies `len` bytes of `src` from `from` to `dst` at `to`. Into a fresh file
/// (`holes_are_zero`), holes and all-zero chunks are skipped and stay holes; onto a device they
/// are zeroed (the device still holds its old contents there).
fn copy_file(
    src: &File,
    from: u64,
    dst: &File,
    to: u64,
    len: u64,
    holes_are_zero: bool,
) -> io::Result<()> {
    use nix::unistd::{lseek, Whence};
    let mut buf = vec![0u8; CHUNK];
    // Positions below are in `src`; `dst` is written at `to + (pos - from)`.
    let size = from + len;
    let shift = |p: u64| to + (p - from);
    let mut pos: u64 = from;
    while pos < size {
        // Next data region; on file systems or devices without SEEK_DATA, treat all as data.
        let data = match lseek(src, pos as i64, Whence::SeekData) {
            Ok(d) => (d as u64).min(size),
            Err(nix::errno::Errno::ENXIO) => size, // only a hole remains
            Err(_) => pos,
        };
        if data > pos && !holes_are_zero {
            zero_range(dst, shift(pos), data - pos)?;
        }
        if data >= size {
            break;
        }
        let hole = match lseek(src, data as i64, Whence::SeekHole) {
            Ok(h) => (h as u64).min(size),
            Err(_) => size,
        };
        let mut at = data;
        while at < hole {
            let n = ((hole - at) as usize).min(CHUNK);
            src.read_exact_at(&mut buf[..n], at)?;
            if buf[..n].iter().any(|b| *b != 0) {
                dst.write_all_at(&buf[..n], shift(at))?;
            } else if !holes_are_zero {
                zero_range(dst, shift(at), n as u64)?;
            }
            at += n as u64;
        }
        pos = hole.max(pos + 1);
    }
    Ok(())
}

/// Zeroes a range of a device: the device's own zeroing (fast on loop devices and SSDs) where it
/// accepts the range, written zeros otherwise.
fn zero_range(dst: &File, at: u64, len: u64) -> io::Result<()> {
    use nix::fcntl::{fallocate, FallocateFlags};
    if let (Ok(o), Ok(l)) = (i64::try_from(at), i64::try_from(len)) {
        if fallocate(dst, FallocateFlags::FALLOC_FL_ZERO_RANGE, o, l).is_ok() {
            return Ok(());
        }
    }
    let zeros = vec![0u8; CHUNK.min(len as usize)];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(zeros.len() as u64) as usize;
        dst.write_all_at(&zeros[..n], at + done)?;
        done += n as u64;
    }
    Ok(())
}

/// Opens the files holding the image for writing (the image itself, or the data files its
/// descriptor names) and makes sure each is the file that was read.
fn open_disk_for_writing(image: &Path, source: &FileSource) -> Result<Vec<File>, String> {
    if source.descriptor().is_none() {
        return Ok(vec![open_for_writing(
            image,
            source.metadata(),
            source.is_block_device(),
        )?]);
    }
    source
        .parts()
        .iter()
        .map(|p| open_for_writing(&p.path, &p.meta, false))
        .collect()
}

/// Opens one file for writing and makes sure it is the file `read` describes.
fn open_for_writing(image: &Path, read: &std::fs::Metadata, device: bool) -> Result<File, String> {
    let mut o = OpenOptions::new();
    o.write(true);
    if device {
        // Refused by Linux while the device is mounted: writing under a mounted file system
        // would be overwritten by it, or confuse it.
        o.custom_flags(nix::libc::O_EXCL);
    }
    let f = o.open(image).map_err(|e| {
        if e.raw_os_error() == Some(nix::libc::EBUSY) {
            format!("{} is in use (mounted?); unmount it first", image.display())
        } else {
            format!("cannot open {} for writing: {e}", image.display())
        }
    })?;
    let m = f
        .metadata()
        .map_err(ctx(format!("cannot stat {}", image.display())))?;
    let r = read;
    if m.dev() != r.dev() || m.ino() != r.ino() {
        return Err(format!(
            "{} changed while kaifuku was working on it; nothing was written",
            image.display()
        ));
    }
    Ok(f)
}

/// Edits the image itself: the undo file is written, synced and renamed into place (and its
/// directory synced) before the first byte of the image changes.
pub fn write_in_place(
    image: &Path,
    plan: &OutputPlan,
    undo: (&Target, &[Piece]),
    source: &FileSource,
) -> Result<(), String> {
    // A fix that changes the size (a streamOptimized VMDK extended after its end) is made in
    // place only when the file grows: the undo file then restores the old bytes and the old size.
    let new_size = plan.file_size.filter(|s| *s != source.size());
    if let Some(size) = new_size {
        if size < source.size() || source.descriptor().is_some() || source.is_block_device() {
            return Err(format!(
                "{} cannot be fixed in place: the fix would make it {size} bytes instead of {}, \
                 which an undo file cannot restore; write the fix to a new file with -o instead",
                image.display(),
                source.size()
            ));
        }
    }
    let files = open_disk_for_writing(image, source)?;
    // Each data file's writes are planned (and any refusal made) before the undo file and the
    // first write.
    let plans = match source.descriptor() {
        Some(_) => per_file_plans(source, plan)?,
        None => vec![plan.clone()],
    };
    let tmp = undo_temp(undo.0, undo.1, source)?;
    let undo_path = commit_undo(tmp, undo.0)?;
    // The new size first: the bytes the fix adds are then written into the file's own space.
    let grown = match new_size {
        Some(size) => files[0].set_len(size),
        None => Ok(()),
    };
    grown
        .and_then(|()| apply_per_file(&files, &plans))
        .map_err(|e| {
            format!(
                "writing {} failed part way ({e}); restore it with: kaifuku undo {} {}",
                image.display(),
                image.display(),
                undo_path.display()
            )
        })
}

/// Restores the original bytes recorded in an undo file. Refuses an undo file that is damaged or
/// not the current format, an image that is not the one the undo file was made for (size,
/// container kind, virtual size), and, unless `force`, an image whose fixed bytes changed since.
pub fn undo(image: &Path, undo_file: &Path, force: bool) -> Result<u64, String> {
    let usrc = FileSource::open_regular(undo_file)
        .map_err(|e| format!("cannot open the undo file {}: {e}", undo_file.display()))?;
    let source =
        FileSource::open(image).map_err(|e| format!("cannot open {}: {e}", image.display()))?;
    for (p, m) in source.all_files() {
        let shown = if p.as_os_str().is_empty() { image } else { p };
        crate::paths::refuse_same((shown, m), (undo_file, usrc.metadata()))?;
    }
    let u = UndoFile::open(&usrc).map_err(|e| format!("{}: {e}", undo_file.display()))?;
    let container = kaifuku_container::open(&source).map_err(|e| {
        format!(
            "{} does not open as a disk image ({e}); is it the image this undo file was made for?",
            image.display()
        )
    })?;
    let info = container.info();
    let found = Identity {
        file_size: source.size(),
        virtual_size: info.virtual_size,
        kind: info.format,
    };
    if let Some(why) = u.fixed_identity().mismatch(&found) {
        return Err(format!(
            "{} is not the image {} was made for: {why}",
            image.display(),
            undo_file.display()
        ));
    }
    let growth = u.growth();
    if growth.is_some() && source.descriptor().is_some() {
        return Err(format!(
            "{} records a fix that made a single image file longer; {} is a disk of several files",
            undo_file.display(),
            image.display()
        ));
    }
    let mut cur = vec![0u8; CHUNK];
    let mut orig = vec![0u8; CHUNK];
    // What the fix added after the old end must be what it wrote, unless forced.
    if let Some(g) = growth {
        let old_size = u.identity().file_size;
        let mut h = undo::fnv1a_start();
        let mut at = old_size;
        while at < g.fixed_size {
            let n = (g.fixed_size - at).min(CHUNK as u64) as usize;
            source
                .read_at(at, &mut cur[..n])
                .map_err(|er| format!("reading {}: {er}", image.display()))?;
            h = undo::fnv1a_more(h, &cur[..n]);
            at += n as u64;
        }
        if h != g.added_hash && !force {
            return Err(format!(
                "the bytes the fix added after offset {old_size} are not what it wrote: the image changed since the fix (was it booted?). Restoring could damage it; use --force to restore anyway"
            ));
        }
    }
    for e in u.entries() {
        let e = e.map_err(|e| format!("{}: {e}", undo_file.display()))?;
        let mut h = undo::fnv1a_start();
        let mut originals = true;
        let mut done = 0u64;
        while done < e.len {
            let n = (e.len - done).min(CHUNK as u64) as usize;
            source
                .read_at(e.offset + done, &mut cur[..n])
                .map_err(|er| format!("reading {}: {er}", image.display()))?;
            u.read_original(&e, done, &mut orig[..n])
                .map_err(|er| format!("reading {}: {er}", undo_file.display()))?;
            h = undo::fnv1a_more(h, &cur[..n]);
            originals &= cur[..n] == orig[..n];
            done += n as u64;
        }
        if h != e.new_hash && !originals && !force {
            return Err(format!(
                "bytes at offset {} are neither what the fix wrote nor the originals: the image changed since the fix (was it booted?). Restoring could damage it; use --force to restore anyway",
                e.offset
            ));
        }
    }
    let files = open_disk_for_writing(image, &source)?;
    // A described disk: every chunk is first mapped into its data files with nothing written, so
    // a chunk no data file can take stops the restore before it starts.
    let described = source.descriptor().is_some();
    for write in [false, true] {
        if !write && !described {
            continue;
        }
        for e in u.entries() {
            let e = e.map_err(|e| format!("{}: {e}", undo_file.display()))?;
            let mut done = 0u64;
            while done < e.len {
                let n = (e.len - done).min(CHUNK as u64) as usize;
                u.read_original(&e, done, &mut orig[..n])
                    .map_err(|er| format!("reading {}: {er}", undo_file.display()))?;
                let at = e.offset + done;
                if described {
                    let chunk = OutputPlan {
                        writes: vec![kaifuku_container::FileWrite {
                            file_offset: at,
                            bytes: orig[..n].to_vec(),
                            label: kaifuku_container::FileWriteLabel::virtual_bytes(
                                at,
                                at + n as u64,
                                kaifuku_container::WriteHow::Bytes,
                            ),
                        }],
                        fills: Vec::new(),
                        file_size: None,
                    };
                    let plans = per_file_plans(&source, &chunk)?;
                    if write {
                        for (f, p) in files.iter().zip(&plans) {
                            apply(f, p)
                                .map_err(|er| format!("writing {}: {er}", image.display()))?;
                        }
                    }
                } else {
                    files[0]
                        .write_all_at(&orig[..n], at)
                        .map_err(|er| format!("writing {}: {er}", image.display()))?;
                }
                done += n as u64;
            }
        }
    }
    // Then the file goes back to its old size, which drops everything the fix added.
    if growth.is_some() {
        files[0]
            .set_len(u.identity().file_size)
            .map_err(|e| format!("cutting {} to its old size: {e}", image.display()))?;
    }
    for f in &files {
        f.sync_all()
            .map_err(|e| format!("writing {}: {e}", image.display()))?;
    }
    Ok(u.count())
}

/// The data file names of a copy of a described disk written as `descriptor_name`: VMware's and
/// QEMU's names, `NAME-flat.vmdk` for one extent and `NAME-f001.vmdk`, `NAME-f002.vmdk`, … for
/// several (`NAME` is the descriptor's name without `.vmdk`).
pub fn data_file_names(
    descriptor_name: &OsStr,
    kinds: &[ExtentKind],
) -> Result<Vec<String>, String> {
    let name = descriptor_name.to_str().ok_or_else(|| {
        format!(
            "the output name {} is not UTF-8, which a VMDK descriptor cannot name",
            descriptor_name.to_string_lossy()
        )
    })?;
    let stem = match name.len().checked_sub(5) {
        Some(i) if name.is_char_boundary(i) && name[i..].eq_ignore_ascii_case(".vmdk") => {
            &name[..i]
        }
        _ => name,
    };
    if stem.is_empty() || stem.contains('"') || stem.chars().any(char::is_control) {
        return Err(format!(
            "the output name {name} cannot be written in a VMDK descriptor: choose a plain name such as fixed.vmdk"
        ));
    }
    Ok(match kinds {
        [k] if k.is_flat() => vec![format!("{stem}-flat.vmdk")],
        _ => kinds
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let letter = if k.is_flat() { 'f' } else { 's' };
                format!("{stem}-{letter}{:03}.vmdk", i + 1)
            })
            .collect(),
    })
}

/// The names and paths of the data files a described copy written to `out` gets (named for
/// `data_files_for` when given); refuses names that are taken: kaifuku never replaces a file it
/// was not named on the command line.
pub fn new_data_files(
    out: &Target,
    data_files_for: Option<&OsStr>,
    kinds: &[ExtentKind],
) -> Result<(Vec<String>, Vec<PathBuf>), String> {
    let dir = out.dir();
    let own_name = file_name_of(out);
    let names = data_file_names(data_files_for.unwrap_or(&own_name), kinds)?;
    let paths: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    for p in &paths {
        if fs::symlink_metadata(p).is_ok() {
            return Err(format!(
                "the fixed disk's data file would be {}, which exists already: kaifuku never replaces a file it was not named on the command line. Move it away or choose another output name",
                p.display()
            ));
        }
    }
    Ok((names, paths))
}

/// Writes the fixed copy of a disk opened through a VMware text descriptor: new data files next
/// to the output (each a sparse copy of its original, with the planned writes in its part), then
/// the descriptor at `out`, the original's text naming the new files. The data files are named for
/// `data_files_for` when given (the batch writes the descriptor under a temporary name and
/// renames it once verified), else for `out`'s own name; none of them may exist already. The
/// data files are made visible first and the descriptor last, so a descriptor never names a
/// missing file; on failure everything written is removed. Returns the data files' paths.
fn write_described_copy(
    source: &FileSource,
    descriptor: &DiskDescriptor,
    out: &Target,
    data_files_for: Option<&OsStr>,
    plan: &OutputPlan,
    undo: Option<(&Target, &[Piece])>,
) -> Result<Vec<PathBuf>, String> {
    if plan.file_size.is_some_and(|s| s != source.size()) {
        return Err(
            "this fix would change the disk's size, which a descriptor's data files cannot take"
                .into(),
        );
    }
    let dir = out.dir();
    let final_path = out.final_path();
    let own_name = file_name_of(out);
    let kinds: Vec<ExtentKind> = descriptor.extents.iter().map(|e| e.kind).collect();
    let (names, paths) = new_data_files(out, data_files_for, &kinds)?;
    let plans = per_file_plans(source, plan)?;
    let text = descriptor
        .with_file_names(&names)
        .ok_or_else(|| format!("cannot name the data files {names:?} in the VMDK descriptor"))?;
    let mut temps = Vec::with_capacity(paths.len());
    for (part, name) in source.parts().iter().zip(&names) {
        let tmp = TempFile::create(&dir, OsStr::new(name)).map_err(ctx(format!(
            "cannot create the output in {}",
            dir.display()
        )))?;
        tmp.file
            .set_len(part.file_size)
            .and_then(|()| copy_file(&part.file, 0, &tmp.file, 0, part.file_size, true))
            .map_err(ctx(format!("cannot write {}", dir.join(name).display())))?;
        temps.push(tmp);
    }
    // The copies are byte for byte their originals, so the plans made against the originals'
    // tables hold for them.
    let files: Vec<File> = temps
        .iter()
        .map(|t| t.file.try_clone())
        .collect::<io::Result<_>>()
        .map_err(ctx(format!(
            "cannot write the output {}",
            final_path.display()
        )))?;
    apply_per_file(&files, &plans).map_err(ctx(format!(
        "cannot write the output {}",
        final_path.display()
    )))?;
    let desc_tmp = TempFile::create(&dir, &own_name).map_err(ctx(format!(
        "cannot create the output in {}",
        dir.display()
    )))?;
    desc_tmp
        .file
        .write_all_at(text.as_bytes(), 0)
        .and_then(|()| desc_tmp.file.sync_all())
        .map_err(ctx(format!(
            "cannot write the output {}",
            final_path.display()
        )))?;
    let undo_tmp = undo
        .map(|(t, pieces)| undo_temp(t, pieces, source))
        .transpose()?;
    // Everything is complete and synced: only the renames are left, data files first.
    let mut committed: Vec<PathBuf> = Vec::new();
    let remove = |committed: &[PathBuf]| {
        for p in committed {
            let _ = fs::remove_file(p);
        }
    };
    for (tmp, p) in temps.into_iter().zip(&paths) {
        if let Err(e) = tmp.commit(p, false) {
            remove(&committed);
            return Err(format!("cannot create {}: {e}", p.display()));
        }
        committed.push(p.clone());
    }
    if let (Some(tmp), Some((t, _))) = (undo_tmp, undo) {
        match commit_undo(tmp, t) {
            Ok(u) => committed.push(u),
            Err(e) => {
                remove(&committed);
                return Err(e);
            }
        }
    }
    if let Err(e) = desc_tmp.commit(&final_path, true) {
        remove(&committed);
        return Err(format!(
            "cannot create the output {}: {e}",
            final_path.display()
        ));
    }
    if let Err(e) = sync_dir(&dir) {
        let _ = fs::remove_file(&final_path);
        remove(&committed);
        return Err(format!(
            "cannot make the output {} durable: {e}",
            final_path.display()
        ));
    }
    Ok(paths)
}
