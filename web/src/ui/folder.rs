//! Writing the queue's fixed images into a folder the user chose, where the browser offers the
//! File System Access API (`showDirectoryPicker`): hundreds of gigabytes with no download prompt
//! per file. Each file is written from its `Blob` (slices of the picked file and the new bytes),
//! which the browser streams to disk. The API is called through `Reflect` because `web-sys` keeps
//! it behind its unstable flag; without it the queue offers downloads.

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::Blob;

fn method(target: &JsValue, name: &str) -> Result<Function, JsValue> {
    Reflect::get(target, &JsValue::from_str(name))?
        .dyn_into::<Function>()
        .map_err(|_| JsValue::from_str(&format!("{name} is not available")))
}

async fn awaited(value: JsValue) -> Result<JsValue, JsValue> {
    JsFuture::from(Promise::resolve(&value)).await
}

/// Whether this browser can write into a chosen folder.
pub fn available() -> bool {
    web_sys::window().is_some_and(|w| {
        Reflect::get(&w, &JsValue::from_str("showDirectoryPicker")).is_ok_and(|f| f.is_function())
    })
}

/// The `name` of an error the browser threw (`AbortError` when the user closed the picker).
pub fn error_name(e: &JsValue) -> Option<String> {
    Reflect::get(e, &JsValue::from_str("name"))
        .ok()
        .and_then(|n| n.as_string())
}

/// Asks the user for a folder to write into; returns its handle and name.
pub async fn choose() -> Result<(JsValue, String), JsValue> {
    let window: JsValue = web_sys::window()
        .ok_or_else(|| JsValue::from_str("no window"))?
        .into();
    let options = Object::new();
    Reflect::set(&options, &"mode".into(), &"readwrite".into())?;
    let handle = awaited(method(&window, "showDirectoryPicker")?.call1(&window, &options)?).await?;
    let name = Reflect::get(&handle, &"name".into())?
        .as_string()
        .unwrap_or_default();
    Ok((handle, name))
}

/// Why a file was not written.
pub enum WriteProblem {
    /// The folder already holds a file of this name: it is never replaced.
    Exists(String),
    /// The browser refused (its words).
    Failed(String),
}

/// Whether `dir` holds an entry called `name`.
async fn exists(dir: &JsValue, name: &str) -> Result<bool, JsValue> {
    let get = method(dir, "getFileHandle")?;
    match awaited(get.call1(dir, &name.into())?).await {
        Ok(_) => Ok(true),
        Err(e) if error_name(&e).as_deref() == Some("NotFoundError") => Ok(false),
        // A folder of that name, say: not ours to replace either.
        Err(e) if error_name(&e).as_deref() == Some("TypeMismatchError") => Ok(true),
        Err(e) => Err(e),
    }
}

async fn write_one(dir: &JsValue, name: &str, blob: &Blob) -> Result<(), JsValue> {
    let options = Object::new();
    Reflect::set(&options, &"create".into(), &JsValue::TRUE)?;
    let handle = awaited(method(dir, "getFileHandle")?.call2(dir, &name.into(), &options)?).await?;
    let writable = awaited(method(&handle, "createWritable")?.call0(&handle)?).await?;
    match awaited(method(&writable, "write")?.call1(&writable, blob)?).await {
        Ok(_) => {
            // Only `close` makes the file appear under its name: a write cut short leaves none.
            awaited(method(&writable, "close")?.call0(&writable)?).await?;
            Ok(())
        }
        Err(e) => {
            if let Ok(pending) = method(&writable, "abort").and_then(|a| a.call0(&writable)) {
                let _ = awaited(pending).await;
            }
            Err(e)
        }
    }
}

/// Writes `files` (name, content) into `dir`, none of whose names may exist there yet; returns
/// the names written.
pub async fn write_all(
    dir: JsValue,
    files: Vec<(String, Blob)>,
) -> Result<Vec<String>, WriteProblem> {
    let failed = |e: JsValue| WriteProblem::Failed(super::js_error_text(&e));
    for (name, _) in &files {
        if exists(&dir, name).await.map_err(failed)? {
            return Err(WriteProblem::Exists(name.clone()));
        }
    }
    let mut written = Vec::with_capacity(files.len());
    for (name, blob) in &files {
        write_one(&dir, name, blob).await.map_err(failed)?;
        written.push(name.clone());
    }
    Ok(written)
}
