//! One picked image from inspection to the download's parts. Pure: it reads through [`ReadAt`], so
//! the worker runs it over the picked `File` and native tests run it over a fixture file.

use crate::names::OutputNames;
use crate::view::{
    inspect_view, plan_view, CheckView, ExplainView, InspectView, OutputView, PlanView, Problem,
    Reads,
};
use kaifuku_container::{Container, Extent, FixedVhdOutput, NewFooter, OutputPlan};
use kaifuku_io::{
    BlockCache, CacheConfig, Counted, Overlay, Patch, PatchData, ReadAt, ReadStats, Resized,
};
use kaifuku_rescue::plan::{FixOptions, Plan};
use kaifuku_rescue::undo;
use kaifuku_rescue::{InspectReport, OutputCheck, PlannedFix, RuleSet, UnlockProgress, VolumeKeys};
use std::rc::Rc;

/// The read cache the worker uses: 64 KiB blocks, 128 of them (8 MiB), read-ahead up to 1 MiB.
/// Every read of the picked file costs about a millisecond in the browser, so fewer, larger reads.
pub fn cache_config() -> CacheConfig {
    CacheConfig {
        block_size: 64 * 1024,
        capacity_blocks: 128,
        max_readahead_blocks: 16,
    }
}

/// A part of the fixed image: a range of the picked file, new bytes, or one byte repeated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutPiece<'a> {
    Original { start: u64, end: u64 },
    Bytes(&'a [u8]),
    Fill { byte: u8, len: u64 },
}

