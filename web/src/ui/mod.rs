//! The page: pick or drop an image, see what the worker found, review the plan, fix, download.
//! The UI thread only renders and passes messages; every read of the image happens in a worker.
//!
//! [`App`] holds the state and talks to the workers; each stage is a function component of its
//! own: [`picker`], [`progress`], [`report`], [`problems`], [`plan`] (with the consent), [`fixed`].
//! Several images at once go through [`queue`] instead: each read in a fresh worker, in turn.

mod fixed;
mod folder;
mod metrics;
mod picker;
mod plan;
mod practice;
mod problems;
mod progress;
mod queue;
mod remote;
mod report;
mod rules;
mod structures;
mod unlock;
mod walk;
mod workers;

use crate::i18n::{Lang, T};
use crate::practice::Scenario;
use crate::protocol::{FromWorker, KeyInput, Phase, RuleChoice, Stretch, ToWorker};
use crate::view::{
    ExplainView, FixedView, InspectView, OutputView, PlanView, ProblemView, RemoteFixedView,
};
use fixed::{DownloadLinks, Fixed};
use gloo::events::{EventListener, EventListenerOptions};
use gloo::file::ObjectUrl;
use js_sys::{Object, Reflect};
use kaifuku_rescue::TXR_MIN_WINDOWS_BUILD;
use picker::Picker;
use plan::{Consent, Plan};
use practice::Practice;
use problems::Problems;
use progress::{Cancelled, Progress};
use queue::Queue;
use remote::{RemoteForm, RemoteSteps, RemoteUndo};
use report::ImageReport;
use rules::RulePicker;
use std::rc::Rc;
use structures::Structures;
use unlock::Unlock;
use walk::Walk;
use wasm_bindgen::JsValue;
use web_sys::{Blob, File, HtmlElement};
use workers::{WorkerEvent, WorkerHandle, WorkerId};
use yew::{html, AttrValue, Component, Context, Html, NodeRef};

const LANG_KEY: &str = "kaifuku-lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Idle,
    Busy,
    Inspected,
    Planned,
    Fixed,
    /// A blob's fix is verified and its undo file made; nothing written yet.
    UndoReady,
    Failed,
    Cancelled,
    /// Several images: the queue's table (its own `data-run` says what it is doing).
    Queue,
}

impl Stage {
    /// The page's `data-state`, which scripts and tests wait on.
    fn code(self) -> &'static str {
        match self {
            Stage::Idle => "idle",
            Stage::Busy => "busy",
            Stage::Inspected => "inspected",
            Stage::Planned => "planned",
            Stage::Fixed => "fixed",
            Stage::UndoReady => "undo-ready",
            Stage::Failed => "failed",
            Stage::Cancelled => "cancelled",
            Stage::Queue => "queue",
        }
    }
}

struct Busy {
    phase: Phase,
    started: f64,
    bytes: u64,
    calls: u64,
    stretch: Option<Stretch>,
}

/// The downloads' `blob:` URLs, revoked when dropped.
struct Downloads {
    image: ObjectUrl,
    /// None when no undo file is offered.
    undo: Option<ObjectUrl>,
    report: ObjectUrl,
}

impl Downloads {
    fn links(&self) -> DownloadLinks {
        DownloadLinks {
            image: self.image.to_string().into(),
            undo: self.undo.as_ref().map(|u| u.to_string().into()),
            report: self.report.to_string().into(),
        }
    }
}

pub enum Msg {
    SetLang(Lang),
    Picked(File),
    /// A blob in cloud storage by its SAS URL.
    OpenUrl(String),
    /// The blob's undo file link was followed.
    RemoteUndoSaved,
    /// Write the verified fix into the blob.
    RemoteWrite,
    /// The rules for the next image inspected (from the rule file picker).
    Rules(RuleChoice),
    /// The registry transaction-log checkbox next to the rule picker: for the next image.
    TxrLogs(bool),
    /// The same checkbox under the report: the image shown is inspected again with it.
    TxrLogsNow(bool),
    /// Several images at once: queued.
    PickedMany(Vec<File>),
    /// Fix every fixable image of the queue.
    QueueFixAll,
    /// Stop the queue once the current image is done.
    QueueStop,
    /// Ask the user for a folder to write the fixed images into.
    QueueChooseFolder,
    /// The folder chosen (handle and name), or why none can be used.
    QueueFolderChosen(Result<(JsValue, String), String>),
    /// The fixed image of this queue entry is written into the folder, or why not.
    QueueWritten(usize, Result<Vec<String>, folder::WriteProblem>),
    Worker(WorkerId, Box<WorkerEvent>),
    Consent(bool),
    /// Unlock the image's BitLocker volumes with this key.
    Unlock(KeyInput),
    Plan,
    /// The download's format: a fixed VHD (true) or the picked file's (false); plans again.
    FixedVhd(bool),
    Fix,
    Cancel,
    /// Show the bytes of the current image.
    Explain,
    /// Training: load this practice disk.
    Practice(Scenario),
    /// The practice disk is unpacked: it goes through the normal flow.
    PracticeLoaded(File),
    /// It could not be loaded (the browser's words).
    PracticeFailed(String),
}

