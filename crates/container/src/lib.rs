//! Disk-image containers: which format a file is, and where each byte of the virtual disk lives.
//!
//! [`open`] detects the format from the file's bytes, never from its name: exports get renamed,
//! and a `.vhd` that is really raw (or the other way round) must not be misread. It validates the
//! container metadata and returns a [`Container`], which is itself a [`ReadAt`] over the *virtual*
//! disk, so the partition and NTFS layers never know what the file looked like.
//!
//! Supported: raw (anything without a recognised signature), VHD fixed, VHD dynamic, VHDX fixed
//! and dynamic, qcow2 (v2 and v3, with compressed and zero clusters), and single-file VMDK sparse
//! extents (monolithicSparse, streamOptimized). A VMDK text descriptor (whose data lives in other
//! files) is recognised by signature and refused with a message telling the user how to convert
//! it, rather than being misread as a raw disk full of garbage.
//!
//! Writing back is planned, not performed: [`Container::plan_writes`] turns patches of the virtual
//! disk into writes of the container file (through the VHD block table, setting sector-bitmap bits
//! where needed; through the VHDX block table, with the VHDX header update; through qcow2's L1/L2
//! tables into clusters owned once; through the VMDK grain tables into allocated grains, or, for a
//! streamOptimized VMDK, re-streamed with a new size in [`OutputPlan::file_size`]). The front end
//! applies them to its output; this crate stays pure and reads only through [`ReadAt`].
#![forbid(unsafe_code)]

mod error;
mod label;
pub mod pages;
mod qcow2;
mod raw;
mod vhd;
mod vhdx;
mod vhdx_log;
mod vmdk;
pub mod vmdk_descriptor;

pub use error::{ContainerError, OtherFormat};
pub use label::{ContainerUnit, FileWriteLabel, Qcow2Part, VmdkStreamPart, WriteHow};
pub use qcow2::{Qcow2ClusterKind, Qcow2Feature, Qcow2Info};
pub use vhd::{fixed_footer, DiskGeometry, NewFooter, VhdInfo, MAX_BAT_BYTES};
pub use vhdx::VhdxInfo;
pub use vmdk::VmdkInfo;

use kaifuku_io::{check_range, Backing, Patch, PatchData, ReadAt};
use serde::{Serialize, Serializer};
use std::{fmt, io};

/// A container format kaifuku can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// The file is the disk, byte for byte (also any file without a recognised signature).
    Raw,
    /// The disk's bytes followed by a 512-byte VHD footer: how Azure exports disks.
    VhdFixed,
    /// A sparse VHD: blocks found through the block allocation table, unwritten ones read as zeros.
    VhdDynamic,
    /// A QEMU copy-on-write image (version 2 or 3): clusters found through L1/L2 tables.
    Qcow2,
    /// A Hyper-V VHDX whose blocks are all allocated (`LeaveBlocksAllocated`).
    VhdxFixed,
    /// A sparse Hyper-V VHDX: blocks found through the block allocation table.
    VhdxDynamic,
    /// A VMware monolithicSparse VMDK: one file, grains found through grain tables.
    VmdkSparse,
    /// A VMware streamOptimized VMDK (OVA/OVF and cloud exports): compressed grains.
    VmdkStreamOptimized,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Raw => "raw",
            Format::VhdFixed => "VHD fixed",
            Format::VhdDynamic => "VHD dynamic",
            Format::Qcow2 => "qcow2",
            Format::VhdxFixed => "VHDX fixed",
            Format::VhdxDynamic => "VHDX dynamic",
            Format::VmdkSparse => "VMDK monolithicSparse",
            Format::VmdkStreamOptimized => "VMDK streamOptimized",
        })
    }
}

/// Where a run of virtual-disk bytes lives, as returned by [`Container::map`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Extent {
    /// The bytes are stored in the file, contiguously from `file_offset`.
    InFile {
        /// Where in the container file the run starts.
        file_offset: u64,
        /// Length of the run in bytes.
        len: u64,
    },
    /// The bytes read as zeros and have no place in the file (an unallocated VHD block, or sectors
    /// whose bit in the block's sector bitmap is clear).
    Zero {
        /// Length of the run in bytes.
        len: u64,
    },
    /// The bytes are the backing disk's at the same offsets (a qcow2 image that holds only what
    /// differs from its backing file); past the backing disk's end they read as zeros.
    Backing {
        /// Length of the run in bytes.
        len: u64,
    },
    /// The bytes are part of a compressed cluster (qcow2) or grain (VMDK): `stored_len` bytes of the file from
    /// `file_offset` inflate to a `cluster_size`-byte cluster, and the run is `len` bytes of it
    /// from `skip` on.
    Compressed {
        /// Where in the container file the compressed data starts (not aligned).
        file_offset: u64,
        /// Bytes of compressed data, as the L2 entry gives them (clamped to the file's end).
        stored_len: u64,
        /// Bytes the data inflates to.
        cluster_size: u64,
        /// Where in the inflated cluster the run starts.
        skip: u64,
        /// Length of the run in bytes.
        len: u64,
    },
}

impl Extent {
    /// How many bytes, from the mapped offset on, share this mapping. Never zero; never past the
    /// end of the virtual disk or (for VHD dynamic) of the block.
    pub fn len(&self) -> u64 {
        match *self {
            Extent::InFile { len, .. }
            | Extent::Zero { len }
            | Extent::Backing { len }
            | Extent::Compressed { len, .. } => len,
        }
    }