impl OutPiece<'_> {
    pub fn len(&self) -> u64 {
        match self {
            OutPiece::Original { start, end } => end - start,
            OutPiece::Bytes(b) => b.len() as u64,
            OutPiece::Fill { len, .. } => *len,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The fixed image as parts, in file order: the picked file's bytes between the planned writes.
/// When the plan changes the file's size (a re-streamed VMDK), the output stops at the new size
/// and its bytes past the picked file's end all come from writes.
/// Fails when writes overlap, leave the output, or leave a gap past the picked file's end (the
/// container layer promises none of these happens).
pub fn image_pieces(file_size: u64, out: &OutputPlan) -> Result<Vec<OutPiece<'_>>, String> {
    let output_size = out.file_size.unwrap_or(file_size);
    let mut changes: Vec<(u64, OutPiece<'_>)> = out
        .writes
        .iter()
        .map(|w| (w.file_offset, OutPiece::Bytes(&w.bytes)))
        .chain(out.fills.iter().map(|f| {
            (
                f.file_offset,
                OutPiece::Fill {
                    byte: f.byte,
                    len: f.len,
                },
            )
        }))
        .filter(|(_, p)| !p.is_empty())
        .collect();
    changes.sort_by_key(|c| c.0);
    let mut pieces = Vec::with_capacity(2 * changes.len() + 1);
    let mut pos = 0u64;
    for (at, piece) in changes {
        if at < pos {
            return Err(format!("planned writes overlap at file offset {at}"));
        }
        let end = at
            .checked_add(piece.len())
            .filter(|e| *e <= output_size)
            .ok_or_else(|| format!("a planned write at file offset {at} leaves the file"))?;
        if at > pos {
            if at > file_size {
                return Err(format!(
                    "nothing is planned for file offsets {pos}..{at}, past the picked file's end"
                ));
            }
            pieces.push(OutPiece::Original {
                start: pos,
                end: at,
            });
        }
        pieces.push(piece);
        pos = end;
    }
    if pos < output_size {
        if output_size > file_size {
            return Err(format!(
                "nothing is planned for file offsets {pos}..{output_size}, past the picked file's \
                 end"
            ));
        }
        pieces.push(OutPiece::Original {
            start: pos,
            end: output_size,
        });
    }
    Ok(pieces)
}

/// Why the fixed image cannot be assembled as a fixed VHD from the picked file's ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FixedVhdPiecesError {
    /// Part of the disk is stored compressed: its bytes exist only inflated, in memory.
    Compressed,
    /// Anything else (the container could not map the disk, patches overlap or leave the disk).
    Other(String),
}

/// The fixed image written as a fixed VHD (`--output-format vhd-fixed`), as parts in file order:
/// the disk's stored runs as ranges of the picked file, its unallocated runs and the padding to
/// whole MiB as zeros, the plan's `patches` (virtual-disk offsets, sorted, not overlapping) in
/// their places, then the footer. The same bytes `kaifuku fix --output-format vhd-fixed` writes
/// for the same footer. A disk stored compressed (a streamOptimized VMDK, a compressed qcow2
/// cluster) cannot be a range of the picked file: refused, never inflated into memory.
pub fn fixed_vhd_pieces<'a, R: ReadAt>(
    container: &Container<R>,
    patches: &'a [Patch<()>],
    vhd: &'a FixedVhdOutput,
) -> Result<Vec<OutPiece<'a>>, FixedVhdPiecesError> {
    let other = |m: String| FixedVhdPiecesError::Other(m);
    // The disk without the patches: (virtual start, piece).
    let size = container.virtual_size();
    let mut base: Vec<(u64, OutPiece<'a>)> = Vec::new();
    let mut push = |at: u64, piece: OutPiece<'a>| {
        // Neighbouring zeros, or neighbouring runs of the file, become one part.
        if let Some((_, last)) = base.last_mut() {
            match (last, &piece) {
                (OutPiece::Fill { byte: 0, len }, OutPiece::Fill { byte: 0, len: more }) => {
                    *len += more;
                    return;
                }
                (OutPiece::Original { end, .. }, OutPiece::Original { start, end: e2 })
                    if *end == *start =>
                {
                    *end = *e2;
                    return;
                }
                _ => {}
            }
        }
        base.push((at, piece));
    };
    let mut pos = 0u64;
    while pos < size {
        let extent = container
            .map(pos)
            .map_err(|e| other(format!("mapping the disk at byte {pos}: {e}")))?;
        let len = extent.len().min(size - pos);
        match extent {
            Extent::InFile { file_offset, .. } => push(
                pos,
                OutPiece::Original {
                    start: file_offset,
                    end: file_offset + len,
                },
            ),
            Extent::Zero { .. } => push(pos, OutPiece::Fill { byte: 0, len }),
            Extent::Compressed { .. } => return Err(FixedVhdPiecesError::Compressed),
            // The page opens no backing file, so its images never read through one.
            Extent::Backing { .. } => {
                return Err(other(format!(
                    "the disk at byte {pos} is held by a backing file, which the page does not read"
                )))
            }
        }
        pos += len;
    }
    if vhd.disk_size < size {
        return Err(other(format!(
            "the fixed VHD's disk ({} bytes) is smaller than the image's ({size} bytes)",
            vhd.disk_size
        )));
    }
    if vhd.disk_size > size {
        push(
            size,
            OutPiece::Fill {
                byte: 0,
                len: vhd.disk_size - size,
            },
        );
    }
    // The part of a base piece between virtual offsets `from` and `to` (inside it).
    let cut = |at: u64, piece: &OutPiece<'a>, from: u64, to: u64| -> OutPiece<'a> {
        match piece {
            OutPiece::Original { start, .. } => OutPiece::Original {
                start: start + (from - at),
                end: start + (to - at),
            },
            OutPiece::Fill { byte, .. } => OutPiece::Fill {
                byte: *byte,
                len: to - from,
            },
            OutPiece::Bytes(b) => OutPiece::Bytes(&b[(from - at) as usize..(to - at) as usize]),
        }
    };
    let mut out = Vec::with_capacity(base.len() + 2 * patches.len() + 1);
    // Copies the base's bytes from `from` to `to` into `out`.
    let copy_base = |out: &mut Vec<OutPiece<'a>>, from: u64, to: u64| {
        if from >= to {
            return;
        }
        let first = base.partition_point(|(at, p)| at + p.len() <= from);
        for (at, p) in &base[first..] {
            if *at >= to {
                break;
            }
            let (s, e) = ((*at).max(from), (at + p.len()).min(to));
            out.push(cut(*at, p, s, e));
        }
    };
    let mut pos = 0u64;
    for p in patches {
        let end = p
            .offset
            .checked_add(p.len())
            .filter(|e| *e <= vhd.disk_size)
            .ok_or_else(|| other(format!("a patch at byte {} leaves the disk", p.offset)))?;
        if p.offset < pos {
            return Err(other(format!("patches overlap at byte {}", p.offset)));
        }
        copy_base(&mut out, pos, p.offset);
        out.push(match &p.data {
            PatchData::Bytes(b) => OutPiece::Bytes(b),
            PatchData::Fill { byte, len } => OutPiece::Fill {
                byte: *byte,
                len: *len,
            },
        });
        pos = end;
    }
    copy_base(&mut out, pos, vhd.disk_size);
    out.push(OutPiece::Bytes(&vhd.footer));
    out.retain(|p| !p.is_empty());
    Ok(out)
}