pub struct App {
    lang: Lang,
    stage: Stage,
    /// The worker of the current image.
    worker: Option<WorkerHandle>,
    /// A worker started ahead of time for the next image.
    spare: Option<WorkerHandle>,
    workers_started: WorkerId,
    /// The picked image, until its worker is ready to take it.
    pending_file: Option<File>,
    /// The blob's URL, until its worker is ready to take it.
    pending_url: Option<String>,
    /// The current image is a blob in cloud storage: its URL without the SAS token.
    remote: Option<AttrValue>,
    /// Its fix verified and its undo file made (the link's URL is owned here).
    remote_undo: Option<(RemoteUndo, ObjectUrl)>,
    /// The undo file's link was followed.
    remote_undo_saved: bool,
    /// The blob is written and read back.
    remote_fixed: Option<Rc<RemoteFixedView>>,
    /// The rules the next image is inspected with (a rule file's, or the built-in rule).
    rules: RuleChoice,
    /// The rules the current image was inspected with (the report's checkbox changes them).
    image_rules: RuleChoice,
    file: Option<(String, u64)>,
    busy: Option<Busy>,
    inspect: Option<Rc<InspectView>>,
    plan: Option<Rc<PlanView>>,
    fixed: Option<Rc<FixedView>>,
    downloads: Option<Downloads>,
    problem: Option<Rc<ProblemView>>,
    /// The key file given last is no key (the form says why).
    key_file_problem: Option<Rc<ProblemView>>,
    consent: bool,
    /// The download is to be a fixed VHD (for Azure) instead of the picked file's format.
    fixed_vhd: bool,
    /// Plan as soon as the report is rendered (nothing needs the user's consent).
    plan_after_render: bool,
    /// The annotated structures of the current image, once asked for.
    structures: Option<Rc<ExplainView>>,
    /// The worker is reading them.
    explaining: bool,
    structures_focus: NodeRef,
    structures_focus_pending: bool,
    /// Training: the current image is a practice disk, shown through the guided walk.
    training: bool,
    /// The untouched practice disk, offered for download at the end of the walk.
    untouched: Option<(ObjectUrl, String)>,
    /// The practice disk's structures and the plan's patches, for the walk (training).
    walk_before: Option<Rc<ExplainView>>,
    /// The structures re-read from the fixed image (training).
    structures_after: Option<Rc<ExplainView>>,
    /// A practice disk being fetched and unpacked.
    practice_loading: Option<Scenario>,
    /// Why the last practice disk could not be loaded.
    practice_failed: Option<AttrValue>,
    /// Several images picked at once.
    queue: Option<Queue>,
    focus: NodeRef,
    focus_pending: bool,
    _window_listeners: Vec<EventListener>,
}

fn initial_lang() -> Lang {
    let w = web_sys::window();
    let stored = w
        .as_ref()
        .and_then(|w| w.local_storage().ok().flatten())
        .and_then(|s| s.get_item(LANG_KEY).ok().flatten());
    if let Some(s) = stored {
        return Lang::from_tag(&s);
    }
    let tag = w.and_then(|w| w.navigator().language()).unwrap_or_default();
    Lang::from_tag(&tag)
}

fn apply_lang(lang: Lang) {
    if let Some(doc) = web_sys::window().and_then(|w| w.document()) {
        if let Some(el) = doc.document_element() {
            let _ = el.set_attribute("lang", lang.tag());
        }
        doc.set_title(T(lang).document_title());
    }
}

impl App {
    fn t(&self) -> T {
        T(self.lang)
    }

    fn reset_results(&mut self) {
        self.plan_after_render = false;
        self.inspect = None;
        self.plan = None;
        self.fixed = None;
        self.downloads = None;
        self.remote_undo = None;
        self.remote_undo_saved = false;
        self.remote_fixed = None;
        self.problem = None;
        self.key_file_problem = None;
        self.consent = false;
        self.busy = None;
        self.structures = None;
        self.walk_before = None;
        self.structures_after = None;
        self.explaining = false;
    }

    /// Training: asks the worker for the practice disk's structures (again once planned, for
    /// the patches), for the walk's steps 2–6.
    fn explain_for_walk(&mut self) {
        if self.training {
            self.post(&ToWorker::Explain);
        }
    }

    /// Starts a worker ahead of time, unless one is already waiting: its wasm compiles while the
    /// user looks at the page, so a picked image is read at once.
    fn ensure_spare(&mut self, ctx: &Context<Self>) {
        if self.spare.is_none() {
            self.spare = self.spawn(ctx).ok();
        }
    }

