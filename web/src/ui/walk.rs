//! Training: the guided walk, from the blue screen of 2024-07-19 to the fixed practice disk, one
//! step at a time. Steps 2–6 show the structure viewer's views of the practice disk, step 7 the
//! same views re-read from the fixed image, step 8 the downloads. Three exercises are checked by
//! the page against the typed values the worker read (never against answers written here).
//!
//! Keyboard: the step list is a list of buttons (`aria-current="step"` on the current one), the
//! Previous/Next buttons, and ← → anywhere in the walk outside a form control; moving to a step
//! puts the focus on its heading.

use super::fixed::DownloadLinks;
use super::structures::{patch, structure};
use crate::i18n::{WalkStep, T};
use crate::view::{ExplainView, FixedView};
use kaifuku_ntfs::edit::ChangedStructure;
use kaifuku_rescue::explain::{FieldName, StructureKind};
use kaifuku_rescue::Verdict;
use std::collections::BTreeSet;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use web_sys::{HtmlElement, HtmlInputElement, KeyboardEvent};
use yew::{
    function_component, html, use_effect_with, use_node_ref, use_reducer, use_state, AttrValue,
    Callback, Html, Properties, Reducible,
};

#[derive(Properties, PartialEq)]
pub struct WalkProps {
    pub t: T,
    /// The practice disk's structures and the plan's patches (once read).
    pub before: Option<Rc<ExplainView>>,
    /// The same re-read from the fixed image (once fixed).
    pub after: Option<Rc<ExplainView>>,
    /// A plan is ready and nothing is running: the fix can start.
    pub can_fix: bool,
    /// The fix is verified and its downloads are ready.
    pub fixed: Option<(Rc<FixedView>, DownloadLinks)>,
    /// The untouched practice disk: `blob:` URL and file name.
    pub untouched: Option<(AttrValue, AttrValue)>,
    pub on_fix: Callback<()>,
}

#[function_component(Walk)]
pub fn walk(props: &WalkProps) -> Html {
    let t = props.t;
    let step = use_state(|| 0usize);
    let heading = use_node_ref();
    {
        // The step's heading takes the focus when the step changes, and when the fix the
        // trainee started in step 7 is done (its button is gone by then).
        let heading = heading.clone();
        use_effect_with((*step, props.fixed.is_some()), move |_| {
            if let Some(h) = heading.cast::<HtmlElement>() {
                let _ = h.focus();
            }
        });
    }
    let total = WalkStep::ALL.len();
    let go = {
        let step = step.clone();
        Callback::from(move |to: usize| step.set(to.min(total - 1)))
    };
    let current = WalkStep::ALL[*step];
    let onkeydown = {
        let go = go.clone();
        let at = *step;
        Callback::from(move |e: KeyboardEvent| {
            let in_control = e
                .target()
                .and_then(|t| t.dyn_into::<HtmlElement>().ok())
                .is_some_and(|el| {
                    matches!(el.tag_name().as_str(), "INPUT" | "SELECT" | "TEXTAREA")
                });
            if in_control || e.alt_key() || e.ctrl_key() || e.meta_key() {
                return;
            }
            match e.key().as_str() {
                "ArrowRight" if at + 1 < total => {
                    e.prevent_default();
                    go.emit(at + 1);
                }
                "ArrowLeft" if at > 0 => {
                    e.prevent_default();
                    go.emit(at - 1);
                }
                _ => {}
            }
        })
    };
    html! {
        <section class="walk" id="walk" aria-labelledby="walk-title" {onkeydown}
            data-step={current.code()}>
            <h2 id="walk-title">{t.walk_heading()}</h2>
            <p>{t.walk_intro()}</p>
            <nav aria-label={t.walk_steps_label()}>
                <ol class="walk-steps">
                    {for WalkStep::ALL.iter().enumerate().map(|(i, s)| {
                        let go = go.clone();
                        html! {
                            <li>
                                <button type="button" class="walk-step" data-step={s.code()}
                                    aria-current={if i == *step { Some("step") } else { None }}
                                    onclick={Callback::from(move |_| go.emit(i))}>
                                    {format!("{}. {}", i + 1, t.walk_step_title(*s))}
                                </button>
                            </li>
                        }
                    })}
                </ol>
            </nav>
            <article class="walk-body" key={current.code()} data-step={current.code()}>
                <p class="walk-position">{t.walk_step_of(*step + 1, total)}</p>
                <h3 id="walk-step-title" tabindex="-1" ref={heading}>{t.walk_step_title(current)}</h3>
                {step_body(props, current)}
            </article>
            <div class="walk-moves">
                <button type="button" id="walk-previous" class="secondary" disabled={*step == 0}
                    onclick={{ let go = go.clone(); let at = *step; Callback::from(move |_| go.emit(at.saturating_sub(1))) }}>
                    {t.walk_previous()}
                </button>
                {" "}
                <button type="button" id="walk-next" disabled={*step + 1 == total}
                    onclick={{ let at = *step; Callback::from(move |_| go.emit(at + 1)) }}>
                    {t.walk_next()}
                </button>
            </div>
        </section>
    }
}

