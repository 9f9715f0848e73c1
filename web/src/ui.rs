//! The page: pick or drop an image, see what the worker found, review the plan, fix, download.
//! The UI thread only renders and passes messages; every read of the image happens in the worker.

use crate::i18n::{grouped, size, Lang, T};
use crate::view::{FixedView, InspectView, PlanView, Problem, ProblemCode, VolumeView};
use gloo::events::{EventListener, EventListenerOptions};
use gloo::file::ObjectUrl;
use gloo::timers::callback::Interval;
use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Blob, File, HtmlElement, HtmlInputElement, Worker, WorkerOptions, WorkerType};
use yew::html::Scope;
use yew::prelude::*;

const LANG_KEY: &str = "kaifuku-lang";

/// Milliseconds on the page's clock.
fn now() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or_else(js_sys::Date::now)
}

fn set(o: &JsValue, k: &str, v: impl Into<JsValue>) {
    let _ = Reflect::set(o, &JsValue::from_str(k), &v.into());
}

fn get(o: &JsValue, k: &str) -> JsValue {
    Reflect::get(o, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED)
}

/// Where the worker script is and whether it is a module. The single-file build sets
/// `window.KAIFUKU_WORKER_URL` (a `blob:` URL of a classic script); the normal build uses Trunk's
/// loader next to the page, so `dist/` works under any sub-path.
fn worker_location() -> (String, bool) {
    let w: JsValue = web_sys::window()
        .map(Into::into)
        .unwrap_or(JsValue::UNDEFINED);
    match get(&w, "KAIFUKU_WORKER_URL").as_string() {
        Some(url) => (url, false),
        None => ("./kaifuku-worker_loader.js".to_string(), true),
    }
}

/// One running worker; terminated when dropped (cancel, or a new image).
struct WorkerHandle {
    worker: Worker,
    _message: EventListener,
    _error: EventListener,
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.worker.terminate();
    }
}

fn spawn_worker(link: &Scope<App>) -> Result<WorkerHandle, JsValue> {
    let (url, module) = worker_location();
    let opts = WorkerOptions::new();
    if module {
        opts.set_type(WorkerType::Module);
    }
    let worker = Worker::new_with_options(&url, &opts)?;
    let l = link.clone();
    let message = EventListener::new(&worker, "message", move |e| {
        let e: &web_sys::MessageEvent = e.unchecked_ref();
        l.send_message(Msg::Worker(e.data()));
    });
    let l = link.clone();
    let error = EventListener::new(&worker, "error", move |e| {
        let text = e
            .dyn_ref::<web_sys::ErrorEvent>()
            .map(|e| e.message())
            .unwrap_or_else(|| "worker error".into());
        l.send_message(Msg::WorkerError(text));
    });
    Ok(WorkerHandle {
        worker,
        _message: message,
        _error: error,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Idle,
    Busy,
    Inspected,
    Planned,
    Fixed,
    Failed,
    Cancelled,
}

impl Stage {
    fn code(self) -> &'static str {
        match self {
            Stage::Idle => "idle",
            Stage::Busy => "busy",
            Stage::Inspected => "inspected",
            Stage::Planned => "planned",
            Stage::Fixed => "fixed",
            Stage::Failed => "failed",
            Stage::Cancelled => "cancelled",
        }
    }
}

struct Busy {
    phase: String,
    started: f64,
    bytes: u64,
    calls: u64,
}

struct Downloads {
    image: ObjectUrl,
    undo: ObjectUrl,
    report: ObjectUrl,
}

pub enum Msg {
    SetLang(Lang),
    PickClicked,
    Picked(File),
    DragOver(bool),
    Worker(JsValue),
    WorkerError(String),
    Consent(bool),
    Plan,
    Fix,
    Cancel,
    Tick,
}

pub struct App {
    lang: Lang,
    stage: Stage,
    worker: Option<WorkerHandle>,
    pending_file: Option<File>,
    file: Option<(String, u64)>,
    busy: Option<Busy>,
    inspect: Option<InspectView>,
    plan: Option<PlanView>,
    fixed: Option<FixedView>,
    downloads: Option<Downloads>,
    problem: Option<Problem>,
    consent: bool,
    consented_plan: bool,
    drag_over: bool,
    ticker: Option<Interval>,
    input: NodeRef,
    focus: NodeRef,
    focus_pending: bool,
    metrics: JsValue,
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
        doc.set_title(match lang {
            Lang::Ja => "kaifuku(回復)— Windows VM ディスクイメージのオフライン修復",
            Lang::En => "kaifuku (回復) — repair a Windows VM disk image offline",
        });
    }
}