    /// The worker for a new image: the one started ahead of time, else a new one.
    fn next_worker(&mut self, ctx: &Context<Self>) -> Result<WorkerHandle, JsValue> {
        match self.spare.take() {
            Some(w) => Ok(w),
            None => self.spawn(ctx),
        }
    }

    fn spawn(&mut self, ctx: &Context<Self>) -> Result<WorkerHandle, JsValue> {
        self.workers_started += 1;
        let on_event = ctx
            .link()
            .callback(|(id, event): (WorkerId, WorkerEvent)| Msg::Worker(id, Box::new(event)));
        WorkerHandle::spawn(self.workers_started, on_event)
    }

    fn start_busy(&mut self, phase: Phase) {
        self.stage = Stage::Busy;
        self.busy = Some(Busy {
            phase,
            started: metrics::now(),
            bytes: self.busy.as_ref().map_or(0, |b| b.bytes),
            calls: self.busy.as_ref().map_or(0, |b| b.calls),
            stretch: None,
        });
    }

    fn stop_busy(&mut self, ctx: &Context<Self>, stage: Stage) {
        self.stage = stage;
        self.focus_pending = true;
        // The current image's work is done for now: the next image's worker can compile.
        self.ensure_spare(ctx);
    }

    fn post(&self, message: &ToWorker) {
        if let Some(w) = &self.worker {
            w.post(message);
        }
    }

    fn post_plan(&mut self, discard_journal: bool) {
        self.start_busy(Phase::Plan);
        metrics::mark("planRequested");
        self.post(&ToWorker::Plan {
            discard_journal,
            fixed_vhd: self.fixed_vhd,
        });
    }

    fn fail(&mut self, ctx: &Context<Self>, p: ProblemView) {
        self.problem = Some(Rc::new(p));
        self.worker = None;
        self.busy = None;
        self.stop_busy(ctx, Stage::Failed);
    }

    /// Inspect `file` with the rules chosen; a practice disk with the built-in rule its walk
    /// describes.
    fn inspect_message(&self, file: File) -> ToWorker {
        ToWorker::Inspect {
            file,
            rules: self.next_image_rules(),
        }
    }

    fn next_image_rules(&self) -> RuleChoice {
        if self.training {
            RuleChoice::default()
        } else {
            self.rules.clone()
        }
    }

    fn picked(&mut self, ctx: &Context<Self>, file: File) {
        // A new image: the old worker (and its memory) goes; the one started ahead takes over.
        self.worker = None;
        self.queue = None;
        self.reset_results();
        metrics::reset();
        metrics::mark("picked");
        self.file = Some((file.name(), file.size() as u64));
        self.remote = None;
        self.image_rules = self.next_image_rules();
        self.start_busy(Phase::Inspect);
        let worker = self.next_worker(ctx);
        match worker {
            Ok(w) => {
                if let Some(t) = w.ready_at {
                    metrics::set("workerReady", t);
                    w.post(&self.inspect_message(file));
                } else {
                    self.pending_file = Some(file);
                }
                self.worker = Some(w);
            }
            Err(e) => self.fail(ctx, ProblemView::internal(format!("{e:?}"))),
        }
    }

    /// A blob by its SAS URL: the single-image flow, read by ranges where it lives.
    fn open_url(&mut self, ctx: &Context<Self>, url: String) {
        self.worker = None;
        self.queue = None;
        self.training = false;
        self.untouched = None;
        self.reset_results();
        metrics::reset();
        metrics::mark("picked");
        self.file = None;
        self.pending_file = None;
        self.remote = Some(kaifuku_io::url::shown(&url).into());
        self.fixed_vhd = false;
        self.image_rules = self.next_image_rules();
        self.start_busy(Phase::Inspect);
        let worker = self.next_worker(ctx);
        match worker {
            Ok(w) => {
                let message = ToWorker::InspectUrl {
                    url,
                    rules: self.image_rules.clone(),
                };
                if w.ready_at.is_some() {
                    w.post(&message);
                } else if let ToWorker::InspectUrl { url, .. } = message {
                    self.pending_url = Some(url);
                }
                self.worker = Some(w);
            }
            Err(e) => self.fail(ctx, ProblemView::internal(format!("{e:?}"))),
        }
    }

    fn on_worker(&mut self, ctx: &Context<Self>, id: WorkerId, event: WorkerEvent) -> bool {
        if self.spare.as_ref().is_some_and(|w| w.id == id) {
            return self.on_spare(id, event);
        }
        if self.worker.as_ref().is_none_or(|w| w.id != id) {
            // A worker already let go of (cancelled, or a new image picked).
            return false;
        }
        if self.queue.is_some() {
            return self.on_queue_event(ctx, event);
        }
        match event {
            WorkerEvent::Message(m) => self.on_message(ctx, m),
            WorkerEvent::Unreadable(e) => {
                self.fail(ctx, ProblemView::internal(e));
                true
            }
            WorkerEvent::Crashed(text) => {
                let detail = format!("{} {text}", self.t().worker_crashed());
                self.fail(ctx, ProblemView::internal(detail));
                true
            }
        }
    }