/// The undo file's parts (see [`kaifuku_rescue::undo`]): the same bytes the command line writes
/// for an image of this identity. `image` is the picked file: the originals are read from it once,
/// in bounded chunks, to hash them for the trailer; the parts themselves refer to its ranges.
pub fn undo_pieces<I: ReadAt + ?Sized>(
    identity: &undo::Identity,
    out: &OutputPlan,
    image: &I,
) -> Result<Vec<undo::Piece>, String> {
    let pieces = undo::layout_for(identity, out).map_err(|e| e.to_string())?;
    undo::sealed(pieces, image).map_err(|e| format!("reading the original bytes: {e}"))
}

/// The read stack under the core's session: the picked file, counted, behind the block cache.
type Cached<R> = BlockCache<Rc<Counted<R>>>;

/// State of one picked image: the core's session (the container opened once, inspected once)
/// over the cached file, and what the page needs besides.
pub struct Session<R: ReadAt> {
    counted: Rc<Counted<R>>,
    core: kaifuku_rescue::Session<Cached<R>>,
    names: OutputNames,
    file_name: String,
    checks: Option<Vec<CheckView>>,
    /// The current plan is for a fixed-VHD download: its patches of the virtual disk (the parts
    /// borrow them).
    fixed_vhd_patches: Option<Vec<Patch<()>>>,
}

impl<R: ReadAt> Session<R> {
    pub fn new(source: R, file_name: &str) -> Self {
        Session::with_keys(source, file_name, VolumeKeys::none())
    }

    /// A session that unlocks the image's BitLocker volumes with `keys` (when first inspected),
    /// repairs them decrypted and writes them back re-encrypted, as `kaifuku fix` does with the
    /// same keys.
    pub fn with_keys(source: R, file_name: &str, keys: VolumeKeys) -> Self {
        Session::with_rules(source, file_name, keys, RuleSet::builtin())
    }

    /// A session that inspects, plans and verifies with `rules` (a rule file's, as `kaifuku fix
    /// --rule FILE` does) and unlocks with `keys`.
    pub fn with_rules(source: R, file_name: &str, keys: VolumeKeys, rules: RuleSet) -> Self {
        Session::with_cache(source, file_name, keys, rules, cache_config())
    }

    /// The same, reading through a cache of `cache` (a blob over the network takes
    /// [`CacheConfig::remote`]: fewer, larger reads).
    pub fn with_cache(
        source: R,
        file_name: &str,
        keys: VolumeKeys,
        rules: RuleSet,
        cache: CacheConfig,
    ) -> Self {
        let counted = Rc::new(Counted::new(source));
        let cache = BlockCache::new(counted.clone(), cache);
        Session {
            counted,
            core: kaifuku_rescue::Session::open_with_keys(cache, rules, keys),
            names: OutputNames::for_input(file_name),
            file_name: file_name.to_string(),
            checks: None,
            fixed_vhd_patches: None,
        }
    }

    /// Inspects, plans and verifies with `rules` from now on: the report, the plan and its
    /// checks made with the old rules are dropped (a stale plan can never be downloaded); the
    /// volumes already unlocked are kept, so no key is stretched again.
    pub fn set_rules(&mut self, rules: RuleSet) {
        self.checks = None;
        self.fixed_vhd_patches = None;
        self.core.set_rules(rules);
    }

    /// Tells `progress` how far key stretching has got while the next inspect unlocks.
    pub fn set_unlock_progress(&mut self, progress: UnlockProgress) {
        self.core.set_unlock_progress(progress);
    }

