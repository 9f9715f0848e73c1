//! Container detection and metadata: raw, VHD fixed/dynamic (footer, dynamic header, BAT, sector
//! bitmaps), VHDX (headers, region tables, metadata, BAT), qcow2 (header, extensions, L1/L2 tables,
//! compressed clusters, refcounts), VMDK sparse extents (header, descriptor, footer, grain
//! directories and tables, grain markers), the formats refused by signature; then mapping, reading and
//! planned writes.
//!
//! Input: a sparse file (`kaifuku_fuzz::Sparse`); flag bit 0 reseals the VHD checksums and the
//! VHDX CRC-32Cs so that mutated fields get past them; flag bit 1 opens the file as the data file
//! of a descriptor's `SPARSE` extent (`open_sparse_extent`: no embedded descriptor needed). Checked: a mapped extent is never empty or past the disk, reads
//! agree with the mapping, and the planned file writes of a patch (and of a fill) read back as the
//! patch when laid over the file and the file is opened again.
#![no_main]

use kaifuku_container::Extent;
use kaifuku_fuzz::{seal_vhd, seal_vhdx, Sparse};
use kaifuku_io::{Patch, PatchData, ReadAt};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (flags, mut file) = Sparse::parse(data);
    if flags & 1 != 0 {
        seal_vhd(&mut file);
        seal_vhdx(&mut file);
    }
    let described = flags & 2 != 0;
    let Ok(c) = open_as(&file, described) else {
        return;
    };
    let _ = c.info();
    let vs = c.virtual_size();
    if vs == 0 {
        return;
    }
    let probes = [0, vs / 2, vs / 3 & !511, vs - 1, vs.saturating_sub(4096)];
    for &off in &probes {
        let Ok(e) = c.map(off) else { continue };
        assert!(!e.is_empty(), "empty extent at {off}");
        assert!(e.len() <= vs - off, "extent at {off} runs past the disk");
        let n = e.len().min(1024) as usize;
        let mut got = vec![0u8; n];
        if c.read_at(off, &mut got).is_err() {
            continue;
        }
        match e {
            Extent::InFile { file_offset, .. } => {
                if let Some(want) = file.get(file_offset, n) {
                    assert_eq!(got, want, "read at {off} disagrees with its mapping");
                }
            }
            Extent::Zero { .. } => assert!(got.iter().all(|b| *b == 0), "zero extent not zero"),
            Extent::Backing { .. } => panic!("a backing extent, but no backing file was given"),
            Extent::Compressed {
                stored_len,
                cluster_size,
                skip,
                len,
                file_offset,
            } => {
                assert!(skip + len <= cluster_size, "compressed run past its cluster");
                assert!(stored_len > 0, "compressed cluster without data");
                assert!(
                    file_offset + stored_len <= file.size(),
                    "compressed data past the file"
                );
                // The same bytes read again one piece at a time (from the inflated cluster cache
                // or the file) must agree.
                let mut again = vec![0u8; n];
                for (i, b) in again.iter_mut().enumerate() {
                    let mut one = [0u8; 1];
                    c.read_at(off + i as u64, &mut one).expect("re-read a compressed byte");
                    *b = one[0];
                }
                assert_eq!(got, again, "compressed reads disagree at {off}");
            }
        }
    }

    // A byte patch across the probes and a sector-aligned fill: plan, lay over the file, re-read.
    let fill_at = (vs / 4) & !511;
    let fill_len = 1024.min((vs - fill_at) & !511);
    let mut patches = Vec::new();
    for (i, &off) in probes.iter().enumerate() {
        let len = 700.min(vs - off) as usize;
        if off < fill_at + fill_len && fill_at < off + len as u64 {
            continue;
        }
        if patches
            .iter()
            .any(|p: &Patch| off < p.end() && p.offset < off + len as u64)
        {
            continue;
        }
        patches.push(Patch {
            offset: off,
            data: PatchData::Bytes((0..len).map(|j| (j as u8) ^ (i as u8) ^ 0x5A).collect()),
            label: String::new(),
        });
    }
    if fill_len > 0 {
        patches.push(Patch {
            offset: fill_at,
            data: PatchData::Fill {
                byte: 0xC3,
                len: fill_len,
            },
            label: String::new(),
        });
    }
    let plan = match c.plan_output(&patches) {
        Ok(plan) => plan,
        // The guard against overlapping writes is for bugs: the fuzzer must never reach it.
        Err(e @ kaifuku_container::ContainerError::PlannedWritesOverlap { .. }) => panic!("{e}"),
        Err(_) => return,
    };
    // The output's size: the file's, unless the plan re-streams it (a streamOptimized VMDK).
    let file_size = plan.file_size.unwrap_or(file.size());
    for w in &plan.writes {
        assert!(w.end() <= file_size, "a planned write leaves the output");
    }
    for f in &plan.fills {
        assert!(
            f.file_offset + f.len <= file_size,
            "a planned fill leaves the output"
        );
    }
    // The file as it will be written, opened from scratch: every patch must read back.
    let view = Written {
        base: kaifuku_io::Resized::new(&file, file_size),
        writes: &plan.writes,
        fills: &plan.fills,
    };
    let Ok(c2) = open_as(&view, described) else {
        panic!("the written file no longer opens");
    };
    assert_eq!(c2.virtual_size(), vs);
    for p in &patches {
        let mut got = vec![0u8; p.len() as usize];
        c2.read_at(p.offset, &mut got).expect("read back the patch");
        let mut want = vec![0u8; p.len() as usize];
        p.data.copy_to(0, &mut want);
        assert_eq!(got, want, "patch at {} does not read back", p.offset);
    }
});

/// Opens `file` as an image of its own, or as a descriptor's sparse extent.
fn open_as<R: ReadAt>(
    file: R,
    sparse_extent: bool,
) -> Result<kaifuku_container::Container<R>, kaifuku_container::ContainerError> {
    if sparse_extent {
        kaifuku_container::open_sparse_extent(file)
    } else {
        kaifuku_container::open(file)
    }
}

/// The file as it will be after the planned writes and fills.
struct Written<'a> {
    base: kaifuku_io::Resized<&'a Sparse>,
    writes: &'a [kaifuku_container::FileWrite],
    fills: &'a [kaifuku_container::FileFill],
}

impl ReadAt for Written<'_> {
    fn size(&self) -> u64 {
        self.base.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.base.read_at(offset, buf)?;
        let end = offset + buf.len() as u64;
        let mut lay = |start: u64, len: u64, src: &dyn Fn(u64) -> u8| {
            let from = start.max(offset);
            let to = (start + len).min(end);
            for at in from..to {
                buf[(at - offset) as usize] = src(at - start);
            }
        };
        for f in self.fills {
            lay(f.file_offset, f.len, &|_| f.byte);
        }
        for w in self.writes {
            lay(w.file_offset, w.bytes.len() as u64, &|i| {
                w.bytes[i as usize]
            });
        }
        Ok(())
    }
}
