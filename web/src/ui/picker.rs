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

#[function_component(Picker)]
pub fn picker(props: &PickerProps) -> Html {
    let t = props.t;
    let input = use_node_ref();
    let folder_input = use_node_ref();
    let drag_over = use_state(|| false);

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
        Callback::from(move |e: Event| {
            let input: HtmlInputElement = e.target_unchecked_into();
            let mut files = files_of(input.files());
            files.retain(|f| is_image_name(&f.name()));
            // The order the folder lists them in, whatever order the browser gave.
            files.sort_by_key(|f| {
                js_sys::Reflect::get(f, &"webkitRelativePath".into())
                    .ok()
                    .and_then(|p| p.as_string())
                    .unwrap_or_else(|| f.name())
            });
            if !files.is_empty() {
                on_pick.emit(files);
            }
            input.set_value("");
        })
    };
    let ondrop = {
        let on_pick = props.on_pick.clone();
        let drag_over = drag_over.clone();
        Callback::from(move |e: DragEvent| {
            e.prevent_default();
            drag_over.set(false);
            let files = files_of(e.data_transfer().and_then(|d| d.files()));
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
                {match &props.current {
                    Some((name, bytes)) => html! { <p class="current" id="current-file">{t.current_file(name, *bytes)}</p> },
                    None => html! {},
                }}
            </div>
        </section>
    }
}