    /// Always false for extents returned by [`Container::map`].
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One write to the container file that applying the patches requires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileWrite {
    /// Where in the container file the bytes go.
    pub file_offset: u64,
    /// The bytes to write there.
    ///
    /// Serialized as its length only: the plan shown to people lists ranges, not bytes.
    #[serde(rename = "len", serialize_with = "serialize_len")]
    pub bytes: Vec<u8>,
    /// What the write changes, e.g. "virtual disk bytes 0x..." or "VHD block 3 sector bitmap...".
    pub label: FileWriteLabel,
}

/// A range of the container file to fill with one byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileFill {
    /// Where in the container file the range starts.
    pub file_offset: u64,
    /// Length of the range in bytes.
    pub len: u64,
    /// The byte written over the whole range.
    pub byte: u8,
    /// What the fill changes, e.g. "virtual disk bytes 0x...(filled)".
    pub label: FileWriteLabel,
}

/// Everything to write to the output file: applied to a copy of the image (or to the image in
/// place), it makes the container read as the patched virtual disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutputPlan {
    /// Byte writes, sorted by file offset, never overlapping.
    pub writes: Vec<FileWrite>,
    /// Ranges filled with one byte (the journal reset), kept as ranges so they cost no memory.
    pub fills: Vec<FileFill>,
    /// The output file's size when it is not the image file's (a re-streamed streamOptimized
    /// VMDK): the output is then the image file cut or extended to this size, with the writes
    /// applied; the writes cover every byte past the image file's end. `None`: the same size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_size: Option<u64>,
}

impl OutputPlan {
    /// Refuses a plan two of whose writes or fills share a file byte: which one lands last would
    /// decide what the file holds, and the verification reads only one answer. Every planner
    /// keeps its writes apart; this is the guard that turns a planner's bug into a refusal
    /// before anything is written, never into a silently different disk.
    fn check_disjoint(&self) -> Result<(), ContainerError> {
        let mut ranges: Vec<(u64, u64)> = self
            .writes
            .iter()
            .map(|w| (w.file_offset, w.end()))
            .chain(
                self.fills
                    .iter()
                    .map(|f| (f.file_offset, f.file_offset.saturating_add(f.len))),
            )
            .filter(|(from, to)| from < to)
            .collect();
        ranges.sort_unstable();
        match ranges.windows(2).find(|pair| pair[1].0 < pair[0].1) {
            Some(pair) => Err(ContainerError::PlannedWritesOverlap {
                first: pair[0],
                second: pair[1],
            }),
            None => Ok(()),
        }
    }
}

impl FileWrite {
    /// File offset just past the last byte written.
    pub fn end(&self) -> u64 {
        self.file_offset + self.bytes.len() as u64
    }
}

fn serialize_len<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(bytes.len() as u64)
}

/// The fixed VHD a fixed disk is written as when asked (`--output-format vhd-fixed`, the page's
/// choice), from any input container: the virtual disk's bytes (zeros past its end), then
/// [`FixedVhdOutput::footer`]. That is the one format Azure takes for upload, so a Hyper-V, VMware
/// or KVM disk goes back to Azure without a conversion step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedVhdOutput {
    /// Bytes of disk in the output: the virtual size rounded up to a whole MiB, because Azure
    /// accepts only VHDs of whole MiB. What lies past the input's virtual size reads as zeros.
    pub disk_size: u64,
    /// The footer that follows the disk. A VHD input keeps its unique id; any other input gets
    /// the one the front end chose.
    pub footer: [u8; vhd::FOOTER_LEN as usize],
}

impl FixedVhdOutput {
    /// Size of the output file: the disk and the footer.
    pub fn file_size(&self) -> u64 {
        self.disk_size + vhd::FOOTER_LEN
    }
}

/// Azure's unit for VHD sizes.
const MIB: u64 = 1 << 20;

/// What `inspect` reports about the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerInfo {
    /// Which container the bytes of the file say it is.
    pub format: Format,
    /// Size of the disk the guest sees.
    pub virtual_size: u64,
    /// Size of the image file.
    pub file_size: u64,
    /// Footer details (and block counts for dynamic disks); absent for raw images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vhd: Option<VhdInfo>,
    /// Header details of a qcow2 image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qcow2: Option<Qcow2Info>,
    /// Header and metadata details of a VHDX; absent for other formats.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vhdx: Option<VhdxInfo>,
    /// Header and descriptor details of a VMDK; absent for other formats.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vmdk: Option<VmdkInfo>,
}

enum Layout {
    Raw,
    VhdFixed(vhd::Fixed),
    VhdDynamic(vhd::Dynamic),
    Qcow2(qcow2::Qcow2),
    Vhdx(vhdx::Vhdx),
    Vmdk(vmdk::Vmdk),
}

impl Layout {
    fn format(&self) -> Format {
        match self {
            Layout::Raw => Format::Raw,
            Layout::VhdFixed(_) => Format::VhdFixed,
            Layout::VhdDynamic(_) => Format::VhdDynamic,
            Layout::Qcow2(_) => Format::Qcow2,
            Layout::Vhdx(v) if v.is_fixed() => Format::VhdxFixed,
            Layout::Vhdx(_) => Format::VhdxDynamic,
            Layout::Vmdk(v) if v.is_stream() => Format::VmdkStreamOptimized,
            Layout::Vmdk(_) => Format::VmdkSparse,
        }
    }
}