    /// The worker started ahead of time: ready, or it failed to start (then the next image
    /// starts its own, and says why if that fails too).
    fn on_spare(&mut self, id: WorkerId, event: WorkerEvent) -> bool {
        match event {
            WorkerEvent::Message(FromWorker::Ready) => {
                if let Some(w) = self.spare.as_mut().filter(|w| w.id == id) {
                    w.ready_at = Some(metrics::now());
                    metrics::mark("workerReady");
                }
            }
            WorkerEvent::Message(_) | WorkerEvent::Unreadable(_) | WorkerEvent::Crashed(_) => {
                self.spare = None;
            }
        }
        false
    }

    fn on_message(&mut self, ctx: &Context<Self>, message: FromWorker) -> bool {
        match message {
            FromWorker::Ready => {
                metrics::mark("workerReady");
                if let Some(w) = self.worker.as_mut() {
                    w.ready_at = Some(metrics::now());
                }
                if let Some(file) = self.pending_file.take() {
                    self.post(&self.inspect_message(file));
                }
                if let Some(url) = self.pending_url.take() {
                    self.post(&ToWorker::InspectUrl {
                        url,
                        rules: self.image_rules.clone(),
                    });
                }
                false
            }
            FromWorker::Progress(p) => {
                if let Some(b) = &mut self.busy {
                    b.bytes = p.bytes;
                    b.calls = p.calls;
                    b.phase = p.phase;
                    b.stretch = p.stretch;
                }
                true
            }
            FromWorker::Inspected(v) => {
                metrics::mark("inspected");
                metrics::set("inspectMs", v.reads.ms);
                let auto_plan = v.can_fix && !v.needs_consent;
                self.inspect = Some(Rc::new(v));
                if auto_plan {
                    // Nothing to consent to: plan at once, so the plan is on screen with the
                    // report; nothing changes before the user clicks Fix. The request goes once
                    // the report is on the page, so the worker's planning does not hold up the
                    // report's rendering (both want the CPU).
                    self.start_busy(Phase::Plan);
                    self.plan_after_render = true;
                } else {
                    self.stop_busy(ctx, Stage::Inspected);
                    self.explain_for_walk();
                }
                true
            }
            FromWorker::Explained { json } => {
                match serde_json::from_str::<ExplainView>(&json) {
                    Ok(v) => {
                        let v = Rc::new(v);
                        if self.training {
                            self.walk_before = Some(v.clone());
                        }
                        // Asked for with "Show the bytes" (not only by the walk).
                        if std::mem::take(&mut self.explaining) {
                            self.structures = Some(v);
                            self.structures_focus_pending = true;
                        }
                    }
                    Err(e) => web_sys::console::error_1(&JsValue::from_str(&format!(
                        "the structures did not arrive: {e}"
                    ))),
                }
                true
            }
            FromWorker::ExplainedFixed { json } => {
                match serde_json::from_str::<ExplainView>(&json) {
                    Ok(v) => self.structures_after = Some(Rc::new(v)),
                    Err(e) => web_sys::console::error_1(&JsValue::from_str(&format!(
                        "the structures of the fixed image did not arrive: {e}"
                    ))),
                }
                true
            }
            FromWorker::Planned(v) => {
                metrics::mark("planned");
                self.plan = Some(Rc::new(v));
                self.stop_busy(ctx, Stage::Planned);
                self.explain_for_walk();
                true
            }
            FromWorker::Fixed {
                view,
                image,
                undo,
                report,
            } => {
                self.fixed_with(ctx, view, image, undo, report);
                true
            }
            FromWorker::RemoteUndo {
                undo,
                undo_name,
                undo_size,
                checks,
            } => {
                let link = ObjectUrl::from(undo);
                let view = RemoteUndo {
                    link: link.to_string().into(),
                    name: undo_name.into(),
                    size: undo_size,
                    checks: Rc::new(checks),
                };
                self.remote_undo = Some((view, link));
                metrics::mark("remoteUndoReady");
                self.stop_busy(ctx, Stage::UndoReady);
                true
            }
            FromWorker::RemoteWritten(view) => {
                metrics::mark("remoteWritten");
                self.remote_fixed = Some(Rc::new(view));
                self.stop_busy(ctx, Stage::Fixed);
                true
            }
            FromWorker::KeyFileRefused(p) => {
                metrics::mark("keyFileRefused");
                self.key_file_problem = Some(Rc::new(p));
                self.stop_busy(ctx, Stage::Inspected);
                true
            }
            FromWorker::Failed(p) => {
                self.fail(ctx, p);
                true
            }
        }
    }

