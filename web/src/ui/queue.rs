//! Many images at once: each is read in a fresh worker, one after another, into a table; the user
//! reviews it, then fixes all the fixable ones, each offered as a download (or written into a
//! chosen folder) as soon as it is ready.
//!
//! The state here is plain data; `App` runs the workers and feeds their answers in.

use super::workers::WorkerEvent;
use super::{folder, metrics, Msg};
use crate::i18n::{AloneReason, JournalAction, T};
use crate::protocol::{FromWorker, RuleChoice, ToWorker};
use crate::view::{FixedView, InspectView, PlanView, Problem, ProblemView};
use gloo::file::ObjectUrl;
use kaifuku_rescue::Outcome;
use std::rc::Rc;
use wasm_bindgen::JsValue;
use web_sys::{Blob, File};
use yew::{html, AttrValue, Callback, Context, Html};

/// Where an image of the queue stands.
#[derive(Clone)]
pub enum EntryStatus {
    Waiting,
    Inspecting,
    Fixable {
        files: usize,
    },
    NothingToFix,
    /// The core refuses the fix (not damage): the first reason it gives.
    Refused(Rc<ProblemView>),
    /// The image or its volume is damaged or unreadable.
    Damaged(Rc<ProblemView>),
    /// It needs a decision only the user can make: not fixed with the others.
    OpenAlone(AloneReason),
    /// The page or its worker failed on it.
    Error(Rc<ProblemView>),
    Fixing,
    Fixed {
        files: usize,
        output: Output,
    },
    NotFixed(NotFixed),
    /// The queue was stopped before this image was read.
    Skipped,
}

/// Why a fixable image was not fixed.
#[derive(Clone)]
pub enum NotFixed {
    Problem(Rc<ProblemView>),
    /// Read again for the fix, it was no longer fixable.
    Changed,
    /// The chosen folder already holds a file of this name.
    Exists(String),
}

/// Where a fixed image's files went.
#[derive(Clone)]
pub enum Output {
    /// `blob:` URLs of the downloads (revoked when dropped) with their names.
    Downloads {
        image: (Rc<ObjectUrl>, String),
        undo: Option<(Rc<ObjectUrl>, String)>,
        report: (Rc<ObjectUrl>, String),
    },
    /// Written into the chosen folder under these names.
    Written(Vec<String>),
}

impl EntryStatus {
    /// The row's `data-outcome`, which scripts and tests read.
    fn code(&self) -> &'static str {
        match self {
            EntryStatus::Waiting => "waiting",
            EntryStatus::Inspecting => "inspecting",
            EntryStatus::Fixable { .. } => "fixable",
            EntryStatus::NothingToFix => "nothing-to-fix",
            EntryStatus::Refused(_) => "refused",
            EntryStatus::Damaged(_) => "damaged",
            EntryStatus::OpenAlone(_) => "open-alone",
            EntryStatus::Error(_) => "error",
            EntryStatus::Fixing => "fixing",
            EntryStatus::Fixed { .. } => "fixed",
            EntryStatus::NotFixed(_) => "not-fixed",
            EntryStatus::Skipped => "skipped",
        }
    }
}

pub struct Entry {
    pub file: File,
    pub name: String,
    pub status: EntryStatus,
    pub journal: Option<JournalAction>,
    /// Files its plan deletes.
    pub files: usize,
    /// Bytes read from the file so far (its latest step).
    pub bytes: u64,
    /// Milliseconds its latest step took.
    pub ms: Option<f64>,
}

/// What the queue is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    Inspecting,
    Fixing,
    /// Waiting for the user (the list reviewed, or the fix done).
    Idle,
}

impl Run {
    fn code(self) -> &'static str {
        match self {
            Run::Inspecting => "inspecting",
            Run::Fixing => "fixing",
            Run::Idle => "idle",
        }
    }
}

/// The chosen output folder (a `FileSystemDirectoryHandle`), with its name.
pub struct Folder {
    pub handle: JsValue,
    pub name: String,
}

