//! kaifuku in the browser. The page (a Yew app, `ui`) never touches the image: it hands the
//! picked `File` to a dedicated worker (`worker`, started before the pick and spoken to in the
//! typed messages of [`protocol`]) that reads it synchronously with
//! `FileReaderSync` through a block cache and runs the same core as the command line
//! ([`session`]). Results come back as plain data ([`view`]) that the page words in Japanese or
//! English ([`i18n`]); the fixed image comes back as a `Blob` made of slices of the picked file and
//! the changed bytes, so no copy of the image is ever held in memory.
#![forbid(unsafe_code)]

pub mod i18n;
pub mod names;
pub mod practice;
pub mod protocol;
pub mod session;
pub mod view;

#[cfg(target_arch = "wasm32")]
pub mod remote;
#[cfg(target_arch = "wasm32")]
pub mod ui;
#[cfg(target_arch = "wasm32")]
pub mod worker;

/// A thrown JavaScript value's message: an `Error`'s, or the value itself when it is a string.
#[cfg(target_arch = "wasm32")]
pub fn js_message(e: &wasm_bindgen::JsValue) -> Option<String> {
    use wasm_bindgen::JsCast;
    e.dyn_ref::<js_sys::Error>()
        .map(|er| String::from(er.message()))
        .or_else(|| e.as_string())
}