    /// Calls and bytes that reached the picked file so far.
    pub fn stats(&self) -> ReadStats {
        self.counted.stats()
    }

    /// The picked file the session reads.
    pub fn source(&self) -> &R {
        self.counted.inner()
    }

    pub fn file_size(&self) -> u64 {
        self.counted.size()
    }

    /// The names of the downloads: `NAME-fixed.EXT`, or `NAME-fixed.vhd` for a fixed VHD.
    pub fn names(&self) -> OutputNames {
        if self.fixed_vhd_patches.is_some() {
            OutputNames::for_fixed_vhd(&self.file_name)
        } else {
            self.names.clone()
        }
    }

    /// Whether the current plan's download is a fixed VHD.
    pub fn is_fixed_vhd(&self) -> bool {
        self.fixed_vhd_patches.is_some()
    }

    /// The report and the plan of whichever plan is current.
    fn current(&self) -> Option<(&InspectReport, &Plan)> {
        match (&self.fixed_vhd_patches, self.core.planned_fixed_vhd()) {
            (Some(_), Some(f)) => Some((&f.report, &f.plan)),
            _ => self.planned().map(|f| (&f.report, &f.plan)),
        }
    }

    /// Container, partitions, volumes and the rule's matches. Never fails: problems are in the view.
    pub fn inspect(&mut self, reads: impl Fn(ReadStats) -> Reads) -> InspectView {
        self.checks = None;
        let report = self.core.inspect();
        let stats = self.counted.stats();
        inspect_view(&self.file_name, report, reads(stats))
    }

    fn planned(&self) -> Option<&PlannedFix> {
        self.core.planned()
    }

    /// Plans the fix in an overlay and has the core verify it; maps it into writes of the file,
    /// or, with `fixed_vhd` (the new footer's time and id), into the parts of a fixed VHD. A disk
    /// stored compressed cannot be a fixed VHD of the picked file's ranges: the plan is then made
    /// for the picked file's own format and says so.
    pub fn plan(
        &mut self,
        discard_journal: bool,
        fixed_vhd: Option<NewFooter>,
        reads: impl Fn(ReadStats) -> Reads,
    ) -> Result<PlanView, Problem> {
        self.plan_with_fallback(discard_journal, fixed_vhd, None, reads)
    }

    /// [`Session::plan`], and when the picked file's own format cannot take the changes (they
    /// fall where its tables would have to change) and `fallback` is given: the plan for a fixed
    /// VHD with that footer, shown as [`OutputView::SameFormatNotWritable`] so the user can ask
    /// for it (nothing is downloadable until they do: the session keeps no plan).
    pub fn plan_with_fallback(
        &mut self,
        discard_journal: bool,
        fixed_vhd: Option<NewFooter>,
        fallback: Option<NewFooter>,
        reads: impl Fn(ReadStats) -> Reads,
    ) -> Result<PlanView, Problem> {
        match self.plan_once(discard_journal, fixed_vhd, &reads) {
            Err(Problem::Fix { error }) => {
                let (Some(made), kaifuku_rescue::FixError::Failed { failure }) =
                    (fallback, &*error)
                else {
                    return Err(Problem::Fix { error });
                };
                let kaifuku_rescue::vocabulary::FixFailure::OutputNotMappable { problem } = failure
                else {
                    return Err(Problem::Fix { error });
                };
                let problem = problem.clone();
                match self.plan_once(discard_journal, Some(made), &reads) {
                    Ok(mut view) => {
                        let OutputView::FixedVhd {
                            disk_size,
                            file_size,
                        } = view.output
                        else {
                            // Not even a fixed VHD can be assembled here: the first reason.
                            self.fixed_vhd_patches = None;
                            return Err(Problem::Fix { error });
                        };
                        view.output = OutputView::SameFormatNotWritable {
                            problem,
                            disk_size,
                            file_size,
                        };
                        // Downloadable only once asked for.
                        self.fixed_vhd_patches = None;
                        Ok(view)
                    }
                    Err(_) => Err(Problem::Fix { error }),
                }
            }
            other => other,
        }
    }

