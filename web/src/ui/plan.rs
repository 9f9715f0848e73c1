//! Stage 2: consent to reset an unclean journal (when needed), then the plan — every byte range
//! that changes, with the structure it belongs to — and the button that fixes.

use crate::i18n::{grouped, StructureName, T};
use crate::view::{InspectView, OutputView, PlanView, ProblemView, RangeView};
use kaifuku_container::Format;
use std::rc::Rc;
use web_sys::{Event, HtmlInputElement};
use yew::{function_component, html, AttrValue, Callback, Html, NodeRef, Properties, TargetCast};

#[derive(Properties, PartialEq)]
pub struct ConsentProps {
    pub t: T,
    pub view: Rc<InspectView>,
    pub consent: bool,
    /// The box can be ticked (not while the plan is being made, nor after).
    pub can_change: bool,
    /// The plan button is there (until a plan exists) and can be pressed.
    pub show_plan_button: bool,
    pub can_plan: bool,
    pub on_consent: Callback<bool>,
    pub on_plan: Callback<()>,
}

/// The unclean journals the consent is about.
pub fn journal_problems(v: &InspectView) -> impl Iterator<Item = &ProblemView> {
    v.problems.iter().filter(|p| p.problem.journal_consent())
}

/// Rendered only when there is a journal to consent to (a component rendering nothing trips Yew
/// 0.23's sibling bookkeeping).
#[function_component(Consent)]
pub fn consent(props: &ConsentProps) -> Html {
    let t = props.t;
    let journal: Vec<&ProblemView> = journal_problems(&props.view).collect();
    let title = journal
        .first()
        .map(|p| t.problem_title(&p.problem))
        .unwrap_or_default();
    let onchange = props.on_consent.reform(|e: Event| {
        let input: HtmlInputElement = e.target_unchecked_into();
        input.checked()
    });
    html! {
        <section class="consent" id="consent-section" aria-labelledby="consent-title">
            <h2 id="consent-title">{title}</h2>
            {for journal.iter().map(|p| html! {<>
                <p>{t.problem_text(&p.problem)}</p>
                {p.problem.journal_state().map(|state| html! {<p class="state">{t.consent_state(state)}</p>}).unwrap_or_default()}
            </>})}
            <p class="check">
                <input type="checkbox" id="consent" checked={props.consent} disabled={!props.can_change} {onchange}/>
                <label for="consent">{t.consent_label()}</label>
            </p>
            {if props.show_plan_button {
                html! {
                    <button type="button" id="plan-button" class="primary" disabled={!props.can_plan}
                        onclick={props.on_plan.reform(|_| ())}>{t.plan_button()}</button>
                }
            } else { html! {} }}
        </section>
    }
}

#[derive(Properties, PartialEq)]
pub struct PlanProps {
    pub t: T,
    pub plan: Rc<PlanView>,
    /// The report the plan was made from: which rule chose each file, when more than one ran.
    #[prop_or_default]
    pub inspect: Option<Rc<InspectView>>,
    /// The container's format: a dynamic VHD also shows its writes to the file.
    pub format: Option<Format>,
    pub focus: NodeRef,
    /// The fix button is there (until the fix is done) and can be pressed.
    pub show_fix_button: bool,
    pub can_fix: bool,
    pub on_fix: Callback<()>,
    /// The download is to be a fixed VHD (the box is ticked).
    #[prop_or_default]
    pub fixed_vhd: bool,
    /// The box can be changed (a plan is shown and not yet carried out).
    #[prop_or_default]
    pub can_choose_output: bool,
    #[prop_or_default]
    pub on_fixed_vhd: Callback<bool>,
    /// The image is a blob fixed where it lives (its URL without the SAS token): no download
    /// format to choose, and the fix begins with the undo file.
    #[prop_or_default]
    pub remote: Option<AttrValue>,
}

/// One row of a changed-ranges table, its structure worded in the page's language.
fn range_row<L: StructureName>(t: T, r: &RangeView<L>) -> Html {
    html! {
        <tr>
            <td class="num"><code>{grouped(r.offset)}</code></td>
            <td class="num">{format!("{} B", grouped(r.len))}</td>
            <td>{r.label.worded(t)}{r.fill.map(|b| format!(" {}", t.filled_with(b))).unwrap_or_default()}</td>
        </tr>
    }
}

