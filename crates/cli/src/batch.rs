//! `kaifuku fix --out-dir DIR IMAGE…` (or `--in-place --undo-dir DIR`): many images, several at a
//! time. Each image is fixed by a `kaifuku fix` process of its own — the very command that fixes
//! one image, so every output and report is the single-image one byte for byte, one image's crash
//! or damage cannot reach the others, and each process holds only its own bounded read cache.
//!
//! An output is written under a temporary name in DIR (`.NAME-fixed.EXT.kaifuku-batch-PID.partial`),
//! which the run verifies before it exits 0; only then is it renamed to its final name, never over
//! an existing file. On SIGINT the runs writing copies are stopped, their temporaries removed,
//! and the batch exits 130: what has a final name is complete. Runs editing an image in place are
//! left to finish (stopping one half-way would leave the image half-patched), and no new run starts.

use crate::exit::Exit;
use crate::source::FileSource;
use crate::stdio;
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::ffi::{OsStr, OsString};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the batch was asked to do.
pub struct BatchArgs {
    pub inputs: Vec<PathBuf>,
    /// Where the fixed copies go (`--out-dir`); `None` with `--in-place`.
    pub out_dir: Option<PathBuf>,
    /// Where the undo files go (`--undo-dir`, with `--in-place`).
    pub undo_dir: Option<PathBuf>,
    pub jobs: Option<usize>,
    /// The fixed copies' format (`--output-format`); the runs get the option in `fix_args`.
    pub output_format: crate::fix_cmd::OutputFormat,
    pub json: bool,
    /// Options every run gets: `--path`, `--rule`, `--txr-logs`, `--discard-journal`.
    pub fix_args: Vec<OsString>,
    pub keys: crate::keys::KeyArgs,
}

/// Where an image of the batch lives.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// A file or block device.
    Local,
    /// A disk behind an HTTP(S) URL (an Azure page blob by its SAS URL): fixed in place.
    Url,
    /// An S3 object: fixed into a new object.
    S3,
    /// An EBS snapshot: fixed into a new snapshot over it.
    Ebs,
}

impl Place {
    fn of(input: &Path) -> Place {
        if crate::remote::is_url(input.as_os_str()) {
            Place::Url
        } else if crate::s3::is_s3(input.as_os_str()) {
            Place::S3
        } else if crate::ebs::is_ebs(input.as_os_str()) {
            Place::Ebs
        } else {
            Place::Local
        }
    }
}

/// The name an image's outputs are named after: a file's name, a URL's or S3 key's last path
/// segment (never the query, which holds a SAS token), a snapshot's id.
fn image_name(image: &Path, place: Place) -> Option<OsString> {
    match place {
        Place::Local => image.file_name().map(OsStr::to_owned),
        Place::Ebs => crate::ebs::SnapshotId::parse(image.to_str()?)
            .ok()
            .map(|id| OsString::from(id.id())),
        Place::Url | Place::S3 => {
            let s = image.to_str()?;
            let path = s.split(['?', '#']).next().unwrap_or("");
            let last = path.trim_end_matches('/').rsplit('/').next()?;
            (!last.is_empty() && !last.contains(':')).then(|| OsString::from(last))
        }
    }
}

/// The image as it may be shown (a URL without its SAS token).
fn shown(image: &Path, place: Place) -> String {
    match place {
        Place::Url => crate::remote::shown(&image.to_string_lossy()),
        Place::Local | Place::S3 | Place::Ebs => image.display().to_string(),
    }
}

