//! One image from inspection to a verified output: the container is opened once and carried
//! through inspect → plan → output plan → verify-output, so no front end opens it again, inspects
//! twice, or re-implements a step.
//!
//! A front end builds its read stack (a file, a counter, a cache), opens a [`Session`] over it,
//! and then only shows results and writes bytes: the command line writes
//! [`PlannedFix::output`] to a file and hands the file, re-opened, to
//! [`Session::verify_output`]; the web page, which cannot read its download back, verifies the
//! picked file with exactly the download's writes laid over it ([`Session::verify_writes`]).

use crate::encryption::{UnlockProgress, Unlocker, VolumeKeys};
use crate::inspect::{inspect_opened, InspectReport, Unlisted};
use crate::plan::{plan_unlocked, FixOptions, Plan};
use crate::rule::{Rule, RuleSet};
use crate::undo::{self, Identity, Piece, UndoError};
use crate::verify::{verify_output_as, verify_output_with_keys, ConvertedContainer};
use crate::vocabulary::{
    ContainerProblem, FixError, FixFailure, OutputCheck, VerifyError, VerifyFailure,
};
use kaifuku_container::{Container, ContainerError, FixedVhdOutput, Format, NewFooter, OutputPlan};
use kaifuku_io::{Overlay, PatchData, ReadAt, Resized};

/// A verified plan and the writes of the image file that carry it out.
#[derive(Debug, Clone)]
pub struct PlannedFix {
    /// The inspection the plan was made from.
    pub report: InspectReport,
    /// The verified plan: deletions and changed bytes of the virtual disk.
    pub plan: Plan,
    /// The same changes as writes and fills of the image file (same container format).
    pub output: OutputPlan,
}

/// A verified plan to be written as a fixed VHD instead of the input's container
/// ([`Session::plan_fixed_vhd`]): the output is the virtual disk with [`Plan::disk_patches`] laid
/// over it, zeros up to [`FixedVhdOutput::disk_size`], then the footer. The input's container
/// takes no write, so this works where it could not take the changes itself (a qcow2 L2 table
/// shared with a snapshot).
#[derive(Debug, Clone)]
pub struct PlannedFixedVhd {
    /// The inspection the plan was made from.
    pub report: InspectReport,
    /// The verified plan: deletions and changed bytes of the virtual disk.
    pub plan: Plan,
    /// The fixed VHD's size and footer.
    pub vhd: FixedVhdOutput,
}

/// One disk image, opened once, and what has been found and planned for it so far.
pub struct Session<R: ReadAt> {
    rules: RuleSet,
    opened: Result<Container<R>, ContainerError>,
    report: Option<InspectReport>,
    fix: Option<PlannedFix>,
    /// The plan made to be written as a fixed VHD; never set together with `fix`.
    fixed_vhd: Option<PlannedFixedVhd>,
    /// The keys the user gave for BitLocker volumes: verification unlocks the output afresh.
    keys: VolumeKeys,
    /// The BitLocker volumes inspect unlocked, kept for the plan.
    unlocker: Unlocker,
}

impl<R: ReadAt> Session<R> {
    /// Opens the container of `image` (any format kaifuku reads) to be repaired with `rules` (one
    /// rule, or a [`RuleSet`]). Never fails: a container that does not open is reported by
    /// [`Session::inspect`].
    pub fn open(image: R, rules: impl Into<RuleSet>) -> Session<R> {
        Session::open_with_keys(image, rules, VolumeKeys::none())
    }

    /// [`Session::open`] with keys for the image's BitLocker volumes: each is unlocked when first
    /// inspected, repaired decrypted, and written back re-encrypted.
    pub fn open_with_keys(image: R, rules: impl Into<RuleSet>, keys: VolumeKeys) -> Session<R> {
        Session {
            rules: rules.into(),
            opened: kaifuku_container::open(image),
            report: None,
            fix: None,
            fixed_vhd: None,
            unlocker: Unlocker::new(keys.clone()),
            keys,
        }
    }

    /// Tells `progress` how far key stretching has got while inspect (or a plan made without
    /// one) unlocks the image's BitLocker volumes. Verification's fresh unlock is not told.
    pub fn set_unlock_progress(&mut self, progress: UnlockProgress) {
        self.unlocker.set_progress(progress);
    }

    /// The primary rule the session repairs with.
    pub fn rule(&self) -> &Rule {
        self.rules.primary()
    }