impl App {
    fn t(&self) -> T {
        T(self.lang)
    }

    fn mark(&self, name: &str) {
        set(&self.metrics, name, now());
    }

    fn reset_results(&mut self) {
        self.inspect = None;
        self.plan = None;
        self.fixed = None;
        self.downloads = None;
        self.problem = None;
        self.consent = false;
        self.consented_plan = false;
        self.busy = None;
        self.ticker = None;
    }

    fn start_busy(&mut self, ctx: &Context<Self>, phase: &str) {
        self.stage = Stage::Busy;
        self.busy = Some(Busy {
            phase: phase.to_string(),
            started: now(),
            bytes: self.busy.as_ref().map_or(0, |b| b.bytes),
            calls: self.busy.as_ref().map_or(0, |b| b.calls),
        });
        let link = ctx.link().clone();
        self.ticker = Some(Interval::new(200, move || link.send_message(Msg::Tick)));
    }

    fn stop_busy(&mut self, stage: Stage) {
        self.stage = stage;
        self.ticker = None;
        self.focus_pending = true;
    }

    fn post(&self, msg: &Object) {
        if let Some(w) = &self.worker {
            if let Err(e) = w.worker.post_message(msg) {
                web_sys::console::error_1(&e);
            }
        }
    }

    fn post_plan(&mut self, ctx: &Context<Self>, discard_journal: bool) {
        let o = Object::new();
        set(&o, "type", "plan");
        set(&o, "discardJournal", discard_journal);
        self.consented_plan = discard_journal;
        self.start_busy(ctx, "plan");
        self.mark("planRequested");
        self.post(&o);
    }

    fn fail(&mut self, p: Problem) {
        self.problem = Some(p);
        self.worker = None;
        self.busy = None;
        self.stop_busy(Stage::Failed);
    }

