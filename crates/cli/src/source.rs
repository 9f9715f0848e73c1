//! The native bottom of the read stack: `pread` on an image file or a block device, or on the
//! data files a VMware text descriptor names (read as one disk, in the descriptor's order; a
//! sparse extent's file through its own grain tables). An image that names a file it holds only the
//! differences from — a qcow2 image's backing file, a sparse VMDK child's parent — carries that
//! file opened too (and its own backing file, and so on), for the container layer to read through.

use kaifuku_container::vmdk_descriptor::{self, DiskDescriptor, MAX_DESCRIPTOR_BYTES};
use kaifuku_container::{Container, Format};
use kaifuku_io::{check_range, Backing, ReadAt};
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// One file holding a stretch of the disk: `len` bytes from `disk_offset` on, stored in `file`
/// from `file_offset` on — or, for a sparse extent (`sparse`), through the file's own grain
/// tables (`file_offset` 0: offsets in the part are offsets in the extent's disk). A plain image
/// is one part holding the whole file.
pub struct Part {
    pub path: PathBuf,
    pub file: File,
    pub meta: Metadata,
    pub disk_offset: u64,
    pub len: u64,
    pub file_offset: u64,
    /// The file's own size (a flat extent may hold bytes past its part of the disk).
    pub file_size: u64,
    /// A `SPARSE` extent opened as the sparse VMDK it is.
    pub sparse: Option<Container<ExtentFile>>,
}

/// A data file read by a sparse extent's container.
pub struct ExtentFile {
    file: File,
    size: u64,
}

impl ReadAt for ExtentFile {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.size)?;
        self.file.read_exact_at(buf, offset)
    }
}

impl Part {
    /// Reads `buf` from offset `at` of the part (as [`split`] gives it).
    fn read(&self, at: u64, buf: &mut [u8]) -> io::Result<()> {
        match &self.sparse {
            Some(c) => c.read_at(at, buf),
            None => self.file.read_exact_at(buf, at),
        }
    }
}

pub struct FileSource {
    parts: Vec<Part>,
    size: u64,
    meta: Metadata,
    descriptor: Option<DiskDescriptor>,
    /// The backing file (or parent) the image names, opened from beside the image.
    backing: Option<Backing>,
}

/// How many backing files deep a chain is followed (the container layer has the same limit).
const MAX_BACKING_DEPTH: usize = 16;