pub struct Queue {
    pub entries: Vec<Entry>,
    pub run: Run,
    /// The entry being read or fixed.
    pub current: Option<usize>,
    /// Page-clock time the current entry's step began.
    pub started: f64,
    /// Stop once the current image is done.
    pub stop_requested: bool,
    pub folder: Option<Folder>,
    /// Why the folder could not be chosen (the browser's words).
    pub folder_problem: Option<String>,
    /// The rules every image of the queue is read and fixed with: those chosen when the images
    /// were queued (a rule file picked later applies to the next queue).
    pub rules: RuleChoice,
}

impl Queue {
    pub fn new(files: Vec<File>, rules: RuleChoice) -> Queue {
        Queue {
            entries: files
                .into_iter()
                .map(|file| Entry {
                    name: file.name(),
                    file,
                    status: EntryStatus::Waiting,
                    journal: None,
                    files: 0,
                    bytes: 0,
                    ms: None,
                })
                .collect(),
            run: Run::Inspecting,
            current: None,
            started: 0.0,
            stop_requested: false,
            folder: None,
            folder_problem: None,
            rules,
        }
    }

    pub fn fixable(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e.status, EntryStatus::Fixable { .. }))
            .count()
    }

    fn fixed(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e.status, EntryStatus::Fixed { .. }))
            .count()
    }

    /// The next entry the current run takes: one still to read, or one fixable.
    pub fn next(&self) -> Option<usize> {
        self.entries.iter().position(|e| match self.run {
            Run::Inspecting => matches!(e.status, EntryStatus::Waiting),
            Run::Fixing => matches!(e.status, EntryStatus::Fixable { .. }),
            Run::Idle => false,
        })
    }

    /// After a stop: what was not read is marked so.
    pub fn skip_rest(&mut self) {
        for e in &mut self.entries {
            if matches!(e.status, EntryStatus::Waiting) {
                e.status = EntryStatus::Skipped;
            }
        }
    }

    fn done_in_run(&self) -> (usize, usize) {
        match self.run {
            Run::Inspecting => {
                let waiting = self
                    .entries
                    .iter()
                    .filter(|e| matches!(e.status, EntryStatus::Waiting | EntryStatus::Inspecting))
                    .count();
                (self.entries.len() - waiting, self.entries.len())
            }
            Run::Fixing | Run::Idle => {
                let fixed = self.fixed();
                let left = self
                    .entries
                    .iter()
                    .filter(|e| {
                        matches!(e.status, EntryStatus::Fixable { .. } | EntryStatus::Fixing)
                    })
                    .count();
                (fixed, fixed + left)
            }
        }
    }
}

/// What an inspected image of the queue is: fixable (then planned to tell the journal action),
/// or done with.
pub fn status_of_inspect(v: &InspectView) -> Option<EntryStatus> {
    if v.key_request.is_some() {
        return Some(EntryStatus::OpenAlone(AloneReason::Key));
    }
    if v.can_fix && v.needs_consent {
        return Some(EntryStatus::OpenAlone(AloneReason::JournalConsent));
    }
    if v.can_fix {
        return None;
    }
    let first = || {
        Rc::new(
            super::problems::listed(v)
                .next()
                .cloned()
                .unwrap_or_else(|| ProblemView::internal("no reason given")),
        )
    };
    Some(match v.outcome {
        Outcome::NothingToFix => EntryStatus::NothingToFix,
        Outcome::Error => EntryStatus::Damaged(first()),
        Outcome::Refused | Outcome::Matches => EntryStatus::Refused(first()),
    })
}

pub fn journal_action(p: &PlanView) -> JournalAction {
    if !p.journal_reset.is_empty() {
        JournalAction::Reset
    } else if !p.journal_replays.is_empty() {
        JournalAction::Replayed
    } else if !p.journal_left.is_empty() {
        JournalAction::LeftForWindows
    } else {
        JournalAction::Untouched
    }
}

/// The callbacks the queue's buttons call.
pub struct Actions {
    pub fix_all: Callback<()>,
    pub stop: Callback<()>,
    /// None when the browser cannot write into a folder.
    pub choose_folder: Option<Callback<()>>,
}

