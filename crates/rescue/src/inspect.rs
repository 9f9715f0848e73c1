//! `inspect`: container → partitions → volumes → the rule's matches, as one report. Never fails:
//! whatever goes wrong is recorded in the report as typed values ([`crate::vocabulary`]: the
//! volume's problem, the reasons) with an outcome the front end maps to an exit code.

use crate::encryption::{Unlocker, VolumeKeys};
use crate::journal::{inspect_footprint, journal_overlap, read_journal_report, replay_journal};
use crate::registry::{read_registry, RegistryReport};
use crate::rule::{Rule, RuleSet, Verdict};
use crate::vocabulary::{
    Blocker, ContainerProblem, JournalOverlap, JournalReplay, JournalReport, NtfsProblem,
    PartitionProblem, Reason, RuleSkip, SkippedRule, VolumeName, VolumeProblem, WindowsVersion,
};
pub use crate::vocabulary::{Outcome, RuleNotice};
use kaifuku_container::{Container, ContainerError, ContainerInfo};
use kaifuku_io::{Overlay, ReadAt, Slice};
use kaifuku_ntfs::edit::Change;
use kaifuku_ntfs::logfile::Journal;
use kaifuku_ntfs::{
    boot_kind, BootKind, Damage, FileDetails, LinkDestination, Location, NtfsError, Structure,
    Unsupported, Volume, VolumeSummary,
};
use kaifuku_partition::PartitionTable;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::sync::Arc;

/// What a volume's first sector says it holds; serialised (and printed) as a lowercase code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileSystem {
    /// An NTFS boot sector.
    Ntfs,
    /// A BitLocker-encrypted volume (`-FVE-FS-`).
    Bitlocker,
    /// FAT12, FAT16 or FAT32.
    Fat,
    /// exFAT.
    Exfat,
    /// ReFS.
    Refs,
    /// None kaifuku recognises, or the sector could not be read.
    Unknown,
}

impl std::fmt::Display for FileSystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FileSystem::Ntfs => "ntfs",
            FileSystem::Bitlocker => "bitlocker",
            FileSystem::Fat => "fat",
            FileSystem::Exfat => "exfat",
            FileSystem::Refs => "refs",
            FileSystem::Unknown => "unknown",
        })
    }
}

/// A file the rule matched, with what the rule judged of it.
#[derive(Debug, Clone, Serialize)]
pub struct MatchReport {
    /// Full path on the volume, `\`-separated.
    pub path: String,
    /// The file's record, names, times, size and first bytes.
    #[serde(flatten)]
    pub file: FileDetails,
    /// Whether the first eight bytes are the rule's known-bad header (`None`: the rule has none).
    pub header_matches: Option<bool>,
    /// Which version of the file it is, by its times.
    pub verdict: Verdict,
}

/// What one rule found on one volume.
#[derive(Debug, Clone, Serialize)]
pub struct RuleResult {
    /// The key of the rule that found this; only on the results of rules after the primary one
    /// (the primary rule's result is the volume's `rule`, as it always was).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// Whether the rule's directory exists on the volume.
    pub directory_exists: bool,
    /// The directory the matches are in: the rule's own, or where links on the way led.
    pub directory: String,
    /// The files that match, in the directory's index order.
    pub matches: Vec<MatchReport>,
    /// What the rule met and left alone, or followed, on the way.
    pub notices: Vec<RuleNotice>,
    /// The directory's MFT record, when it exists.
    #[serde(skip)]
    pub directory_record: Option<u64>,
    /// Which rule of the set found this (its index).
    #[serde(skip)]
    pub rule_index: usize,
}

/// Where the rule's directory is, after following links on the way.
enum DirLookup<R: ReadAt> {
    Missing,
    Found {
        record: kaifuku_ntfs::FileRecord,
        path: String,
        notices: Vec<RuleNotice>,
        _reader: std::marker::PhantomData<R>,
    },
}

/// `Ok` when a check found nothing; otherwise the directory is damaged and its listing cannot be
/// trusted.
fn healthy(report: kaifuku_ntfs::check::CheckReport, path: &str) -> Result<(), NtfsError> {
    if report.is_clean() {
        return Ok(());
    }
    Err(NtfsError::Corrupt(Damage::new(
        Structure::Directory,
        Some(Location::Path {
            path: path.to_string(),
        }),
        format!(
            "the directory {path} is damaged ({}); its listing cannot be trusted. Run chkdsk on the volume in Windows or Windows Recovery, then try again",
            report.first_problems(3)
        ),
    )))
}

/// Most links followed on one path (Windows stops at 63; real systems use one or two).
const MAX_LINK_HOPS: usize = 8;