    fn fixed_with(
        &mut self,
        ctx: &Context<Self>,
        view: FixedView,
        image: Blob,
        undo: Blob,
        report: Blob,
    ) {
        // For scripts and tests: the same Blobs the links offer.
        let result = Object::new();
        let offered = view.undo_size.is_some();
        for (name, blob) in [("image", &image), ("undo", &undo), ("report", &report)] {
            if name != "undo" || offered {
                let _ = Reflect::set(&result, &JsValue::from_str(name), blob);
            }
        }
        metrics::set_global("kaifukuResult", &result.into());
        self.downloads = Some(Downloads {
            image: ObjectUrl::from(image),
            undo: offered.then(|| ObjectUrl::from(undo)),
            report: ObjectUrl::from(report),
        });
        metrics::mark("fixed");
        metrics::set("wasmMemory", view.wasm_memory as f64);
        metrics::set("calls", view.reads.calls as f64);
        metrics::set("bytes", view.reads.bytes as f64);
        self.fixed = Some(Rc::new(view));
        self.stop_busy(ctx, Stage::Fixed);
        if self.training {
            self.post(&ToWorker::ExplainFixed);
        }
    }

    /// Whether the report offers the transaction-log checkbox: an image of the single-image flow
    /// (not a practice disk) at rest, with a Windows volume of build 14393 or later.
    fn can_change_image_rules(&self) -> bool {
        matches!(self.stage, Stage::Inspected | Stage::Planned | Stage::Fixed)
            && !self.training
            && self.queue.is_none()
            && self.worker.is_some()
            && self.inspect.as_ref().is_some_and(|v| {
                v.volumes.iter().any(|x| {
                    x.registry
                        .as_ref()
                        .and_then(|r| r.build())
                        .is_some_and(|b| b >= TXR_MIN_WINDOWS_BUILD)
                })
            })
    }

    fn focus_ref(&self, wanted: bool) -> NodeRef {
        if wanted {
            self.focus.clone()
        } else {
            NodeRef::default()
        }
    }
}

