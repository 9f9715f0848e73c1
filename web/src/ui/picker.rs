//! Stage 1: pick or drop an image.

use crate::i18n::T;
use web_sys::{DragEvent, Event, File, HtmlInputElement};
use yew::{
    classes, function_component, html, use_node_ref, use_state, Callback, Html, Properties,
    TargetCast,
};

#[derive(Properties, PartialEq)]
pub struct PickerProps {
    pub t: T,
    /// The image being worked on: name and size.
    pub current: Option<(String, u64)>,
    pub on_pick: Callback<File>,
}

#[function_component(Picker)]
pub fn picker(props: &PickerProps) -> Html {
    let t = props.t;
    let input = use_node_ref();
    let drag_over = use_state(|| false);

    let onchange = {
        let on_pick = props.on_pick.clone();
        Callback::from(move |e: Event| {
            let input: HtmlInputElement = e.target_unchecked_into();
            if let Some(file) = input.files().and_then(|f| f.get(0)) {
                on_pick.emit(file);
            }
            // Let the same file be picked again later.
            input.set_value("");
        })
    };
    let ondrop = {
        let on_pick = props.on_pick.clone();
        let drag_over = drag_over.clone();
        Callback::from(move |e: DragEvent| {
            e.prevent_default();
            drag_over.set(false);
            let file = e
                .data_transfer()
                .and_then(|d| d.files())
                .and_then(|f| f.get(0));
            if let Some(file) = file {
                on_pick.emit(file);
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
                </p>
                <input type="file" id="file-input" class="visually-hidden" tabindex="-1"
                    aria-hidden="true" ref={input} {onchange}/>
                {match &props.current {
                    Some((name, bytes)) => html! { <p class="current" id="current-file">{t.current_file(name, *bytes)}</p> },
                    None => html! {},
                }}
            </div>
        </section>
    }
}