/// Looks up `path` from the root, following junctions and symbolic links that lead elsewhere on
/// this (the Windows) volume. A link kaifuku cannot follow is refused with what to do instead.
fn resolve_directory<R: ReadAt>(vol: &Volume<R>, path: &str) -> Result<DirLookup<R>, NtfsError> {
    let split = |p: &str| -> Vec<String> {
        p.split(['\\', '/'])
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect()
    };
    let mut pending = split(path);
    let mut notices = Vec::new();
    'restart: for _ in 0..=MAX_LINK_HOPS {
        let mut dir = vol.read_record(kaifuku_ntfs::volume::RECORD_ROOT)?;
        let mut walked: Vec<String> = Vec::new();
        let mut walked_records = vec![dir.number];
        for (i, comp) in pending.iter().enumerate() {
            let here_so_far = format!("\\{}", walked.join("\\"));
            if !dir.is_directory() {
                return Ok(DirLookup::Missing);
            }
            // Every directory passed through is checked for the damage that could misdirect
            // the walk (loops, shared or unreadable nodes, keys out of order).
            healthy(
                kaifuku_ntfs::check::check_directory_index(vol, dir.number)?,
                &here_so_far,
            )?;
            let name: Vec<u16> = comp.encode_utf16().collect();
            let Some(entry) = vol.directory(&dir)?.lookup(vol, &name)? else {
                // "Not there" is believed only of a directory whose entries all check out.
                healthy(
                    kaifuku_ntfs::check::check_directory(vol, dir.number)?,
                    &here_so_far,
                )?;
                return Ok(DirLookup::Missing);
            };
            let rec = vol.read_live(entry.file_ref)?;
            // The record must be the one the entry names: in this directory, by this name.
            let named_here =
                kaifuku_ntfs::index::names_itself_in(&rec, dir.number, &entry.key.name);
            if !named_here || walked_records.contains(&rec.number) {
                return Err(NtfsError::Corrupt(Damage::new(
                    Structure::Directory,
                    Some(Location::Path {
                        path: here_so_far.clone(),
                    }),
                    format!(
                        "the directory {here_so_far} lists {} as MFT record {}, but that record is not a file of that name in this directory; run chkdsk on the volume in Windows or Windows Recovery",
                        entry.name(),
                        rec.number
                    ),
                )));
            }
            walked_records.push(rec.number);
            let parent = here_so_far;
            walked.push(entry.name());
            let here = format!("\\{}", walked.join("\\"));
            if let Some(link) = vol.reparse_target(&rec)? {
                let destination = match &link {
                    kaifuku_ntfs::reparse::ReparseTarget::Link { target, .. } => {
                        LinkDestination::Path {
                            path: target.clone(),
                        }
                    }
                    kaifuku_ntfs::reparse::ReparseTarget::Other { tag } => {
                        LinkDestination::OtherReparsePoint { tag: *tag }
                    }
                };
                let shown = destination.to_string();
                let Some(next) = link.on_windows_volume(&parent) else {
                    return Err(NtfsError::Unsupported(Unsupported::UnfollowableLink {
                        link: here,
                        destination,
                    }));
                };
                notices.push(RuleNotice::LinkFollowed {
                    link: here,
                    target: shown,
                });
                let mut rest = split(&next);
                rest.extend(pending[i + 1..].iter().cloned());
                pending = rest;
                continue 'restart;
            }
            dir = rec;
        }
        if !dir.is_directory() {
            return Ok(DirLookup::Missing);
        }
        // Without links the rule's own spelling names the directory, as before.
        let path = if notices.is_empty() {
            path.to_string()
        } else {
            format!("\\{}", walked.join("\\"))
        };
        return Ok(DirLookup::Found {
            record: dir,
            path,
            notices,
            _reader: std::marker::PhantomData,
        });
    }
    Err(NtfsError::Unsupported(Unsupported::TooManyLinks {
        path: path.to_string(),
        max_hops: MAX_LINK_HOPS,
    }))
}

/// One volume of the image (a partition that is not an extended-partition container, or the
/// whole disk when it has no table) and what inspection found there.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeReport {
    /// Partition number, or `None` for a bare volume.
    pub partition: Option<u32>,
    /// Byte offset on the virtual disk.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
    /// What its first sector says it holds.
    pub filesystem: FileSystem,
    /// The NTFS volume's facts, when it is one and could be read.
    pub ntfs: Option<VolumeSummary>,
    /// Present when the primary rule ran here (NTFS volumes holding `\Windows\System32`).
    pub rule: Option<RuleResult>,
    /// What the other rules of the set that ran here found, in the set's order (absent when the
    /// set is one rule).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rule_results: Vec<RuleResult>,
    /// The rules of the set that apply to this volume but did not run on it, gated on a Windows
    /// build the volume does not have (or whose build could not be read); absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped_rules: Vec<SkippedRule>,
    /// What would stop a fix on this volume.
    pub fix_blockers: Vec<Blocker>,
    /// What the journal holds, read only when the restart pages say it is not clean.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal: Option<JournalReport>,
    /// Whether the fix completes that journal as Windows would (present only for an analysed
    /// journal). When it does, the rule ran on the replayed volume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal_replay: Option<JournalReplay>,
    /// The journal as inspect read it, kept for the plan: its live span can be tens of MiB on a
    /// busy log, more than the block cache holds, and a plan that must replay it (a report
    /// without `journal_replayed`) replays exactly what inspect read (the same bytes, through the
    /// same session). Not part of the report shown to the user.
    #[serde(skip)]
    pub(crate) journal_read: Option<JournalRead>,
    /// The replay inspect made of that journal, kept for the plan, which lays the same bytes on
    /// its own view instead of computing the replay a second time. Not part of the report shown
    /// to the user.
    #[serde(skip)]
    pub(crate) journal_replayed: Option<ReplayedWrites>,
    /// Why the volume could not be examined (damage, or a refusal such as BitLocker).
    pub error: Option<VolumeProblem>,
    /// For a BitLocker volume that was unlocked: how it is encrypted and what unlocked it; the
    /// rest of the report describes the decrypted volume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bitlocker: Option<BitLockerSummary>,
    /// For a Windows volume: the build its `SOFTWARE` hive records and whether `SYSTEM` and
    /// `SOFTWARE` were being written when Windows stopped. Read only, never written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegistryReport>,
}

