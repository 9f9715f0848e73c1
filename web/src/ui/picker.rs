//! Stage 1: pick or drop an image, or several, or a folder of them (queued).

use crate::i18n::T;
use web_sys::{DragEvent, Event, File, FileList, HtmlInputElement};
use yew::{
    classes, function_component, html, use_node_ref, use_state, Callback, Html, Properties,
    TargetCast,
};

#[derive(Properties, PartialEq)]
pub struct PickerProps {
    pub t: T,
    /// The image being worked on: name and size.
    pub current: Option<(String, u64)>,
    /// The picked or dropped files, in their order (one: the single-image flow).
    pub on_pick: Callback<Vec<File>>,
}

/// What a folder holds that can be a disk image (its other files, such as notes or reports, are
/// left out of the queue).
const IMAGE_EXTENSIONS: [&str; 8] = ["raw", "img", "vhd", "vhdx", "qcow2", "vmdk", "bin", "dd"];

fn is_image_name(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(_, ext)| {
        IMAGE_EXTENSIONS
            .iter()
            .any(|known| ext.eq_ignore_ascii_case(known))
    })
}

fn files_of(list: Option<FileList>) -> Vec<File> {
    let Some(list) = list else { return Vec::new() };
    (0..list.length()).filter_map(|i| list.get(i)).collect()
}

/// A dropped folder arrives as one `File` that cannot be read; its contents come through the
/// entries API (`webkitGetAsEntry`), which every current browser offers for drops. The entries
/// must be taken while the drop event runs: afterwards the items are gone.
mod dropped {
    use js_sys::{Array, Function, Promise, Reflect};
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{DataTransfer, File};

    /// What was dropped: the entries when any of them is a folder, else nothing (the files are
    /// then read from `DataTransfer.files`, as before).
    pub fn folder_entries(dt: &DataTransfer) -> Option<Vec<JsValue>> {
        let items = Reflect::get(dt, &"items".into()).ok()?;
        let len = Reflect::get(&items, &"length".into()).ok()?.as_f64()? as u32;
        let mut entries = Vec::new();
        for i in 0..len {
            let item = Reflect::get_u32(&items, i).ok()?;
            let get: Function = Reflect::get(&item, &"webkitGetAsEntry".into())
                .ok()?
                .dyn_into()
                .ok()?;
            let entry = get.call0(&item).ok()?;
            if !entry.is_null() && !entry.is_undefined() {
                entries.push(entry);
            }
        }
        entries
            .iter()
            .any(|e| flag(e, "isDirectory"))
            .then_some(entries)
    }

    fn flag(entry: &JsValue, name: &str) -> bool {
        Reflect::get(entry, &name.into()).is_ok_and(|v| v.is_truthy())
    }

    fn text(entry: &JsValue, name: &str) -> String {
        Reflect::get(entry, &name.into())
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    }

    /// Calls `target.method(resolve, reject)`, the callback style of the entries API.
    async fn called(target: &JsValue, method: &str) -> Result<JsValue, JsValue> {
        let f: Function = Reflect::get(target, &method.into())?.dyn_into()?;
        let target = target.clone();
        let promise = Promise::new(&mut |resolve, reject| {
            if let Err(e) = f.call2(&target, &resolve, &reject) {
                let _ = reject.call1(&JsValue::NULL, &e);
            }
        });
        JsFuture::from(promise).await
    }

    /// The files of `entries`, folders expanded: a dropped file as it is, and the disk images
    /// (by `is_image`) of each folder and its subfolders in the order of their paths, as the
    /// folder picker lists them.
    pub async fn expand(
        entries: Vec<JsValue>,
        is_image: fn(&str) -> bool,
    ) -> Result<Vec<File>, JsValue> {
        let mut files = Vec::new();
        for entry in entries {
            if flag(&entry, "isFile") {
                files.push(called(&entry, "file").await?.dyn_into::<File>()?);
                continue;
            }
            let mut found: Vec<(String, File)> = Vec::new();
            let mut folders = vec![entry];
            while let Some(folder) = folders.pop() {
                let reader = Reflect::get(&folder, &"createReader".into())?
                    .dyn_into::<Function>()?
                    .call0(&folder)?;
                // readEntries hands out a folder's entries in batches, then an empty one.
                loop {
                    let batch: Array = called(&reader, "readEntries").await?.dyn_into()?;
                    if batch.length() == 0 {
                        break;
                    }
                    for e in batch.iter() {
                        if flag(&e, "isDirectory") {
                            folders.push(e);
                        } else if flag(&e, "isFile") && is_image(&text(&e, "name")) {
                            let file = called(&e, "file").await?.dyn_into::<File>()?;
                            found.push((text(&e, "fullPath"), file));
                        }
                    }
                }
            }
            found.sort_by(|a, b| a.0.cmp(&b.0));
            files.extend(found.into_iter().map(|(_, f)| f));
        }
        Ok(files)
    }
}