/// An opened disk image: a [`ReadAt`] over the virtual disk, plus its container metadata.
pub struct Container<R> {
    file: R,
    file_size: u64,
    virtual_size: u64,
    layout: Layout,
    /// The backing disk, for an image that holds only what differs from it, read as a virtual
    /// disk, and its format.
    backing: Option<(Box<dyn ReadAt>, Format)>,
}

/// A backing disk opened for the image on top of it.
struct OpenedBacking {
    disk: Box<dyn ReadAt>,
    format: Format,
    /// Its CID, when it is a VMDK (a child recorded it).
    vmdk_cid: Option<String>,
}

/// Opens the backing disk `b` of an image `depth` deep in its chain.
#[cfg(feature = "backing-files")]
fn open_backing(b: Backing, depth: usize) -> Result<OpenedBacking, ContainerError> {
    let c = open_at_depth(b, depth + 1)?;
    let vmdk_cid = match &c.layout {
        Layout::Vmdk(v) => Some(v.cid().to_string()),
        _ => None,
    };
    Ok(OpenedBacking {
        format: c.format(),
        vmdk_cid,
        disk: Box::new(c),
    })
}

/// Without the `backing-files` feature no backing disk is opened (the page gives none).
#[cfg(not(feature = "backing-files"))]
fn open_backing(_: Backing, _: usize) -> Result<OpenedBacking, ContainerError> {
    Err(ContainerError::Qcow2Unsupported(Qcow2Feature::BackingFile))
}

/// How many backing files deep a chain may go (QEMU's own limit is far higher; real chains are
/// a few deep, and a longer one is more likely a loop the front end missed).
const MAX_BACKING_DEPTH: usize = 16;

/// Reads `buf.len()` bytes at virtual offset `offset` of a backing disk: zeros past its end (a
/// backing disk may be smaller than the image on top of it).
fn read_backing(backing: &dyn ReadAt, offset: u64, buf: &mut [u8]) -> Result<(), ContainerError> {
    let held = backing.size().saturating_sub(offset).min(buf.len() as u64) as usize;
    if held > 0 {
        backing
            .read_at(offset, &mut buf[..held])
            .map_err(|e| ContainerError::read("the backing file", offset, e))?;
    }
    buf[held..].fill(0);
    Ok(())
}

/// The file an image names for the bytes it does not hold — a qcow2 image's backing file, a
/// sparse VMDK child's parent (`parentFileNameHint`) — if `file` is one that does (only its
/// header and descriptor are read): what a front end looks for beside the image before opening
/// it (relative names are relative to the image's folder).
pub fn backing_file_name<R: ReadAt>(file: &R) -> Result<Option<String>, ContainerError> {
    let file_size = file.size();
    let head_len = file_size.min(64 << 10);
    let head = file
        .read_vec(0, head_len as usize)
        .map_err(|e| ContainerError::read("the start of the image", 0, e))?;
    if head.starts_with(qcow2::MAGIC) {
        return Ok(qcow2::Qcow2::open(file, &head, file_size)?
            .backing_file()
            .map(str::to_string));
    }
    if head.starts_with(vmdk::MAGIC) {
        return Ok(vmdk::Vmdk::open(file, &head, file_size, false)?
            .parent()
            .map(|(hint, _)| hint.to_string()));
    }
    Ok(None)
}

/// Detects the container format of `file` and validates its metadata.
///
/// Reads the first and last 512 bytes; for a dynamic VHD also its header and block allocation
/// table (kept in memory: 4 bytes per block, at most [`MAX_BAT_BYTES`]); for qcow2 its header
/// extensions and active L1 table (L2 tables are read as the disk is); for a VHDX its header
/// section (headers and region tables) and metadata table, while its block table is read a page
/// at a time as blocks are mapped; for a sparse VMDK its header, embedded descriptor and (for a
/// stream that defers to it) footer, while its grain directory and tables are read as grains are
/// mapped.
pub fn open<R: ReadAt>(file: R) -> Result<Container<R>, ContainerError> {
    open_at_depth(file, 0)
}

