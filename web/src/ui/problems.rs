//! Why an image cannot be fixed, what the user should know, and a failure of a later step: each
//! one a box with a title, the explanation and the core's technical detail.

use crate::i18n::T;
use crate::view::{InspectView, Problem, ProblemView};
use kaifuku_rescue::vocabulary::{Blocker, FixFailure, FixRefusal, Reason};
use kaifuku_rescue::FixError;
use std::rc::Rc;
use yew::{classes, function_component, html, Html, NodeRef, Properties};

#[derive(Properties, PartialEq)]
pub struct ProblemsProps {
    pub t: T,
    pub inspect: Option<Rc<InspectView>>,
    /// A later step's failure.
    pub failure: Option<Rc<ProblemView>>,
    /// Focus for the failure's title.
    pub focus: NodeRef,
}

/// The problems of an inspection this section shows: all but the unclean journal, which the
/// consent section explains.
pub fn listed(v: &InspectView) -> impl Iterator<Item = &ProblemView> {
    v.problems.iter().filter(|p| !p.problem.journal_consent())
}

/// How a problem box looks: something to know, something to weigh, or a refusal.
fn kind(p: &Problem) -> &'static str {
    const INFO: &str = "info";
    const CAUTION: &str = "caution";
    const REFUSAL: &str = "refusal";
    match p {
        Problem::Reason { reason } => match reason {
            Reason::JournalMayHoldMatch { .. } => CAUTION,
            Reason::NoWindowsVolume
            | Reason::DirectoryMissing { .. }
            | Reason::NoMatch { .. }
            | Reason::CheckedClean { .. }
            | Reason::Matches { .. } => INFO,
            Reason::Container { .. }
            | Reason::Partitions { .. }
            | Reason::Volume { .. }
            | Reason::PartitionTableDamaged { .. }
            | Reason::DamagedBareNtfs { .. }
            | Reason::VolumeHasProblems { .. }
            | Reason::NoNtfsVolume => REFUSAL,
        },
        Problem::Notice { .. } => INFO,
        Problem::Blocked { blocker, .. } => match blocker {
            Blocker::JournalNotClean { .. } | Blocker::JournalMayHoldMatch { .. } => CAUTION,
            Blocker::BitLocker | Blocker::Hibernated | Blocker::QuotaTracking => REFUSAL,
        },
        Problem::Fix { error } => match error.as_ref() {
            FixError::NothingToFix { .. } => INFO,
            FixError::Refused { refusal } => match refusal {
                FixRefusal::Blocked {
                    blocker: Blocker::JournalNotClean { .. },
                    ..
                } => CAUTION,
                FixRefusal::Blocked { .. }
                | FixRefusal::Inspect { .. }
                | FixRefusal::Ntfs { .. }
                | FixRefusal::ChkdskWouldRestore { .. } => REFUSAL,
            },
            FixError::Failed { failure } => match failure {
                FixFailure::Inspect { .. }
                | FixFailure::PartitionsOverlap { .. }
                | FixFailure::Ntfs { .. }
                | FixFailure::DirectoryVanished { .. }
                | FixFailure::WriteTargetsDamaged { .. }
                | FixFailure::PatchedVolumeDoesNotOpen { .. }
                | FixFailure::PatchedVolumeUnreadable { .. }
                | FixFailure::CheckFailed { .. }
                | FixFailure::CheckFoundProblems { .. }
                | FixFailure::StillMatches { .. }
                | FixFailure::PatchOverlapsJournalReset { .. }
                | FixFailure::ReadFailed { .. }
                | FixFailure::OutputNotMappable { .. }
                | FixFailure::BitLocker { .. }
                | FixFailure::Internal { .. } => REFUSAL,
            },
        },
        Problem::Verify { .. }
        | Problem::KeyFile { .. }
        | Problem::Remote { .. }
        | Problem::Internal { .. } => REFUSAL,
    }
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

fn problem_box(t: T, view: &ProblemView, id: Option<&'static str>, focus: NodeRef) -> Html {
    let p = &view.problem;
    let kind = kind(p);
    let code = view.code.clone();
    html! {
        <div class={classes!("problem", kind)} id={id} data-code={code} role={if kind == "refusal" { "alert" } else { "note" }}>
            <h3 tabindex="-1" ref={focus}>{t.problem_title(p)}</h3>
            <p>{t.problem_text(p)}</p>
            {match &view.detail {
                Some(d) => html! {
                    <details><summary>{t.technical_detail()}</summary><pre lang="en">{d}</pre></details>
                },
                None => html! {},
            }}
        </div>
    }
}
