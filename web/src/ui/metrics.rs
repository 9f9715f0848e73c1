//! Timings for scripts and tests: `window.kaifukuMetrics`, a fresh object per picked image with
//! the page-clock time of each step (`picked`, `workerReady`, `inspected`, `listed`, `planned`,
//! `fixRequested`, `fixed`, `unlockRequested`, `keyFileRefused`, ...) and a few figures the worker reported.

use js_sys::{Object, Reflect};
use wasm_bindgen::JsValue;

const METRICS: &str = "kaifukuMetrics";

/// Milliseconds on the page's clock.
pub fn now() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or_else(js_sys::Date::now)
}

/// Sets `window[name]` (globals the tests read).
pub fn set_global(name: &str, value: &JsValue) {
    if let Some(w) = web_sys::window() {
        let _ = Reflect::set(&w, &JsValue::from_str(name), value);
    }
}

/// Starts the metrics of a new image.
pub fn reset() {
    set_global(METRICS, &Object::new().into());
}

/// Records a figure.
pub fn set(name: &str, value: f64) {
    let Some(w) = web_sys::window() else { return };
    if let Ok(m) = Reflect::get(&w, &JsValue::from_str(METRICS)) {
        if m.is_object() {
            let _ = Reflect::set(&m, &JsValue::from_str(name), &JsValue::from_f64(value));
        }
    }
}

/// Records that a step happened now.
pub fn mark(name: &str) {
    set(name, now());
}