/// A volume's journal as inspect read it ([`VolumeReport`] keeps it for the plan). Shared, not
/// copied, when the report is cloned; printed by its size only.
#[derive(Clone)]
pub(crate) struct JournalRead(pub(crate) Arc<Journal>);

impl std::fmt::Debug for JournalRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JournalRead({} bytes read)", self.0.bytes_read)
    }
}

/// What a journal replay wrote, each labelled change with its bytes, as inspect replayed the
/// journal ([`VolumeReport`] keeps it for the plan). Shared, not copied, when the report is
/// cloned; printed by its size only.
#[derive(Clone)]
pub(crate) struct ReplayedWrites(pub(crate) Arc<Vec<(Change, Vec<u8>)>>);

impl std::fmt::Debug for ReplayedWrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bytes: usize = self.0.iter().map(|(_, b)| b.len()).sum();
        write!(f, "ReplayedWrites({} changes, {bytes} bytes)", self.0.len())
    }
}

/// The bytes each change of a replay left in `replayed`, or `None` when one cannot be read back
/// (the plan then replays the journal itself).
fn replayed_writes<R: ReadAt>(replayed: &R, changes: Vec<Change>) -> Option<ReplayedWrites> {
    let mut writes = Vec::with_capacity(changes.len());
    for change in changes {
        let mut bytes = vec![0u8; usize::try_from(change.len).ok()?];
        replayed.read_at(change.offset, &mut bytes).ok()?;
        writes.push((change, bytes));
    }
    Some(ReplayedWrites(Arc::new(writes)))
}

/// An unlocked BitLocker volume, as inspect reports it. Never any key material.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BitLockerSummary {
    /// How its sectors are encrypted.
    pub method: kaifuku_bitlocker::EncryptionMethod,
    /// The kind of protector that unlocked it.
    pub unlocked_with: kaifuku_bitlocker::ProtectionType,
}

impl VolumeReport {
    /// Whether the volume could not be examined for a reason that is not damage (BitLocker, an
    /// unsupported feature).
    pub fn refused(&self) -> bool {
        self.error.as_ref().is_some_and(VolumeProblem::is_refusal)
    }

    /// What every rule that ran here found: the primary rule's result first, then the others'.
    pub fn results(&self) -> impl Iterator<Item = &RuleResult> {
        self.rule.iter().chain(&self.rule_results)
    }

    /// Whether any rule found a match here.
    pub fn has_matches(&self) -> bool {
        self.results().any(|r| !r.matches.is_empty())
    }

    /// The volume as messages name it: its partition and its label.
    pub fn name(&self) -> VolumeName {
        VolumeName {
            partition: self.partition,
            label: self
                .ntfs
                .as_ref()
                .and_then(|n| n.label.clone())
                .filter(|l| !l.is_empty()),
        }
    }
}

/// The whole inspection of a disk image: container, partitions, volumes, the rule's matches, and
/// the outcome with its reasons.
#[derive(Debug, Clone, Serialize)]
pub struct InspectReport {
    /// The container, when the file opened as one.
    pub container: Option<ContainerInfo>,
    /// The partition table, when it could be read.
    pub partitions: Option<PartitionTable>,
    /// Every volume, in partition order.
    pub volumes: Vec<VolumeReport>,
    /// Index into `volumes` of the Windows volume(s).
    pub windows_volumes: Vec<usize>,
    /// The primary rule of the set that was run.
    pub rule: Rule,
    /// Every rule that was run, the primary first (absent when it is the only one).
    #[serde(skip_serializing_if = "RuleSet::is_single")]
    pub rules: RuleSet,
    /// What inspection concluded.
    pub outcome: Outcome,
    /// Why the outcome is what it is.
    pub reasons: Vec<Reason>,
}

impl InspectReport {
    /// Every match, with the volume it is on.
    pub fn matches(&self) -> impl Iterator<Item = (&VolumeReport, &MatchReport)> {
        self.volumes.iter().flat_map(|v| {
            v.results()
                .flat_map(move |r| r.matches.iter().map(move |m| (v, m)))
        })
    }

    fn failed(
        rules: &RuleSet,
        outcome: Outcome,
        reason: Reason,
        container: Option<ContainerInfo>,
    ) -> Self {
        InspectReport {
            container,
            partitions: None,
            volumes: Vec::new(),
            windows_volumes: Vec::new(),
            rule: rules.primary().clone(),
            rules: rules.clone(),
            outcome,
            reasons: vec![reason],
        }
    }
}

/// Inspects the disk image `file` (any container format kaifuku reads) with `rules` (one rule,
/// or a [`RuleSet`]).
pub fn inspect<R: ReadAt>(file: R, rules: impl Into<RuleSet>) -> InspectReport {
    inspect_with(file, rules, Unlisted::Scan)
}

/// Whether the rule confirms "no match" with a scan of `$MFT` for files its directory's index
/// does not list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlisted {
    /// Scan (what a user's inspect does before saying "nothing to fix").
    Scan,
    /// Do not: a re-reading after a fix whose ownership proof already scanned `$MFT` for them,
    /// and whose edit removed only listed entries with their records.
    AlreadyProven,
}