fn outcome_text(t: T, status: &EntryStatus) -> Html {
    let reason = |p: &ProblemView| {
        let mut s = t.problem_title(&p.problem).to_string();
        if let Some(d) = &p.detail {
            s.push_str(" (");
            s.push_str(d);
            s.push(')');
        }
        s
    };
    let text = match status {
        EntryStatus::Waiting => t.queue_waiting().to_string(),
        EntryStatus::Inspecting => t.queue_inspecting().to_string(),
        EntryStatus::Fixable { files } => t.queue_fixable(*files),
        EntryStatus::NothingToFix => t.queue_nothing_to_fix().to_string(),
        EntryStatus::Refused(p) => t.queue_refused(t.problem_title(&p.problem)),
        EntryStatus::Damaged(p) => t.queue_damaged(t.problem_title(&p.problem)),
        EntryStatus::OpenAlone(why) => t.queue_open_alone(*why),
        EntryStatus::Error(p) => t.queue_error(&reason(p)),
        EntryStatus::Fixing => t.queue_fixing().to_string(),
        EntryStatus::Fixed { files, .. } => t.queue_fixed(*files),
        EntryStatus::NotFixed(NotFixed::Problem(p)) => t.queue_not_fixed(&reason(p)),
        EntryStatus::NotFixed(NotFixed::Changed) => t.queue_not_fixed(t.queue_changed()),
        EntryStatus::NotFixed(NotFixed::Exists(name)) => t.queue_not_fixed(&t.queue_exists(name)),
        EntryStatus::Skipped => t.queue_skipped().to_string(),
    };
    html! { {text} }
}

fn output_cell(t: T, status: &EntryStatus) -> Html {
    match status {
        EntryStatus::Fixed {
            output:
                Output::Downloads {
                    image,
                    undo,
                    report,
                },
            ..
        } => {
            let link = |(url, name): &(Rc<ObjectUrl>, String),
                        class: &'static str,
                        label: &'static str| {
                html! {
                    <a class={class} href={AttrValue::from(url.to_string())} download={name.clone()}
                        title={name.clone()}>{label}</a>
                }
            };
            html! {
                <>
                    {link(image, "download-image", t.queue_download_image())}
                    {undo.as_ref().map(|u| html! { <>{" · "}{link(u, "download-undo", t.queue_download_undo())}</> }).unwrap_or_default()}
                    {" · "}
                    {link(report, "download-report", t.queue_download_report())}
                </>
            }
        }
        EntryStatus::Fixed {
            output: Output::Written(names),
            ..
        } => html! { <span class="written">{t.queue_written(&names.join(", "))}</span> },
        _ => html! {},
    }
}

pub fn view(t: T, q: &Queue, actions: &Actions) -> Html {
    let (done, total) = q.done_in_run();
    let status = match q.run {
        Run::Inspecting => t.queue_status_inspecting(done, total),
        Run::Fixing => t.queue_status_fixing(done, total),
        Run::Idle => t.queue_status_idle(q.fixable(), q.fixed()),
    };
    let fixable = q.fixable();
    let alone = q
        .entries
        .iter()
        .any(|e| matches!(e.status, EntryStatus::OpenAlone(_)));
    let stop = actions.stop.reform(|_| ());
    let fix_all = actions.fix_all.reform(|_| ());
    html! {
        <section class="queue" id="queue" data-run={q.run.code()} aria-labelledby="queue-title">
            <h2 id="queue-title">{t.queue_heading(q.entries.len())}</h2>
            <p>{t.queue_intro()}</p>
            <p id="queue-status" role="status">{status}</p>
            <table id="queue-table">
                <thead>
                    <tr>
                        <th scope="col">{t.queue_column_image()}</th>
                        <th scope="col">{t.queue_column_outcome()}</th>
                        <th scope="col">{t.queue_column_journal()}</th>
                        <th scope="col" class="num">{t.queue_column_read()}</th>
                        <th scope="col" class="num">{t.queue_column_time()}</th>
                        <th scope="col">{t.queue_column_output()}</th>
                    </tr>
                </thead>
                <tbody>
                    {for q.entries.iter().map(|e| html! {
                        <tr data-outcome={e.status.code()} data-name={e.name.clone()}>
                            <th scope="row" class="name">{&e.name}</th>
                            <td class="result">{outcome_text(t, &e.status)}</td>
                            <td class="journal">{e.journal.map(|j| t.queue_journal(j)).unwrap_or("—")}</td>
                            <td class="num read">{if e.bytes > 0 { t.queue_read(e.bytes) } else { "—".into() }}</td>
                            <td class="num time">{e.ms.map(|ms| t.queue_time(ms)).unwrap_or_else(|| "—".into())}</td>
                            <td class="output">{output_cell(t, &e.status)}</td>
                        </tr>
                    })}
                </tbody>
            </table>
            {if alone { html! { <p class="note">{t.queue_alone_hint()}</p> } } else { html! {} }}
            {match q.run {
                Run::Inspecting | Run::Fixing => html! {
                    <p>
                        <button type="button" id="queue-stop" disabled={q.stop_requested} onclick={stop}>
                            {t.queue_stop()}
                        </button>
                        {if q.stop_requested { html! { <span role="status">{" "}{t.queue_stopping()}</span> } } else { html! {} }}
                    </p>
                },
                Run::Idle if fixable > 0 => html! {
                    <>
                        {match (&actions.choose_folder, &q.folder) {
                            (_, Some(f)) => html! { <p id="queue-folder">{t.queue_folder_chosen(&f.name)}</p> },
                            (Some(choose), None) => {
                                let choose = choose.reform(|_| ());
                                html! {
                                    <p>
                                        <button type="button" id="queue-choose-folder" onclick={choose}>{t.queue_choose_folder()}</button>
                                        <span class="sub">{" "}{t.queue_folder_hint()}</span>
                                    </p>
                                }
                            }
                            (None, None) => html! {},
                        }}
                        {q.folder_problem.as_ref().map(|p| html! { <p class="note" id="queue-folder-problem">{t.queue_folder_failed(p)}</p> }).unwrap_or_default()}
                        <p>
                            <button type="button" id="queue-fix-all" class="primary" onclick={fix_all}>
                                {t.queue_fix_all(fixable)}
                            </button>
                        </p>
                    </>
                },
                Run::Idle => html! {},
            }}
        </section>
    }
}