/// Refuses a batch whose images and outputs do not go together: a URL is fixed where it lives
/// (`--in-place --undo-dir`), an S3 object into a new object (`--out-dir s3://BUCKET/PREFIX`), an
/// EBS snapshot into a new snapshot (`--out-dir ebs://new`), and such outputs take objects or
/// snapshots only.
fn check_places(args: &BatchArgs) -> Result<(), String> {
    let s3_out = args
        .out_dir
        .as_ref()
        .is_some_and(|d| crate::s3::is_s3(d.as_os_str()));
    let ebs_out = args
        .out_dir
        .as_ref()
        .is_some_and(|d| crate::ebs::is_ebs(d.as_os_str()));
    if ebs_out && args.out_dir.as_deref() != Some(Path::new(crate::ebs::NEW_SNAPSHOT)) {
        return Err(format!(
            "--out-dir for EBS snapshots is {}: each fixed disk becomes a new snapshot, whose id is reported",
            crate::ebs::NEW_SNAPSHOT
        ));
    }
    for input in &args.inputs {
        match Place::of(input) {
            Place::Ebs if !ebs_out => {
                return Err(format!(
                    "{} is an EBS snapshot, which cannot be changed or written to a folder here: give --out-dir {}, and each fixed disk becomes a new snapshot over its original",
                    input.display(),
                    crate::ebs::NEW_SNAPSHOT
                ))
            }
            Place::Local | Place::S3 | Place::Url if ebs_out => {
                return Err(format!(
                    "--out-dir {} takes EBS snapshots only, and {} is not one: fix it in a separate run",
                    crate::ebs::NEW_SNAPSHOT,
                    shown(input, Place::of(input))
                ))
            }
            Place::Url if args.out_dir.is_some() => {
                return Err(format!(
                    "{} is a disk behind a URL, fixed where it lives: give --in-place --undo-dir DIR (its undo file is saved there first), not --out-dir",
                    crate::remote::shown(&input.to_string_lossy())
                ))
            }
            Place::S3 if !s3_out => {
                return Err(format!(
                    "{} is an S3 object, which cannot be changed in place or written to a folder here: give --out-dir s3://BUCKET/PREFIX, where each fixed copy becomes a new object made by a server-side copy",
                    input.display()
                ))
            }
            Place::Local if s3_out => {
                return Err(format!(
                    "--out-dir s3://… takes S3 objects only, and {} is a local image: fix local images in a separate run with a folder as --out-dir",
                    input.display()
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// One image of the batch and the files its run writes.
struct Job {
    image: PathBuf,
    place: Place,
    /// The image as it is shown (a URL without its SAS token).
    shown: String,
    /// The final name of the fixed copy (`--out-dir`).
    output: Option<PathBuf>,
    /// The temporary name the run writes the copy to.
    partial: Option<PathBuf>,
    /// The undo file (`--in-place`).
    undo: Option<PathBuf>,
    /// For an image read through a VMware descriptor, copied in its own format: the data files
    /// its run writes beside the copy, named for the final name (the run's descriptor is the
    /// partial one until it is renamed).
    data_files: Vec<PathBuf>,
}

/// How one image ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Fixed,
    NothingToFix,
    Refused,
    Failed,
    /// Not started, or stopped, because of SIGINT.
    Interrupted,
}

impl Outcome {
    fn words(self) -> &'static str {
        match self {
            Outcome::Fixed => "fixed",
            Outcome::NothingToFix => "nothing to fix",
            Outcome::Refused => "refused",
            Outcome::Failed => "error",
            Outcome::Interrupted => "interrupted",
        }
    }
    fn exit(self) -> Exit {
        match self {
            Outcome::Fixed => Exit::Success,
            Outcome::NothingToFix => Exit::NothingToFix,
            Outcome::Refused => Exit::Refused,
            Outcome::Failed => Exit::Error,
            Outcome::Interrupted => Exit::Interrupted,
        }
    }
}

/// Where an image is, for the progress display.
#[derive(Clone)]
enum State {
    Waiting,
    Running(Instant),
    Done(Outcome, Duration),
}

/// What one run left behind.
struct Result1 {
    outcome: Outcome,
    /// The run's own `fix --json` report, when it printed one.
    report: Option<Value>,
    /// Why it did not fix the image, in the run's words.
    message: Option<String>,
    seconds: f64,
}

/// The `kaifuku` the batch runs for each image: this very program.
fn own_program() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find the kaifuku program itself: {e}"))
}

/// `disk.vhd` → `disk-fixed.vhd` (as the web page names its downloads); a name without an
/// extension, or a dot file, gets `-fixed` at the end.
pub fn fixed_name(name: &OsStr) -> OsString {
    let base = name.to_string_lossy();
    match base.rfind('.') {
        Some(i) if i > 0 && i + 1 < base.len() && name.to_str().is_some() => {
            format!("{}-fixed{}", &base[..i], &base[i..]).into()
        }
        _ => {
            let mut n = name.to_owned();
            n.push("-fixed");
            n
        }
    }
}

/// The name of a fixed copy written as a fixed VHD (`--output-format vhd-fixed`): `disk.vmdk` →
/// `disk-fixed.vhd`, `sdb` → `sdb-fixed.vhd`.
pub fn fixed_vhd_name(name: &OsStr) -> OsString {
    let base = name.to_string_lossy();
    match base.rfind('.') {
        Some(i) if i > 0 && i + 1 < base.len() && name.to_str().is_some() => {
            format!("{}-fixed.vhd", &base[..i]).into()
        }
        _ => {
            let mut n = name.to_owned();
            n.push("-fixed.vhd");
            n
        }
    }
}

/// Whether a file found in a directory is a disk image by the container's own detection: a
/// recognised container (a damaged one too: its run then says what is wrong), or a raw disk with
/// the boot-sector signature (a partition table or a bare volume). Anything else there — notes,
/// checksums, reports — is skipped.
fn looks_like_image(path: &Path) -> bool {
    let Ok(source) = FileSource::open(path) else {
        // A VMware descriptor that does not open (a disk kaifuku refuses, or a missing data
        // file) is still a disk: its run says why.
        let mut head = Vec::new();
        return std::fs::File::open(path)
            .and_then(|f| f.take(64).read_to_end(&mut head))
            .is_ok_and(|_| kaifuku_container::vmdk_descriptor::is_descriptor(&head));
    };
    match kaifuku_container::open(&source) {
        Ok(c) if c.format() == kaifuku_container::Format::Raw => {
            let mut sig = [0u8; 2];
            use kaifuku_io::ReadAt;
            source.size() >= 512 && source.read_at(510, &mut sig).is_ok() && sig == [0x55, 0xAA]
        }
        Ok(_) | Err(_) => true,
    }
}

/// The images named on the command line: files and block devices as given, directories as the
/// images directly in them (sorted by name; hidden files skipped).
fn expand(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut images = Vec::new();
    for input in inputs {
        if Place::of(input) != Place::Local {
            images.push(input.clone());
            continue;
        }
        let meta = std::fs::metadata(input)
            .map_err(|e| format!("cannot open {}: {e}", input.display()))?;
        if !meta.is_dir() {
            images.push(input.clone());
            continue;
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(input)
            .map_err(|e| format!("cannot list {}: {e}", input.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| e.path())
            .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file()))
            .collect();
        found.sort();
        // The data files a VMware descriptor in the folder names are that disk, not images of
        // their own (a flat one even starts like a disk, a sparse one like a VMDK) — also when
        // the descriptor itself is refused.
        let mut data_files = std::collections::BTreeSet::new();
        for p in &found {
            let named = descriptor_names(p);
            let dir = p.parent().unwrap_or(Path::new("."));
            data_files.extend(
                named
                    .iter()
                    .filter_map(|n| std::fs::metadata(dir.join(n)).ok())
                    .map(|m| file_id(&m)),
            );
        }
        let before = images.len();
        images.extend(found.into_iter().filter(|p| {
            let of_descriptor =
                std::fs::metadata(p).is_ok_and(|m| data_files.contains(&file_id(&m)));
            !of_descriptor && looks_like_image(p)
        }));
        if images.len() == before {
            say!("{} holds no disk image; skipped", input.display());
        }
    }
    Ok(images)
}

/// The extent file names of the VMware descriptor at `p` (none when it is not one).
fn descriptor_names(p: &Path) -> Vec<String> {
    use kaifuku_container::vmdk_descriptor::{self, MAX_DESCRIPTOR_BYTES};
    match std::fs::metadata(p) {
        Ok(m) if m.is_file() && m.len() <= MAX_DESCRIPTOR_BYTES => {}
        _ => return Vec::new(),
    }
    match std::fs::read(p) {
        Ok(bytes) if vmdk_descriptor::is_descriptor(&bytes) => {
            vmdk_descriptor::extent_file_names(&bytes)
        }
        _ => Vec::new(),
    }
}

/// A file's identity (device, inode).
fn file_id(m: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

/// The files each image's run writes; refuses two images that would write the same name, an
/// image that is a data file of another (a VMware descriptor) image, and a described copy whose
/// data files' names are taken.
fn plan_jobs(images: Vec<PathBuf>, args: &BatchArgs) -> Result<Vec<Job>, String> {
    let mut described: BTreeMap<(u64, u64), &Path> = BTreeMap::new();
    // The extent kinds of each image read through a VMware descriptor (empty for the others).
    let mut parts_of: Vec<Vec<kaifuku_container::vmdk_descriptor::ExtentKind>> = Vec::new();
    for image in &images {
        let kinds = FileSource::open(image)
            .ok()
            .and_then(|s| {
                for part in s.parts().iter().filter(|_| s.descriptor().is_some()) {
                    described.insert(file_id(&part.meta), image);
                }
                s.descriptor()
                    .map(|d| d.extents.iter().map(|e| e.kind).collect())
            })
            .unwrap_or_default();
        parts_of.push(kinds);
    }
    for image in &images {
        if let Some(desc) = std::fs::metadata(image)
            .ok()
            .and_then(|m| described.get(&file_id(&m)))
        {
            return Err(format!(
                "{} is a data file of the VMware disk {}: give the descriptor alone (it is read with all its data files); nothing was done",
                image.display(),
                desc.display()
            ));
        }
    }
    let mut by_name: BTreeMap<OsString, &Path> = BTreeMap::new();
    for image in &images {
        let place = Place::of(image);
        let Some(name) = image_name(image, place) else {
            return Err(format!("{} names no file", shown(image, place)));
        };
        if let Some(first) = by_name.insert(name, image) {
            return Err(format!(
                "{} and {} have the same file name, so their {} would have the same name: \
                 fix them in separate runs (or rename one); nothing was done",
                shown(first, Place::of(first)),
                shown(image, place),
                if args.out_dir.is_some() {
                    "fixed copies"
                } else {
                    "undo files"
                }
            ));
        }
    }
    let pid = std::process::id();
    images
        .into_iter()
        .zip(parts_of)
        .map(|(image, parts)| {
            let place = Place::of(&image);
            let name = image_name(&image, place).unwrap_or_default();
            let (output, partial) = match &args.out_dir {
                // A new snapshot gets its id from the service; its run reports it.
                Some(new) if place == Place::Ebs => (Some(new.clone()), None),
                // A new S3 object appears only when complete (and is deleted by its run if it
                // does not verify): it is written under its final name.
                Some(prefix) if place == Place::S3 => {
                    let prefix = prefix.to_string_lossy();
                    let out = match args.output_format {
                        crate::fix_cmd::OutputFormat::Same => fixed_name(&name),
                        crate::fix_cmd::OutputFormat::VhdFixed => fixed_vhd_name(&name),
                    };
                    let key = format!("{}/{}", prefix.trim_end_matches('/'), out.to_string_lossy());
                    (Some(PathBuf::from(key)), None)
                }
                Some(dir) => {
                    let out = match args.output_format {
                        crate::fix_cmd::OutputFormat::Same => fixed_name(&name),
                        crate::fix_cmd::OutputFormat::VhdFixed => fixed_vhd_name(&name),
                    };
                    let mut tmp = OsString::from(".");
                    tmp.push(&out);
                    tmp.push(format!(".kaifuku-batch-{pid}.partial"));
                    (Some(dir.join(out)), Some(dir.join(tmp)))
                }
                None => (None, None),
            };
            let undo = args.undo_dir.as_ref().map(|dir| {
                let mut u = name.clone();
                u.push(".undo");
                dir.join(u)
            });
            let mut data_files = Vec::new();
            if let (Some(out), true) = (
                &output,
                !parts.is_empty() && args.output_format == crate::fix_cmd::OutputFormat::Same,
            ) {
                let dir = out.parent().unwrap_or(Path::new("."));
                let names = crate::output::data_file_names(out.file_name().unwrap_or_default(), &parts)
                    .map_err(|e| format!("{}: {e}; nothing was done", image.display()))?;
                for n in names {
                    let p = dir.join(n);
                    if std::fs::symlink_metadata(&p).is_ok() {
                        return Err(format!(
                            "the fixed copy of {} would write its data file {}, which exists already: move it away or fix that image separately; nothing was done",
                            image.display(),
                            p.display()
                        ));
                    }
                    data_files.push(p);
                }
            }
            Ok(Job {
                shown: shown(&image, place),
                place,
                image,
                output,
                partial,
                undo,
                data_files,
            })
        })
        .collect()
}

/// Removes what a run that did not finish wrote: its temporary copy and the data files of a
/// described copy, which did not exist before the run (`plan_jobs` checked), with their own
/// temporaries.
fn remove_unfinished(job: &Job) {
    if let Some(p) = &job.partial {
        remove_partial(p);
    }
    for f in &job.data_files {
        remove_partial(f);
    }
}

/// Removes a run's temporary copy and the run's own temporaries beside it
/// (`.NAME.kaifuku-PID-N.tmp`, see `output`).
fn remove_partial(partial: &Path) {
    let _ = std::fs::remove_file(partial);
    let (Some(dir), Some(name)) = (partial.parent(), partial.file_name()) else {
        return;
    };
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(".kaifuku-");
    let prefix = prefix.to_string_lossy().into_owned();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(&prefix) && n.ends_with(".tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Reads a pipe to its end on a thread of its own (a full pipe would stall the run).
fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

/// Runs `kaifuku fix` for one image and waits for it, stopping it on SIGINT when it writes a
/// copy.
fn run_one(
    program: &Path,
    job: &Job,
    args: &BatchArgs,
    keys: &crate::keys::BatchKeys,
    interrupted: &AtomicBool,
) -> Result1 {
    let started = Instant::now();
    let done = |outcome, report, message: Option<String>| Result1 {
        outcome,
        report,
        message,
        seconds: started.elapsed().as_secs_f64(),
    };
    let mut cmd = Command::new(program);
    cmd.arg("fix")
        .arg("--json")
        .args(&args.fix_args)
        .args(&keys.args);
    if let (Some(out), false) = (&job.output, job.data_files.is_empty()) {
        cmd.arg("--data-files-named-for")
            .arg(out.file_name().unwrap_or_default());
    }
    match (&job.partial, &job.undo) {
        (Some(p), _) => cmd.arg("-o").arg(p),
        (None, None) if matches!(job.place, Place::S3 | Place::Ebs) && job.output.is_some() => cmd
            .arg("-o")
            .arg(job.output.as_deref().unwrap_or(Path::new(""))),
        (None, Some(u)) => cmd.arg("--in-place").arg("--undo").arg(u),
        (None, None) => return done(Outcome::Failed, None, Some("nowhere to write".into())),
    };
    // `--` keeps an image named like an option an image.
    cmd.arg("--").arg(&job.image);
    // A process group of its own: a Ctrl-C at the terminal reaches the batch alone, which
    // decides what each run does (a run editing in place must not stop half-way).
    use std::os::unix::process::CommandExt;
    cmd.process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child: Child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return done(
                Outcome::Failed,
                None,
                Some(format!("cannot start kaifuku fix: {e}")),
            )
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A run that needs no key never reads this; a failed write is then harmless.
        let _ = stdin.write_all(keys.stdin.as_bytes());
    }
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let mut stopped = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) => {}
            Err(_) => break None,
        }
        if job.partial.is_some() && !stopped && interrupted.load(Ordering::SeqCst) {
            let _ = child.kill();
            stopped = true;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
    if stopped {
        remove_unfinished(job);
        return done(Outcome::Interrupted, None, Some("stopped by SIGINT".into()));
    }
    let code = status.and_then(|s| s.code());
    let message = || {
        let text = stderr
            .lines()
            .chain(stdout.lines())
            .map(|l| l.strip_prefix("kaifuku: ").unwrap_or(l))
            .map(|l| l.strip_prefix("refused: ").unwrap_or(l))
            .collect::<Vec<_>>()
            .join(" ");
        (!text.is_empty()).then_some(text)
    };
    match code {
        Some(0) => {
            let report: Option<Value> = serde_json::from_str(&stdout).ok();
            if report.is_none() {
                remove_unfinished(job);
                return done(
                    Outcome::Failed,
                    None,
                    Some("kaifuku fix printed no report — please report this".into()),
                );
            }
            if let (Some(p), Some(o)) = (&job.partial, &job.output) {
                if let Err(e) = crate::output::rename_noreplace(p, o) {
                    remove_unfinished(job);
                    return done(
                        Outcome::Failed,
                        report,
                        Some(format!(
                            "the fixed image verified but could not be named {}: {e}",
                            o.display()
                        )),
                    );
                }
                if let Some(dir) = o.parent() {
                    let _ = crate::output::sync_dir(dir);
                }
            }
            done(Outcome::Fixed, report, None)
        }
        Some(1) => done(Outcome::NothingToFix, None, message()),
        Some(2) => done(Outcome::Refused, None, message()),
        _ => {
            remove_unfinished(job);
            let why = message().unwrap_or_else(|| match code {
                Some(c) => format!("kaifuku fix exited with status {c}"),
                None => "kaifuku fix was killed by a signal".into(),
            });
            done(Outcome::Failed, None, Some(why))
        }
    }
}

/// The live display on stderr: on a terminal one line per image, redrawn in place; otherwise a
/// plain line when an image starts and when it ends.
struct Progress {
    names: Vec<String>,
    states: Mutex<Vec<State>>,
    tty: bool,
    drawn: Mutex<Drawn>,
}

impl Progress {
    fn set(&self, i: usize, s: State) {
        let line = {
            let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
            states[i] = s.clone();
            Self::line(&self.names[i], &s)
        };
        if !self.tty {
            let n = self.names.len();
            let line = match s {
                State::Running(_) => format!("{}: started", self.names[i]),
                _ => line,
            };
            stdio::err_line(&format!("kaifuku: [{}/{n}] {line}", i + 1));
        }
    }

    fn line(name: &str, s: &State) -> String {
        match s {
            State::Waiting => format!("{name}: waiting"),
            State::Running(t) => format!("{name}: fixing… {:.0} s", t.elapsed().as_secs_f64()),
            State::Done(o, d) => format!("{name}: {} ({:.1} s)", o.words(), d.as_secs_f64()),
        }
    }

    /// Redraws the display (terminal only): a finished image gets a line of its own, printed once
    /// and left to scroll; below them the images being fixed and a count, redrawn in place. So the
    /// part redrawn stays as small as `--jobs` however many images the batch holds.
    fn draw(&self) {
        if !self.tty {
            return;
        }
        let states = self
            .states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut drawn = self.drawn.lock().unwrap_or_else(|p| p.into_inner());
        let mut text = String::new();
        if drawn.live_lines > 0 {
            text.push_str(&format!("\x1b[{}A", drawn.live_lines));
        }
        let (mut waiting, mut running) = (0, Vec::new());
        for (i, (name, s)) in self.names.iter().zip(&states).enumerate() {
            match s {
                State::Done(..) if !drawn.finished[i] => {
                    drawn.finished[i] = true;
                    text.push_str(&format!("\r\x1b[2K{}\n", Self::line(name, s)));
                }
                State::Done(..) => {}
                State::Waiting => waiting += 1,
                State::Running(_) => running.push(Self::line(name, s)),
            }
        }
        for line in &running {
            text.push_str(&format!("\r\x1b[2K{line}\n"));
        }
        let done = drawn.finished.iter().filter(|f| **f).count();
        text.push_str(&format!(
            "\r\x1b[2K{done} of {} done, {} being fixed, {waiting} waiting\n\x1b[J",
            self.names.len(),
            running.len()
        ));
        drawn.live_lines = running.len() + 1;
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(text.as_bytes());
        let _ = e.flush();
    }
}

/// What the terminal display has shown so far.
struct Drawn {
    /// Which images' final lines were printed.
    finished: Vec<bool>,
    /// How many lines at the bottom are redrawn next time.
    live_lines: usize,
}

/// SIGINT is blocked in every thread (threads inherit the mask) and awaited by one, which sets
/// `interrupted`; the runs, started with the default mask, are stopped by their workers.
fn watch_sigint(interrupted: Arc<AtomicBool>) {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    if set.thread_block().is_err() {
        return;
    }
    std::thread::spawn(move || {
        if set.wait().is_ok() {
            interrupted.store(true, Ordering::SeqCst);
        }
    });
}

/// A short summary of a fixed image's report: files removed, the journal, bytes read.
fn report_facts(report: Option<&Value>) -> (String, String, String) {
    let Some(r) = report else {
        return ("-".into(), "-".into(), "-".into());
    };
    let plan = &r["plan"];
    let count = |k: &str| plan[k].as_array().map_or(0, Vec::len);
    let removed = count("deletions").to_string();
    let journal = if count("journals_discarded") > 0 {
        "reset".to_string()
    } else if count("journals_replayed") > 0 {
        "replayed".to_string()
    } else if count("journals_left") > 0 {
        "left for Windows".to_string()
    } else {
        "none".to_string()
    };
    let read = r["reads"]["bytes"]
        .as_u64()
        .map_or("-".into(), crate::report::size);
    (removed, journal, read)
}

/// Runs the batch; returns how kaifuku exits: 0 when every image was fixed or had nothing to
/// fix, otherwise the worst status of an image (2 refused, 3 error), 130 after SIGINT.
pub fn run(args: BatchArgs) -> Exit {
    if let Err(e) = check_places(&args) {
        say!("{e}; nothing was done");
        return Exit::Error;
    }
    for (dir, what) in [(&args.out_dir, "--out-dir"), (&args.undo_dir, "--undo-dir")] {
        if let Some(d) = dir
            .as_ref()
            .filter(|d| !crate::s3::is_s3(d.as_os_str()) && !crate::ebs::is_ebs(d.as_os_str()))
        {
            if !d.is_dir() {
                say!("{what} {} is not a directory: create it first", d.display());
                return Exit::Error;
            }
        }
    }
    let program = match own_program() {
        Ok(p) => p,
        Err(e) => {
            say!("{e}");
            return Exit::Error;
        }
    };
    let keys = match args.keys.clone().for_batch() {
        Ok(k) => k,
        Err(e) => {
            say!("{e}");
            return Exit::Error;
        }
    };
    let images = match expand(&args.inputs) {
        Ok(i) => i,
        Err(e) => {
            say!("{e}; nothing was done");
            return Exit::Error;
        }
    };
    if images.is_empty() {
        say!("no disk image to fix: name image files, block devices or directories holding images");
        return Exit::Error;
    }
    let jobs = match plan_jobs(images, &args) {
        Ok(j) => j,
        Err(e) => {
            say!("{e}");
            return Exit::Error;
        }
    };
    // Existing files are never replaced; they are named before anything starts.
    // (A new S3 object's run refuses an existing one itself.)
    let existing: Vec<&PathBuf> = jobs
        .iter()
        .flat_map(|j| {
            [
                j.output
                    .as_ref()
                    .filter(|_| !matches!(j.place, Place::S3 | Place::Ebs)),
                j.undo.as_ref(),
            ]
        })
        .flatten()
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .collect();
    if !existing.is_empty() {
        for p in &existing {
            say!("{} exists; kaifuku never replaces a file", p.display());
        }
        say!("move those files away or choose another directory; nothing was done");
        return Exit::Error;
    }

    let interrupted = Arc::new(AtomicBool::new(false));
    watch_sigint(interrupted.clone());
    let workers = args
        .jobs
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
        .clamp(1, jobs.len());
    let progress = Progress {
        names: jobs.iter().map(|j| j.shown.clone()).collect(),
        states: Mutex::new(vec![State::Waiting; jobs.len()]),
        tty: std::io::stderr().is_terminal(),
        drawn: Mutex::new(Drawn {
            finished: vec![false; jobs.len()],
            live_lines: 0,
        }),
    };
    let queue: Mutex<VecDeque<usize>> = Mutex::new((0..jobs.len()).collect());
    let results: Mutex<Vec<Option<Result1>>> = Mutex::new((0..jobs.len()).map(|_| None).collect());
    let all_done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for _ in 0..workers {
            handles.push(scope.spawn(|| loop {
                if interrupted.load(Ordering::SeqCst) {
                    break;
                }
                let Some(i) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front() else {
                    break;
                };
                progress.set(i, State::Running(Instant::now()));
                let r = run_one(&program, &jobs[i], &args, &keys, &interrupted);
                progress.set(
                    i,
                    State::Done(r.outcome, Duration::from_secs_f64(r.seconds)),
                );
                results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
            }));
        }
        scope.spawn(|| {
            while !all_done.load(Ordering::SeqCst) {
                progress.draw();
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        for h in handles {
            let _ = h.join();
        }
        all_done.store(true, Ordering::SeqCst);
    });
    progress.draw();

    let was_interrupted = interrupted.load(Ordering::SeqCst);
    let results: Vec<Result1> = results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .map(|r| {
            r.unwrap_or(Result1 {
                outcome: Outcome::Interrupted,
                report: None,
                message: Some("not started: the batch was interrupted".into()),
                seconds: 0.0,
            })
        })
        .collect();
    let printed = if args.json {
        json_lines(&jobs, &results, was_interrupted)
    } else {
        table(&jobs, &results)
    };
    if let Err(e) = stdio::out(&printed) {
        stdio::stdout_failed(
            &e,
            "the images listed as fixed were written and are complete",
        );
        return Exit::Error;
    }
    for (job, r) in jobs.iter().zip(&results) {
        if !matches!(r.outcome, Outcome::Fixed | Outcome::NothingToFix) {
            say!(
                "{}: {}{}",
                job.shown,
                r.outcome.words(),
                r.message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            );
        }
    }
    if was_interrupted {
        say!("interrupted: the images listed as fixed are complete; nothing else was written under a final name");
        return Exit::Interrupted;
    }
    worst(results.iter().map(|r| r.outcome.exit()))
}

/// The batch's status from its images': nothing to fix counts as success here (the image is
/// fine), otherwise the highest status wins (2 refused < 3 error).
fn worst(exits: impl Iterator<Item = Exit>) -> Exit {
    exits
        .map(|e| match e {
            Exit::NothingToFix => Exit::Success,
            other => other,
        })
        .max_by_key(|e| e.code())
        .unwrap_or(Exit::Success)
}

/// Where a fixed image's copy is: its file or object, or the new snapshot its run reported.
fn output_of(job: &Job, r: &Result1) -> Option<String> {
    match job.place {
        Place::Ebs => r
            .report
            .as_ref()
            .and_then(|v| v["output"].as_str())
            .map(str::to_string),
        _ => job.output.as_ref().map(|p| p.display().to_string()),
    }
}

fn json_lines(jobs: &[Job], results: &[Result1], interrupted: bool) -> String {
    let mut o = String::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (job, r) in jobs.iter().zip(results) {
        *counts.entry(r.outcome.words()).or_default() += 1;
        let line = json!({
            "image": job.shown,
            "outcome": r.outcome.words(),
            "exit_code": r.outcome.exit().code(),
            "output": (r.outcome == Outcome::Fixed).then(|| output_of(job, r)).flatten(),
            "undo": (r.outcome == Outcome::Fixed).then(|| job.undo.as_ref().map(|p| p.display().to_string())).flatten(),
            "message": r.message,
            "seconds": r.seconds,
            "fix": r.report,
        });
        o.push_str(&serde_json::to_string(&line).expect("serialisable"));
        o.push('\n');
    }
    let summary = json!({
        "summary": {
            "images": jobs.len(),
            "outcomes": counts,
            "interrupted": interrupted,
            "exit_code": if interrupted { Exit::Interrupted.code() } else { worst(results.iter().map(|r| r.outcome.exit())).code() },
        }
    });
    o.push_str(&serde_json::to_string(&summary).expect("serialisable"));
    o.push('\n');
    o
}

fn table(jobs: &[Job], results: &[Result1]) -> String {
    let head = [
        "Image".to_string(),
        "Outcome".into(),
        "Removed".into(),
        "Journal".into(),
        "Read".into(),
        "Time".into(),
    ];
    let mut rows = vec![head];
    for (job, r) in jobs.iter().zip(results) {
        let (removed, journal, read) = report_facts(r.report.as_ref());
        rows.push([
            job.shown.clone(),
            r.outcome.words().to_string(),
            removed,
            journal,
            read,
            format!("{:.1} s", r.seconds),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut o = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        o.push_str(cells.join("  ").trim_end());
        o.push('\n');
    }
    let fixed = results
        .iter()
        .filter(|r| r.outcome == Outcome::Fixed)
        .count();
    let clean = results
        .iter()
        .filter(|r| r.outcome == Outcome::NothingToFix)
        .count();
    for (job, r) in jobs.iter().zip(results) {
        if let (Place::Ebs, Outcome::Fixed, Some(new)) = (job.place, r.outcome, output_of(job, r)) {
            o.push_str(&format!(
                "{} fixed into the new snapshot {new}\n",
                job.shown
            ));
        }
    }
    o.push_str(&format!(
        "{} image(s): {fixed} fixed, {clean} with nothing to fix, {} not fixed\n",
        jobs.len(),
        jobs.len() - fixed - clean
    ));
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_named_as_the_page_names_its_downloads() {
        for (input, output) in [
            ("disk.vhd", "disk-fixed.vhd"),
            ("web01.disk.vmdk", "web01.disk-fixed.vmdk"),
            ("sdb", "sdb-fixed"),
            (".hidden", ".hidden-fixed"),
            ("trailing.", "trailing.-fixed"),
        ] {
            assert_eq!(fixed_name(OsStr::new(input)), OsStr::new(output), "{input}");
        }
    }

    #[test]
    fn fixed_vhd_outputs_are_named_vhd() {
        for (input, output) in [
            ("disk.vmdk", "disk-fixed.vhd"),
            ("web01.disk.qcow2", "web01.disk-fixed.vhd"),
            ("disk.vhd", "disk-fixed.vhd"),
            ("sdb", "sdb-fixed.vhd"),
            (".hidden", ".hidden-fixed.vhd"),
        ] {
            assert_eq!(
                fixed_vhd_name(OsStr::new(input)),
                OsStr::new(output),
                "{input}"
            );
        }
    }

    #[test]
    fn the_batch_exits_with_the_worst_image() {
        use Exit::{Error, NothingToFix, Refused, Success};
        assert_eq!(worst([Success, NothingToFix].into_iter()), Success);
        assert_eq!(worst([NothingToFix, Refused, Success].into_iter()), Refused);
        assert_eq!(worst([Refused, Error, NothingToFix].into_iter()), Error);
        assert_eq!(worst(std::iter::empty()), Success);
    }
}
