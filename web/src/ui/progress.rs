//! While the worker reads: the step, the bytes read so far, the time, and a cancel button; and the
//! notice after a cancel.

use super::metrics::now;
use crate::i18n::T;
use crate::protocol::{Phase, Stretch};
use gloo::timers::callback::Interval;
use yew::{
    function_component, html, use_effect_with, use_force_update, Callback, Html, NodeRef,
    Properties,
};

/// The elapsed time on screen moves on this often (milliseconds).
const TICK_MS: u32 = 200;

#[derive(Properties, PartialEq)]
pub struct ProgressProps {
    pub t: T,
    pub phase: Phase,
    /// Page-clock time the work began.
    pub started: f64,
    pub bytes: u64,
    pub calls: u64,
    /// While a BitLocker key is stretched: how far.
    #[prop_or_default]
    pub stretch: Option<Stretch>,
    pub on_cancel: Callback<()>,
    /// The step can be stopped. Not while a blob is written: stopping then would leave it partly
    /// fixed (its undo file restores it, but nothing is gained by stopping).
    #[prop_or(true)]
    pub can_cancel: bool,
}

#[function_component(Progress)]
pub fn progress(props: &ProgressProps) -> Html {
    let t = props.t;
    let tick = use_force_update();
    use_effect_with((), move |_| {
        let ticker = Interval::new(TICK_MS, move || tick.force_update());
        move || drop(ticker)
    });
    let secs = (now() - props.started) / 1000.0;
    let on_cancel = props.on_cancel.reform(|_| ());
    html! {
        <section class="busy" id="progress" aria-live="polite" aria-busy="true">
            <p class="step">{t.step(props.phase)}</p>
            {match props.stretch {
                Some(s) => html! {
                    <>
                        <progress id="progress-bar" aria-label={t.step(props.phase)}
                            value={s.done.to_string()} max={s.total.to_string()}></progress>
                        <p class="figures" id="stretch-figures">{t.stretch_progress(s.done, s.total)}</p>
                    </>
                },
                None => html! {
                    <progress id="progress-bar" aria-label={t.step(props.phase)}></progress>
                },
            }}
            <p class="figures" id="progress-figures">{t.progress(props.bytes, props.calls, secs)}</p>
            {if props.can_cancel {
                html! { <button type="button" id="cancel" onclick={on_cancel}>{t.cancel()}</button> }
            } else {
                html! { <p class="sub" id="no-cancel">{t.remote_writing_no_cancel()}</p> }
            }}
        </section>
    }
}

#[derive(Properties, PartialEq)]
pub struct CancelledProps {
    pub t: T,
    pub focus: NodeRef,
}

#[function_component(Cancelled)]
pub fn cancelled(props: &CancelledProps) -> Html {
    html! {
        <section class="notice" id="cancelled" role="status">
            <p tabindex="-1" ref={props.focus.clone()}>{props.t.cancelled()}</p>
        </section>
    }
}