impl Component for App {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        let lang = initial_lang();
        apply_lang(lang);
        // Files dropped outside the drop zone must not make the browser navigate away.
        let mut window_listeners = Vec::new();
        if let Some(w) = web_sys::window() {
            for ev in ["dragover", "drop"] {
                window_listeners.push(EventListener::new_with_options(
                    &w,
                    ev,
                    EventListenerOptions::enable_prevent_default(),
                    |e| e.prevent_default(),
                ));
            }
        }
        metrics::reset();
        let mut app = App {
            lang,
            stage: Stage::Idle,
            worker: None,
            spare: None,
            workers_started: 0,
            pending_file: None,
            pending_url: None,
            remote: None,
            remote_undo: None,
            remote_undo_saved: false,
            remote_fixed: None,
            rules: RuleChoice::default(),
            image_rules: RuleChoice::default(),
            file: None,
            busy: None,
            inspect: None,
            plan: None,
            fixed: None,
            downloads: None,
            problem: None,
            key_file_problem: None,
            consent: false,
            fixed_vhd: false,
            plan_after_render: false,
            structures: None,
            explaining: false,
            structures_focus: NodeRef::default(),
            structures_focus_pending: false,
            training: false,
            untouched: None,
            walk_before: None,
            structures_after: None,
            practice_loading: None,
            practice_failed: None,
            queue: None,
            focus: NodeRef::default(),
            focus_pending: false,
            _window_listeners: window_listeners,
        };
        app.ensure_spare(ctx);
        app
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::SetLang(l) => {
                self.lang = l;
                apply_lang(l);
                if let Some(s) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
                    let _ = s.set_item(LANG_KEY, l.tag());
                }
                true
            }
            Msg::Rules(rules) => {
                // The rule file and the checkbox are chosen apart: a new file keeps the checkbox.
                self.rules = RuleChoice {
                    txr_logs: self.rules.txr_logs,
                    ..rules
                };
                false
            }
            Msg::TxrLogs(on) => {
                self.rules.txr_logs = on;
                true
            }
            Msg::TxrLogsNow(on) => {
                if !self.can_change_image_rules() {
                    return false;
                }
                // The choice holds for the next images too.
                self.rules.txr_logs = on;
                self.image_rules.txr_logs = on;
                // The report and any plan or download made with the old rules go; the worker
                // inspects again (keeping unlocked volumes) and answers with a new report.
                self.reset_results();
                self.start_busy(Phase::Inspect);
                self.post(&ToWorker::SetRules {
                    rules: self.image_rules.clone(),
                });
                true
            }
            Msg::Picked(file) => {
                self.practice_failed = None;
                self.training = false;
                self.untouched = None;
                self.picked(ctx, file);
                true
            }
            Msg::OpenUrl(url) => {
                self.practice_failed = None;
                self.open_url(ctx, url);
                true
            }
            Msg::RemoteUndoSaved => {
                self.remote_undo_saved = true;
                true
            }
            Msg::RemoteWrite => {
                if self.stage != Stage::UndoReady || !self.remote_undo_saved {
                    return false;
                }
                metrics::mark("remoteWriteRequested");
                self.start_busy(Phase::Output);
                self.post(&ToWorker::WriteRemote);
                true
            }
            Msg::PickedMany(files) => {
                self.picked_many(ctx, files);
                true
            }
            Msg::QueueFixAll => self.queue_fix_all(ctx),
            Msg::QueueStop => self.queue_stop(),
            Msg::QueueChooseFolder => self.queue_choose_folder(ctx),
            Msg::QueueFolderChosen(chosen) => self.queue_folder_chosen(chosen),
            Msg::QueueWritten(index, written) => self.queue_written(ctx, index, written),
            Msg::Explain => {
                if self.explaining || self.stage == Stage::Busy {
                    return false;
                }
                self.explaining = true;
                self.post(&ToWorker::Explain);
                true
            }
            Msg::Practice(scenario) => {
                if self.practice_loading.is_some() {
                    return false;
                }
                self.practice_loading = Some(scenario);
                self.practice_failed = None;
                let link = ctx.link().clone();
                wasm_bindgen_futures::spawn_local(async move {
                    match practice::practice_file(scenario).await {
                        Ok(file) => link.send_message(Msg::PracticeLoaded(file)),
                        Err(e) => link.send_message(Msg::PracticeFailed(js_error_text(&e))),
                    }
                });
                true
            }
            Msg::PracticeLoaded(file) => {
                self.practice_loading = None;
                self.training = true;
                let name = file.name();
                let blob: &Blob = file.as_ref();
                self.untouched = Some((ObjectUrl::from(blob.clone()), name));
                self.picked(ctx, file);
                true
            }
            Msg::PracticeFailed(detail) => {
                self.practice_loading = None;
                self.practice_failed = Some(detail.into());
                true
            }
            Msg::Worker(id, event) => self.on_worker(ctx, id, *event),
            Msg::Consent(on) => {
                self.consent = on;
                true
            }
            Msg::Unlock(key) => {
                if self.stage != Stage::Inspected {
                    return false;
                }
                metrics::mark("unlockRequested");
                self.key_file_problem = None;
                self.structures = None;
                self.start_busy(Phase::Unlock);
                self.post(&ToWorker::Unlock { key });
                true
            }
            Msg::Plan => {
                let consent = self.consent;
                let needs = self.inspect.as_ref().is_some_and(|v| v.needs_consent);
                if needs && !consent {
                    return false;
                }
                self.post_plan(needs && consent);
                true
            }
            Msg::FixedVhd(on) => {
                // Only a plan not yet carried out is made again for the other format.
                if self.stage != Stage::Planned || self.fixed.is_some() || on == self.fixed_vhd {
                    return false;
                }
                self.fixed_vhd = on;
                let needs = self.inspect.as_ref().is_some_and(|v| v.needs_consent);
                self.post_plan(needs && self.consent);
                true
            }
            Msg::Fix => {
                metrics::mark("fixRequested");
                self.start_busy(Phase::Verify);
                self.post(&ToWorker::Fix);
                true
            }
            Msg::Cancel => {
                let writing_blob = self.remote.is_some()
                    && self.busy.as_ref().is_some_and(|b| b.phase == Phase::Output);
                if writing_blob {
                    return false;
                }
                // Terminating the worker is what stops it; the next image gets a fresh one.
                self.worker = None;
                self.pending_file = None;
                self.pending_url = None;
                self.reset_results();
                self.stop_busy(ctx, Stage::Cancelled);
                true
            }
        }
    }

    fn rendered(&mut self, _ctx: &Context<Self>, _first: bool) {
        if std::mem::take(&mut self.plan_after_render) {
            metrics::mark("planRequested");
            self.post(&ToWorker::Plan {
                discard_journal: false,
                fixed_vhd: self.fixed_vhd,
            });
        }
        if std::mem::take(&mut self.structures_focus_pending) {
            if let Some(el) = self.structures_focus.cast::<HtmlElement>() {
                let _ = el.focus();
            }
        }
        // In the walk the focus follows the trainee's steps, unless something failed.
        if self.focus_pending && self.training && self.stage != Stage::Failed {
            self.focus_pending = false;
        }
        if self.focus_pending {
            self.focus_pending = false;
            if let Some(el) = self.focus.cast::<HtmlElement>() {
                let _ = el.focus();
            }
        }
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let t = self.t();
        let link = ctx.link();
        let lang_button = |l: Lang, label: &'static str, id: &'static str| {
            let pressed = self.lang == l;
            html! {
                <button type="button" id={id} class="lang" lang={l.tag()}
                    aria-pressed={if pressed { "true" } else { "false" }}
                    onclick={link.callback(move |_| Msg::SetLang(l))}>{label}</button>
            }
        };
        let busy = match (&self.busy, self.stage) {
            (Some(b), Stage::Busy) => html! {
                <Progress {t} phase={b.phase} started={b.started} bytes={b.bytes} calls={b.calls}
                    stretch={b.stretch}
                    can_cancel={!(self.remote.is_some() && b.phase == Phase::Output)}
                    on_cancel={link.callback(|_| Msg::Cancel)}/>
            },
            _ => html! {},
        };
        let cancelled = if self.stage == Stage::Cancelled {
            html! { <Cancelled {t} focus={self.focus_ref(true)}/> }
        } else {
            html! {}
        };
        // With a key to ask for, the focus goes to the key form instead.
        let asks_key = self
            .inspect
            .as_ref()
            .is_some_and(|v| v.key_request.is_some());
        let report = match &self.inspect {
            Some(v) => html! {
                <ImageReport {t} view={v.clone()} focus={self.focus_ref(self.stage == Stage::Inspected && !asks_key)}/>
            },
            None => html! {},
        };
        let txr_logs_now = if self.can_change_image_rules() {
            html! {
                <section class="txr-logs-now" aria-label={t.txr_logs_checkbox()}>
                    {rules::txr_logs_checkbox(t, "txr-logs-report", self.image_rules.txr_logs,
                        link.callback(Msg::TxrLogsNow))}
                </section>
            }
        } else {
            html! {}
        };
        let unlock = match self.inspect.as_ref().and_then(|v| v.key_request.clone()) {
            Some(request) if self.stage == Stage::Inspected => html! {
                <Unlock {t} {request} key_file_problem={self.key_file_problem.clone()}
                    on_unlock={link.callback(Msg::Unlock)} focus={self.focus_ref(true)}/>
            },
            _ => html! {},
        };
        let consent = match &self.inspect {
            Some(v) if v.needs_consent && plan::journal_problems(v).next().is_some() => html! {
                <Consent {t} view={v.clone()} consent={self.consent}
                    can_change={self.stage == Stage::Inspected}
                    show_plan_button={self.plan.is_none()}
                    can_plan={self.consent && self.stage == Stage::Inspected}
                    on_consent={link.callback(Msg::Consent)}
                    on_plan={link.callback(|_| Msg::Plan)}/>
            },
            _ => html! {},
        };
        let any_problem = self.problem.is_some()
            || self
                .inspect
                .as_ref()
                .is_some_and(|v| problems::listed(v).next().is_some());
        let problems = if any_problem {
            html! {
                <Problems {t} inspect={self.inspect.clone()} failure={self.problem.clone()}
                    focus={self.focus_ref(self.stage == Stage::Failed)}/>
            }
        } else {
            html! {}
        };
        let plan = match &self.plan {
            Some(p) => html! {
                <Plan {t} plan={p.clone()} inspect={self.inspect.clone()}
                    format={self.inspect.as_ref().and_then(|v| v.container.as_ref()).map(|c| c.format)}
                    focus={self.focus_ref(self.stage == Stage::Planned)}
                    show_fix_button={self.fixed.is_none() && self.remote_undo.is_none()}
                    remote={self.remote.clone()}
                    can_fix={self.stage == Stage::Planned
                        && !matches!(p.output, OutputView::SameFormatNotWritable { .. })}
                    on_fix={link.callback(|_| Msg::Fix)}
                    fixed_vhd={self.fixed_vhd}
                    can_choose_output={self.stage == Stage::Planned && self.fixed.is_none() && self.remote.is_none()}
                    on_fixed_vhd={link.callback(Msg::FixedVhd)}/>
            },
            None => html! {},
        };
        let fixed = match (&self.fixed, &self.downloads) {
            (Some(f), Some(d)) => html! {
                <Fixed {t} fixed={f.clone()} links={d.links()}
                    chkdsk={self.plan.as_ref().is_some_and(|p| !p.journal_reset.is_empty())}
                    focus={self.focus_ref(self.stage == Stage::Fixed)}/>
            },
            _ => html! {},
        };
        let remote_steps = match &self.remote_undo {
            Some((undo, _)) => html! {
                <RemoteSteps {t} undo={undo.clone()} saved={self.remote_undo_saved}
                    can_write={self.stage == Stage::UndoReady}
                    on_saved={link.callback(|_| Msg::RemoteUndoSaved)}
                    on_write={link.callback(|_| Msg::RemoteWrite)}
                    written={self.remote_fixed.clone()}
                    focus={self.focus_ref(self.stage == Stage::UndoReady)}/>
            },
            None => html! {},
        };
        let can_explain = matches!(self.stage, Stage::Inspected | Stage::Planned | Stage::Fixed)
            && self.worker.is_some();
        let show_bytes = if can_explain && self.structures.is_none() {
            html! {
                <section class="show-bytes">
                    <button type="button" id="explain-button" disabled={self.explaining}
                        onclick={link.callback(|_| Msg::Explain)}>{t.show_bytes_button()}</button>
                    {if self.explaining {
                        html! { <span role="status">{" "}{t.structures_loading()}</span> }
                    } else {
                        html! {}
                    }}
                </section>
            }
        } else {
            html! {}
        };
        let structures = match &self.structures {
            Some(v) => html! {
                <Structures {t} view={v.clone()} focus={self.structures_focus.clone()}/>
            },
            _ => html! {},
        };
        let walk = if self.training && self.file.is_some() {
            html! {
                <Walk {t} before={self.walk_before.clone()} after={self.structures_after.clone()}
                    can_fix={self.stage == Stage::Planned && self.fixed.is_none()}
                    fixed={self.fixed.clone().zip(self.downloads.as_ref().map(Downloads::links))}
                    untouched={self.untouched.as_ref().map(|(u, n)| (AttrValue::from(u.to_string()), AttrValue::from(n.clone())))}
                    on_fix={link.callback(|_| Msg::Fix)}/>
            }
        } else {
            html! {}
        };
        let queue = match &self.queue {
            Some(q) => queue::view(
                t,
                q,
                &queue::Actions {
                    fix_all: link.callback(|_| Msg::QueueFixAll),
                    stop: link.callback(|_| Msg::QueueStop),
                    choose_folder: folder::available()
                        .then(|| link.callback(|_| Msg::QueueChooseFolder)),
                },
            ),
            None => html! {},
        };
        html! {
            <div class="page" data-state={self.stage.code()} data-lang={self.lang.tag()}>
                <header class="top">
                    <div>
                        <h1>{t.title()}</h1>
                        <p class="subtitle">{t.subtitle()}</p>
                    </div>
                    <nav class="langs" aria-label={t.language()}>
                        {lang_button(Lang::Ja, "日本語", "lang-ja")}
                        {lang_button(Lang::En, "English", "lang-en")}
                    </nav>
                </header>
                <main>
                    <p class="intro">{t.intro()}</p>
                    <section class="privacy" aria-labelledby="privacy-title">
                        <h2 id="privacy-title">
                            <svg class="icon" viewBox="0 0 24 24" aria-hidden="true" width="20" height="20">
                                <path d="M12 2 4 5v6c0 5 3.4 9.4 8 11 4.6-1.6 8-6 8-11V5l-8-3z" fill="none" stroke="currentColor" stroke-width="2"/>
                                <path d="m8.5 12 2.5 2.5 4.5-5" fill="none" stroke="currentColor" stroke-width="2"/>
                            </svg>
                            {t.privacy_title()}
                        </h2>
                        <p>{t.privacy()}</p>
                    </section>
                    <Picker {t} current={self.file.clone()} on_pick={link.batch_callback(picked_files)}/>
                    <RemoteForm {t} current={self.remote.clone()}
                        enabled={self.stage != Stage::Busy}
                        on_open={link.callback(Msg::OpenUrl)}/>
                    <RulePicker {t} on_rules={link.callback(Msg::Rules)}/>
                    <section class="txr-logs-pick" aria-label={t.txr_logs_checkbox()}>
                        {rules::txr_logs_checkbox(t, "txr-logs", self.rules.txr_logs,
                            link.callback(Msg::TxrLogs))}
                    </section>
                    <Practice {t} loading={self.practice_loading} failed={self.practice_failed.clone()}
                        on_practice={link.callback(Msg::Practice)}/>
                    {queue}
                    {walk}
                    {busy}
                    {cancelled}
                    {report}
                    {txr_logs_now}
                    {unlock}
                    {problems}
                    {consent}
                    {plan}
                    {fixed}
                    {remote_steps}
                    {show_bytes}
                    {structures}
                </main>
                <footer>
                    <p>{t.footer()}</p>
                </footer>
            </div>
        }
    }
}