/// Opens one file read-only: a regular file or a block device, nothing else. The path is checked
/// before it is opened (opening a FIFO for reading would wait forever for a writer), and the
/// opened file again (in case the path changed in between). The size comes from seeking to the
/// end, which works for block devices (whose metadata length is 0) as well as files.
fn open_checked(path: &Path, regular_only: bool) -> io::Result<(File, Metadata, u64)> {
    let before = crate::paths::check_image(path)?;
    if regular_only && !before.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is a block device, not a file",
        ));
    }
    // O_NONBLOCK: should the path have become a FIFO since it was checked, the open returns
    // at once instead of waiting for a writer; the check below then refuses it.
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    let t = meta.file_type();
    if !(t.is_file() || t.is_block_device())
        || meta.dev() != before.dev()
        || meta.ino() != before.ino()
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the file changed while it was being opened; try again",
        ));
    }
    let size = file.seek(SeekFrom::End(0))?;
    Ok((file, meta, size))
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl FileSource {
    /// Opens a disk image read-only: a regular file or a block device. A VMware text descriptor
    /// is opened as the disk its data files hold (each a regular file in the descriptor's
    /// folder: a flat one at least as long as the descriptor says, a sparse one a sparse extent
    /// of exactly the extent's size).
    pub fn open(path: &Path) -> io::Result<FileSource> {
        Self::open_at_depth(path, 0)
    }

    fn open_at_depth(path: &Path, depth: usize) -> io::Result<FileSource> {
        let (mut file, meta, size) = open_checked(path, false)?;
        if !meta.file_type().is_file() || size > MAX_DESCRIPTOR_BYTES {
            return Self::single(path, file, meta, size).with_backing(path, depth);
        }
        let mut text = Vec::with_capacity(size as usize);
        file.seek(SeekFrom::Start(0))?;
        (&mut file)
            .take(MAX_DESCRIPTOR_BYTES)
            .read_to_end(&mut text)?;
        if !vmdk_descriptor::is_descriptor(&text) {
            return Self::single(path, file, meta, size).with_backing(path, depth);
        }
        let descriptor = vmdk_descriptor::parse(&text).map_err(|e| {
            let kind = if e.is_refusal() {
                io::ErrorKind::Unsupported
            } else {
                io::ErrorKind::InvalidData
            };
            io::Error::new(kind, e.to_string())
        })?;
        let dir = folder_of(path);
        let mut parts = Vec::with_capacity(descriptor.extents.len());
        for e in &descriptor.extents {
            let part_path = dir.join(&e.file_name);
            let (f, m, file_size) = open_checked(&part_path, true).map_err(|err| {
                io::Error::new(
                    err.kind(),
                    format!(
                        "its data file {} cannot be opened ({err}): keep the descriptor and every file it names together",
                        part_path.display()
                    ),
                )
            })?;
            let sparse = if e.kind.is_flat() {
                None
            } else {
                Some(open_sparse_part(&f, file_size, &part_path, e.len)?)
            };
            if sparse.is_none() && file_size < e.file_offset + e.len {
                return Err(invalid(format!(
                    "its data file {} is {file_size} bytes, but the descriptor puts {} bytes of the disk in it{}: the file is incomplete (copy it again)",
                    part_path.display(),
                    e.len,
                    if e.file_offset > 0 {
                        format!(" from byte {}", e.file_offset)
                    } else {
                        String::new()
                    }
                )));
            }
            if m.dev() == meta.dev() && m.ino() == meta.ino()
                || parts
                    .iter()
                    .any(|p: &Part| p.meta.dev() == m.dev() && p.meta.ino() == m.ino())
            {
                return Err(invalid(format!(
                    "the descriptor names {} twice (or names itself): it is damaged",
                    part_path.display()
                )));
            }
            parts.push(Part {
                path: part_path,
                file: f,
                meta: m,
                disk_offset: e.disk_offset,
                len: e.len,
                file_offset: e.file_offset,
                file_size,
                sparse,
            });
        }
        Ok(FileSource {
            parts,
            size: descriptor.disk_size(),
            meta,
            descriptor: Some(descriptor),
            backing: None,
        })
    }

    /// Opens the backing file (or parent) this image names, if it is a qcow2 image or a sparse
    /// VMDK child that names one: beside the image (a relative name is relative to the image's
    /// folder, as QEMU reads it), and its own backing file in turn. A file that names none, or
    /// whose header cannot be read, is left as it is: opening it as a container says what is
    /// wrong.
    fn with_backing(mut self, path: &Path, depth: usize) -> io::Result<FileSource> {
        let Ok(Some(name)) = kaifuku_container::backing_file_name(&self) else {
            return Ok(self);
        };
        if depth >= MAX_BACKING_DEPTH {
            return Err(invalid(format!(
                "its chain of backing files is more than {MAX_BACKING_DEPTH} deep (or loops back on itself): merge it first (`qemu-img convert -O qcow2 IMAGE merged.qcow2`)"
            )));
        }
        let backing_path = folder_of(path).join(&name);
        let backing = Self::open_at_depth(&backing_path, depth + 1).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "it holds only what differs from its backing file {}, which cannot be opened ({e}): keep the image and its backing file together (the image's header names it relative to the image's folder), or point the image at the file where it is with `qemu-img rebase -u -b PATH IMAGE`",
                    backing_path.display()
                ),
            )
        })?;
        if backing.meta.dev() == self.meta.dev() && backing.meta.ino() == self.meta.ino() {
            return Err(invalid(format!(
                "it names itself as its backing file ({}): the header is damaged",
                backing_path.display()
            )));
        }
        self.backing = Some(Rc::new(backing));
        Ok(self)
    }

    fn single(path: &Path, file: File, meta: Metadata, size: u64) -> FileSource {
        FileSource {
            parts: vec![Part {
                path: path.to_path_buf(),
                file,
                meta: meta.clone(),
                disk_offset: 0,
                len: size,
                file_offset: 0,
                file_size: size,
                sparse: None,
            }],
            size,
            meta,
            descriptor: None,
            backing: None,
        }
    }

    /// Opens an undo file: a regular file only, never read through a descriptor.
    pub fn open_regular(path: &Path) -> io::Result<FileSource> {
        let (file, meta, size) = open_checked(path, true)?;
        Ok(Self::single(path, file, meta, size))
    }

    /// The opened path's metadata (`fstat`): the descriptor's for a described disk.
    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }

    /// The files holding the disk, in disk order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The text descriptor the disk was opened through, if it was.
    pub fn descriptor(&self) -> Option<&DiskDescriptor> {
        self.descriptor.as_ref()
    }

    pub fn is_block_device(&self) -> bool {
        self.descriptor.is_none() && self.meta.file_type().is_block_device()
    }

    /// Every file this source reads: the path opened and the data files it names.
    pub fn all_files(&self) -> impl Iterator<Item = (&Path, &Metadata)> {
        let own = self.descriptor.as_ref().map(|_| &self.meta);
        self.parts
            .iter()
            .map(|p| (p.path.as_path(), &p.meta))
            .chain(own.map(|m| (Path::new(""), m)))
    }
}