/// [`inspect`] with keys for the image's BitLocker volumes: each one they unlock is inspected
/// decrypted; one they do not unlock is reported with why.
pub fn inspect_with_keys<R: ReadAt>(
    file: R,
    rules: impl Into<RuleSet>,
    keys: &VolumeKeys,
) -> InspectReport {
    inspect_opened(
        kaifuku_container::open(file).as_ref(),
        &rules.into(),
        Unlisted::Scan,
        &mut Unlocker::new(keys.clone()),
    )
}

/// [`inspect`], choosing whether "no match" is confirmed by a scan for unlisted files.
pub fn inspect_with<R: ReadAt>(
    file: R,
    rules: impl Into<RuleSet>,
    unlisted: Unlisted,
) -> InspectReport {
    inspect_opened(
        kaifuku_container::open(file).as_ref(),
        &rules.into(),
        unlisted,
        &mut Unlocker::default(),
    )
}

/// [`inspect_with`] on a container already opened (or the error opening it gave), so a session
/// opens it once for inspection, planning and output.
/// BitLocker volumes are unlocked with `unlocker`'s keys (and kept unlocked there) and inspected
/// decrypted.
pub(crate) fn inspect_opened<R: ReadAt>(
    opened: Result<&Container<R>, &ContainerError>,
    rules: &RuleSet,
    unlisted: Unlisted,
    unlocker: &mut Unlocker,
) -> InspectReport {
    let container = match opened {
        Ok(c) => c,
        Err(e) => {
            let problem = ContainerProblem::from(e);
            let outcome = if problem.is_unsupported() {
                Outcome::Refused
            } else {
                Outcome::Error
            };
            return InspectReport::failed(rules, outcome, Reason::Container { problem }, None);
        }
    };
    let info = container.info();
    let table = match kaifuku_partition::read_partitions(container) {
        Ok(t) => t,
        Err(e) => {
            let problem = PartitionProblem::from(&e);
            return InspectReport::failed(
                rules,
                Outcome::Error,
                Reason::Partitions { problem },
                Some(info),
            );
        }
    };
    unlocker.unlock_table(container, &table);
    let disk = unlocker.decrypted(container);
    let mut volumes = Vec::new();
    for p in table.partitions.iter().filter(|p| !p.container) {
        let bare = table.scheme == kaifuku_partition::Scheme::None;
        let mut report = VolumeReport {
            partition: (!bare).then_some(p.number),
            offset: p.start,
            size: p.size,
            filesystem: FileSystem::Unknown,
            ntfs: None,
            rule: None,
            rule_results: Vec::new(),
            skipped_rules: Vec::new(),
            fix_blockers: Vec::new(),
            journal: None,
            journal_replay: None,
            journal_read: None,
            journal_replayed: None,
            error: None,
            bitlocker: None,
            registry: None,
        };
        match unlocker.outcome(p.start) {
            Some(Ok(d)) => {
                report.bitlocker = Some(BitLockerSummary {
                    method: d.method(),
                    unlocked_with: d.protection(),
                })
            }
            Some(Err(problem)) => {
                report.filesystem = FileSystem::Bitlocker;
                report.error = Some(VolumeProblem::BitLocker {
                    problem: problem.clone(),
                });
                report.fix_blockers.push(Blocker::BitLocker);
                volumes.push(report);
                continue;
            }
            None => {}
        }
        match p.view(&disk) {
            Ok(view) => inspect_volume(&view, rules, &p.type_code, unlisted, &mut report),
            Err(e) => {
                report.error = Some(VolumeProblem::OutsideDisk {
                    partition: Some(p.number),
                    detail: e.to_string(),
                })
            }
        }
        volumes.push(report);
    }
    let windows_volumes: Vec<usize> = volumes
        .iter()
        .enumerate()
        .filter(|(_, v)| v.ntfs.as_ref().is_some_and(|n| n.windows))
        .map(|(i, _)| i)
        .collect();
    let mut reasons = Vec::new();
    let found: usize = volumes
        .iter()
        .flat_map(VolumeReport::results)
        .map(|r| r.matches.len())
        .sum();
    let problems = |refused: bool| -> Vec<Reason> {
        volumes
            .iter()
            .filter(|v| v.refused() == refused)
            .filter_map(|v| {
                Some(Reason::Volume {
                    volume: v.name(),
                    problem: v.error.clone()?,
                })
            })
            .collect()
    };
    let errors = problems(false);
    let refusals = problems(true);
    // Partition-table damage that can hide a Windows volume turns "nothing to fix" into an
    // error: the file may be on the volume the table lost.
    let hidden = hiding_damage(container, &table);
    // A volume where the rule found nothing but whose journal, which cannot be replayed, may
    // hold a matching file: not "nothing to fix" (consent to discard the journal settles it).
    let journal_may_hold: Vec<Reason> = volumes
        .iter()
        .flat_map(|v| {
            v.fix_blockers.iter().filter_map(move |b| match b {
                Blocker::JournalMayHoldMatch {
                    directory, pattern, ..
                } => Some(Reason::JournalMayHoldMatch {
                    volume: v.name(),
                    directory: directory.clone(),
                    pattern: pattern.clone(),
                }),
                _ => None,
            })
        })
        .collect();
    let outcome = if found > 0 {
        // One reason per rule that found something, in the set's order.
        for (index, rule) in rules.iter().enumerate() {
            let count: usize = volumes
                .iter()
                .flat_map(VolumeReport::results)
                .filter(|r| r.rule_index == index)
                .map(|r| r.matches.len())
                .sum();
            if count > 0 {
                reasons.push(Reason::Matches {
                    count,
                    rule: rule.title.clone(),
                });
            }
        }
        Outcome::Matches
    } else if !errors.is_empty() || !hidden.is_empty() {
        reasons.extend(errors);
        reasons.extend(hidden);
        Outcome::Error
    } else if !refusals.is_empty() || !journal_may_hold.is_empty() {
        reasons.extend(refusals);
        reasons.extend(journal_may_hold);
        Outcome::Refused
    } else {
        if windows_volumes.is_empty() {
            reasons.push(Reason::NoWindowsVolume);
        }
        for (v, result) in volumes
            .iter()
            .flat_map(|v| v.results().map(move |r| (v, r)))
        {
            let rule = rules.get(result.rule_index).unwrap_or(rules.primary());
            if !result.directory_exists {
                reasons.push(Reason::DirectoryMissing {
                    volume: v.name(),
                    directory: rule.directory.clone(),
                });
            } else {
                reasons.push(Reason::NoMatch {
                    volume: v.name(),
                    directory: rule.directory.clone(),
                    pattern: rule.pattern.clone(),
                });
            }
        }
        Outcome::NothingToFix
    };
    InspectReport {
        container: Some(info),
        partitions: Some(table),
        volumes,
        windows_volumes,
        rule: rules.primary().clone(),
        rules: rules.clone(),
        outcome,
        reasons,
    }
}