    fn plan_once(
        &mut self,
        discard_journal: bool,
        fixed_vhd: Option<NewFooter>,
        reads: &impl Fn(ReadStats) -> Reads,
    ) -> Result<PlanView, Problem> {
        self.checks = None;
        self.fixed_vhd_patches = None;
        let mut output = OutputView::SameFormat;
        if let Some(made) = fixed_vhd {
            self.core
                .plan_fixed_vhd(&FixOptions { discard_journal }, made)
                .map_err(|error| Problem::Fix {
                    error: Box::new(error),
                })?;
            let fix = self
                .core
                .planned_fixed_vhd()
                .ok_or_else(|| Problem::internal("the plan was lost"))?;
            let patches = fix.plan.disk_patches();
            let container = self
                .core
                .container()
                .map_err(|e| Problem::internal(e.to_string()))?;
            match fixed_vhd_pieces(container, &patches, &fix.vhd) {
                Ok(_) => {
                    let mut view = plan_view(
                        &fix.report,
                        &fix.plan,
                        &OutputPlan {
                            writes: Vec::new(),
                            fills: Vec::new(),
                            file_size: Some(fix.vhd.file_size()),
                        },
                        reads(self.counted.stats()),
                    );
                    view.output = OutputView::FixedVhd {
                        disk_size: fix.vhd.disk_size,
                        file_size: fix.vhd.file_size(),
                    };
                    self.fixed_vhd_patches = Some(patches);
                    return Ok(view);
                }
                Err(FixedVhdPiecesError::Compressed) => {
                    output = OutputView::FixedVhdNeedsCommandLine {
                        format: container.format(),
                    };
                }
                Err(FixedVhdPiecesError::Other(m)) => return Err(Problem::internal(m)),
            }
        }
        let file_size = self.file_size();
        let fix = self
            .core
            .plan(&FixOptions { discard_journal })
            .map_err(|error| Problem::Fix {
                error: Box::new(error),
            })?;
        image_pieces(file_size, &fix.output).map_err(Problem::internal)?;
        let stats = self.counted.stats();
        let mut view = plan_view(&fix.report, &fix.plan, &fix.output, reads(stats));
        view.output = output;
        Ok(view)
    }

    /// The structures the session read and the planned fix's patches, annotated ("show the
    /// bytes"). Uses the plan already made; plans (without consent to discard a journal) only when
    /// there is none yet.
    pub fn explain(&mut self) -> ExplainView {
        let options = FixOptions {
            discard_journal: false,
        };
        ExplainView::from(kaifuku_rescue::explain::explain_session(
            &mut self.core,
            &options,
        ))
    }

    /// The same structures re-read from the fixed image — the picked file with exactly the
    /// download's writes laid over it — and every patched range read back. `None` before a plan.
    pub fn explain_fixed(&self) -> Option<ExplainView> {
        self.core.explain_fixed().map(ExplainView::from)
    }

    /// Re-reads the fixed image from scratch — the picked file with exactly the download's writes
    /// laid over it — and checks what the fix promised.
    pub fn verify(&mut self) -> Result<Vec<CheckView>, Problem> {
        let verified = if self.is_fixed_vhd() {
            self.core.verify_fixed_vhd_writes()
        } else {
            self.core.verify_writes()
        }
        .map_err(|e| Problem::Verify { failure: e.0 })?;
        let mut checks = self.check_views(verified)?;
        // A fixed VHD is a new file: the check that only the planned ranges of the picked file
        // changed is about the same-format download.
        let Some(planned) = self.planned().filter(|_| !self.is_fixed_vhd()) else {
            self.checks = Some(checks.clone());
            return Ok(checks);
        };
        let ranges = planned.output.writes.len() + planned.output.fills.len();
        let bytes = planned
            .output
            .writes
            .iter()
            .map(|w| w.bytes.len() as u64)
            .chain(planned.output.fills.iter().map(|f| f.len))
            .sum();
        checks.push(CheckView::OnlyPlannedRanges { ranges, bytes });
        self.checks = Some(checks.clone());
        Ok(checks)
    }