/// Running the queue: one worker at a time, started for one image and terminated after it.
impl super::App {
    /// Several images picked or dropped at once: they replace whatever the page showed.
    pub(super) fn picked_many(&mut self, ctx: &Context<Self>, files: Vec<File>) {
        self.worker = None;
        self.pending_file = None;
        self.reset_results();
        self.file = None;
        self.training = false;
        self.untouched = None;
        self.practice_failed = None;
        metrics::reset();
        self.stage = super::Stage::Queue;
        self.queue = Some(Queue::new(files, self.rules.clone()));
        self.queue_next(ctx);
    }

    /// Starts the next image of the run in a fresh worker, or ends the run.
    fn queue_next(&mut self, ctx: &Context<Self>) {
        // The last image's worker (and its memory) goes before the next one starts.
        self.worker = None;
        let Some(q) = self.queue.as_mut() else { return };
        let next = if q.stop_requested { None } else { q.next() };
        let Some(index) = next else {
            if q.stop_requested && q.run == Run::Inspecting {
                q.skip_rest();
            }
            q.stop_requested = false;
            q.current = None;
            q.run = Run::Idle;
            self.ensure_spare(ctx);
            return;
        };
        q.current = Some(index);
        q.started = metrics::now();
        let fixing = q.run == Run::Fixing;
        let entry = &mut q.entries[index];
        entry.bytes = 0;
        entry.ms = None;
        entry.status = if fixing {
            EntryStatus::Fixing
        } else {
            EntryStatus::Inspecting
        };
        let file = entry.file.clone();
        let rules = q.rules.clone();
        // The worker started ahead of time has read nothing yet: it can take the first image.
        let worker = match self.spare.take() {
            Some(w) => Ok(w),
            None => self.spawn(ctx),
        };
        match worker {
            Ok(w) => {
                if w.ready_at.is_some() {
                    w.post(&ToWorker::Inspect { file, rules });
                }
                self.worker = Some(w);
            }
            Err(e) => {
                let problem = Rc::new(ProblemView::internal(super::js_error_text(&e)));
                self.queue_done_with(ctx, failed_status(fixing, problem));
            }
        }
    }

    /// The current image is done with: its row gets `status` and the run goes on.
    fn queue_done_with(&mut self, ctx: &Context<Self>, status: EntryStatus) {
        if let Some(q) = self.queue.as_mut() {
            if let Some(i) = q.current.take() {
                let elapsed = metrics::now() - q.started;
                let entry = &mut q.entries[i];
                entry.status = status;
                entry.ms = Some(elapsed);
            }
        }
        self.queue_next(ctx);
    }