fn waiting(t: T) -> Html {
    html! { <p class="walk-waiting" role="status">{t.walk_waiting()}</p> }
}

/// The viewer's views of `view` that `keep` selects, or a note that there are none.
fn views(t: T, view: &ExplainView, keep: impl Fn(&StructureKind) -> bool) -> Html {
    let shown: Vec<Html> = view
        .structures
        .iter()
        .filter(|s| keep(&s.what))
        .map(|s| structure(t, s))
        .collect();
    if shown.is_empty() {
        html! { <p>{t.walk_nothing_here()}</p> }
    } else {
        html! { <>{for shown}</> }
    }
}

fn step_body(props: &WalkProps, step: WalkStep) -> Html {
    let t = props.t;
    let before = props.before.as_deref();
    match step {
        WalkStep::Outage => html! {
            <>
                <pre class="bsod" role="img" aria-label={t.bsod_alt()}>{t.bsod_text()}</pre>
                <p>{t.outage_what()}</p>
                <p>{t.outage_manual()}</p>
                <p>{t.outage_here()}</p>
            </>
        },
        WalkStep::PartitionTable => match before {
            None => waiting(t),
            Some(v) => html! {
                <>
                    <p>{t.walk_partitions_intro()}</p>
                    <ul class="walk-partitions">
                        {for v.partitions.iter().map(|p| html! {
                            <li data-partition={p.number.to_string()} data-first-lba={p.first_lba.to_string()}
                                data-windows={p.windows.to_string()}>
                                {t.walk_partition_row(p.number, t.partition_type(p.type_name),
                                    &t.fs_name(p.filesystem, None), p.first_lba)}
                            </li>
                        })}
                    </ul>
                    {views(t, v, |k| matches!(k, StructureKind::Mbr { .. } | StructureKind::GptHeader | StructureKind::GptEntry { .. }))}
                    {partition_exercise(t, v)}
                </>
            },
        },
        WalkStep::BootSector => match before {
            None => waiting(t),
            Some(v) => html! {
                <>
                    <p>{t.walk_boot_intro()}</p>
                    {views(t, v, |k| matches!(k, StructureKind::NtfsBootSector { .. }))}
                </>
            },
        },
        WalkStep::PathWalk => match before {
            None => waiting(t),
            Some(v) => html! {
                <>
                    <p>{t.walk_path_intro()}</p>
                    {views(t, v, |k| matches!(k, StructureKind::IndexEntry { .. }))}
                </>
            },
        },
        WalkStep::Record => match before {
            None => waiting(t),
            Some(v) => html! {
                <>
                    <p>{t.walk_record_intro()}</p>
                    <ul class="walk-targets">
                        {for v.targets.iter().map(|x| html! {
                            <li data-record={x.record.to_string()} data-sequence={x.sequence.to_string()}
                                data-link-count={x.link_count.to_string()}>
                                {t.walk_target(&x.path, x.record, &x.modified, x.verdict)}
                            </li>
                        })}
                    </ul>
                    {views(t, v, |k| matches!(k, StructureKind::MftRecord { .. } | StructureKind::FileStart { .. }))}
                    {file_exercise(t, v)}
                </>
            },
        },
        WalkStep::Plan => match before {
            None => waiting(t),
            Some(v) if v.patches.is_empty() => html! { <p>{t.walk_plan_waiting()}</p> },
            Some(v) => html! {
                <>
                    <p>{t.walk_plan_intro()}</p>
                    if v.patches.iter().any(|p| matches!(p.label, ChangedStructure::JournalReplay { .. })) {
                        <p id="walk-plan-replay">{t.walk_plan_replay()}</p>
                    }
                    {for v.patches.iter().map(|p| patch(t, p))}
                    {bit_exercise(t, v)}
                </>
            },
        },
        WalkStep::AfterFix => match (&props.fixed, props.after.as_deref()) {
            (None, _) => {
                let on_fix = props.on_fix.clone();
                html! {
                    <>
                        <p>{t.walk_fix_first()}</p>
                        <button type="button" id="walk-fix" disabled={!props.can_fix}
                            onclick={Callback::from(move |_| on_fix.emit(()))}>{t.walk_fix_button()}</button>
                    </>
                }
            }
            (Some(_), None) => waiting(t),
            (Some(_), Some(v)) => html! {
                <div class="walk-after" data-phase="after">
                    <p>{t.walk_after_intro()}</p>
                    {views(t, v, |k| matches!(k, StructureKind::MftRecord { .. } | StructureKind::FileStart { .. }))}
                    <h4>{t.walk_reread_heading()}</h4>
                    {for v.patches.iter().map(|p| patch(t, p))}
                    {views(t, v, |k| !matches!(k, StructureKind::MftRecord { .. } | StructureKind::FileStart { .. }))}
                </div>
            },
        },
        WalkStep::Downloads => html! {
            <>
                <p>{t.walk_downloads_intro()}</p>
                <ul class="downloads">
                    {match &props.fixed {
                        Some((f, links)) => html! {
                            <li><a id="walk-download-fixed" class="button primary" href={links.image.clone()}
                                download={f.output_name.clone()}>{t.walk_download_fixed()}</a></li>
                        },
                        None => html! { <li>{t.walk_download_after_fix()}</li> },
                    }}
                    {match &props.untouched {
                        Some((url, name)) => html! {
                            <li><a id="walk-download-untouched" class="button secondary" href={url.clone()}
                                download={name.clone()}>{t.walk_download_untouched()}</a></li>
                        },
                        None => html! {},
                    }}
                </ul>
                <ul class="drills">
                    {for t.walk_drills().iter().map(|d| html! { <li>{*d}</li> })}
                </ul>
            </>
        },
    }
}