    fn on_worker(&mut self, ctx: &Context<Self>, data: JsValue) -> bool {
        let kind = get(&data, "type").as_string().unwrap_or_default();
        let json = get(&data, "json").as_string().unwrap_or_default();
        match kind.as_str() {
            "ready" => {
                self.mark("workerReady");
                if let Some(file) = self.pending_file.take() {
                    let o = Object::new();
                    set(&o, "type", "inspect");
                    set(&o, "file", file);
                    self.post(&o);
                }
                false
            }
            "progress" => {
                if let Some(b) = &mut self.busy {
                    b.bytes = get(&data, "bytes").as_f64().unwrap_or(0.0) as u64;
                    b.calls = get(&data, "calls").as_f64().unwrap_or(0.0) as u64;
                    if let Some(p) = get(&data, "phase").as_string() {
                        b.phase = p;
                    }
                }
                true
            }
            "inspected" => match serde_json::from_str::<InspectView>(&json) {
                Ok(v) => {
                    self.mark("inspected");
                    let auto_plan = v.can_fix && !v.needs_consent;
                    self.inspect = Some(v);
                    if auto_plan {
                        // Nothing to consent to: plan at once, so the plan is on screen with the
                        // report; nothing changes before the user clicks Fix.
                        self.post_plan(ctx, false);
                    } else {
                        self.stop_busy(Stage::Inspected);
                    }
                    true
                }
                Err(e) => {
                    self.fail(Problem::new(
                        ProblemCode::Internal,
                        None,
                        Some(e.to_string()),
                    ));
                    true
                }
            },
            "planned" => match serde_json::from_str::<PlanView>(&json) {
                Ok(v) => {
                    self.mark("planned");
                    self.plan = Some(v);
                    self.stop_busy(Stage::Planned);
                    true
                }
                Err(e) => {
                    self.fail(Problem::new(
                        ProblemCode::Internal,
                        None,
                        Some(e.to_string()),
                    ));
                    true
                }
            },
            "fixed" => match serde_json::from_str::<FixedView>(&json) {
                Ok(v) => {
                    let blob = |k: &str| get(&data, k).dyn_into::<Blob>().ok();
                    match (blob("image"), blob("undo"), blob("report")) {
                        (Some(i), Some(u), Some(r)) => {
                            // For scripts and tests: the same Blobs the links offer.
                            if let Some(w) = web_sys::window() {
                                let res = Object::new();
                                set(&res, "image", i.clone());
                                set(&res, "undo", u.clone());
                                set(&res, "report", r.clone());
                                set(&w, "kaifukuResult", res);
                            }
                            self.downloads = Some(Downloads {
                                image: ObjectUrl::from(i),
                                undo: ObjectUrl::from(u),
                                report: ObjectUrl::from(r),
                            });
                            self.mark("fixed");
                            set(&self.metrics, "wasmMemory", v.wasm_memory as f64);
                            set(&self.metrics, "calls", v.reads.calls as f64);
                            set(&self.metrics, "bytes", v.reads.bytes as f64);
                            self.fixed = Some(v);
                            self.stop_busy(Stage::Fixed);
                        }
                        _ => self.fail(Problem::new(
                            ProblemCode::Internal,
                            None,
                            Some("the worker sent no files".into()),
                        )),
                    }
                    true
                }
                Err(e) => {
                    self.fail(Problem::new(
                        ProblemCode::Internal,
                        None,
                        Some(e.to_string()),
                    ));
                    true
                }
            },
            "failed" => {
                let p = serde_json::from_str::<Problem>(&json).unwrap_or_else(|e| {
                    Problem::new(ProblemCode::Internal, None, Some(format!("{e}: {json}")))
                });
                self.fail(p);
                true
            }
            _ => false,
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
        let metrics: JsValue = Object::new().into();
        if let Some(w) = web_sys::window() {
            set(&w, "kaifukuMetrics", metrics.clone());
        }
        let _ = ctx;
        App {
            lang,
            stage: Stage::Idle,
            worker: None,
            pending_file: None,
            file: None,
            busy: None,
            inspect: None,
            plan: None,
            fixed: None,
            downloads: None,
            problem: None,
            consent: false,
            consented_plan: false,
            drag_over: false,
            ticker: None,
            input: NodeRef::default(),
            focus: NodeRef::default(),
            focus_pending: false,
            metrics,
            _window_listeners: window_listeners,
        }
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
            Msg::PickClicked => {
                if let Some(input) = self.input.cast::<HtmlInputElement>() {
                    input.click();
                }
                false
            }
            Msg::Picked(file) => {
                // A new image: the old worker (and its memory) goes, a fresh one starts.
                self.worker = None;
                self.reset_results();
                self.metrics = Object::new().into();
                if let Some(w) = web_sys::window() {
                    set(&w, "kaifukuMetrics", self.metrics.clone());
                }
                self.mark("picked");
                self.file = Some((file.name(), file.size() as u64));
                self.pending_file = Some(file);
                self.start_busy(ctx, "inspect");
                match spawn_worker(ctx.link()) {
                    Ok(w) => self.worker = Some(w),
                    Err(e) => self.fail(Problem::new(
                        ProblemCode::Internal,
                        None,
                        Some(format!("{e:?}")),
                    )),
                }
                // Let the same file be picked again later.
                if let Some(input) = self.input.cast::<HtmlInputElement>() {
                    input.set_value("");
                }
                true
            }
            Msg::DragOver(on) => {
                let changed = self.drag_over != on;
                self.drag_over = on;
                changed
            }
            Msg::Worker(data) => self.on_worker(ctx, data),
            Msg::WorkerError(text) => {
                let t = self.t();
                self.fail(Problem::new(
                    ProblemCode::Internal,
                    None,
                    Some(format!("{} {text}", t.worker_crashed())),
                ));
                true
            }
            Msg::Consent(on) => {
                self.consent = on;
                true
            }
            Msg::Plan => {
                let consent = self.consent;
                let needs = self.inspect.as_ref().is_some_and(|v| v.needs_consent);
                if needs && !consent {
                    return false;
                }
                self.post_plan(ctx, needs && consent);
                true
            }
            Msg::Fix => {
                let o = Object::new();
                set(&o, "type", "fix");
                self.mark("fixRequested");
                self.start_busy(ctx, "verify");
                self.post(&o);
                true
            }
            Msg::Cancel => {
                self.worker = None;
                self.pending_file = None;
                self.reset_results();
                self.stop_busy(Stage::Cancelled);
                true
            }
            Msg::Tick => self.busy.is_some(),
        }
    }