/// The folder a file's relative references (a descriptor's data files, a backing file) are
/// relative to: the file's own.
fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The pieces of `[offset, offset + len)` of the disk, as (part index, offset in the part's
/// file, offset in the range, length).
pub fn split(
    parts: &[Part],
    offset: u64,
    len: u64,
) -> impl Iterator<Item = (usize, u64, u64, u64)> + '_ {
    let end = offset.saturating_add(len);
    parts.iter().enumerate().filter_map(move |(i, p)| {
        let from = offset.max(p.disk_offset);
        let to = end.min(p.disk_offset + p.len);
        (from < to).then(|| {
            (
                i,
                p.file_offset + (from - p.disk_offset),
                from - offset,
                to - from,
            )
        })
    })
}

impl ReadAt for FileSource {
    fn size(&self) -> u64 {
        self.size
    }
    fn backing(&self) -> Option<Backing> {
        self.backing.clone()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.size)?;
        if let [p] = &self.parts[..] {
            if p.sparse.is_none() {
                return p.file.read_exact_at(buf, offset);
            }
        }
        for (i, at, within, n) in split(&self.parts, offset, buf.len() as u64) {
            self.parts[i].read(at, &mut buf[within as usize..(within + n) as usize])?;
        }
        Ok(())
    }
}

/// Opens the data file of a `SPARSE` extent as the sparse VMDK it is: hosted and uncompressed
/// (its changes are written into its grains in place), holding exactly the extent's `len` bytes.
fn open_sparse_part(
    file: &File,
    file_size: u64,
    path: &Path,
    len: u64,
) -> io::Result<Container<ExtentFile>> {
    let extent = ExtentFile {
        file: file.try_clone()?,
        size: file_size,
    };
    let c = kaifuku_container::open_sparse_extent(extent)
        .map_err(|e| invalid(format!("its data file {}: {e}", path.display())))?;
    if c.format() != Format::VmdkSparse {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "its data file {} is a compressed (streamOptimized) extent, which a split disk does not use: convert the disk to one file first (`qemu-img convert -f vmdk -O vmdk -o subformat=monolithicSparse DISK.vmdk whole.vmdk`)",
                path.display()
            ),
        ));
    }
    if c.virtual_size() != len {
        return Err(invalid(format!(
            "its data file {} holds {} bytes of disk, but the descriptor gives its extent {len}: the descriptor and its data files do not belong together",
            path.display(),
            c.virtual_size()
        )));
    }
    Ok(c)
}

/// What is said, and how kaifuku exits, when an image cannot be opened: a VMware descriptor
/// describing a disk kaifuku does not repair is refused (exit 2, as the same disk in one file
/// would be); anything else is an error.
pub fn open_failed(image: &Path, e: &io::Error) -> crate::exit::Exit {
    if e.kind() == io::ErrorKind::Unsupported {
        say!("refused: {}: {e}", image.display());
        crate::exit::Exit::Refused
    } else {
        say!("cannot open {}: {e}", image.display());
        crate::exit::Exit::Error
    }
}