    /// Every rule the session repairs with.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Repairs with `rules` from now on: the report and the plan made with the old ones are
    /// dropped (so neither can be shown or written again); the container, the keys and the
    /// BitLocker volumes already unlocked are kept, so no key is stretched again.
    pub fn set_rules(&mut self, rules: impl Into<RuleSet>) {
        self.rules = rules.into();
        self.report = None;
        self.fix = None;
        self.fixed_vhd = None;
    }

    /// The opened container, or why the image did not open as one.
    pub fn container(&self) -> Result<&Container<R>, ContainerProblem> {
        self.opened.as_ref().map_err(ContainerProblem::from)
    }

    /// Container, partitions, volumes and the rule's matches. Read once; later calls return the
    /// same report. Never fails: problems are in the report.
    pub fn inspect(&mut self) -> &InspectReport {
        let opened = &self.opened;
        let rule = &self.rules;
        let unlocker = &mut self.unlocker;
        self.report
            .get_or_insert_with(|| inspect_opened(opened.as_ref(), rule, Unlisted::Scan, unlocker))
    }

    /// The inspect report, once [`Session::inspect`] or [`Session::plan`] made it.
    pub fn report(&self) -> Option<&InspectReport> {
        self.report.as_ref()
    }

    /// Plans the fix (inspecting first, if that was not done yet), has it verified on the patched
    /// view, and maps it into writes of the image file. Replaces an earlier plan.
    pub fn plan(&mut self, options: &FixOptions) -> Result<&PlannedFix, FixError> {
        self.fix = None;
        self.fixed_vhd = None;
        self.inspect();
        let report = self.report.as_ref().expect("inspected above");
        let container = match &self.opened {
            Ok(c) => c,
            // The report says why (its outcome is not `Matches`).
            Err(_) => return Err(crate::plan::not_fixable(report)),
        };
        let plan = plan_unlocked(container, &self.unlocker, report, &self.rules, options)?;
        let output = container
            .plan_output(&plan.disk_patches())
            .map_err(|e| FixError::Failed {
                failure: FixFailure::OutputNotMappable {
                    problem: ContainerProblem::from(&e),
                },
            })?;
        Ok(self.fix.insert(PlannedFix {
            report: report.clone(),
            plan,
            output,
        }))
    }

    /// The last plan [`Session::plan`] made, if it succeeded.
    pub fn planned(&self) -> Option<&PlannedFix> {
        self.fix.as_ref()
    }

    /// The identity an undo file for this image carries: the image file's size, its container
    /// kind and virtual size. `None` when the image does not open as a container.
    pub fn undo_identity(&self) -> Option<Identity> {
        self.opened.as_ref().ok().map(|c| Identity::of(&c.info()))
    }

    /// The undo file of the planned fix as pieces ([`undo::layout`]) for an image of `identity`
    /// (usually [`Session::undo_identity`]; a front end writing to a device passes the device's).
    /// `None` before a plan.
    /// A fix that makes the file longer (a streamOptimized VMDK extended) gets a version 3
    /// layout ([`undo::layout_for`]).
    pub fn undo_layout(&self, identity: &Identity) -> Option<Result<Vec<Piece>, UndoError>> {
        let fix = self.fix.as_ref()?;
        Some(undo::layout_for(identity, &fix.output))
    }

    /// Re-reads `fixed` — the whole output as written (the output file, or the image fixed in
    /// place), read from scratch — and checks that it is what the plan promised.
    pub fn verify_output<F: ReadAt>(&self, fixed: F) -> Result<Vec<OutputCheck>, VerifyError> {
        let fix = self
            .fix
            .as_ref()
            .ok_or(VerifyError(VerifyFailure::NothingPlanned))?;
        verify_output_with_keys(fixed, &fix.report, &fix.plan, &self.rules, &self.keys)
    }

    /// Plans the fix (inspecting first, if that was not done yet) and has it verified on the
    /// patched view, to be written as a fixed VHD ([`PlannedFixedVhd`]) instead of the input's
    /// container. `made` names the new footer's time and unique id (a VHD input keeps its own id).
    /// Replaces an earlier plan of either kind.
    pub fn plan_fixed_vhd(
        &mut self,
        options: &FixOptions,
        made: NewFooter,
    ) -> Result<&PlannedFixedVhd, FixError> {
        self.fix = None;
        self.fixed_vhd = None;
        self.inspect();
        let report = self.report.as_ref().expect("inspected above");
        let container = match &self.opened {
            Ok(c) => c,
            Err(_) => return Err(crate::plan::not_fixable(report)),
        };
        let plan = plan_unlocked(container, &self.unlocker, report, &self.rules, options)?;
        let vhd = container
            .fixed_vhd_output(made)
            .map_err(|e| FixError::Failed {
                failure: FixFailure::OutputNotMappable {
                    problem: ContainerProblem::from(&e),
                },
            })?;
        Ok(self.fixed_vhd.insert(PlannedFixedVhd {
            report: report.clone(),
            plan,
            vhd,
        }))
    }