fn open_at_depth<R: ReadAt>(file: R, depth: usize) -> Result<Container<R>, ContainerError> {
    let file_size = file.size();
    let head_len = file_size.min(vhd::FOOTER_LEN);
    let head = file
        .read_vec(0, head_len as usize)
        .map_err(|e| ContainerError::read("the start of the image", 0, e))?;
    // Formats with a signature at offset 0 are checked first: their last bytes are guest data,
    // which could by chance (a VHD stored inside the guest) end with a VHD footer.
    if head.starts_with(qcow2::MAGIC) {
        let mut image = qcow2::Qcow2::open(&file, &head, file_size)?;
        // An image on top of a backing file is read through it when the front end found it.
        let backing = match (image.backing_file(), file.backing()) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(ContainerError::Qcow2Unsupported(Qcow2Feature::BackingFile))
            }
            (Some(_), Some(_)) if depth >= MAX_BACKING_DEPTH => {
                return Err(ContainerError::BackingChainTooLong {
                    limit: MAX_BACKING_DEPTH,
                })
            }
            (Some(_), Some(b)) => {
                let opened = open_backing(b, depth)?;
                image.read_through_backing();
                Some((opened.disk, opened.format))
            }
        };
        return Ok(Container {
            file,
            file_size,
            virtual_size: image.virtual_size(),
            layout: Layout::Qcow2(image),
            backing,
        });
    }
    if head.starts_with(vhdx::SIGNATURE) {
        let vhdx = vhdx::Vhdx::open(&file)?;
        return Ok(Container {
            file,
            file_size,
            virtual_size: vhdx.virtual_size(),
            layout: Layout::Vhdx(vhdx),
            backing: None,
        });
    }
    if head.starts_with(vmdk::MAGIC) {
        let mut image = vmdk::Vmdk::open(&file, &head, file_size, false)?;
        // A child disk (a snapshot or linked clone) is read through its parent when the front
        // end found it; a compressed child is not (no tool makes one).
        let backing = match (image.parent(), file.backing()) {
            (None, _) => None,
            (Some((hint, _)), None) => {
                return Err(ContainerError::VmdkChild {
                    parent: hint.to_string(),
                })
            }
            (Some((hint, _)), Some(_)) if image.is_stream() => {
                return Err(ContainerError::VmdkChild {
                    parent: hint.to_string(),
                })
            }
            (Some(_), Some(_)) if depth >= MAX_BACKING_DEPTH => {
                return Err(ContainerError::BackingChainTooLong {
                    limit: MAX_BACKING_DEPTH,
                })
            }
            (Some((_, parent_cid)), Some(b)) => {
                let opened = open_backing(b, depth)?;
                // The parent must be the disk the child was made on: VMware and QEMU compare
                // its CID with the one the child recorded.
                if let Some(cid) = &opened.vmdk_cid {
                    if !cid.eq_ignore_ascii_case(parent_cid) {
                        return Err(ContainerError::VmdkParentChanged {
                            recorded: parent_cid.to_string(),
                            found: cid.clone(),
                        });
                    }
                }
                image.read_through_backing();
                Some((opened.disk, opened.format))
            }
        };
        return Ok(Container {
            file,
            file_size,
            virtual_size: image.virtual_size(),
            layout: Layout::Vmdk(image),
            backing,
        });
    }
    if let Some(other) = detect_other(&head) {
        return Err(ContainerError::UnsupportedFormat(other));
    }
    let tail = if file_size > head_len {
        let at = file_size - vhd::FOOTER_LEN;
        file.read_vec(at, vhd::FOOTER_LEN as usize)
            .map_err(|e| ContainerError::read("the VHD footer area", at, e))?
    } else {
        head.clone()
    };

    let (virtual_size, layout) = match vhd::find_footer(&tail)? {
        Some(footer) => {
            footer.check_supported()?;
            let size = footer.current_size;
            if footer.is_fixed() {
                (size, Layout::VhdFixed(vhd::Fixed::open(footer, file_size)?))
            } else {
                let dynamic = vhd::Dynamic::open(&file, &head, footer, file_size)?;
                (size, Layout::VhdDynamic(dynamic))
            }
        }
        // A dynamic VHD starts with a copy of its footer; without the footer at the end, the
        // file lost its tail. Calling it raw would hide that.
        None if head.starts_with(vhd::COOKIE) => {
            return Err(if file_size < vhd::FOOTER_LEN {
                ContainerError::FileTooSmall {
                    what: "a VHD footer",
                    needed: vhd::FOOTER_LEN,
                    file_size,
                }
            } else {
                ContainerError::MissingFooter
            });
        }
        // A fixed VHD has no copy of its footer at the start; if its tail was cut, what is left
        // of the footer ("conectix" not 512 bytes from the end) is the only sign. Treating the file
        // as raw would hand the guest a disk with a stray half footer and no error.
        None if tail.windows(vhd::COOKIE.len()).any(|w| w == vhd::COOKIE) => {
            return Err(ContainerError::MissingFooter);
        }
        None => (file_size, Layout::Raw),
    };
    Ok(Container {
        file,
        file_size,
        virtual_size,
        layout,
        backing: None,
    })
}

/// Opens the data file of a `SPARSE` extent named by a VMware text descriptor
/// ([`vmdk_descriptor`]): a sparse extent (`KDMV`) whose descriptor is that separate file, so it
/// may have none of its own. The caller checks its capacity against the descriptor's extent.
pub fn open_sparse_extent<R: ReadAt>(file: R) -> Result<Container<R>, ContainerError> {
    let file_size = file.size();
    let head_len = file_size.min(vhd::FOOTER_LEN);
    let head = file
        .read_vec(0, head_len as usize)
        .map_err(|e| ContainerError::read("the start of the extent", 0, e))?;
    if !head.starts_with(vmdk::MAGIC) {
        return Err(ContainerError::VmdkHeader {
            field: "magicNumber",
            value: head.get(..4).map_or(0, |m| u64::from(vmdk::le_u32(m, 0))),
            problem: "is not \"KDMV\": the descriptor names a SPARSE extent, but this file is \
                      no sparse extent (are the data files mixed up?)",
        });
    }
    let image = vmdk::Vmdk::open(&file, &head, file_size, true)?;
    if let Some((hint, _)) = image.parent() {
        return Err(ContainerError::VmdkChild {
            parent: hint.to_string(),
        });
    }
    Ok(Container {
        file,
        file_size,
        virtual_size: image.virtual_size(),
        layout: Layout::Vmdk(image),
        backing: None,
    })
}

