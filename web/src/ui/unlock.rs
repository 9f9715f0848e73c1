//! The BitLocker key form, shown when inspection found a volume that needs a key (or refused the
//! one given): a recovery password (masked, with a show toggle, each 6-digit group checked as it
//! is typed by the core's own check), a password, a startup key or a key list picked as a file.
//!
//! The typed key is never kept in the component's state: it is read from the field when the form
//! is sent, the field emptied at once, and the key handed to the worker.

use crate::i18n::{KeyMethod, T};
use crate::protocol::KeyInput;
use crate::view::{KeyRequest, ProblemView};
use kaifuku_bitlocker::{check_typed_groups, recovery_key, RecoveryPasswordFault};
use std::rc::Rc;
use web_sys::{Event, HtmlInputElement, InputEvent, SubmitEvent};
use yew::{
    function_component, html, use_node_ref, use_state, Callback, Html, NodeRef, Properties,
    TargetCast,
};

#[derive(Properties, PartialEq)]
pub struct UnlockProps {
    pub t: T,
    pub request: KeyRequest,
    /// The key file given last could not be read as a key.
    pub key_file_problem: Option<Rc<ProblemView>>,
    pub on_unlock: Callback<KeyInput>,
    /// Focus for the form's heading.
    pub focus: NodeRef,
}

/// Why the form did not send: a recovery password the core's check refuses, or nothing given.
#[derive(Clone, Copy, PartialEq)]
enum FormFault {
    RecoveryPassword(RecoveryPasswordFault),
    NoPassword,
    NoFile,
}

const METHODS: [(KeyMethod, &str); 4] = [
    (KeyMethod::RecoveryPassword, "key-method-recovery"),
    (KeyMethod::Password, "key-method-password"),
    (KeyMethod::StartupKey, "key-method-startup-key"),
    (KeyMethod::KeyList, "key-method-key-list"),
];

fn take_value(input: &NodeRef) -> String {
    match input.cast::<HtmlInputElement>() {
        Some(el) => {
            let value = el.value();
            el.set_value("");
            value
        }
        None => String::new(),
    }
}

fn take_file(input: &NodeRef) -> Option<web_sys::File> {
    let el = input.cast::<HtmlInputElement>()?;
    let file = el.files().and_then(|f| f.get(0));
    el.set_value("");
    file
}

