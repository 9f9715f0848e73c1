//! Training: "Practise on a sample disk". The practice disks (`web/practice/*.raw.gz`, made by
//! real tools at build time) are fetched only when a button here is pressed — or, in the
//! single-file build, read from the page where they are inlined — decompressed in the page
//! (`DecompressionStream`) into a `File`, and then go through the same flow as a picked image.

use crate::i18n::T;
use crate::practice::Scenario;
use js_sys::{Array, Reflect, Uint8Array};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Blob, File, FilePropertyBag, ReadableStream, ReadableWritablePair, Response, WritableStream,
};
use yew::{function_component, html, AttrValue, Callback, Html, Properties};

#[derive(Properties, PartialEq)]
pub struct PracticeProps {
    pub t: T,
    /// A practice disk is being fetched and decompressed.
    pub loading: Option<Scenario>,
    /// Why the last practice disk could not be loaded (the browser's words).
    pub failed: Option<AttrValue>,
    pub on_practice: Callback<Scenario>,
}

#[function_component(Practice)]
pub fn practice(props: &PracticeProps) -> Html {
    let t = props.t;
    html! {
        <section class="practice" id="practice" aria-labelledby="practice-title"
            aria-busy={if props.loading.is_some() { "true" } else { "false" }}>
            <h2 id="practice-title">{t.practice_heading()}</h2>
            <p>{t.practice_intro()}</p>
            <ul class="scenarios">
                {for Scenario::ALL.iter().map(|&s| {
                    let on_practice = props.on_practice.clone();
                    let id = format!("practice-{}", s.code());
                    html! {
                        <li>
                            <button type="button" id={id} class="secondary"
                                disabled={props.loading.is_some()}
                                onclick={Callback::from(move |_| on_practice.emit(s))}>
                                {t.practice_button(s)}
                            </button>
                            {" "}<span class="scenario-note">{t.practice_note(s)}</span>
                        </li>
                    }
                })}
            </ul>
            {match props.loading {
                Some(s) => html! { <p class="practice-loading" role="status">{t.practice_loading(s)}</p> },
                None => html! {},
            }}
            {match &props.failed {
                Some(detail) => html! {
                    <p class="practice-failed" id="practice-failed" role="alert">
                        {t.practice_failed()}<br/><code>{detail.clone()}</code>
                    </p>
                },
                None => html! {},
            }}
        </section>
    }
}

// `DecompressionStream`, which every browser kaifuku runs in has; web-sys offers it only behind
// its unstable-API flag.
#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = DecompressionStream)]
    type Inflate;
    #[wasm_bindgen(constructor, js_class = "DecompressionStream", catch)]
    fn new(format: &str) -> Result<Inflate, JsValue>;
    #[wasm_bindgen(method, getter)]
    fn readable(this: &Inflate) -> ReadableStream;
    #[wasm_bindgen(method, getter)]
    fn writable(this: &Inflate) -> WritableStream;
}

fn single_file() -> bool {
    web_sys::window()
        .and_then(|w| Reflect::get(&w, &JsValue::from_str("KAIFUKU_SINGLE_FILE")).ok())
        .is_some_and(|v| v.is_truthy())
}

async fn blob_of_response(response: Response) -> Result<Blob, JsValue> {
    JsFuture::from(response.blob()?).await?.dyn_into()
}

/// The compressed disk: fetched from the build's `practice/` folder, or (single file) decoded
/// from the page itself, where `web/pack.mjs` inlined it as base64.
async fn compressed(s: Scenario) -> Result<Blob, JsValue> {
    let window = web_sys::window().ok_or("no window")?;
    if single_file() {
        let id = format!("kaifuku-practice-{}", s.code());
        let text = window
            .document()
            .and_then(|d| d.get_element_by_id(&id))
            .and_then(|e| e.text_content())
            .ok_or("this copy of the page has no practice disks inlined")?;
        // atob gives one character per byte (U+0000..U+00FF).
        let bytes: Vec<u8> = window
            .atob(text.trim())?
            .chars()
            .map(|c| c as u32 as u8)
            .collect();
        let parts = Array::of1(&Uint8Array::from(bytes.as_slice()));
        return Blob::new_with_u8_array_sequence(&parts);
    }
    let url = format!("./practice/{}.raw.gz", s.code());
    let response: Response = JsFuture::from(window.fetch_with_str(&url))
        .await?
        .dyn_into()?;
    if !response.ok() {
        return Err(JsValue::from_str(&format!(
            "{url}: HTTP {} {}",
            response.status(),
            response.status_text()
        )));
    }
    blob_of_response(response).await
}

/// The practice disk as a `File` named `practice-NAME.raw`, ready for the normal flow.
pub async fn practice_file(s: Scenario) -> Result<File, JsValue> {
    let gz = compressed(s).await?;
    // A server may already have undone the gzip (Content-Encoding): then it is the raw disk.
    let head: Vec<u8> =
        Uint8Array::new(&JsFuture::from(gz.slice_with_i32_and_i32(0, 2)?.array_buffer()).await?)
            .to_vec();
    let raw = if head == [0x1f, 0x8b] {
        let inflate = Inflate::new("gzip")?;
        let pair = ReadableWritablePair::new(&inflate.readable(), &inflate.writable());
        let stream = gz.stream().pipe_through(&pair);
        blob_of_response(Response::new_with_opt_readable_stream(Some(&stream))?).await?
    } else {
        gz
    };
    let options = FilePropertyBag::new();
    options.set_type("application/octet-stream");
    File::new_with_blob_sequence_and_options(&Array::of1(&raw), &s.file_name(), &options)
}