/// Recognises the containers kaifuku cannot read yet by their signature at offset 0.
fn detect_other(head: &[u8]) -> Option<OtherFormat> {
    if head.starts_with(b"# Disk DescriptorFile") {
        Some(OtherFormat::VmdkDescriptor)
    } else {
        None
    }
}

impl<R: ReadAt> Container<R> {
    /// Which container the file is, as detected from its bytes.
    pub fn format(&self) -> Format {
        self.layout.format()
    }

    /// Size of the disk the guest sees (for a VHD, the footer's `current_size`).
    pub fn virtual_size(&self) -> u64 {
        self.virtual_size
    }

    /// Size of the image file.
    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    /// The underlying image file.
    pub fn file(&self) -> &R {
        &self.file
    }

    /// Gives the image file back once the virtual disk is no longer needed.
    pub fn into_file(self) -> R {
        self.file
    }

    /// The backing disk this image is read through, if it has one.
    fn backing_disk(&self) -> Option<&dyn ReadAt> {
        self.backing.as_ref().map(|(disk, _)| disk.as_ref())
    }

    /// The format of the backing disk this image is read through, if it has one.
    pub fn backing_format(&self) -> Option<Format> {
        self.backing.as_ref().map(|(_, format)| *format)
    }

    /// The container's part of the inspect report: format, sizes and the VHD footer's or qcow2
    /// header's details.
    pub fn info(&self) -> ContainerInfo {
        let vhd = match &self.layout {
            Layout::Raw | Layout::Qcow2(_) | Layout::Vhdx(_) | Layout::Vmdk(_) => None,
            Layout::VhdFixed(f) => Some(f.footer.info()),
            Layout::VhdDynamic(d) => {
                let mut info = d.footer.info();
                info.block_size = u32::try_from(d.block_size()).ok();
                info.allocated_blocks = Some(d.allocated_blocks());
                info.total_blocks = Some(d.total_blocks());
                Some(info)
            }
        };
        ContainerInfo {
            format: self.format(),
            virtual_size: self.virtual_size,
            file_size: self.file_size,
            vhd,
            qcow2: match &self.layout {
                Layout::Qcow2(q) => Some(q.info()),
                _ => None,
            },
            vhdx: match &self.layout {
                Layout::Vhdx(v) => Some(v.info()),
                _ => None,
            },
            vmdk: match &self.layout {
                Layout::Vmdk(v) => Some(v.info()),
                _ => None,
            },
        }
    }

    /// How this image's virtual disk is written as a fixed VHD ([`FixedVhdOutput`]). `made` names
    /// the new footer's time and unique id; a VHD input keeps its own unique id.
    pub fn fixed_vhd_output(&self, made: NewFooter) -> Result<FixedVhdOutput, ContainerError> {
        let disk_size = self
            .virtual_size
            .checked_next_multiple_of(MIB)
            .filter(|s| s.checked_add(vhd::FOOTER_LEN).is_some())
            .ok_or(ContainerError::TooLargeForFixedVhd {
                virtual_size: self.virtual_size,
            })?;
        let unique_id = match &self.layout {
            Layout::VhdFixed(f) => f.footer.uuid,
            Layout::VhdDynamic(d) => d.footer.uuid,
            _ => made.unique_id,
        };
        Ok(FixedVhdOutput {
            disk_size,
            footer: vhd::fixed_footer(disk_size, NewFooter { unique_id, ..made }),
        })
    }

    /// Where the bytes of virtual offset `offset` live, up to the end of the contiguous extent.
    ///
    /// For VHD dynamic this may read the block's sector bitmap, for qcow2 an L2 table (a few of
    /// either are cached).
    pub fn map(&self, offset: u64) -> Result<Extent, ContainerError> {
        match &self.layout {
            Layout::Raw | Layout::VhdFixed(_) => raw::map_identity(offset, self.virtual_size),
            Layout::VhdDynamic(d) => d.map(&self.file, offset),
            Layout::Qcow2(q) => q.map(&self.file, offset),
            Layout::Vhdx(v) => v.map(&self.file, offset),
            Layout::Vmdk(v) => v.map(&self.file, offset),
        }
    }

    /// The file writes that make the container read as the virtual disk with `patches` applied
    /// (`(virtual offset, new bytes)`; where patches overlap, later ones win).
    ///
    /// Raw and VHD fixed: the same bytes at the same offsets. VHD dynamic: mapped through the block
    /// table; a patched sector whose bitmap bit is clear is written whole (zeros around the patch,
    /// as it read before) and its bit is set by a separate write to the block's bitmap; a block
    /// with no place in the file is added where the footer was, its table entry pointing there,
    /// and the footer written after it (the header is never written). qcow2: into the clusters the L2 tables map, each of
    /// which must be a standard cluster with refcount one; any other cluster is stored anew at the
    /// end of the file, and the writes then cover every byte from the old end of the file to the
    /// new (only [`Container::plan_output`] gives the new size). VHDX: mapped through the block
    /// table into blocks that are fully present; a block that is not is added at the end of the
    /// file (its table entry pointing there; zeros around the patches are fills, so only
    /// `plan_output` gives them), plus both headers rewritten with a higher sequence number and
    /// new write GUIDs. monolithicSparse VMDK: through the grain tables into allocated grains.
    /// streamOptimized VMDK: the image re-streamed, which changes the file's size: only
    /// [`Container::plan_output`] gives the size with the writes. Writes are sorted by file offset
    /// and do not overlap.
    pub fn plan_writes(&self, patches: &[(u64, &[u8])]) -> Result<Vec<FileWrite>, ContainerError> {
        Ok(self.plan_writes_and_fills(patches, &[])?.0)
    }

