//! Starting and stopping the worker that reads an image. The page keeps one started ahead of time
//! (its wasm compiled before any image is picked) and hands the next picked image to it; a worker
//! is terminated when its image is done with or to cancel.

use crate::protocol::{FromWorker, ToWorker};
use gloo::events::EventListener;
use js_sys::Reflect;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{ErrorEvent, MessageEvent, Worker, WorkerOptions, WorkerType};
use yew::Callback;

/// Which worker an event came from (workers are numbered as they are started).
pub type WorkerId = u32;

/// What a worker said, or that it failed.
pub enum WorkerEvent {
    Message(FromWorker),
    /// A message that is not a [`FromWorker`] (a bug), with the decoder's explanation.
    Unreadable(String),
    /// The worker's script failed (did not load, or threw outside the core).
    Crashed(String),
}

/// Where the worker script is and whether it is a module. The single-file build sets
/// `window.KAIFUKU_WORKER_URL` (a `blob:` URL of a classic script); the normal build uses Trunk's
/// loader next to the page, so `dist/` works under any sub-path.
fn worker_location() -> (String, bool) {
    let url = web_sys::window()
        .and_then(|w| Reflect::get(&w, &JsValue::from_str("KAIFUKU_WORKER_URL")).ok())
        .and_then(|v| v.as_string());
    match url {
        Some(url) => (url, false),
        None => ("./kaifuku-worker_loader.js".to_string(), true),
    }
}

/// One started worker; terminated when dropped.
pub struct WorkerHandle {
    pub id: WorkerId,
    worker: Worker,
    /// Page-clock time its [`FromWorker::Ready`] arrived.
    pub ready_at: Option<f64>,
    _message: EventListener,
    _error: EventListener,
}

impl WorkerHandle {
    /// Starts a worker; everything it says goes to `on_event` with its id.
    pub fn spawn(
        id: WorkerId,
        on_event: Callback<(WorkerId, WorkerEvent)>,
    ) -> Result<WorkerHandle, JsValue> {
        let (url, module) = worker_location();
        let opts = WorkerOptions::new();
        if module {
            opts.set_type(WorkerType::Module);
        }
        let worker = Worker::new_with_options(&url, &opts)?;
        let cb = on_event.clone();
        let message = EventListener::new(&worker, "message", move |e| {
            let e: &MessageEvent = e.unchecked_ref();
            let event = match FromWorker::from_js(e.data()) {
                Ok(m) => WorkerEvent::Message(m),
                Err(err) => WorkerEvent::Unreadable(err.to_string()),
            };
            cb.emit((id, event));
        });
        let error = EventListener::new(&worker, "error", move |e| {
            let text = e
                .dyn_ref::<ErrorEvent>()
                .map(|e| e.message())
                .unwrap_or_else(|| "worker error".into());
            on_event.emit((id, WorkerEvent::Crashed(text)));
        });
        Ok(WorkerHandle {
            id,
            worker,
            ready_at: None,
            _message: message,
            _error: error,
        })
    }

    pub fn post(&self, message: &ToWorker) {
        if let Err(e) = message.post(&self.worker) {
            web_sys::console::error_1(&e);
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.worker.terminate();
    }
}
