//! Next to the image picker: a rule file (TOML) for the next image inspected. A file over 64 KiB
//! is refused unread; otherwise its text is parsed here with the core's `rule_file::parse` (the
//! worker checks the rules again), and the page lists the rules it brings or says why it is
//! refused. A refused file leaves the built-in rule alone in force, as without a file.

use crate::i18n::T;
use crate::protocol::RuleChoice;
use crate::view::{code, RuleView};
use kaifuku_rescue::rule_file::{self, RuleFileError};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Event, File, HtmlInputElement};
use yew::{
    function_component, html, use_node_ref, use_state, Callback, Html, Properties, TargetCast,
};

#[derive(Properties, PartialEq)]
pub struct RulePickerProps {
    pub t: T,
    /// The rules chosen: those of a file that parsed, or none (the built-in rule).
    pub on_rules: Callback<RuleChoice>,
}

/// What the picker shows.
#[derive(Clone, PartialEq)]
enum Loaded {
    /// No rule file: the built-in rule.
    None,
    Reading(String),
    Rules {
        file: String,
        rules: Vec<RuleView>,
    },
    Refused {
        file: String,
        error: RuleFileError,
    },
    /// The browser could not read the file (its words).
    Unreadable {
        file: String,
        detail: String,
    },
}

/// Reads `file`'s text: refused unread when it is too large for a rule file.
async fn read_rule_file(file: &File) -> Result<Result<rule_file::RuleFile, RuleFileError>, String> {
    let bytes = file.size() as u64;
    if bytes > rule_file::MAX_FILE_BYTES as u64 {
        return Ok(Err(RuleFileError::TooLarge { bytes }));
    }
    let text = JsFuture::from(file.text())
        .await
        .map_err(|e| format!("{e:?}"))?;
    let text = text
        .as_string()
        .ok_or_else(|| "the file's text is no string".to_string())?;
    Ok(rule_file::parse(&text))
}

#[function_component(RulePicker)]
pub fn rule_picker(props: &RulePickerProps) -> Html {
    let t = props.t;
    let input = use_node_ref();
    let loaded = use_state(|| Loaded::None);

    let onchange = {
        let on_rules = props.on_rules.clone();
        let loaded = loaded.clone();
        Callback::from(move |e: Event| {
            let input: HtmlInputElement = e.target_unchecked_into();
            let Some(file) = input.files().and_then(|f| f.get(0)) else {
                return;
            };
            // Let the same file be picked again after it was edited.
            input.set_value("");
            let name = file.name();
            loaded.set(Loaded::Reading(name.clone()));
            // Until the file is read, the next image gets the built-in rule.
            on_rules.emit(RuleChoice::default());
            let on_rules = on_rules.clone();
            let loaded = loaded.clone();
            wasm_bindgen_futures::spawn_local(async move {
                match read_rule_file(&file).await {
                    Ok(Ok(parsed)) => {
                        let choice = RuleChoice::of_file(&parsed);
                        loaded.set(Loaded::Rules {
                            file: name,
                            rules: choice.user.iter().map(RuleView::of).collect(),
                        });
                        on_rules.emit(choice);
                    }
                    Ok(Err(error)) => loaded.set(Loaded::Refused { file: name, error }),
                    Err(detail) => loaded.set(Loaded::Unreadable { file: name, detail }),
                }
            });
        })
    };
    let onclick = {
        let input = input.clone();
        Callback::from(move |_| {
            if let Some(input) = input.cast::<HtmlInputElement>() {
                input.click();
            }
        })
    };
    let onclear = {
        let on_rules = props.on_rules.clone();
        let loaded = loaded.clone();
        Callback::from(move |_| {
            loaded.set(Loaded::None);
            on_rules.emit(RuleChoice::default());
        })
    };
    let state = match &*loaded {
        Loaded::None => "none",
        Loaded::Reading(_) => "reading",
        Loaded::Rules { .. } => "loaded",
        Loaded::Refused { .. } | Loaded::Unreadable { .. } => "refused",
    };
    let body = match &*loaded {
        Loaded::None => html! { <p>{t.rules_builtin_only()}</p> },
        Loaded::Reading(file) => html! { <p>{t.rules_reading(file)}</p> },
        Loaded::Rules { file, rules } => html! {<>
            <p>{t.rules_loaded(file, rules.len())}</p>
            <ul id="rules-list">
                {for rules.iter().map(|r| rule_item(t, r))}
            </ul>
        </>},
        Loaded::Refused { file, error } => html! {<>
            <p class="rule-file-error" role="alert" data-code={code(serde_json::to_value(error))}
                title={error.to_string()}>{t.rule_file_error(error)}</p>
            <p>{t.rules_refused(file)}</p>
        </>},
        Loaded::Unreadable { file, detail } => html! {<>
            <p class="rule-file-error" role="alert" data-code="unreadable">{t.rules_unreadable(detail)}</p>
            <p>{t.rules_refused(file)}</p>
        </>},
    };
    html! {
        <section class="rules-pick" aria-labelledby="rules-title">
            <h3 id="rules-title">{t.rules_heading()}</h3>
            <p class="sub">{t.rules_hint()}</p>
            <p>
                <button type="button" id="rules-button" {onclick}>{t.rules_button()}</button>
                {if state == "none" { html! {} } else { html! {<>
                    {" "}
                    <button type="button" id="rules-clear" onclick={onclear}>{t.rules_clear()}</button>
                </>}}}
            </p>
            <input type="file" id="rules-input" class="visually-hidden" tabindex="-1"
                aria-hidden="true" accept=".toml,text/plain" ref={input} {onchange}/>
            <div id="rules-status" data-state={state}>{body}</div>
        </section>
    }
}

fn rule_item(t: T, r: &RuleView) -> Html {
    html! {
        <li class="rule" data-key={r.key.clone()}>
            <strong class="rule-title">{t.rule_title_of(r)}</strong>
            {t.rule_description_of(r).map(|d| html! {<span class="sub rule-description">{d}</span>}).unwrap_or_default()}
            <span class="sub">{t.rule_target(&r.target, r.windows_only)}</span>
            {r.header_hex.as_ref().map(|h| html! {<span class="sub">{t.rule_header(h)}</span>}).unwrap_or_default()}
            {r.faulty.as_ref().map(|(from, to)| html! {<span class="sub">{t.rule_faulty_window(from, to)}</span>}).unwrap_or_default()}
            {r.fixed_from.as_ref().map(|f| html! {<span class="sub">{t.rule_fixed_from(f)}</span>}).unwrap_or_default()}
        </li>
    }
}

/// The registry transaction-log checkbox with its explanation: next to the rule file picker (for
/// the next image and a queue made afterwards) and, repeated, under a report whose Windows volume
/// is recent enough (for the image shown). `id` tells the two apart.
pub fn txr_logs_checkbox(t: T, id: &'static str, checked: bool, on_change: Callback<bool>) -> Html {
    let onchange = Callback::from(move |e: Event| {
        let input: HtmlInputElement = e.target_unchecked_into();
        on_change.emit(input.checked());
    });
    let explanation = format!("{id}-explanation");
    html! {
        <div class="txr-logs">
            <label>
                <input type="checkbox" id={id} {checked} {onchange}
                    aria-describedby={explanation.clone()}/>
                {" "}{t.txr_logs_checkbox()}
            </label>
            <p class="sub" id={explanation}>{t.txr_logs_explanation()}</p>
        </div>
    }
}