/// One answer offered by an exercise; `note` says why it is wrong when it is.
#[derive(Clone, PartialEq)]
struct Choice {
    key: String,
    label: String,
    note: Option<String>,
}

#[derive(Properties, PartialEq)]
struct ExerciseProps {
    t: T,
    id: &'static str,
    question: String,
    choices: Vec<Choice>,
    /// The keys of the right answers (all of them when `multiple`, any one otherwise).
    correct: BTreeSet<String>,
    /// Checkboxes (choose all that apply) rather than radio buttons.
    multiple: bool,
    /// Why the right answer is right, shown once checked.
    why: String,
}

/// An exercise's answer so far: the keys chosen, and the answer last checked (`None` when it
/// changed since). A reducer, so every change applies to the current answer, however quickly
/// the changes follow each other.
#[derive(Default, PartialEq)]
struct Answer {
    chosen: BTreeSet<String>,
    checked: Option<BTreeSet<String>>,
}

enum AnswerChange {
    /// A choice was ticked or unticked; `multiple` keeps the other choices.
    Choose {
        key: String,
        on: bool,
        multiple: bool,
    },
    Check,
}

impl Reducible for Answer {
    type Action = AnswerChange;
    fn reduce(self: Rc<Self>, change: AnswerChange) -> Rc<Self> {
        match change {
            AnswerChange::Choose { key, on, multiple } => {
                let mut chosen = if multiple {
                    self.chosen.clone()
                } else {
                    BTreeSet::new()
                };
                if on {
                    chosen.insert(key);
                } else {
                    chosen.remove(&key);
                }
                Rc::new(Answer {
                    chosen,
                    checked: None,
                })
            }
            AnswerChange::Check => Rc::new(Answer {
                chosen: self.chosen.clone(),
                checked: Some(self.chosen.clone()),
            }),
        }
    }
}

#[function_component(Exercise)]
fn exercise(props: &ExerciseProps) -> Html {
    let t = props.t;
    let answer = use_reducer(Answer::default);
    let on_change = {
        let answer = answer.dispatcher();
        let multiple = props.multiple;
        Callback::from(move |e: web_sys::Event| {
            let Some(input) = e
                .target()
                .and_then(|t| t.dyn_into::<HtmlInputElement>().ok())
            else {
                return;
            };
            answer.dispatch(AnswerChange::Choose {
                key: input.value(),
                on: input.checked(),
                multiple,
            });
        })
    };
    let on_check = {
        let answer = answer.dispatcher();
        Callback::from(move |_| answer.dispatch(AnswerChange::Check))
    };
    let right = |answer: &BTreeSet<String>| {
        if props.multiple {
            *answer == props.correct
        } else {
            answer.len() == 1 && answer.iter().all(|k| props.correct.contains(k))
        }
    };
    let feedback = match &answer.checked {
        None => html! {},
        Some(answer) if answer.is_empty() => html! { <>{t.exercise_choose_first()}</> },
        Some(answer) => {
            let ok = right(answer);
            let notes: Vec<&str> = props
                .choices
                .iter()
                .filter(|c| answer.contains(&c.key))
                .filter_map(|c| c.note.as_deref())
                .collect();
            html! {
                <span class={if ok { "right" } else { "wrong" }} data-correct={ok.to_string()}>
                    {if ok { t.exercise_right() } else { t.exercise_wrong() }}{" "}
                    {if ok { html! {} } else { html! { <>{for notes.iter().map(|n| html! { <>{*n}{" "}</> })}</> } }}
                    {props.why.clone()}
                </span>
            }
        }
    };
    let kind = if props.multiple { "checkbox" } else { "radio" };
    html! {
        <fieldset class="exercise" id={props.id} data-exercise={props.id}>
            <legend>{t.exercise_heading()}{": "}{props.question.clone()}</legend>
            {for props.choices.iter().enumerate().map(|(i, c)| {
                let id = format!("{}-{i}", props.id);
                html! {
                    <div class="choice">
                        <input type={kind} id={id.clone()} name={props.id} value={c.key.clone()}
                            checked={answer.chosen.contains(&c.key)} onchange={on_change.clone()}/>
                        <label for={id}>{c.label.clone()}</label>
                    </div>
                }
            })}
            <button type="button" class="secondary exercise-check" onclick={on_check}>{t.exercise_check()}</button>
            <p class="exercise-feedback" role="status" aria-live="polite">{feedback}</p>
        </fieldset>
    }
}