    /// The core's checks of a verified output, as the page shows them.
    fn check_views(&self, verified: Vec<OutputCheck>) -> Result<Vec<CheckView>, Problem> {
        let (report, _) = self
            .current()
            .ok_or_else(|| Problem::internal("no plan yet"))?;
        let vn = |vi: usize| report.volumes[vi].name();
        let checks: Vec<CheckView> = verified
            .into_iter()
            .map(|c| match c {
                OutputCheck::ContainerSame {
                    format,
                    virtual_size,
                } => CheckView::ContainerSame {
                    format,
                    virtual_size,
                },
                OutputCheck::ContainerConverted {
                    format,
                    virtual_size,
                    original_format,
                    ..
                } => CheckView::ContainerConverted {
                    format,
                    virtual_size,
                    original_format,
                },
                OutputCheck::RuleFinds { volume, count } => CheckView::RuleFinds {
                    volume: vn(volume),
                    count,
                },
                OutputCheck::RecordFree { volume, record } => CheckView::RecordFree {
                    volume: vn(volume),
                    record,
                },
                OutputCheck::JournalReset { volume } => {
                    CheckView::JournalReset { volume: vn(volume) }
                }
                OutputCheck::JournalReplayed { volume } => {
                    CheckView::JournalReplayed { volume: vn(volume) }
                }
                OutputCheck::Invariants { volume } => CheckView::Invariants {
                    volume: vn(volume),
                    problems: 0,
                },
                OutputCheck::SideIndexes { volume, indexes } => CheckView::SideIndexes {
                    volume: vn(volume),
                    indexes,
                },
            })
            .collect();
        Ok(checks)
    }

    /// Reads `written` — the image as written where it lives (a blob fixed in place), from
    /// scratch through a cache of its own — and checks what the fix promised, as the command line
    /// does after writing. Returns the checks and the reads it took.
    ///
    /// The view is built as [`kaifuku_rescue::Session::verify_writes`] builds its own (an overlay,
    /// here with no writes, over the cached source), so the core's whole read path is compiled
    /// once for both: a verification over another reader type would add about 100 KiB (gzip) to
    /// the worker's wasm.
    pub fn verify_written(
        &self,
        written: R,
        cache: CacheConfig,
    ) -> Result<(Vec<CheckView>, ReadStats), Problem> {
        let counted = Rc::new(Counted::new(written));
        let cached: Cached<R> = BlockCache::new(counted.clone(), cache);
        let view = Overlay::new(Resized::new(&cached, cached.size()));
        let verified = self
            .core
            .verify_output(&view)
            .map_err(|e| Problem::Verify { failure: e.0 })?;
        Ok((self.check_views(verified)?, counted.stats()))
    }

    /// The planned changes to the image file (after [`Session::plan`]).
    pub fn planned_output(&self) -> Option<&OutputPlan> {
        self.planned().map(|p| &p.output)
    }

    /// The plan and the identity its undo file carries.
    fn planned_with_identity(&self) -> Result<(&PlannedFix, undo::Identity), Problem> {
        let p = self
            .planned()
            .ok_or_else(|| Problem::internal("no plan yet"))?;
        let id = self
            .core
            .undo_identity()
            .ok_or_else(|| Problem::internal("no container"))?;
        Ok((p, id))
    }

    /// The undo file itself, its original bytes read from the image: for an image fixed where it
    /// lives, whose undo file must be saved before anything is written (a few KiB).
    pub fn undo_bytes(&self) -> Result<Vec<u8>, Problem> {
        let (p, id) = self.planned_with_identity()?;
        let pieces =
            undo::layout_for(&id, &p.output).map_err(|e| Problem::internal(e.to_string()))?;
        let mut bytes = Vec::with_capacity(undo::sealed_len(&pieces) as usize);
        undo::write_to(&pieces, &*self.counted, |b| {
            bytes.extend_from_slice(b);
            Ok(())
        })
        .map_err(|e| Problem::internal(format!("reading the original bytes: {e}")))?;
        Ok(bytes)
    }