/// One picked file goes through the single-image flow; several are queued.
fn picked_files(mut files: Vec<File>) -> Option<Msg> {
    match files.len() {
        0 => None,
        1 => files.pop().map(Msg::Picked),
        _ => Some(Msg::PickedMany(files)),
    }
}

/// A JavaScript error's message, or whatever was thrown, as text.
fn js_error_text(e: &JsValue) -> String {
    crate::js_message(e).unwrap_or_else(|| format!("{e:?}"))
}

/// Registers the service worker that keeps the page working offline (served pages only; the
/// single-file build opened from disk needs none).
fn register_service_worker() {
    let Some(w) = web_sys::window() else { return };
    let protocol = w.location().protocol().unwrap_or_default();
    let single = Reflect::get(&w, &JsValue::from_str("KAIFUKU_SINGLE_FILE"))
        .map(|v| v.is_truthy())
        .unwrap_or(false);
    if !(protocol == "http:" || protocol == "https:") || single {
        return;
    }
    let sw = w.navigator().service_worker();
    let _ = sw.register("./sw.js");
}

/// Entry point of the page binary.
pub fn start() {
    register_service_worker();
    let root = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id("app"));
    match root {
        Some(el) => {
            el.set_inner_html("");
            yew::Renderer::<App>::with_root(el).render();
        }
        None => {
            yew::Renderer::<App>::new().render();
        }
    }
}