    fn rendered(&mut self, _ctx: &Context<Self>, _first: bool) {
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
                    {self.view_picker(ctx)}
                    {self.view_busy(ctx)}
                    {self.view_cancelled()}
                    {self.view_report()}
                    {self.view_problem()}
                    {self.view_consent(ctx)}
                    {self.view_plan(ctx)}
                    {self.view_fixed()}
                </main>
                <footer>
                    <p>{t.footer()}</p>
                </footer>
            </div>
        }
    }
}

fn utc(s: &str) -> String {
    s.replace('T', " ").trim_end_matches('Z').to_string()
}

impl App {
    fn focus_ref(&self, wanted: bool) -> NodeRef {
        if wanted {
            self.focus.clone()
        } else {
            NodeRef::default()
        }
    }

    fn view_picker(&self, ctx: &Context<Self>) -> Html {
        let t = self.t();
        let link = ctx.link();
        let onchange = link.batch_callback(|e: Event| {
            let input: HtmlInputElement = e.target_unchecked_into();
            input.files().and_then(|f| f.get(0)).map(Msg::Picked)
        });
        let ondrop = link.batch_callback(|e: DragEvent| {
            e.prevent_default();
            let file = e
                .data_transfer()
                .and_then(|d| d.files())
                .and_then(|f| f.get(0));
            match file {
                Some(f) => vec![Msg::DragOver(false), Msg::Picked(f)],
                None => vec![Msg::DragOver(false)],
            }
        });
        let ondragover = link.callback(|e: DragEvent| {
            e.prevent_default();
            Msg::DragOver(true)
        });
        let ondragleave = link.callback(|_: DragEvent| Msg::DragOver(false));
        let class = classes!("dropzone", self.drag_over.then_some("over"));
        html! {
            <section class="pick" aria-labelledby="pick-title">
                <h2 id="pick-title">{t.pick_heading()}</h2>
                <div id="dropzone" class={class} {ondrop} {ondragover} {ondragleave}>
                    <svg class="icon big" viewBox="0 0 24 24" aria-hidden="true" width="40" height="40">
                        <rect x="3" y="4" width="18" height="14" rx="2" fill="none" stroke="currentColor" stroke-width="1.6"/>
                        <path d="M7 14h10M7 10h6" stroke="currentColor" stroke-width="1.6"/>
                        <path d="M12 21v-3" stroke="currentColor" stroke-width="1.6"/>
                    </svg>
                    <p>
                        {if self.drag_over { t.drop_active() } else { t.drop_hint() }}
                        {" "}
                        <button type="button" id="pick-button" class="primary"
                            onclick={link.callback(|_| Msg::PickClicked)}>{t.pick_button()}</button>
                    </p>
                    <input type="file" id="file-input" class="visually-hidden" tabindex="-1"
                        aria-hidden="true" ref={self.input.clone()} {onchange}/>
                    {match &self.file {
                        Some((name, bytes)) => html! { <p class="current" id="current-file">{t.current_file(name, *bytes)}</p> },
                        None => html! {},
                    }}
                </div>
            </section>
        }
    }

    fn view_busy(&self, ctx: &Context<Self>) -> Html {
        let t = self.t();
        let Some(b) = &self.busy else {
            return html! {};
        };
        if self.stage != Stage::Busy {
            return html! {};
        }
        let secs = (now() - b.started) / 1000.0;
        html! {
            <section class="busy" id="progress" aria-live="polite" aria-busy="true">
                <p class="step">{t.step(&b.phase)}</p>
                <progress id="progress-bar" aria-label={t.step(&b.phase)}></progress>
                <p class="figures" id="progress-figures">{t.progress(b.bytes, b.calls, secs)}</p>
                <button type="button" id="cancel" onclick={ctx.link().callback(|_| Msg::Cancel)}>{t.cancel()}</button>
            </section>
        }
    }

    fn view_cancelled(&self) -> Html {
        if self.stage != Stage::Cancelled {
            return html! {};
        }
        html! {
            <section class="notice" id="cancelled" role="status">
                <p tabindex="-1" ref={self.focus_ref(true)}>{self.t().cancelled()}</p>
            </section>
        }
    }