/// Which partition holds Windows: the partitions the worker read, right where it found Windows.
fn partition_exercise(t: T, v: &ExplainView) -> Html {
    let Some(windows) = v.partitions.iter().find(|p| p.windows) else {
        return html! {};
    };
    let describe = |p: &kaifuku_rescue::explain::PartitionView| {
        format!(
            "{} ({})",
            t.partition_type(p.type_name),
            t.fs_name(p.filesystem, None)
        )
    };
    let choices: Vec<Choice> = v
        .partitions
        .iter()
        .map(|p| Choice {
            key: p.number.to_string(),
            label: t.exercise_partition_choice(p.number, t.partition_type(p.type_name)),
            note: (!p.windows).then(|| t.exercise_partition_note(p.number, &describe(p))),
        })
        .collect();
    html! {
        <Exercise key="exercise-partition" {t} id="exercise-partition" question={t.exercise_partition().to_string()}
            {choices} correct={BTreeSet::from([windows.number.to_string()])} multiple={false}
            why={t.exercise_partition_why(windows.number)}/>
    }
}

/// Which file is faulty: the matched files, right where the rule's verdict says faulty.
fn file_exercise(t: T, v: &ExplainView) -> Html {
    let Some(faulty) = v.targets.iter().find(|x| x.verdict == Verdict::Faulty) else {
        return html! {};
    };
    let file_name = |path: &str| path.rsplit('\\').next().unwrap_or(path).to_string();
    let choices: Vec<Choice> = v
        .targets
        .iter()
        .map(|x| Choice {
            key: x.record.to_string(),
            label: format!("{} — {}", file_name(&x.path), x.modified),
            note: (x.verdict != Verdict::Faulty)
                .then(|| t.exercise_file_note(&file_name(&x.path), &x.modified, x.verdict)),
        })
        .collect();
    let correct: BTreeSet<String> = v
        .targets
        .iter()
        .filter(|x| x.verdict == Verdict::Faulty)
        .map(|x| x.record.to_string())
        .collect();
    html! {
        <Exercise key="exercise-file" {t} id="exercise-file" question={t.exercise_file().to_string()}
            {choices} {correct} multiple={false}
            why={t.exercise_file_why(&file_name(&faulty.path), &faulty.modified, faulty.all_zero)}/>
    }
}

/// Which bits of `$MFT:$BITMAP` change: the bits the plan's patches change there; the other
/// choices are numbers a trainee may confuse them with (the directory's record, the files'
/// sequence numbers, the records next to them).
fn bit_exercise(t: T, v: &ExplainView) -> Html {
    let bits: BTreeSet<u64> = v
        .patches
        .iter()
        .flat_map(|p| &p.changed)
        .filter(|c| c.field == Some(FieldName::MftBitmapBits))
        .flat_map(|c| &c.bits)
        .map(|b| b.bit)
        .collect();
    if bits.is_empty() {
        return html! {};
    }
    let directory = v.structures.iter().find_map(|s| match &s.what {
        StructureKind::IndexEntry { name, record, .. }
            if name.eq_ignore_ascii_case("CrowdStrike") =>
        {
            Some(*record)
        }
        _ => None,
    });
    let mut offered: BTreeSet<u64> = bits.clone();
    offered.extend(directory);
    offered.extend(v.targets.iter().map(|x| u64::from(x.sequence)));
    offered.extend(bits.iter().map(|b| b + bits.len() as u64));
    let choices: Vec<Choice> = offered
        .iter()
        .map(|b| Choice {
            key: b.to_string(),
            label: t.exercise_bit_choice(*b),
            note: None,
        })
        .collect();
    let records: Vec<u64> = bits.iter().copied().collect();
    html! {
        <Exercise key="exercise-bit" {t} id="exercise-bit" question={t.exercise_bit().to_string()}
            {choices} correct={bits.iter().map(u64::to_string).collect::<BTreeSet<_>>()} multiple={true}
            why={t.exercise_bit_why(&records)}/>
    }
}