    fn queue_entry(&mut self) -> Option<&mut Entry> {
        let q = self.queue.as_mut()?;
        let i = q.current?;
        q.entries.get_mut(i)
    }

    fn queue_fixing(&self) -> bool {
        self.queue.as_ref().is_some_and(|q| q.run == Run::Fixing)
    }

    /// What the current image's worker said.
    pub(super) fn on_queue_event(&mut self, ctx: &Context<Self>, event: WorkerEvent) -> bool {
        let fixing = self.queue_fixing();
        let message = match event {
            WorkerEvent::Message(m) => m,
            WorkerEvent::Unreadable(e) => {
                let problem = Rc::new(ProblemView::internal(e));
                self.queue_done_with(ctx, failed_status(fixing, problem));
                return true;
            }
            WorkerEvent::Crashed(text) => {
                let detail = format!("{} {text}", self.t().worker_crashed());
                let problem = Rc::new(ProblemView::internal(detail));
                self.queue_done_with(ctx, failed_status(fixing, problem));
                return true;
            }
        };
        match message {
            FromWorker::Ready => {
                let Some(entry) = self.queue_entry() else {
                    return false;
                };
                let file = entry.file.clone();
                let rules = self
                    .queue
                    .as_ref()
                    .map(|q| q.rules.clone())
                    .unwrap_or_default();
                if let Some(w) = self.worker.as_mut() {
                    w.ready_at = Some(metrics::now());
                    w.post(&ToWorker::Inspect { file, rules });
                }
                false
            }
            FromWorker::Progress(p) => {
                if let Some(entry) = self.queue_entry() {
                    entry.bytes = entry.bytes.max(p.bytes);
                }
                true
            }
            FromWorker::Inspected(v) => {
                if let Some(entry) = self.queue_entry() {
                    entry.bytes = entry.bytes.max(v.reads.bytes);
                }
                match status_of_inspect(&v) {
                    // Planned here too, to tell what the fix does with the journal.
                    None => self.post(&ToWorker::Plan {
                        fixed_vhd: false,
                        discard_journal: false,
                    }),
                    Some(_) if fixing => {
                        self.queue_done_with(ctx, EntryStatus::NotFixed(NotFixed::Changed))
                    }
                    Some(status) => self.queue_done_with(ctx, status),
                }
                true
            }
            FromWorker::Planned(p) => {
                // The queue writes every image in its own format: one that cannot take the
                // changes is refused with the reason (the single-image flow offers a fixed VHD).
                if let crate::view::OutputView::SameFormatNotWritable { problem, .. } = &p.output {
                    let refused = ProblemView::of(Problem::Fix {
                        error: Box::new(kaifuku_rescue::FixError::Failed {
                            failure: kaifuku_rescue::vocabulary::FixFailure::OutputNotMappable {
                                problem: problem.clone(),
                            },
                        }),
                    });
                    self.queue_done_with(ctx, failed_status(fixing, Rc::new(refused)));
                    return true;
                }
                let files = p.deletions.len();
                if let Some(entry) = self.queue_entry() {
                    entry.journal = Some(journal_action(&p));
                    entry.files = files;
                }
                if fixing {
                    self.post(&ToWorker::Fix);
                } else {
                    self.queue_done_with(ctx, EntryStatus::Fixable { files });
                }
                true
            }
            FromWorker::Fixed {
                view,
                image,
                undo,
                report,
            } => {
                self.queue_fixed(ctx, view, image, undo, report);
                true
            }
            FromWorker::Failed(p) => {
                self.queue_done_with(ctx, failed_status(fixing, Rc::new(p)));
                true
            }
            // Not asked for in the queue.
            // The queue takes picked files only; a blob goes through the single-image flow.
            FromWorker::KeyFileRefused(_)
            | FromWorker::Explained { .. }
            | FromWorker::ExplainedFixed { .. }
            | FromWorker::RemoteUndo { .. }
            | FromWorker::RemoteWritten(_) => false,
        }
    }