#[function_component(Unlock)]
pub fn unlock(props: &UnlockProps) -> Html {
    let t = props.t;
    let method = use_state(|| KeyMethod::RecoveryPassword);
    let shown = use_state(|| false);
    let fault = use_state(|| None::<FormFault>);
    let secret_input = use_node_ref();
    let file_input = use_node_ref();

    let oninput = {
        let fault = fault.clone();
        let method = method.clone();
        Callback::from(move |e: InputEvent| {
            if *method != KeyMethod::RecoveryPassword {
                fault.set(None);
                return;
            }
            let input: HtmlInputElement = e.target_unchecked_into();
            let mut typed = input.value();
            fault.set(
                check_typed_groups(&typed)
                    .err()
                    .map(FormFault::RecoveryPassword),
            );
            zero(&mut typed);
        })
    };
    let onsubmit = {
        let fault = fault.clone();
        let method = method.clone();
        let secret_input = secret_input.clone();
        let file_input = file_input.clone();
        let on_unlock = props.on_unlock.clone();
        let shown = shown.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let key = match *method {
                KeyMethod::RecoveryPassword => {
                    // Checked before it is taken: a mistyped group stays in the field to correct.
                    let mut typed = secret_input
                        .cast::<HtmlInputElement>()
                        .map(|el| el.value())
                        .unwrap_or_default();
                    let checked = recovery_key(&typed).map(drop);
                    zero(&mut typed);
                    match checked {
                        Ok(()) => Ok(KeyInput::RecoveryPassword {
                            text: take_value(&secret_input),
                        }),
                        Err(f) => Err(FormFault::RecoveryPassword(f)),
                    }
                }
                KeyMethod::Password => {
                    let text = take_value(&secret_input);
                    if text.is_empty() {
                        Err(FormFault::NoPassword)
                    } else {
                        Ok(KeyInput::Password { text })
                    }
                }
                KeyMethod::StartupKey => take_file(&file_input)
                    .map(|file| KeyInput::StartupKey { file })
                    .ok_or(FormFault::NoFile),
                KeyMethod::KeyList => take_file(&file_input)
                    .map(|file| KeyInput::KeyList { file })
                    .ok_or(FormFault::NoFile),
            };
            match key {
                Ok(key) => {
                    fault.set(None);
                    shown.set(false);
                    on_unlock.emit(key);
                }
                Err(f) => fault.set(Some(f)),
            }
        })
    };

    let radios = METHODS.iter().map(|(m, id)| {
        let m = *m;
        let onchange = {
            let method = method.clone();
            let fault = fault.clone();
            let secret_input = secret_input.clone();
            let file_input = file_input.clone();
            Callback::from(move |_: Event| {
                method.set(m);
                fault.set(None);
                // A key typed for one kind is not kept for another.
                take_value(&secret_input);
                take_file(&file_input);
            })
        };
        html! {
            <label class="key-method">
                <input type="radio" name="key-method" id={*id} checked={*method == m} {onchange}/>
                {" "}{t.key_method(m)}
            </label>
        }
    });

    let fault_text = (*fault).map(|f| match f {
        FormFault::RecoveryPassword(f) => t.recovery_password_fault(f),
        FormFault::NoPassword => t.no_password().to_string(),
        FormFault::NoFile => t.no_key_file().to_string(),
    });
    let invalid = fault_text.is_some();
    let field = match *method {
        KeyMethod::RecoveryPassword | KeyMethod::Password => {
            let (id, label, hint) = if *method == KeyMethod::RecoveryPassword {
                (
                    "recovery-password",
                    t.key_method(KeyMethod::RecoveryPassword),
                    t.recovery_password_hint(),
                )
            } else {
                ("password", t.key_method(KeyMethod::Password), "")
            };
            let toggle = {
                let shown = shown.clone();
                Callback::from(move |_| shown.set(!*shown))
            };
            let numeric = *method == KeyMethod::RecoveryPassword;
            html! {
                <div class="key-field">
                    <label for={id}>{label}</label>
                    <div class="key-input-row">
                        <input id={id} key={id} ref={secret_input.clone()}
                            type={if *shown { "text" } else { "password" }}
                            inputmode={if numeric { "numeric" } else { "text" }}
                            autocomplete="off" spellcheck="false" autocapitalize="off"
                            aria-invalid={if invalid { "true" } else { "false" }}
                            aria-describedby="key-hint key-status"
                            oninput={oninput.clone()}/>
                        <button type="button" id="show-key" aria-pressed={if *shown { "true" } else { "false" }}
                            aria-label={t.show_key_label()} onclick={toggle}>{t.show_key(*shown)}</button>
                    </div>
                    <p id="key-hint" class="hint">{hint}</p>
                </div>
            }
        }
        KeyMethod::StartupKey | KeyMethod::KeyList => {
            let (id, accept) = if *method == KeyMethod::StartupKey {
                ("startup-key-input", ".bek,.BEK")
            } else {
                ("key-list-input", ".csv,.txt,text/csv,text/plain")
            };
            html! {
                <div class="key-field">
                    <label for={id}>{t.key_method(*method)}</label>
                    <input type="file" id={id} key={id} accept={accept} ref={file_input.clone()}
                        aria-describedby="key-hint key-status"/>
                    <p id="key-hint" class="hint">{t.key_file_hint(*method)}</p>
                </div>
            }
        }
    };
    // The key file just given comes first: it is newer than the request.
    let refused = props
        .key_file_problem
        .as_ref()
        .map(|p| t.problem_text(&p.problem))
        .or_else(|| t.key_refused(&props.request));
    html! {
        <section class="unlock" id="unlock" aria-labelledby="unlock-title">
            <h2 id="unlock-title" tabindex="-1" ref={props.focus.clone()}>{t.unlock_title()}</h2>
            <p>{t.unlock_intro()}</p>
            <p class="key-promise" id="key-promise">{t.key_stays_here()}</p>
            {match refused {
                Some(text) => html! { <p class="key-refused" id="key-refused" role="alert">{text}</p> },
                None => html! {},
            }}
            <form id="unlock-form" {onsubmit} novalidate={true}>
                <fieldset>
                    <legend>{t.key_method_legend()}</legend>
                    {for radios}
                </fieldset>
                {field}
                <p id="key-status" class="key-status" role="status" aria-live="polite">
                    {fault_text.unwrap_or_default()}
                </p>
                <button type="submit" id="unlock-button" class="primary">{t.unlock_button()}</button>
            </form>
        </section>
    }
}

/// Overwrites a copy of the typed key before it is dropped (the field itself is emptied):
/// `clear` keeps the allocation, so the zeros land on the key's bytes.
fn zero(text: &mut String) {
    let len = text.len();
    text.clear();
    text.extend(std::iter::repeat_n('0', len));
    text.clear();
}