    /// The fixed image's parts (after [`Session::plan`]).
    pub fn image_pieces(&self) -> Option<Vec<OutPiece<'_>>> {
        if let Some(patches) = &self.fixed_vhd_patches {
            let fix = self.core.planned_fixed_vhd()?;
            let container = self.core.container().ok()?;
            return fixed_vhd_pieces(container, patches, &fix.vhd).ok();
        }
        let p = self.planned()?;
        image_pieces(self.file_size(), &p.output).ok()
    }

    /// The undo file's parts (after [`Session::plan`]). Reads the original bytes once, straight
    /// from the picked file (not through the cache) and in bounded chunks.
    pub fn undo_pieces(&self) -> Result<Vec<undo::Piece>, Problem> {
        let (p, id) = self.planned_with_identity()?;
        undo_pieces(&id, &p.output, &*self.counted).map_err(Problem::internal)
    }

    /// Size of the fixed image: the picked file's, unless the fix changes it (a re-streamed
    /// streamOptimized VMDK).
    pub fn output_size(&self) -> u64 {
        if let Some(f) = self
            .core
            .planned_fixed_vhd()
            .filter(|_| self.is_fixed_vhd())
        {
            return f.vhd.file_size();
        }
        self.planned()
            .and_then(|p| p.output.file_size)
            .unwrap_or(self.file_size())
    }

    /// Whether an undo file can restore the picked file from the fixed image: not when the fix
    /// makes the file shorter (a stream re-streamed whole, dropping what followed its end), which
    /// an undo file cannot record; the picked file, left as it was, is then the way back. A fix
    /// that makes it longer (a stream extended) is undone by cutting it back (format version 3).
    pub fn undo_offered(&self) -> bool {
        !self.is_fixed_vhd()
            && self.planned().is_some_and(|p| {
                p.output
                    .file_size
                    .is_none_or(|size| size >= self.file_size())
            })
    }

    /// Size of the undo file (without reading or hashing anything).
    pub fn undo_size(&self) -> u64 {
        let (Some(p), Some(id)) = (self.planned(), self.core.undo_identity()) else {
            return 0;
        };
        undo::layout_for(&id, &p.output).map_or(0, |pieces| undo::sealed_len(&pieces))
    }

    /// The JSON report offered with the download: what the command line's `fix --json` prints,
    /// plus the verification and the names of the files.
    pub fn report_json(&self, extra: serde_json::Value) -> String {
        if let Some(f) = self
            .core
            .planned_fixed_vhd()
            .filter(|_| self.is_fixed_vhd())
        {
            let doc = serde_json::json!({
                "tool": "kaifuku (web)",
                "version": env!("CARGO_PKG_VERSION"),
                "image": self.file_name,
                "output": self.names().output,
                "undo": null,
                "report": f.report,
                "plan": f.plan,
                // What `kaifuku fix --output-format vhd-fixed --json` prints as its output.
                "output_format": {
                    "format": kaifuku_container::Format::VhdFixed,
                    "disk_size": f.vhd.disk_size,
                    "file_size": f.vhd.file_size(),
                },
                "verification": self.checks,
                "reads": self.stats(),
                "browser": extra,
            });
            return serde_json::to_string_pretty(&doc).expect("serialisable");
        }
        let Some(p) = self.planned() else {
            return "{}".into();
        };
        let doc = serde_json::json!({
            "tool": "kaifuku (web)",
            "version": env!("CARGO_PKG_VERSION"),
            "image": self.file_name,
            "output": self.names.output,
            // No undo file when the fix changes the file's size (see `undo_offered`).
            "undo": self.undo_offered().then_some(&self.names.undo),
            "report": p.report,
            "plan": p.plan,
            "file_writes": p.output.writes.iter().map(|w| serde_json::json!({
                "file_offset": w.file_offset, "len": w.bytes.len(), "label": w.label
            })).chain(p.output.fills.iter().map(|f| serde_json::json!({
                "file_offset": f.file_offset, "len": f.len, "label": f.label, "fill": f.byte
            }))).collect::<Vec<_>>(),
            "verification": self.checks,
            "reads": self.stats(),
            "browser": extra,
        });
        serde_json::to_string_pretty(&doc).expect("serialisable")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaifuku_container::{FileFill, FileWrite, FileWriteLabel, WriteHow};

    fn apply(image: &[u8], pieces: &[OutPiece<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in pieces {
            match p {
                OutPiece::Original { start, end } => {
                    out.extend_from_slice(&image[*start as usize..*end as usize])
                }
                OutPiece::Bytes(b) => out.extend_from_slice(b),
                OutPiece::Fill { byte, len } => {
                    out.extend(std::iter::repeat_n(*byte, *len as usize))
                }
            }
        }
        out
    }

    #[test]
    fn pieces_apply_writes_and_fills() {
        let image: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let out = OutputPlan {
            writes: vec![
                FileWrite {
                    file_offset: 990,
                    bytes: vec![1; 10],
                    label: FileWriteLabel::virtual_bytes(990, 1000, WriteHow::Bytes),
                },
                FileWrite {
                    file_offset: 0,
                    bytes: vec![2; 3],
                    label: FileWriteLabel::virtual_bytes(0, 3, WriteHow::Bytes),
                },
            ],
            fills: vec![FileFill {
                file_offset: 100,
                len: 50,
                byte: 0xFF,
                label: FileWriteLabel::virtual_bytes(100, 150, WriteHow::Filled),
            }],
            file_size: None,
        };
        let pieces = image_pieces(1000, &out).unwrap();
        let mut expect = image.clone();
        expect[990..].fill(1);
        expect[..3].fill(2);
        expect[100..150].fill(0xFF);
        assert_eq!(apply(&image, &pieces), expect);
        assert_eq!(pieces.len(), 5);
    }

    #[test]
    fn pieces_refuse_overlaps_and_overruns() {
        let w = |o: u64, n: usize| FileWrite {
            file_offset: o,
            bytes: vec![0; n],
            label: FileWriteLabel::virtual_bytes(o, o + n as u64, WriteHow::Bytes),
        };
        let overlap = OutputPlan {
            writes: vec![w(10, 10), w(15, 10)],
            fills: vec![],
            file_size: None,
        };
        assert!(image_pieces(100, &overlap).is_err());
        let past = OutputPlan {
            writes: vec![w(95, 10)],
            fills: vec![],
            file_size: None,
        };
        assert!(image_pieces(100, &past).is_err());
        let none = OutputPlan {
            writes: vec![],
            fills: vec![],
            file_size: None,
        };
        assert_eq!(
            image_pieces(100, &none).unwrap(),
            vec![OutPiece::Original { start: 0, end: 100 }]
        );
    }

    #[test]
    fn pieces_of_an_output_that_changes_size() {
        let image: Vec<u8> = (0..100u32).map(|i| i as u8).collect();
        let w = |o: u64, n: usize, b: u8| FileWrite {
            file_offset: o,
            bytes: vec![b; n],
            label: FileWriteLabel::virtual_bytes(o, o + n as u64, WriteHow::Bytes),
        };
        // Grown: the tail from 80 on is rewritten and extended to 130 bytes.
        let grown = OutputPlan {
            writes: vec![w(0, 2, 7), w(80, 30, 1), w(110, 20, 2)],
            fills: vec![],
            file_size: Some(130),
        };
        let mut expect = image[..80].to_vec();
        expect[..2].fill(7);
        expect.extend([1; 30]);
        expect.extend([2; 20]);
        assert_eq!(apply(&image, &image_pieces(100, &grown).unwrap()), expect);
        // Cut: the output ends at 90, its last 30 bytes rewritten.
        let cut = OutputPlan {
            writes: vec![w(60, 30, 3)],
            fills: vec![],
            file_size: Some(90),
        };
        let mut expect = image[..60].to_vec();
        expect.extend([3; 30]);
        assert_eq!(apply(&image, &image_pieces(100, &cut).unwrap()), expect);
        // A gap past the picked file's end, or a write past the new end, is refused.
        let gap = OutputPlan {
            writes: vec![w(110, 20, 2)],
            fills: vec![],
            file_size: Some(130),
        };
        assert!(image_pieces(100, &gap).is_err());
        let short = OutputPlan {
            writes: vec![w(80, 30, 1)],
            fills: vec![],
            file_size: Some(120),
        };
        assert!(image_pieces(100, &short).is_err());
        let past = OutputPlan {
            writes: vec![w(80, 30, 1)],
            fills: vec![],
            file_size: Some(100),
        };
        assert!(image_pieces(100, &past).is_err());
    }
}
