//! What the paths on the command line point at, checked before anything is opened or written:
//! the image must be a regular file or a block device (a FIFO would hang the read, a character
//! device is not a disk), an output a regular file (new or replaced) or a block device written in
//! place, an undo file a new regular file; and no two of them may be the same file, however they
//! are spelled (symbolic and hard links, `/proc/self/fd/N`, `..`).

use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// What kind of file a path names, in words for messages.
pub fn kind_words(m: &Metadata) -> &'static str {
    let t = m.file_type();
    if t.is_file() {
        "a regular file"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Checks, without opening it, that `path` is something a disk image can be read from: a regular
/// file or a block device. Symbolic links are followed.
pub fn check_image(path: &Path) -> io::Result<Metadata> {
    let m = fs::metadata(path)?;
    let t = m.file_type();
    if t.is_file() || t.is_block_device() {
        Ok(m)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "it is {}, not a disk image: give a regular file (raw/img, VHD) or a block device",
                kind_words(&m)
            ),
        ))
    }
}

/// Where a file the command writes goes.
#[derive(Debug)]
pub enum Target {
    /// Nothing there yet: written under a temporary name in `dir`, then renamed to `dir/name`.
    New { dir: PathBuf, name: OsString },
    /// An existing regular file (symbolic links resolved), replaced the same way.
    File { path: PathBuf, meta: Metadata },
    /// An existing block device: written in place (an output only).
    Device { path: PathBuf, meta: Metadata },
}

impl Target {
    /// The path the finished file gets (the device itself for a device).
    pub fn final_path(&self) -> PathBuf {
        match self {
            Target::New { dir, name } => dir.join(name),
            Target::File { path, .. } | Target::Device { path, .. } => path.clone(),
        }
    }

    /// The directory the temporary file is made in (never used for a device).
    pub fn dir(&self) -> PathBuf {
        match self {
            Target::New { dir, .. } => dir.clone(),
            Target::File { path, .. } | Target::Device { path, .. } => path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("/")),
        }
    }

    fn meta(&self) -> Option<&Metadata> {
        match self {
            Target::New { .. } => None,
            Target::File { meta, .. } | Target::Device { meta, .. } => Some(meta),
        }
    }
}

/// The role of a path, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Image,
    Output,
    Undo,
    /// The practice disk `kaifuku demo` writes.
    Practice,
}

impl Role {
    fn words(self) -> &'static str {
        match self {
            Role::Image => "the image",
            Role::Output => "the output (-o)",
            Role::Undo => "the undo file (--undo)",
            Role::Practice => "the practice disk",
        }
    }
}