/// What in the partition table could hide a volume: entries that cannot be, broken chains of
/// logical partitions, overlaps, and a "table" that is really a damaged NTFS boot sector.
pub(crate) fn hiding_damage<R: ReadAt>(disk: &R, table: &PartitionTable) -> Vec<Reason> {
    use kaifuku_partition::NoticeKind as K;
    let mut out: Vec<Reason> = table
        .warnings
        .iter()
        .filter(|n| {
            matches!(
                n.kind,
                K::GptEntryImpossible { .. }
                    | K::PartitionsOverlap { .. }
                    | K::EbrPastEnd { .. }
                    | K::EbrNoSignature { .. }
                    | K::PartitionTruncated { .. }
            )
        })
        .map(|n| Reason::PartitionTableDamaged {
            notice: n.kind.clone(),
        })
        .collect();
    let empty = table
        .warnings
        .iter()
        .chain(&table.notes)
        .any(|n| matches!(n.kind, K::EmptyMbr | K::BareNoSectorSize));
    if empty || table.partitions.is_empty() {
        if let Some(why) = damaged_bare_ntfs(disk) {
            out.push(why);
        }
    }
    out
}

/// A disk whose first sector is not a recognised boot sector but that is an NTFS volume all the
/// same: its backup boot sector (the last sector) is NTFS, or its first sector has NTFS's BIOS
/// parameter block under a damaged OEM id.
fn damaged_bare_ntfs<R: ReadAt>(disk: &R) -> Option<Reason> {
    let size = disk.size();
    let backup = [512u64, 4096].into_iter().any(|ss| {
        let mut b = [0u8; 512];
        size >= ss
            && disk.read_at(size - ss, &mut b).is_ok()
            && boot_kind(&b) == Some(BootKind::Ntfs)
    });
    let mut s0 = [0u8; 512];
    disk.read_at(0, &mut s0).ok()?;
    let u16_at = |o: usize| u16::from_le_bytes([s0[o], s0[o + 1]]) as u64;
    let u64_at = |o: usize| u64::from_le_bytes(s0[o..o + 8].try_into().expect("8 bytes"));
    let bps = u16_at(0x0B);
    let bpb_like = [512, 1024, 2048, 4096].contains(&bps)
        && s0[0x0D].is_power_of_two()
        && u64_at(0x28) > 0
        && u64_at(0x28).saturating_mul(bps) <= size
        && u64_at(0x30) > 0
        && u64_at(0x38) > 0
        && s0[510..512] == [0x55, 0xAA];
    (backup || bpb_like).then_some(Reason::DamagedBareNtfs {
        oem_id_damaged: bpb_like,
        backup_intact: backup,
    })
}

/// The volume as messages name it (`partition 3 "Windows"`), in words.
pub fn volume_name(v: &VolumeReport) -> String {
    v.name().to_string()
}

/// Partition types under which Windows keeps its NTFS volumes: GPT "Microsoft basic data", MBR
/// 0x07 (IFS: NTFS or exFAT) and a bare volume that was recognised as NTFS.
fn windows_data_type(type_code: &str) -> bool {
    matches!(
        type_code,
        "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7" | "0x07" | "NTFS"
    )
}

/// Other file systems a Windows data partition may hold: nothing to repair there, and no damage.
fn other_filesystem(sector: &[u8]) -> Option<FileSystem> {
    if &sector[0x52..0x5A] == b"FAT32   "
        || &sector[0x36..0x3B] == b"FAT16"
        || &sector[0x36..0x3B] == b"FAT12"
    {
        Some(FileSystem::Fat)
    } else if &sector[3..11] == b"EXFAT   " {
        Some(FileSystem::Exfat)
    } else if &sector[3..7] == b"ReFS" {
        Some(FileSystem::Refs)
    } else {
        None
    }
}