    /// The last plan [`Session::plan_fixed_vhd`] made, if it succeeded.
    pub fn planned_fixed_vhd(&self) -> Option<&PlannedFixedVhd> {
        self.fixed_vhd.as_ref()
    }

    /// [`Session::verify_output`] for the output of [`Session::plan_fixed_vhd`]: `fixed`, the
    /// whole file as written, must open as a fixed VHD of the planned disk size holding what the
    /// plan promised.
    pub fn verify_fixed_vhd_output<F: ReadAt>(
        &self,
        fixed: F,
    ) -> Result<Vec<OutputCheck>, VerifyError> {
        let fix = self
            .fixed_vhd
            .as_ref()
            .ok_or(VerifyError(VerifyFailure::NothingPlanned))?;
        verify_output_as(
            fixed,
            &fix.report,
            &fix.plan,
            &self.rules,
            &self.keys,
            Some(ConvertedContainer {
                format: Format::VhdFixed,
                virtual_size: fix.vhd.disk_size,
            }),
        )
    }

    /// [`Session::verify_fixed_vhd_output`] on the fixed VHD the plan describes — the input's
    /// virtual disk with the plan's patches laid over it, zeros up to the disk size, then the
    /// footer — for a front end that cannot read its output back (a download).
    pub fn verify_fixed_vhd_writes(&self) -> Result<Vec<OutputCheck>, VerifyError> {
        let fix = self
            .fixed_vhd
            .as_ref()
            .ok_or(VerifyError(VerifyFailure::NothingPlanned))?;
        let container = match &self.opened {
            Ok(c) => c,
            Err(_) => return Err(VerifyError(VerifyFailure::NoOriginalContainer)),
        };
        let internal = |e: std::io::Error| {
            VerifyError(VerifyFailure::Internal {
                detail: e.to_string(),
            })
        };
        let mut fixed = Overlay::new(Resized::new(container, fix.vhd.file_size()));
        for p in fix.plan.disk_patches() {
            match &p.data {
                PatchData::Bytes(b) => fixed.write(p.offset, b).map_err(internal)?,
                PatchData::Fill { byte, len } => {
                    fixed.fill(p.offset, *len, *byte).map_err(internal)?
                }
            }
        }
        fixed
            .write(fix.vhd.disk_size, &fix.vhd.footer)
            .map_err(internal)?;
        self.verify_fixed_vhd_output(&fixed)
    }

    /// The annotated structures re-read from the fixed image: the image file with exactly the
    /// planned writes and fills laid over it (see [`crate::explain::explain_fixed`]). `None`
    /// before a plan.
    pub fn explain_fixed(&self) -> Option<crate::explain::Explanation> {
        let fix = self.fix.as_ref()?;
        let image = self.opened.as_ref().ok()?.file();
        let mut fixed = Overlay::new(Resized::new(
            image,
            fix.output.file_size.unwrap_or(image.size()),
        ));
        for w in &fix.output.writes {
            fixed.write(w.file_offset, &w.bytes).ok()?;
        }
        for f in &fix.output.fills {
            fixed.fill(f.file_offset, f.len, f.byte).ok()?;
        }
        crate::explain::explain_fixed(self, &fixed)
    }

    /// [`Session::verify_output`] on the image file with exactly the planned writes and fills
    /// laid over it: what a front end that cannot read its output back (a download) verifies.
    pub fn verify_writes(&self) -> Result<Vec<OutputCheck>, VerifyError> {
        let fix = self
            .fix
            .as_ref()
            .ok_or(VerifyError(VerifyFailure::NothingPlanned))?;
        let image = match &self.opened {
            Ok(c) => c.file(),
            Err(_) => return Err(VerifyError(VerifyFailure::NoOriginalContainer)),
        };
        let internal = |e: std::io::Error| {
            VerifyError(VerifyFailure::Internal {
                detail: e.to_string(),
            })
        };
        let mut fixed = Overlay::new(Resized::new(
            image,
            fix.output.file_size.unwrap_or(image.size()),
        ));
        for w in &fix.output.writes {
            fixed.write(w.file_offset, &w.bytes).map_err(internal)?;
        }
        for f in &fix.output.fills {
            fixed.fill(f.file_offset, f.len, f.byte).map_err(internal)?;
        }
        self.verify_output(&fixed)
    }
}