    fn view_report(&self) -> Html {
        let t = self.t();
        let Some(v) = &self.inspect else {
            return html! {};
        };
        let wants_focus = self.stage == Stage::Inspected;
        html! {
            <section class="report" id="report" aria-labelledby="report-title">
                <h2 id="report-title" tabindex="-1" ref={self.focus_ref(wants_focus)}>{t.image_heading()}</h2>
                <dl class="facts">
                    <dt>{t.file()}</dt><dd id="file-name">{&v.file_name}</dd>
                    {match &v.container {
                        Some(c) => html! {<>
                            <dt>{t.format()}</dt><dd id="container-format" data-format={c.format.clone()}>{t.format_name(&c.format)}</dd>
                            <dt>{t.virtual_size()}</dt><dd id="virtual-size" data-bytes={c.virtual_size.to_string()}>{format!("{} ({})", size(c.virtual_size), t.bytes(c.virtual_size))}</dd>
                            <dt>{t.file_size()}</dt><dd>{format!("{} ({})", size(c.file_size), t.bytes(c.file_size))}</dd>
                        </>},
                        None => html! {},
                    }}
                </dl>
                <p class={classes!("outcome", v.outcome.clone())} id="outcome" data-outcome={v.outcome.clone()}>
                    {if v.outcome == "matches" && !v.can_fix && !v.needs_consent {
                        t.outcome_blocked(v.match_count())
                    } else {
                        t.outcome(&v.outcome, v.match_count())
                    }}
                </p>
                {self.view_partitions(v)}
                {self.view_volumes(v)}
                {self.view_matches(v)}
                <p class="reads">{t.done_in(v.reads.bytes, v.reads.calls, v.reads.ms)}</p>
            </section>
        }
    }

    fn view_partitions(&self, v: &InspectView) -> Html {
        let t = self.t();
        let Some(p) = &v.partitions else {
            return html! {};
        };
        html! {
            <section aria-labelledby="parts-title">
                <h3 id="parts-title">{t.partitions_heading()}</h3>
                <p id="partition-scheme" data-scheme={p.scheme.clone()}>{t.scheme(&p.scheme, p.sector_size)}</p>
                {if p.scheme != "none" {
                    html! {
                        <div class="scroll">
                        <table id="partitions">
                            <thead><tr>
                                <th scope="col">{t.col_number()}</th>
                                <th scope="col" class="num">{t.col_start()}</th>
                                <th scope="col" class="num">{t.col_size()}</th>
                                <th scope="col">{t.col_type()}</th>
                                <th scope="col">{t.col_name()}</th>
                            </tr></thead>
                            <tbody>
                            {for p.partitions.iter().map(|x| html! {
                                <tr>
                                    <td>{x.number}</td>
                                    <td class="num">{grouped(x.start)}</td>
                                    <td class="num">{size(x.size)}</td>
                                    <td>{t.partition_type(&x.type_name)}{if x.container { t.extended() } else { "" }}</td>
                                    <td>{x.name.clone().unwrap_or_default()}</td>
                                </tr>
                            })}
                            </tbody>
                        </table>
                        </div>
                    }
                } else { html! {} }}
                {for p.notes.iter().map(|n| html! {<p class="note">{format!("{}: {}", t.table_note(), t.notice(n))}</p>})}
                {for p.warnings.iter().map(|n| html! {<p class="warning">{format!("{}: {}", t.table_warning(), t.notice(n))}</p>})}
            </section>
        }
    }