/// Why a Windows data partition's first sector is no file system, with the backup NTFS boot
/// sector (the volume's last sector) mentioned when it is intact.
fn unreadable_boot_sector<R: ReadAt>(view: &Slice<R>, sector: &[u8]) -> VolumeProblem {
    let oem_id = (!sector.iter().all(|b| *b == 0)).then(|| {
        sector[3..11]
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            })
            .collect()
    });
    let size = view.size();
    let backup_intact = [512u64, 4096].into_iter().any(|ss| {
        let mut b = [0u8; 512];
        size >= ss
            && view.read_at(size - ss, &mut b).is_ok()
            && boot_kind(&b) == Some(BootKind::Ntfs)
    });
    VolumeProblem::WindowsBootSectorUnreadable {
        oem_id,
        backup_intact,
    }
}

/// The damage to report for a partition whose first sector is no NTFS or BitLocker boot sector
/// (`sector`, or `None` when it could not be read): none for other file systems and other
/// partition types; for a Windows data partition, why its volume cannot be read.
pub(crate) fn unreadable_windows_partition<R: ReadAt>(
    view: &Slice<R>,
    type_code: &str,
    sector: Result<&[u8], Option<String>>,
) -> Option<VolumeProblem> {
    if !windows_data_type(type_code) {
        return None;
    }
    match sector {
        Err(detail) => Some(VolumeProblem::WindowsPartitionUnreadable { detail }),
        Ok(s) if other_filesystem(s).is_some() => None,
        Ok(s) => Some(unreadable_boot_sector(view, s)),
    }
}

fn inspect_volume<R: ReadAt>(
    view: &Slice<R>,
    rules: &RuleSet,
    type_code: &str,
    unlisted: Unlisted,
    report: &mut VolumeReport,
) {
    let mut sector = [0u8; 512];
    let read = if view.size() < 512 {
        Err(None)
    } else {
        view.read_at(0, &mut sector)
            .map_err(|e| Some(e.to_string()))
    };
    if let Err(detail) = read {
        report.filesystem = FileSystem::Unknown;
        report.error = unreadable_windows_partition(view, type_code, Err(detail));
        return;
    }
    match boot_kind(&sector) {
        Some(BootKind::BitLocker) => {
            report.filesystem = FileSystem::Bitlocker;
            report.error = Some(VolumeProblem::Ntfs {
                error: NtfsProblem::BitLocker,
            });
            report.fix_blockers.push(Blocker::BitLocker);
            return;
        }
        Some(BootKind::Ntfs) => report.filesystem = FileSystem::Ntfs,
        None => {
            if let Some(fs) = other_filesystem(&sector) {
                report.filesystem = fs;
            }
            // A damaged boot sector where Windows keeps its volume must not pass for "nothing to
            // fix": the file may well be there.
            report.error = unreadable_windows_partition(view, type_code, Ok(&sector));
            return;
        }
    }
    let ntfs_problem = |e: NtfsError| {
        Some(VolumeProblem::Ntfs {
            error: NtfsProblem::from(e),
        })
    };
    let vol = match Volume::open(view) {
        Ok(v) => v,
        Err(e) => {
            report.error = ntfs_problem(e);
            return;
        }
    };
    let summary = match vol.summary() {
        Ok(s) => s,
        Err(e) => {
            report.error = ntfs_problem(e);
            return;
        }
    };
    // The replayed volume, when the journal is not clean and its replay is understood: the rule
    // must see what Windows would see after its own recovery (a file whose creation only the
    // journal holds is there).
    let replayed = RefCell::new(Overlay::new(view));
    let mut replay_done = false;
    if !summary.log.state.is_clean() {
        // Only a journal that is not clean is read past its restart pages: a clean volume costs
        // nothing more.
        // The replay starts from the journal the analysis read: the overlay holds no change yet,
        // so its bytes are the same.
        let (journal, read) = read_journal_report(&vol);
        let replay = Volume::open(&replayed)
            .ok()
            .and_then(|rvol| replay_journal(&rvol, &journal, read.as_ref()));
        let replay = replay.map(|(outcome, changes)| {
            if outcome.replayed() {
                report.journal_replayed = replayed_writes(&replayed, changes);
            }
            outcome
        });
        replay_done = replay.as_ref().is_some_and(JournalReplay::replayed);
        if !replay_done {
            report.fix_blockers.push(Blocker::JournalNotClean {
                state: summary.log.state,
            });
        }
        report.journal = Some(journal);
        report.journal_replay = replay;
        // The live span is kept only for a plan that must replay it: one that has the replay's
        // writes does not read the journal again, and a busy log's span is tens of MiB.
        if report.journal_replayed.is_none() {
            report.journal_read = read.map(|journal| JournalRead(Arc::new(journal)));
        }
    }
    if summary.hibernation.hibernated {
        report.fix_blockers.push(Blocker::Hibernated);
    }
    if summary.quota_tracking {
        report.fix_blockers.push(Blocker::QuotaTracking);
    }
    let windows = summary.windows;
    report.ntfs = Some(summary);
    // The rules that apply here, by index in the set: a Windows-only rule does not run on a
    // volume without Windows.
    let applying: Vec<usize> = rules
        .iter()
        .enumerate()
        .filter(|(_, rule)| !rule.windows_only || windows)
        .map(|(i, _)| i)
        .collect();
    if applying.is_empty() {
        return;
    }
    if replay_done {
        match Volume::open(&replayed) {
            // Replayed, the journal has nothing pending left that a fix could overlap.
            Ok(rvol) => {
                registry_into(&rvol, windows, report);
                run_rules_into(&rvol, rules, &applying, unlisted, report)
            }
            Err(e) => report.error = ntfs_problem(e),
        }
    } else {
        registry_into(&vol, windows, report);
        run_rules_into(&vol, rules, &applying, unlisted, report);
        journal_overlap_into(&vol, report);
        journal_may_hold_match_into(&vol, rules, report);
        lift_journal_blocker_if_left_to_windows(report);
    }
}