#[function_component(Plan)]
pub fn plan(props: &PlanProps) -> Html {
    let t = props.t;
    let p = &*props.plan;
    // Where the file's bytes differ from the disk's: through a block or cluster table, plus the
    // VHDX header.
    let show_file_writes = matches!(
        props.format,
        Some(
            Format::VhdDynamic
                | Format::VhdxFixed
                | Format::VhdxDynamic
                | Format::Qcow2
                | Format::VmdkSparse
                | Format::VmdkStreamOptimized
        )
    );
    let on_fixed_vhd = props.on_fixed_vhd.reform(|e: Event| {
        let input: HtmlInputElement = e.target_unchecked_into();
        input.checked()
    });
    html! {
        <section class="plan" id="plan" aria-labelledby="plan-title">
            <h2 id="plan-title" tabindex="-1" ref={props.focus.clone()}>{t.plan_heading()}</h2>
            <ul class="deletions">
                {for p.deletions.iter().map(|d| html! {
                    <li>
                        <strong>{t.delete_line(&d.path)}</strong>
                        {match props.inspect.as_deref().filter(|v| v.rules.len() > 1).and_then(|v| v.rules.get(d.rule)) {
                            Some(r) => html! {<span class="sub deletion-rule" data-rule={r.key.clone()}>{t.deletion_rule(&t.rule_title_of(r))}</span>},
                            None => html! {},
                        }}
                        <span class="sub">{t.deletion_detail(d.mft_record, d.record_freed, d.clusters_freed, d.remaining_links)}</span>
                        <span class="sub">{t.removed_names(&d.removed_names.join(", "))}</span>
                        {for d.side_indexes.iter().map(|s| html! {<span class="sub">{t.side_index(s)}</span>})}
                    </li>
                })}
                {for p.journal_replays.iter().map(|r| html! {
                    <li class="journal-replay" data-code={crate::view::code(serde_json::to_value(&r.replay))}>
                        {format!("{}: {}", t.vol(&r.volume), t.journal_replay(&r.replay))}
                    </li>
                })}
                {for p.journal_reset.iter().map(|v| html! {<li class="journal-reset">{t.journal_reset_line(v)}</li>})}
                {for p.journal_left.iter().map(|(v, n)| html! {<li class="journal-left">{t.journal_left_line(v, *n)}</li>})}
                {for p.journal_overlaps.iter().map(|o| html! {
                    <li class="journal-overlap" data-code={crate::view::code(serde_json::to_value(&o.overlap))}>
                        {format!("{}: {}", t.vol(&o.volume), t.journal_overlap(&o.overlap))}
                    </li>
                })}
            </ul>
            <p>{t.plan_intro()}</p>
            <p id="plan-summary" data-ranges={p.patches.len().to_string()}>{t.ranges_summary(p.patches.len(), p.bytes_changed)}</p>
            <div class="scroll tall">
            <table id="ranges">
                <thead><tr>
                    <th scope="col" class="num">{t.col_offset()}</th>
                    <th scope="col" class="num">{t.col_length()}</th>
                    <th scope="col">{t.col_structure()}</th>
                </tr></thead>
                <tbody>{for p.patches.iter().map(|r| range_row(t, r))}</tbody>
            </table>
            </div>
            {if show_file_writes {
                html! {
                    <details>
                        <summary>{t.file_writes_heading(p.file_writes.len())}</summary>
                        <div class="scroll tall">
                        <table>
                            <thead><tr>
                                <th scope="col" class="num">{t.col_file_offset()}</th>
                                <th scope="col" class="num">{t.col_length()}</th>
                                <th scope="col">{t.col_structure()}</th>
                            </tr></thead>
                            <tbody>{for p.file_writes.iter().map(|r| range_row(t, r))}</tbody>
                        </table>
                        </div>
                    </details>
                }
            } else { html! {} }}
            <p class="checked">{t.core_checked(p.matches_after)}</p>
            <p class="reads">{t.done_in(p.reads.bytes, p.reads.calls, p.reads.ms)}</p>
            <h2>{t.fix_heading()}</h2>
            {match &props.remote {
                Some(shown) => html! { <p id="remote-fix-intro">{t.remote_fix_intro(shown)}</p> },
                None => html! {
                    <>
                    <p>{t.fix_intro()}</p>
                    <p class="check output-choice">
                        <input type="checkbox" id="as-fixed-vhd" checked={props.fixed_vhd}
                            disabled={!props.can_choose_output} onchange={on_fixed_vhd}/>
                        <label for="as-fixed-vhd">{t.fixed_vhd_label()}</label>
                    </p>
                    </>
                },
            }}
            {match &p.output {
                OutputView::SameFormat => html! {},
                OutputView::FixedVhd { disk_size, file_size } => html! {
                    <p id="output-format" class="sub" data-kind="fixed_vhd">{t.fixed_vhd_line(*disk_size, *file_size)}</p>
                },
                OutputView::SameFormatNotWritable { problem, disk_size, .. } => html! {
                    <p id="output-format" class="warning" data-kind="same_format_not_writable">
                        {t.same_format_not_writable(problem, *disk_size)}
                    </p>
                },
                OutputView::FixedVhdNeedsCommandLine { format } => html! {
                    <p id="output-format" class="warning" data-kind="fixed_vhd_needs_command_line">{t.fixed_vhd_needs_command_line(*format)}</p>
                },
            }}
            {if props.show_fix_button {
                html! {
                    <button type="button" id="fix-button" class="primary" disabled={!props.can_fix}
                        onclick={props.on_fix.reform(|_| ())}>
                        {if props.remote.is_some() { t.remote_prepare_button() } else { t.fix_button() }}
                    </button>
                }
            } else { html! {} }}
        </section>
    }
}