    fn view_volumes(&self, v: &InspectView) -> Html {
        let t = self.t();
        if v.volumes.is_empty() {
            return html! {};
        }
        let row = |x: &VolumeView| {
            let name = t.vol(&x.name);
            let n = x.ntfs.as_ref();
            html! {
                <tr class={classes!(x.windows.then_some("windows"))}>
                    <th scope="row">{name}{if x.windows { html! {<span class="badge" title={t.windows_volume()}>{t.windows_badge()}</span>} } else { html! {} }}</th>
                    <td>{t.fs_name(&x.filesystem, n.map(|n| n.version.as_str()))}</td>
                    <td class="num">{size(n.map_or(x.size, |n| n.size))}</td>
                    <td class="num">{n.map(|n| format!("{} B", n.cluster_size)).unwrap_or_default()}</td>
                    <td class="journal" data-state={n.map(|n| n.log_state.clone()).unwrap_or_default()}>{n.map(|n| t.journal_state(&n.log_state, n.log_empty)).unwrap_or_default()}</td>
                    <td>{n.map(|n| t.dirty(n.dirty)).unwrap_or_default()}</td>
                    <td>{t.bitlocker(x.filesystem == "bitlocker")}</td>
                    <td>{n.map(|n| t.hibernation(n.hibernated, n.hiberfil_present)).unwrap_or_default()}</td>
                </tr>
            }
        };
        html! {
            <section aria-labelledby="vols-title">
                <h3 id="vols-title">{t.volumes_heading()}</h3>
                <div class="scroll">
                <table id="volumes">
                    <thead><tr>
                        <th scope="col">{t.col_volume()}</th>
                        <th scope="col">{t.col_fs()}</th>
                        <th scope="col" class="num">{t.col_size()}</th>
                        <th scope="col" class="num">{t.col_cluster()}</th>
                        <th scope="col">{t.col_journal()}</th>
                        <th scope="col">{t.col_dirty()}</th>
                        <th scope="col">{t.col_encryption()}</th>
                        <th scope="col">{t.col_hibernation()}</th>
                    </tr></thead>
                    <tbody>{for v.volumes.iter().map(row)}</tbody>
                </table>
                </div>
                {for v.volumes.iter().filter_map(|x| x.error.as_ref().map(|e| (x, e))).map(|(x, e)| html! {
                    <p class="warning">{format!("{} — {}: {e}", t.vol(&x.name), t.volume_error(x.refused))}</p>
                })}
            </section>
        }
    }

    fn view_matches(&self, v: &InspectView) -> Html {
        let t = self.t();
        if !v.volumes.iter().any(|x| x.rule_ran) {
            return html! {};
        }
        let rows = v.volumes.iter().flat_map(|x| x.matches.iter()).map(|m| {
            html! {
                <tr class={classes!("match", m.verdict.clone())} data-verdict={m.verdict.clone()}>
                    <th scope="row" class="path">
                        <code>{&m.path}</code>
                        <span class="sub">{t.mft_record(m.mft_record)}</span>
                        {m.dos_name.as_ref().map(|d| html! {<span class="sub">{t.short_name(d)}</span>}).unwrap_or_default()}
                    </th>
                    <td class="num">{t.bytes(m.size)}</td>
                    <td>{utc(&m.created)}</td>
                    <td>{utc(&m.modified)}</td>
                    <td><code>{if m.header_hex.is_empty() { t.empty_file().to_string() } else { m.header_hex.clone() }}</code>
                        <span class="sub">{t.header_known_bad(m.header_known_bad)}</span></td>
                    <td class="zero" data-zero={m.all_zero.to_string()}>{t.yes_no(m.all_zero)}</td>
                    <td class="verdict">{t.verdict(&m.verdict)}</td>
                </tr>
            }
        });
        html! {
            <section aria-labelledby="matches-title">
                <h3 id="matches-title">{t.matches_heading()}</h3>
                <p class="rule">{t.rule_line(&v.rule_id, &v.rule_title, &v.rule_path)}</p>
                {if v.match_count() > 0 {
                    html! {<>
                    <div class="scroll">
                    <table id="matches">
                        <thead><tr>
                            <th scope="col">{t.col_file()}</th>
                            <th scope="col" class="num">{t.col_size()}</th>
                            <th scope="col">{t.col_created()}</th>
                            <th scope="col">{t.col_modified()}</th>
                            <th scope="col">{t.col_header()}</th>
                            <th scope="col">{t.col_zero()}</th>
                            <th scope="col">{t.col_verdict()}</th>
                        </tr></thead>
                        <tbody>{for rows}</tbody>
                    </table>
                    </div>
                    <p class="guidance">{t.guidance()}</p>
                    </>}
                } else { html! {} }}
            </section>
        }
    }

    fn problem_box(&self, p: &Problem, id: Option<&'static str>, focus: bool) -> Html {
        let t = self.t();
        let kind = match &p.code {
            ProblemCode::NoMatch
            | ProblemCode::NoCrowdStrikeDirectory
            | ProblemCode::NoWindows
            | ProblemCode::DirectorySkipped { .. }
            | ProblemCode::LinkFollowed { .. } => "info",
            ProblemCode::JournalUnclean { .. } => "caution",
            _ => "refusal",
        };
        let code = serde_json::to_value(&p.code)
            .ok()
            .and_then(|v| v.get("code").and_then(|c| c.as_str().map(String::from)))
            .unwrap_or_default();
        html! {
            <div class={classes!("problem", kind)} id={id} data-code={code} role={if kind == "refusal" { "alert" } else { "note" }}>
                <h3 tabindex="-1" ref={self.focus_ref(focus)}>{t.problem_title(&p.code)}</h3>
                <p>{t.problem_text(p)}</p>
                {match &p.detail {
                    Some(d) => html! {
                        <details><summary>{t.technical_detail()}</summary><pre lang="en">{d}</pre></details>
                    },
                    None => html! {},
                }}
            </div>
        }
    }