/// On a Windows volume, what its registry hives say (the volume as Windows will see it: replayed
/// when the journal was).
fn registry_into<R: ReadAt>(vol: &Volume<R>, windows: bool, report: &mut VolumeReport) {
    if windows {
        report.registry = Some(read_registry(vol));
    }
}

/// A journal the fix cannot replay, whose pending updates are all attributed and touch nothing
/// deleting the matches changes (the overlap inspect computed), does not block the fix: the fix
/// leaves it for Windows (the plan checks its exact footprint again).
fn lift_journal_blocker_if_left_to_windows(report: &mut VolumeReport) {
    let (Some(JournalReport::Analysed { journal }), Some(replay)) =
        (report.journal.as_ref(), report.journal_replay.as_ref())
    else {
        return;
    };
    let has_matches = report.has_matches();
    if replay.replayed()
        || !has_matches
        || journal.unresolved > 0
        || journal.overlap != Some(JournalOverlap::NoOverlap)
    {
        return;
    }
    report
        .fix_blockers
        .retain(|b| !matches!(b, Blocker::JournalNotClean { .. }));
}

/// For a journal that is not clean and that the fix cannot replay, when the rule found nothing:
/// whether the journal's pending updates may hold a matching file (they touch the rule's folders,
/// cannot be attributed, or cannot be read). "Nothing to fix" would be wrong then: Windows would
/// create the file when it replays its journal at the next start.
fn journal_may_hold_match_into<R: ReadAt>(
    vol: &Volume<R>,
    rules: &RuleSet,
    report: &mut VolumeReport,
) {
    let Some(journal) = report.journal.as_ref() else {
        return;
    };
    if report.has_matches() {
        // The fix already needs consent to discard the journal before it deletes them.
        return;
    }
    let mut blockers = Vec::new();
    // Optional rules (the registry transaction logs) are not exempt: registry writes under
    // `config` are journaled, and Windows replaying this journal at its next start may recreate
    // exactly the files the user asked to delete, so "nothing to fix" would be wrong for them too.
    for result in report.results() {
        let Some(rule) = rules.get(result.rule_index) else {
            continue;
        };
        let path = crate::journal::rule_path_records(vol, &rule.directory, result.directory_record);
        blockers.extend(crate::journal::journal_may_hold_match(
            journal,
            &path,
            &rule.directory,
            &rule.pattern,
        ));
    }
    report.fix_blockers.extend(blockers);
}

/// Runs the rules `applying` (indexes into `rules`) on `vol` into the volume's report; the
/// first error stops the volume, as it did with one rule.
fn run_rules_into<R: ReadAt>(
    vol: &Volume<R>,
    rules: &RuleSet,
    applying: &[usize],
    unlisted: Unlisted,
    report: &mut VolumeReport,
) {
    for &index in applying {
        let rule = rules.get(index).expect("indexes of the set");
        // A rule gated on the Windows build runs only where the registry (read before the rules)
        // gives a build at or past its gate; otherwise it is recorded as skipped, and finds and
        // deletes nothing.
        if let Some(why) = rule
            .min_windows_build
            .and_then(|needs| build_gate(report.registry.as_ref(), needs))
        {
            report.skipped_rules.push(SkippedRule {
                rule_id: rule.key().to_string(),
                why,
            });
            continue;
        }
        match run_rule_with(vol, rule, unlisted) {
            Ok(mut r) => {
                r.rule_index = index;
                if index == 0 {
                    report.rule = Some(r);
                } else {
                    r.rule_id = Some(rule.key().to_string());
                    report.rule_results.push(r);
                }
            }
            Err(e) => {
                report.error = Some(VolumeProblem::Ntfs {
                    error: NtfsProblem::from(e),
                });
                return;
            }
        }
    }
}

/// Why a rule that needs Windows build `needs` must not run on a volume whose registry report is
/// `registry` (`None`: it may run). A build that cannot be read never passes the gate.
pub(crate) fn build_gate(registry: Option<&RegistryReport>, needs: u32) -> Option<RuleSkip> {
    match registry {
        Some(r) => match r.build() {
            Some(build) if build >= needs => None,
            Some(build) => Some(RuleSkip::BuildBelow { build, needs }),
            None => Some(RuleSkip::BuildUnknown {
                version: r.windows_version.clone(),
                needs,
            }),
        },
        // No registry was read: the volume holds no Windows.
        None => Some(RuleSkip::BuildUnknown {
            version: WindowsVersion::NoSoftwareHive,
            needs,
        }),
    }
}

