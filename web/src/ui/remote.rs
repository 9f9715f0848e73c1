//! A disk fixed where it lives: the SAS URL form (with how to allow the page's origin by CORS),
//! then, once the plan is verified, the two steps — save the undo file, write to the blob — and
//! what the read-back confirmed.

use crate::i18n::T;
use crate::view::{CheckView, RemoteFixedView};
use std::rc::Rc;
use web_sys::HtmlInputElement;
use yew::{function_component, html, use_node_ref, AttrValue, Callback, Html, NodeRef, Properties};

/// This page's origin, as the storage account's CORS rule must name it (`null` for a page
/// opened from a file).
fn origin() -> String {
    web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .filter(|o| !o.is_empty())
        .unwrap_or_else(|| "null".into())
}

/// The Azure CLI command that allows this page: the account named by the URL when it is an
/// Azure Blob Storage host.
fn cors_command(origin: &str) -> String {
    let origins = if origin == "null" {
        "'*'".to_string()
    } else {
        origin.to_string()
    };
    format!(
        "az storage cors add --account-name ACCOUNT --services b \\\n  --methods GET PUT HEAD OPTIONS --origins {origins} \\\n  --allowed-headers '*' --exposed-headers '*' --max-age 3600"
    )
}

#[derive(Properties, PartialEq)]
pub struct RemoteFormProps {
    pub t: T,
    /// The blob being worked on (its URL without the SAS token).
    pub current: Option<AttrValue>,
    /// A URL can be opened now (no step is running).
    pub enabled: bool,
    pub on_open: Callback<String>,
}

#[function_component(RemoteForm)]
pub fn remote_form(props: &RemoteFormProps) -> Html {
    let t = props.t;
    let input = use_node_ref();
    let on_submit = {
        let input = input.clone();
        let on_open = props.on_open.clone();
        Callback::from(move |e: web_sys::SubmitEvent| {
            e.prevent_default();
            if let Some(el) = input.cast::<HtmlInputElement>() {
                let url = el.value();
                if !url.trim().is_empty() {
                    on_open.emit(url.trim().to_string());
                }
            }
        })
    };
    let origin = origin();
    html! {
        <section class="remote" id="remote" aria-labelledby="remote-title">
            <h2 id="remote-title">{t.remote_heading()}</h2>
            <p>{t.remote_intro()}</p>
            <form id="remote-form" onsubmit={on_submit}>
                <label for="sas-url">{t.remote_label()}</label>
                <input id="sas-url" type="url" autocomplete="off" spellcheck="false"
                    placeholder="https://ACCOUNT.blob.core.windows.net/CONTAINER/disk.vhd?sv=…&sig=…"
                    ref={input}/>
                <button type="submit" id="sas-open" disabled={!props.enabled}>{t.remote_open_button()}</button>
            </form>
            {match &props.current {
                Some(shown) => html! { <p class="sub" id="remote-current">{t.remote_selected(shown)}</p> },
                None => html! {},
            }}
            <details id="remote-cors">
                <summary>{t.remote_cors_heading()}</summary>
                <p>{t.remote_cors_text(&origin)}</p>
                <pre><code>{cors_command(&origin)}</code></pre>
            </details>
        </section>
    }
}

/// The undo file of a blob's fix, made and not yet written.
#[derive(Clone, PartialEq)]
pub struct RemoteUndo {
    /// The `blob:` URL of the undo file (owned by the page).
    pub link: AttrValue,
    pub name: AttrValue,
    pub size: u64,
    pub checks: Rc<Vec<CheckView>>,
}

#[derive(Properties, PartialEq)]
pub struct RemoteStepsProps {
    pub t: T,
    pub undo: RemoteUndo,
    /// The undo file's link was followed: writing may start.
    pub saved: bool,
    /// Writing can be asked for now (nothing running, not yet written).
    pub can_write: bool,
    pub on_saved: Callback<()>,
    pub on_write: Callback<()>,
    pub written: Option<Rc<RemoteFixedView>>,
    pub focus: NodeRef,
}

#[function_component(RemoteSteps)]
pub fn remote_steps(props: &RemoteStepsProps) -> Html {
    let t = props.t;
    let u = &props.undo;
    let written = match &props.written {
        Some(w) => html! {
            <div id="remote-done">
                <h2 tabindex="-1">{t.remote_done_heading()}</h2>
                <ul class="checks" id="checks">
                    {for w.checks.iter().map(|c| html! {<li>{t.check_text(c)}</li>})}
                </ul>
                <p id="remote-traffic" data-puts={w.puts.to_string()} data-bytes-written={w.bytes_written.to_string()}
                    data-requests={w.requests.to_string()} data-bytes-read={w.bytes_read.to_string()}>
                    {t.remote_done_text(&w.shown, w.puts, w.bytes_written, w.requests, w.bytes_read)}
                </p>
                <p class="note">{t.remote_restore(&w.undo_name)}</p>
            </div>
        },
        None => html! {},
    };
    html! {
        <section class="fixed remote-steps" id="remote-steps" aria-labelledby="remote-undo-title">
            <ul class="checks" id="remote-checks">
                {for u.checks.iter().map(|c| html! {<li>{t.check_text(c)}</li>})}
            </ul>
            <h2 id="remote-undo-title" tabindex="-1" ref={props.focus.clone()}>{t.remote_undo_heading()}</h2>
            <p>{t.remote_undo_text()}</p>
            <p>
                <a id="remote-undo" class="button" href={u.link.clone()} download={u.name.clone()}
                    onclick={props.on_saved.reform(|_| ())}>{t.remote_undo_link(&u.name, u.size)}</a>
            </p>
            {if props.written.is_none() {
                html! {
                    <p>
                        <button type="button" id="remote-write" class="primary"
                            disabled={!(props.saved && props.can_write)}
                            onclick={props.on_write.reform(|_| ())}>{t.remote_write_button()}</button>
                        {if props.saved { html! {} } else {
                            html! { <span class="sub">{" "}{t.remote_write_hint()}</span> }
                        }}
                    </p>
                }
            } else { html! {} }}
            {written}
        </section>
    }
}