    /// Problems from inspection (refusals, nothing to fix) and a failure of a later step.
    fn view_problem(&self) -> Html {
        let mut boxes = Vec::new();
        if let Some(v) = &self.inspect {
            for p in v
                .problems
                .iter()
                .filter(|p| !matches!(p.code, ProblemCode::JournalUnclean { .. }))
            {
                boxes.push(self.problem_box(p, None, false));
            }
        }
        if let Some(p) = &self.problem {
            boxes.push(self.problem_box(p, Some("failure"), self.stage == Stage::Failed));
        }
        if boxes.is_empty() {
            return html! {};
        }
        html! { <section class="problems" id="problems" aria-live="polite">{for boxes}</section> }
    }

    fn view_consent(&self, ctx: &Context<Self>) -> Html {
        let t = self.t();
        let Some(v) = &self.inspect else {
            return html! {};
        };
        if !v.needs_consent {
            return html! {};
        }
        let journal: Vec<&Problem> = v
            .problems
            .iter()
            .filter(|p| matches!(p.code, ProblemCode::JournalUnclean { .. }))
            .collect();
        let can_change = self.stage == Stage::Inspected;
        let oninput = ctx.link().callback(|e: Event| {
            let input: HtmlInputElement = e.target_unchecked_into();
            Msg::Consent(input.checked())
        });
        html! {
            <section class="consent" id="consent-section" aria-labelledby="consent-title">
                <h2 id="consent-title">{t.problem_title(&journal[0].code)}</h2>
                {for journal.iter().map(|p| {
                    let state = match &p.code { ProblemCode::JournalUnclean { state } => state.clone(), _ => String::new() };
                    html! {<>
                        <p>{t.problem_text(p)}</p>
                        <p class="state">{t.consent_state(&state)}</p>
                    </>}
                })}
                <p class="check">
                    <input type="checkbox" id="consent" checked={self.consent} disabled={!can_change} onchange={oninput}/>
                    <label for="consent">{t.consent_label()}</label>
                </p>
                {if self.plan.is_none() {
                    html! {
                        <button type="button" id="plan-button" class="primary" disabled={!self.consent || self.stage != Stage::Inspected}
                            onclick={ctx.link().callback(|_| Msg::Plan)}>{t.plan_button()}</button>
                    }
                } else { html! {} }}
            </section>
        }
    }