/// For a journal that was analysed (and is not replayed by the fix), whether its pending changes
/// overlap what deleting the rule's matches on `vol` would change.
fn journal_overlap_into<R: ReadAt>(vol: &Volume<R>, report: &mut VolumeReport) {
    let Some(JournalReport::Analysed { journal }) = report.journal.as_mut() else {
        return;
    };
    // One footprint for every rule's matches: the fix deletes them all at once.
    let mut fix: Option<crate::journal::FixFootprint> = None;
    for result in report.rule.iter().chain(&report.rule_results) {
        if let (false, Some(directory)) = (result.matches.is_empty(), result.directory_record) {
            let files: Vec<u64> = result.matches.iter().map(|m| m.file.mft_record).collect();
            // A footprint that cannot be read leaves the overlap unknown (`None`), never "none".
            match inspect_footprint(vol, directory, &files) {
                Ok(part) => fix.get_or_insert_with(Default::default).merge(part),
                Err(_) => return,
            }
        }
    }
    if let Some(fix) = fix {
        journal.overlap = Some(journal_overlap(journal, &fix));
    }
}

/// Lists the rule's directory and judges every name that matches.
pub fn run_rule<R: ReadAt>(vol: &Volume<R>, rule: &Rule) -> Result<RuleResult, NtfsError> {
    run_rule_with(vol, rule, Unlisted::Scan)
}

/// [`run_rule`], choosing whether "no match" is confirmed by a scan for unlisted files.
pub fn run_rule_with<R: ReadAt>(
    vol: &Volume<R>,
    rule: &Rule,
    unlisted: Unlisted,
) -> Result<RuleResult, NtfsError> {
    let (dir, directory, mut notices) = match resolve_directory(vol, &rule.directory)? {
        DirLookup::Missing => {
            return Ok(RuleResult {
                rule_id: None,
                directory_exists: false,
                directory: rule.directory.clone(),
                matches: Vec::new(),
                notices: Vec::new(),
                directory_record: None,
                rule_index: 0,
            })
        }
        DirLookup::Found {
            record,
            path,
            notices,
            ..
        } => (record, path, notices),
    };
    // The directory is checked before its listing is believed: a damaged index could hide the
    // very file the rule looks for, and "nothing to fix" over it would be a wrong answer.
    healthy(
        kaifuku_ntfs::check::check_directory(vol, dir.number)?,
        &directory,
    )?;
    let up = vol.upcase()?;
    let pattern: Vec<u16> = rule.pattern.encode_utf16().collect();
    let index = vol.directory(&dir)?;
    // A DOS-only entry is the short twin of a Win32 name; the file is reported once, by its long name.
    let candidates: Vec<_> = index
        .entries(vol)?
        .into_iter()
        .filter(|e| {
            e.key.namespace != kaifuku_ntfs::Namespace::Dos && up.glob_match(&pattern, &e.key.name)
        })
        .collect();
    // Names match case-insensitively, as Windows opens them: POSIX names that differ only in case
    // (made by Linux tools) all match, and are all listed before anything is deleted.
    let mut matches = Vec::new();
    let dir_path = directory.trim_end_matches('\\');
    for e in candidates {
        // Only files are deleted: a directory named like one stays, and says so.
        if vol.read_live(e.file_ref)?.is_directory() {
            notices.push(RuleNotice::DirectorySkipped {
                path: format!("{dir_path}\\{}", e.name()),
            });
            continue;
        }
        let details = vol.file_details(&e)?;
        matches.push(MatchReport {
            path: format!("{dir_path}\\{}", details.name),
            header_matches: rule.header_matches(&details),
            verdict: rule.verdict(&details),
            file: details,
        });
    }
    if matches.is_empty() && unlisted == Unlisted::Scan {
        // "Nothing to fix" must hold for the files the index lost too: a scan of `$MFT` for
        // files that name this directory as their parent but are not listed. (With matches, the
        // fix's own ownership scan does this.)
        let listing = kaifuku_ntfs::ownership::DirectoryListing::read(vol, dir.number, &directory)?;
        kaifuku_ntfs::ownership::find_unlisted(vol, &listing)?;
    }
    Ok(RuleResult {
        rule_id: None,
        directory_exists: true,
        directory,
        matches,
        notices,
        directory_record: Some(dir.number),
        rule_index: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::build_gate;
    use crate::registry::{HiveName, HiveReport, RegistryReport};
    use crate::vocabulary::{HiveState, RuleSkip, WindowsVersion};

    fn registry(windows_version: WindowsVersion) -> RegistryReport {
        let hive = |hive| HiveReport {
            hive,
            path: String::new(),
            state: HiveState::Missing,
        };
        RegistryReport {
            windows_version,
            system: hive(HiveName::System),
            software: hive(HiveName::Software),
        }
    }

    fn build(build: u32) -> WindowsVersion {
        WindowsVersion::Build {
            build,
            product_name: None,
        }
    }

    #[test]
    fn the_build_gate_passes_at_and_past_its_build_only() {
        assert_eq!(build_gate(Some(&registry(build(14393))), 14393), None);
        assert_eq!(build_gate(Some(&registry(build(20348))), 14393), None);
        assert_eq!(
            build_gate(Some(&registry(build(14392))), 14393),
            Some(RuleSkip::BuildBelow {
                build: 14392,
                needs: 14393
            })
        );
        for version in [
            WindowsVersion::NoSoftwareHive,
            WindowsVersion::NotRecorded,
            WindowsVersion::NotANumber { text: "x".into() },
        ] {
            assert_eq!(
                build_gate(Some(&registry(version.clone())), 14393),
                Some(RuleSkip::BuildUnknown {
                    version,
                    needs: 14393
                })
            );
        }
        assert_eq!(
            build_gate(None, 14393),
            Some(RuleSkip::BuildUnknown {
                version: WindowsVersion::NoSoftwareHive,
                needs: 14393
            })
        );
    }
}