/// Why a picked or dropped folder gave the queue nothing.
#[derive(Clone, PartialEq)]
enum PickNote {
    NoImages,
    /// The browser's words.
    Unreadable(String),
}

#[function_component(Picker)]
pub fn picker(props: &PickerProps) -> Html {
    let t = props.t;
    let input = use_node_ref();
    let folder_input = use_node_ref();
    let drag_over = use_state(|| false);
    let note = use_state(|| None::<PickNote>);

    let onchange = {
        let on_pick = props.on_pick.clone();
        Callback::from(move |e: Event| {
            let input: HtmlInputElement = e.target_unchecked_into();
            let files = files_of(input.files());
            if !files.is_empty() {
                on_pick.emit(files);
            }
            // Let the same file be picked again later.
            input.set_value("");
        })
    };
    let on_folder_change = {
        let on_pick = props.on_pick.clone();
        let note = note.clone();
        Callback::from(move |e: Event| {
            let input: HtmlInputElement = e.target_unchecked_into();
            let mut files = files_of(input.files());
            let picked_any = !files.is_empty();
            files.retain(|f| is_image_name(&f.name()));
            // The order the folder lists them in, whatever order the browser gave.
            files.sort_by_key(|f| {
                js_sys::Reflect::get(f, &"webkitRelativePath".into())
                    .ok()
                    .and_then(|p| p.as_string())
                    .unwrap_or_else(|| f.name())
            });
            if !files.is_empty() {
                note.set(None);
                on_pick.emit(files);
            } else if picked_any {
                note.set(Some(PickNote::NoImages));
            }
            input.set_value("");
        })
    };
    let ondrop = {
        let on_pick = props.on_pick.clone();
        let drag_over = drag_over.clone();
        let note = note.clone();
        Callback::from(move |e: DragEvent| {
            e.prevent_default();
            drag_over.set(false);
            note.set(None);
            let Some(dt) = e.data_transfer() else { return };
            if let Some(entries) = dropped::folder_entries(&dt) {
                let on_pick = on_pick.clone();
                let note = note.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    match dropped::expand(entries, is_image_name).await {
                        Ok(files) if !files.is_empty() => on_pick.emit(files),
                        Ok(_) => note.set(Some(PickNote::NoImages)),
                        Err(e) => note.set(Some(PickNote::Unreadable(
                            js_sys::Reflect::get(&e, &"message".into())
                                .ok()
                                .and_then(|m| m.as_string())
                                .or_else(|| e.as_string())
                                .unwrap_or_else(|| "?".into()),
                        ))),
                    }
                });
                return;
            }
            let files = files_of(dt.files());
            if !files.is_empty() {
                on_pick.emit(files);
            }
        })
    };
    let ondragover = {
        let drag_over = drag_over.clone();
        Callback::from(move |e: DragEvent| {
            e.prevent_default();
            drag_over.set(true);
        })
    };
    let ondragleave = {
        let drag_over = drag_over.clone();
        Callback::from(move |_: DragEvent| drag_over.set(false))
    };
    let onclick = {
        let input = input.clone();
        Callback::from(move |_| {
            if let Some(input) = input.cast::<HtmlInputElement>() {
                input.click();
            }
        })
    };
    let on_folder_click = {
        let input = folder_input.clone();
        Callback::from(move |_| {
            if let Some(input) = input.cast::<HtmlInputElement>() {
                input.click();
            }
        })
    };
    let class = classes!("dropzone", drag_over.then_some("over"));
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
                    {if *drag_over { t.drop_active() } else { t.drop_hint() }}
                    {" "}
                    <button type="button" id="pick-button" class="primary" {onclick}>{t.pick_button()}</button>
                    {" "}
                    <button type="button" id="pick-folder-button" onclick={on_folder_click}>{t.pick_folder_button()}</button>
                </p>
                <p class="sub">{t.many_hint()}</p>
                <input type="file" id="file-input" class="visually-hidden" tabindex="-1"
                    aria-hidden="true" multiple=true ref={input} {onchange}/>
                <input type="file" id="folder-input" class="visually-hidden" tabindex="-1"
                    aria-hidden="true" multiple=true webkitdirectory=true ref={folder_input}
                    onchange={on_folder_change}/>
                {match &*note {
                    Some(PickNote::NoImages) => html! { <p class="note" id="pick-note">{t.folder_without_images()}</p> },
                    Some(PickNote::Unreadable(detail)) => html! { <p class="note" id="pick-note">{t.folder_unreadable(detail)}</p> },
                    None => html! {},
                }}
                {match &props.current {
                    Some((name, bytes)) => html! { <p class="current" id="current-file">{t.current_file(name, *bytes)}</p> },
                    None => html! {},
                }}
            </div>
        </section>
    }
}