    /// Like [`Container::plan_writes`], for plans that also fill ranges with one byte (the journal
    /// reset): fills become [`FileFill`]s, never materialised. Fills must not overlap byte patches.
    pub fn plan_output<L>(&self, patches: &[Patch<L>]) -> Result<OutputPlan, ContainerError> {
        let bytes: Vec<(u64, &[u8])> = patches
            .iter()
            .filter_map(|p| match &p.data {
                PatchData::Bytes(b) => Some((p.offset, b.as_slice())),
                PatchData::Fill { .. } => None,
            })
            .collect();
        let fills: Vec<(u64, u64, u8)> = patches
            .iter()
            .filter_map(|p| match p.data {
                PatchData::Fill { byte, len } => Some((p.offset, len, byte)),
                PatchData::Bytes(_) => None,
            })
            .collect();
        for &(fs, fl, _) in &fills {
            let fe = fs
                .checked_add(fl)
                .filter(|e| *e <= self.virtual_size)
                .ok_or(ContainerError::PatchOutOfRange {
                    offset: fs,
                    len: fl,
                    virtual_size: self.virtual_size,
                })?;
            if bytes
                .iter()
                .any(|&(o, b)| o < fe && fs < o + b.len() as u64)
            {
                return Err(ContainerError::Overflow("a fill overlaps a byte patch"));
            }
        }
        let plan = match &self.layout {
            Layout::Vmdk(v) if v.is_stream() => {
                let merged = merge_patches(&bytes, self.virtual_size)?;
                let (writes, file_size) = v.plan_stream(&self.file, &merged, &fills)?;
                OutputPlan {
                    writes,
                    fills: Vec::new(),
                    file_size: Some(file_size),
                }
            }
            Layout::Qcow2(q) => {
                let merged = merge_patches(&bytes, self.virtual_size)?;
                let out = q.plan_output(&self.file, self.backing_disk(), &merged, &fills)?;
                OutputPlan {
                    writes: out.writes,
                    fills: out.fills,
                    file_size: out.file_size,
                }
            }
            Layout::Vhdx(v) => {
                let merged = merge_patches(&bytes, self.virtual_size)?;
                v.plan_output(&self.file, &merged, &fills)?
            }
            Layout::VhdDynamic(d) => {
                let merged = merge_patches(&bytes, self.virtual_size)?;
                d.plan_output(&self.file, &merged, &fills)?
            }
            Layout::Vmdk(v) => {
                let merged = merge_patches(&bytes, self.virtual_size)?;
                v.plan_output(&self.file, self.backing_disk(), &merged, &fills)?
            }
            _ => {
                let (writes, fills) = self.plan_writes_and_fills(&bytes, &fills)?;
                OutputPlan {
                    writes,
                    fills,
                    file_size: None,
                }
            }
        };
        plan.check_disjoint()?;
        Ok(plan)
    }

    fn plan_writes_and_fills(
        &self,
        patches: &[(u64, &[u8])],
        fills: &[(u64, u64, u8)],
    ) -> Result<(Vec<FileWrite>, Vec<FileFill>), ContainerError> {
        let merged = merge_patches(patches, self.virtual_size)?;
        match &self.layout {
            Layout::Raw | Layout::VhdFixed(_) => Ok((
                raw::plan_identity(merged),
                fills
                    .iter()
                    .map(|&(offset, len, byte)| FileFill {
                        file_offset: offset,
                        len,
                        byte,
                        label: FileWriteLabel::virtual_bytes(
                            offset,
                            offset + len,
                            WriteHow::Filled,
                        ),
                    })
                    .collect(),
            )),
            Layout::VhdDynamic(d) => {
                let out = d.plan_output(&self.file, &merged, fills)?;
                Ok((out.writes, out.fills))
            }
            // `plan_output` keeps the size of a file that grows; the writes cover the new bytes.
            Layout::Qcow2(q) => {
                let out = q.plan_output(&self.file, self.backing_disk(), &merged, fills)?;
                Ok((out.writes, out.fills))
            }
            Layout::Vhdx(v) => {
                let out = v.plan_output(&self.file, &merged, fills)?;
                Ok((out.writes, out.fills))
            }
            Layout::Vmdk(v) if v.is_stream() => {
                Ok((v.plan_stream(&self.file, &merged, fills)?.0, Vec::new()))
            }
            Layout::Vmdk(v) => {
                let out = v.plan_output(&self.file, self.backing_disk(), &merged, fills)?;
                Ok((out.writes, out.fills))
            }
        }
    }