/// Resolves where the output (`Role::Output`) or the undo file (`Role::Undo`) goes and refuses
/// what must not be written: directories, character devices, FIFOs, sockets, dangling links,
/// missing directories; for the undo file also block devices. An existing undo file is returned
/// as [`Target::File`] so overlaps are named first; [`refuse_existing_undo`] then refuses it.
pub fn target(path: &Path, role: Role) -> Result<Target, String> {
    let shown = path.display();
    match fs::metadata(path) {
        Ok(meta) => {
            let t = meta.file_type();
            let real = fs::canonicalize(path)
                .map_err(|e| format!("cannot resolve {} ({shown}): {e}", role.words()))?;
            if role == Role::Undo && !t.is_file() {
                return Err(format!(
                    "{} {shown} is {}; the undo file must be a new regular file",
                    role.words(),
                    kind_words(&meta)
                ));
            }
            if t.is_file() {
                Ok(Target::File { path: real, meta })
            } else if t.is_block_device() {
                Ok(Target::Device { path: real, meta })
            } else {
                Err(format!(
                    "{} {shown} is {}; write the fixed image to a regular file or a block device",
                    role.words(),
                    kind_words(&meta)
                ))
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if fs::symlink_metadata(path).is_ok() {
                return Err(format!(
                    "{} {shown} is a symbolic link to something that does not exist; give the path of the file to create",
                    role.words()
                ));
            }
            let name = path
                .file_name()
                .ok_or_else(|| format!("{} {shown} does not name a file", role.words()))?;
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let dir = fs::canonicalize(parent).map_err(|e| {
                format!(
                    "cannot create {} {shown}: its directory {} {}",
                    role.words(),
                    parent.display(),
                    if e.kind() == io::ErrorKind::NotFound {
                        "does not exist".to_string()
                    } else {
                        format!("cannot be used ({e})")
                    }
                )
            })?;
            if !dir.is_dir() {
                return Err(format!(
                    "cannot create {} {shown}: {} is not a directory",
                    role.words(),
                    parent.display()
                ));
            }
            Ok(Target::New {
                dir,
                name: name.to_owned(),
            })
        }
        Err(e) => Err(format!("cannot use {} {shown}: {e}", role.words())),
    }
}

/// True when two existing files are the same: the same inode, or for device nodes the same
/// device (two nodes of one disk).
fn same_existing(a: &Metadata, b: &Metadata) -> bool {
    if a.dev() == b.dev() && a.ino() == b.ino() {
        return true;
    }
    let dev = |m: &Metadata| m.file_type().is_block_device() || m.file_type().is_char_device();
    dev(a) && dev(b) && a.rdev() == b.rdev()
}

/// When a loop device is backed by a file, that file (so `-o /dev/loopN` over the image's own
/// loop device is caught). Linux only; anything unreadable means "not known".
fn loop_backing_file(m: &Metadata) -> Option<Metadata> {
    if !m.file_type().is_block_device() {
        return None;
    }
    let (major, minor) = (
        nix::sys::stat::major(m.rdev()),
        nix::sys::stat::minor(m.rdev()),
    );
    let p = format!("/sys/dev/block/{major}:{minor}/loop/backing_file");
    let backing = fs::read_to_string(p).ok()?;
    fs::metadata(backing.trim_end_matches('\n')).ok()
}

fn overlap(a: &Metadata, b: &Metadata) -> bool {
    same_existing(a, b)
        || loop_backing_file(a).is_some_and(|x| same_existing(&x, b))
        || loop_backing_file(b).is_some_and(|x| same_existing(a, &x))
}

/// Refuses any two of the image, the output and the undo file that are the same file.
pub fn refuse_overlaps(
    image: (&Path, &Metadata),
    output: Option<(&Path, &Target)>,
    undo: Option<(&Path, &Target)>,
) -> Result<(), String> {
    let same = |a: Role, ap: &Path, b: Role, bp: &Path| {
        let hint = if a == Role::Image && b == Role::Output {
            "; to edit the image itself use --in-place --undo FILE"
        } else {
            ""
        };
        Err(format!(
            "{} {} and {} {} are the same file: writing one would destroy the other{hint}",
            a.words(),
            ap.display(),
            b.words(),
            bp.display()
        ))
    };
    let targets: Vec<(Role, &Path, &Target)> = [
        output.map(|(p, t)| (Role::Output, p, t)),
        undo.map(|(p, t)| (Role::Undo, p, t)),
    ]
    .into_iter()
    .flatten()
    .collect();
    for (role, p, t) in &targets {
        if let Some(m) = t.meta() {
            if overlap(image.1, m) {
                return same(Role::Image, image.0, *role, p);
            }
        }
    }
    if let [(ra, pa, a), (rb, pb, b)] = targets[..] {
        let clash = match (a, b) {
            (Target::New { dir: d1, name: n1 }, Target::New { dir: d2, name: n2 }) => {
                d1 == d2 && n1 == n2
            }
            (Target::New { .. }, _) | (_, Target::New { .. }) => false,
            _ => overlap(a.meta().expect("exists"), b.meta().expect("exists")),
        };
        if clash {
            return same(ra, pa, rb, pb);
        }
    }
    Ok(())
}

/// The image of `kaifuku undo` and its undo file must be different files.
pub fn refuse_same(image: (&Path, &Metadata), undo: (&Path, &Metadata)) -> Result<(), String> {
    if overlap(image.1, undo.1) {
        return Err(format!(
            "the image {} and the undo file {} are the same file",
            image.0.display(),
            undo.0.display()
        ));
    }
    Ok(())
}

/// An existing undo file is never replaced: it may be the only way back from an earlier fix.
pub fn refuse_existing_undo(path: &Path, t: &Target) -> Result<(), String> {
    match t {
        Target::New { .. } => Ok(()),
        _ => Err(format!(
            "the undo file {} already exists; it may be the only way to restore an earlier fix, so it is never replaced: move it away or choose another name",
            path.display()
        )),
    }
}
