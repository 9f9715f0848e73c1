//! Why an image cannot be fixed, what the user should know, and a failure of a later step: each
//! one a box with a title, the explanation and the core's technical detail.

use crate::i18n::T;
use crate::view::{InspectView, Problem, ProblemCode};
use std::rc::Rc;
use yew::{classes, function_component, html, Html, NodeRef, Properties};

#[derive(Properties, PartialEq)]
pub struct ProblemsProps {
    pub t: T,
    pub inspect: Option<Rc<InspectView>>,
    /// A later step's failure.
    pub failure: Option<Rc<Problem>>,
    /// Focus for the failure's title.
    pub focus: NodeRef,
}

/// The problems of an inspection this section shows: all but the unclean journal, which the
/// consent section explains.
pub fn listed(v: &InspectView) -> impl Iterator<Item = &Problem> {
    v.problems
        .iter()
        .filter(|p| !matches!(p.code, ProblemCode::JournalUnclean { .. }))
}

/// Problems from inspection (refusals, nothing to fix) and a failure of a later step. Rendered
/// only when there is one (a component rendering nothing trips Yew 0.23's sibling bookkeeping).
#[function_component(Problems)]
pub fn problems(props: &ProblemsProps) -> Html {
    let t = props.t;
    let mut boxes = Vec::new();
    if let Some(v) = &props.inspect {
        for p in listed(v) {
            boxes.push(problem_box(t, p, None, NodeRef::default()));
        }
    }
    if let Some(p) = &props.failure {
        boxes.push(problem_box(t, p, Some("failure"), props.focus.clone()));
    }
    html! { <section class="problems" id="problems" aria-live="polite">{for boxes}</section> }
}

fn problem_box(t: T, p: &Problem, id: Option<&'static str>, focus: NodeRef) -> Html {
    let kind = match &p.code {
        ProblemCode::NoMatch
        | ProblemCode::NoCrowdStrikeDirectory
        | ProblemCode::NoWindows
        | ProblemCode::DirectorySkipped { .. }
        | ProblemCode::LinkFollowed { .. } => "info",
        ProblemCode::JournalUnclean { .. } => "caution",
        _ => "refusal",
    };
    let code = serde_json::to_value(&p.code)
        .ok()
        .and_then(|v| v.get("code").and_then(|c| c.as_str().map(String::from)))
        .unwrap_or_default();
    html! {
        <div class={classes!("problem", kind)} id={id} data-code={code} role={if kind == "refusal" { "alert" } else { "note" }}>
            <h3 tabindex="-1" ref={focus}>{t.problem_title(&p.code)}</h3>
            <p>{t.problem_text(p)}</p>
            {match &p.detail {
                Some(d) => html! {
                    <details><summary>{t.technical_detail()}</summary><pre lang="en">{d}</pre></details>
                },
                None => html! {},
            }}
        </div>
    }
}