    fn read_file(&self, file_offset: u64, buf: &mut [u8]) -> io::Result<()> {
        match &self.layout {
            Layout::Vhdx(v) => v.read_file(&self.file, file_offset, buf),
            _ => self.file.read_at(file_offset, buf),
        }
    }
}

/// The units of `unit` bytes (blocks, clusters, grains) that the merged patches and the fills
/// touch, in order.
pub(crate) fn touched_units(
    merged: &[(u64, Vec<u8>)],
    fills: &[(u64, u64, u8)],
    unit: u64,
) -> std::collections::BTreeSet<u64> {
    merged
        .iter()
        .map(|(start, bytes)| (*start, bytes.len() as u64))
        .chain(fills.iter().map(|&(start, len, _)| (start, len)))
        .filter(|&(_, len)| len > 0)
        .flat_map(|(start, len)| start / unit..=(start + len - 1) / unit)
        .collect()
}

/// Zero fills for the bytes of a unit added at the end of the file — file bytes `at..at + len`,
/// holding the disk's bytes from `virtual_start` on — that no planned write or fill covers: the
/// unit read as zeros while it had no place, and still must where nothing changes it.
pub(crate) fn zeros_around(
    writes: &[FileWrite],
    fills: &[FileFill],
    (at, len): (u64, u64),
    (virtual_start, virtual_size): (u64, u64),
    unit: ContainerUnit,
) -> Vec<FileFill> {
    let end = at + len;
    let mut covered: Vec<(u64, u64)> = writes
        .iter()
        .map(|w| (w.file_offset, w.end()))
        .chain(fills.iter().map(|f| (f.file_offset, f.file_offset + f.len)))
        .filter(|&(from, _)| from >= at && from < end)
        .collect();
    covered.sort_unstable();
    let mut gaps = Vec::new();
    let mut pos = at;
    for (from, to) in covered {
        gaps.push((pos, from));
        pos = pos.max(to);
    }
    gaps.push((pos, end));
    let virtual_at = |file_offset: u64| (virtual_start + (file_offset - at)).min(virtual_size);
    gaps.into_iter()
        .filter(|(from, to)| from < to)
        .map(|(from, to)| FileFill {
            file_offset: from,
            len: to - from,
            byte: 0,
            label: FileWriteLabel::VirtualBytes {
                start: virtual_at(from),
                end: virtual_at(to),
                unit: Some(unit),
                how: WriteHow::NewUnit,
            },
        })
        .collect()
}

/// Lays the merged byte patches and the fills over `data`, which holds virtual bytes
/// `start..end` of the disk (a grain or cluster written whole).
pub(crate) fn lay_over(
    data: &mut [u8],
    start: u64,
    end: u64,
    merged: &[(u64, Vec<u8>)],
    fills: &[(u64, u64, u8)],
) {
    for (offset, bytes) in merged {
        let from = (*offset).max(start);
        let to = (offset + bytes.len() as u64).min(end);
        if from < to {
            data[(from - start) as usize..(to - start) as usize]
                .copy_from_slice(&bytes[(from - offset) as usize..(to - offset) as usize]);
        }
    }
    for &(offset, len, byte) in fills {
        let from = offset.max(start);
        let to = (offset + len).min(end);
        if from < to {
            data[(from - start) as usize..(to - start) as usize].fill(byte);
        }
    }
}

/// Checks that every patch fits the disk and folds them into sorted, disjoint, non-adjacent ranges;
/// where patches overlap, the later one wins (as in the overlay the verifier reads).
fn merge_patches(
    patches: &[(u64, &[u8])],
    size: u64,
) -> Result<Vec<(u64, Vec<u8>)>, ContainerError> {
    let mut spans = Vec::with_capacity(patches.len());
    for &(offset, bytes) in patches {
        let len = bytes.len() as u64;
        match offset.checked_add(len) {
            Some(end) if end <= size => {
                if len > 0 {
                    spans.push((offset, end));
                }
            }
            _ => {
                return Err(ContainerError::PatchOutOfRange {
                    offset,
                    len,
                    virtual_size: size,
                })
            }
        }
    }
    spans.sort_unstable();
    let mut union: Vec<(u64, u64)> = Vec::new();
    for (start, end) in spans {
        match union.last_mut() {
            Some((_, last_end)) if start <= *last_end => *last_end = (*last_end).max(end),
            _ => union.push((start, end)),
        }
    }
    let mut merged: Vec<(u64, Vec<u8>)> = union
        .iter()
        .map(|&(start, end)| (start, vec![0u8; (end - start) as usize]))
        .collect();
    for &(offset, bytes) in patches {
        if bytes.is_empty() {
            continue;
        }
        // The union range holding this patch: the last one starting at or before it.
        let i = union.partition_point(|&(start, _)| start <= offset) - 1;
        let (start, buf) = &mut merged[i];
        let at = (offset - *start) as usize;
        buf[at..at + bytes.len()].copy_from_slice(bytes);
    }
    Ok(merged)
}