    fn view_plan(&self, ctx: &Context<Self>) -> Html {
        let t = self.t();
        let Some(p) = &self.plan else {
            return html! {};
        };
        let fmt = self
            .inspect
            .as_ref()
            .and_then(|v| v.container.as_ref())
            .map(|c| c.format.clone())
            .unwrap_or_default();
        let show_file_writes = fmt == "vhd_dynamic";
        let range_row = |r: &crate::view::RangeView| {
            html! {
                <tr>
                    <td class="num"><code>{grouped(r.offset)}</code></td>
                    <td class="num">{format!("{} B", grouped(r.len))}</td>
                    <td>{t.structure(&r.label)}{r.fill.map(|b| format!(" {}", t.filled_with(b))).unwrap_or_default()}</td>
                </tr>
            }
        };
        let wants_focus = self.stage == Stage::Planned;
        html! {
            <section class="plan" id="plan" aria-labelledby="plan-title">
                <h2 id="plan-title" tabindex="-1" ref={self.focus_ref(wants_focus)}>{t.plan_heading()}</h2>
                <ul class="deletions">
                    {for p.deletions.iter().map(|d| html! {
                        <li>
                            <strong>{t.delete_line(&d.path)}</strong>
                            <span class="sub">{t.deletion_detail(d.mft_record, d.record_freed, d.clusters_freed, d.remaining_links)}</span>
                            <span class="sub">{t.removed_names(&d.removed_names.join(", "))}</span>
                            {for d.side_indexes.iter().map(|s| html! {<span class="sub">{t.side_index(s)}</span>})}
                        </li>
                    })}
                    {for p.journal_reset.iter().map(|v| html! {<li class="journal-reset">{t.journal_reset_line(v)}</li>})}
                </ul>
                <p>{t.plan_intro()}</p>
                <p id="plan-summary" data-ranges={p.patches.len().to_string()}>{t.ranges_summary(p.patches.len(), p.bytes_changed)}</p>
                <div class="scroll tall">
                <table id="ranges">
                    <thead><tr>
                        <th scope="col" class="num">{t.col_offset()}</th>
                        <th scope="col" class="num">{t.col_length()}</th>
                        <th scope="col">{t.col_structure()}</th>
                    </tr></thead>
                    <tbody>{for p.patches.iter().map(range_row)}</tbody>
                </table>
                </div>
                {if show_file_writes {
                    html! {
                        <details>
                            <summary>{t.file_writes_heading(p.file_writes.len())}</summary>
                            <div class="scroll tall">
                            <table>
                                <thead><tr>
                                    <th scope="col" class="num">{t.col_file_offset()}</th>
                                    <th scope="col" class="num">{t.col_length()}</th>
                                    <th scope="col">{t.col_structure()}</th>
                                </tr></thead>
                                <tbody>{for p.file_writes.iter().map(range_row)}</tbody>
                            </table>
                            </div>
                        </details>
                    }
                } else { html! {} }}
                <p class="checked">{t.core_checked(p.matches_after)}</p>
                <p class="reads">{t.done_in(p.reads.bytes, p.reads.calls, p.reads.ms)}</p>
                <h2>{t.fix_heading()}</h2>
                <p>{t.fix_intro()}</p>
                {if self.fixed.is_none() {
                    html! {
                        <button type="button" id="fix-button" class="primary" disabled={self.stage != Stage::Planned}
                            onclick={ctx.link().callback(|_| Msg::Fix)}>{t.fix_button()}</button>
                    }
                } else { html! {} }}
            </section>
        }
    }

    fn view_fixed(&self) -> Html {
        let t = self.t();
        let (Some(f), Some(d)) = (&self.fixed, &self.downloads) else {
            return html! {};
        };
        let chkdsk = self
            .plan
            .as_ref()
            .is_some_and(|p| !p.journal_reset.is_empty());
        html! {
            <section class="fixed" id="fixed" aria-labelledby="verified-title">
                <ul class="checks" id="checks" aria-labelledby="verified-title">
                    {for f.checks.iter().map(|c| html! {<li>{t.check_text(c)}</li>})}
                </ul>
                <h2 id="verified-title" tabindex="-1" ref={self.focus_ref(self.stage == Stage::Fixed)}>{t.download_heading()}</h2>
                <ul class="downloads">
                    <li>
                        <a id="download-image" class="button primary" href={d.image.to_string()} download={f.output_name.clone()}>
                            {t.download_image()}
                        </a>
                        <span class="sub">{format!("{} — {} ({})", f.output_name, size(f.output_size), t.bytes(f.output_size))}</span>
                    </li>
                    <li>
                        <a id="download-undo" class="button" href={d.undo.to_string()} download={f.undo_name.clone()}>{t.download_undo()}</a>
                        <span class="sub">{format!("{} — {}", f.undo_name, size(f.undo_size))}</span>
                        <span class="sub">{t.undo_hint()}</span>
                    </li>
                    <li>
                        <a id="download-report" class="button" href={d.report.to_string()} download={f.report_name.clone()}>{t.download_report()}</a>
                        <span class="sub">{&f.report_name}</span>
                    </li>
                </ul>
                <p class="note">{t.download_note()}</p>
                <p class="next">{t.next_steps(chkdsk)}</p>
                <p class="reads">{format!("{} · {}", t.done_in(f.reads.bytes, f.reads.calls, f.reads.ms), t.memory_line(f.wasm_memory))}</p>
            </section>
        }
    }
}

/// Registers the service worker that keeps the page working offline (served pages only; the
/// single-file build opened from disk needs none).
fn register_service_worker() {
    let Some(w) = web_sys::window() else { return };
    let protocol = w.location().protocol().unwrap_or_default();
    let single: JsValue = get(&w, "KAIFUKU_SINGLE_FILE");
    if !(protocol == "http:" || protocol == "https:") || single.is_truthy() {
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