    /// The current image is fixed and verified: its files are offered at once (or written into
    /// the chosen folder, and the run goes on when they are).
    fn queue_fixed(
        &mut self,
        ctx: &Context<Self>,
        view: FixedView,
        image: Blob,
        undo: Blob,
        report: Blob,
    ) {
        let files = self.queue_entry().map_or(0, |e| e.files);
        let undo = view.undo_size.map(|_| (undo, view.undo_name.clone()));
        let folder = self.queue.as_ref().and_then(|q| q.folder.as_ref());
        if let (Some(folder), Some(index)) = (folder, self.queue.as_ref().and_then(|q| q.current)) {
            let mut outputs = vec![(view.output_name.clone(), image)];
            outputs.extend(undo.map(|(blob, name)| (name, blob)));
            outputs.push((view.report_name.clone(), report));
            let dir = folder.handle.clone();
            let link = ctx.link().clone();
            // The worker stays until the files are written: the run goes on after that.
            wasm_bindgen_futures::spawn_local(async move {
                let written = folder::write_all(dir, outputs).await;
                link.send_message(Msg::QueueWritten(index, written));
            });
            return;
        }
        let url = |blob: Blob| Rc::new(ObjectUrl::from(blob));
        let output = Output::Downloads {
            image: (url(image), view.output_name.clone()),
            undo: undo.map(|(blob, name)| (url(blob), name)),
            report: (url(report), view.report_name.clone()),
        };
        self.queue_done_with(ctx, EntryStatus::Fixed { files, output });
    }

    /// The files of entry `index` are written into the folder, or could not be.
    pub(super) fn queue_written(
        &mut self,
        ctx: &Context<Self>,
        index: usize,
        written: Result<Vec<String>, folder::WriteProblem>,
    ) -> bool {
        let Some(q) = self.queue.as_ref() else {
            return false;
        };
        if q.current != Some(index) {
            return false;
        }
        let files = q.entries[index].files;
        let status = match written {
            Ok(names) => EntryStatus::Fixed {
                files,
                output: Output::Written(names),
            },
            Err(folder::WriteProblem::Exists(name)) => {
                EntryStatus::NotFixed(NotFixed::Exists(name))
            }
            Err(folder::WriteProblem::Failed(detail)) => {
                EntryStatus::NotFixed(NotFixed::Problem(Rc::new(ProblemView::internal(detail))))
            }
        };
        self.queue_done_with(ctx, status);
        true
    }

    pub(super) fn queue_fix_all(&mut self, ctx: &Context<Self>) -> bool {
        let Some(q) = self.queue.as_mut() else {
            return false;
        };
        if q.run != Run::Idle || q.fixable() == 0 {
            return false;
        }
        q.run = Run::Fixing;
        self.queue_next(ctx);
        true
    }

    pub(super) fn queue_stop(&mut self) -> bool {
        match self.queue.as_mut() {
            Some(q) if q.run != Run::Idle => {
                q.stop_requested = true;
                true
            }
            _ => false,
        }
    }

    pub(super) fn queue_choose_folder(&mut self, ctx: &Context<Self>) -> bool {
        let link = ctx.link().clone();
        wasm_bindgen_futures::spawn_local(async move {
            match folder::choose().await {
                Ok(chosen) => link.send_message(Msg::QueueFolderChosen(Ok(chosen))),
                // The user closed the picker: nothing to say.
                Err(e) if folder::error_name(&e).as_deref() == Some("AbortError") => {}
                Err(e) => link.send_message(Msg::QueueFolderChosen(Err(super::js_error_text(&e)))),
            }
        });
        false
    }

    pub(super) fn queue_folder_chosen(
        &mut self,
        chosen: Result<(JsValue, String), String>,
    ) -> bool {
        let Some(q) = self.queue.as_mut() else {
            return false;
        };
        match chosen {
            Ok((handle, name)) => {
                q.folder = Some(Folder { handle, name });
                q.folder_problem = None;
            }
            Err(detail) => q.folder_problem = Some(detail),
        }
        true
    }
}

/// A failure of the page or worker on the current image, in the run it happened in.
fn failed_status(fixing: bool, problem: Rc<ProblemView>) -> EntryStatus {
    if fixing {
        EntryStatus::NotFixed(NotFixed::Problem(problem))
    } else {
        EntryStatus::Error(problem)
    }
}