/// Reads the virtual disk. Runs that are contiguous in the file are fetched with one call to the
/// underlying reader (each call is expensive in the browser), compressed clusters included: qcow2
/// writes them one after the other, often sharing a sector. Zero extents cost no read at all.
impl<R: ReadAt> ReadAt for Container<R> {
    fn size(&self) -> u64 {
        self.virtual_size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.virtual_size)?;
        let mut run: Option<FileRun> = None;
        let mut done = 0usize;
        while done < buf.len() {
            let want = buf.len() - done;
            let extent = self.map(offset + done as u64)?;
            let n = usize::try_from(extent.len()).map_or(want, |len| len.min(want));
            let piece = match extent {
                Extent::Zero { .. } => {
                    buf[done..done + n].fill(0);
                    None
                }
                Extent::Backing { .. } => {
                    let backing = self
                        .backing_disk()
                        .ok_or(ContainerError::Qcow2Unsupported(Qcow2Feature::BackingFile))?;
                    read_backing(backing, offset + done as u64, &mut buf[done..done + n])?;
                    None
                }
                Extent::InFile { file_offset, .. } => Some(Piece {
                    file_offset,
                    file_len: n as u64,
                    skip: None,
                    at: done,
                    len: n,
                }),
                Extent::Compressed {
                    file_offset,
                    stored_len,
                    skip,
                    ..
                } => match self.cached_unit(file_offset)? {
                    Some(cluster) => {
                        buf[done..done + n]
                            .copy_from_slice(&cluster[skip as usize..skip as usize + n]);
                        None
                    }
                    None => Some(Piece {
                        file_offset,
                        file_len: stored_len,
                        skip: Some(skip as usize),
                        at: done,
                        len: n,
                    }),
                },
            };
            if let Some(piece) = piece {
                match &mut run {
                    Some(r) if r.joins(&piece) => r.add(piece),
                    _ => {
                        if let Some(r) = run.take() {
                            self.read_run(r, buf)?;
                        }
                        run = Some(FileRun::new(piece));
                    }
                }
            }
            done += n;
        }
        if let Some(r) = run {
            self.read_run(r, buf)?;
        }
        Ok(())
    }
}

/// Part of a read that comes from the file: `len` bytes for `buf[at..]`, copied from `file_len`
/// bytes at `file_offset`, or (with `skip`) taken from offset `skip` of the cluster they inflate to.
struct Piece {
    file_offset: u64,
    file_len: u64,
    skip: Option<usize>,
    at: usize,
    len: usize,
}

/// One contiguous range of the file, fetched with one read, and what to do with its pieces.
struct FileRun {
    start: u64,
    end: u64,
    /// Plain copies laid end to end in both the file and the buffer: read straight into it.
    direct: bool,
    pieces: Vec<Piece>,
}

impl FileRun {
    fn new(piece: Piece) -> FileRun {
        FileRun {
            start: piece.file_offset,
            end: piece.file_offset + piece.file_len,
            direct: piece.skip.is_none(),
            pieces: vec![piece],
        }
    }

    /// Whether `piece` starts inside or right after the run (compressed data may share a sector
    /// with the cluster before it).
    fn joins(&self, piece: &Piece) -> bool {
        (self.start..=self.end).contains(&piece.file_offset)
    }

    fn add(&mut self, piece: Piece) {
        let last = &self.pieces[self.pieces.len() - 1];
        self.direct &=
            piece.skip.is_none() && piece.file_offset == self.end && last.at + last.len == piece.at;
        self.end = self.end.max(piece.file_offset + piece.file_len);
        self.pieces.push(piece);
    }
}

impl<R: ReadAt> Container<R> {
    /// The inflated cluster or grain whose compressed data starts at `file_offset`, if cached.
    fn cached_unit(&self, file_offset: u64) -> Result<Option<std::rc::Rc<[u8]>>, ContainerError> {
        match &self.layout {
            Layout::Qcow2(q) => Ok(q.cached_cluster(file_offset)),
            Layout::Vmdk(v) => Ok(v.cached_grain(file_offset)),
            _ => Err(ContainerError::Overflow(
                "a compressed extent outside a qcow2 or VMDK image",
            )),
        }
    }

    /// Inflates the compressed cluster or grain whose data `stored` was read from `file_offset`.
    fn inflate(
        &self,
        file_offset: u64,
        stored: &[u8],
    ) -> Result<std::rc::Rc<[u8]>, ContainerError> {
        match &self.layout {
            Layout::Qcow2(q) => q.inflate(file_offset, stored),
            Layout::Vmdk(v) => v.inflate(file_offset, stored),
            _ => Err(ContainerError::Overflow(
                "a compressed extent outside a qcow2 or VMDK image",
            )),
        }
    }

    fn read_run(&self, run: FileRun, buf: &mut [u8]) -> io::Result<()> {
        let len = (run.end - run.start) as usize;
        if run.direct {
            let at = run.pieces[0].at;
            return self.read_file(run.start, &mut buf[at..at + len]);
        }
        let mut data = vec![0u8; len];
        self.read_file(run.start, &mut data)?;
        for p in run.pieces {
            let from = (p.file_offset - run.start) as usize;
            let stored = &data[from..from + p.file_len as usize];
            match p.skip {
                None => buf[p.at..p.at + p.len].copy_from_slice(stored),
                Some(skip) => {
                    let cluster = self.inflate(p.file_offset, stored)?;
                    buf[p.at..p.at + p.len].copy_from_slice(&cluster[skip..skip + p.len]);
                }
            }
        }
        Ok(())
    }
}

impl<R> fmt::Debug for Container<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Container")
            .field("format", &self.layout.format())
            .field("virtual_size", &self.virtual_size)
            .field("file_size", &self.file_size)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
