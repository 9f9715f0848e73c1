//! Stages 3 and 4: what the read-back of the fixed image checked, and the three downloads.

use crate::i18n::{size, T};
use crate::view::FixedView;
use std::rc::Rc;
use yew::{function_component, html, AttrValue, Html, NodeRef, Properties};

/// `blob:` URLs of the downloads (owned, and revoked, by the page).
#[derive(Clone, PartialEq)]
pub struct DownloadLinks {
    pub image: AttrValue,
    /// None when no undo file is offered.
    pub undo: Option<AttrValue>,
    pub report: AttrValue,
}

#[derive(Properties, PartialEq)]
pub struct FixedProps {
    pub t: T,
    pub fixed: Rc<FixedView>,
    pub links: DownloadLinks,
    /// The journal was reset: Windows runs chkdsk at the first boot.
    pub chkdsk: bool,
    pub focus: NodeRef,
}

#[function_component(Fixed)]
pub fn fixed(props: &FixedProps) -> Html {
    let t = props.t;
    let f = &*props.fixed;
    let d = &props.links;
    html! {
        <section class="fixed" id="fixed" aria-labelledby="verified-title">
            <ul class="checks" id="checks" aria-labelledby="verified-title">
                {for f.checks.iter().map(|c| html! {<li>{t.check_text(c)}</li>})}
            </ul>
            <h2 id="verified-title" tabindex="-1" ref={props.focus.clone()}>{t.download_heading()}</h2>
            <ul class="downloads">
                <li>
                    <a id="download-image" class="button primary" href={d.image.clone()} download={f.output_name.clone()}>
                        {t.download_image()}
                    </a>
                    <span class="sub">{format!("{} — {} ({})", f.output_name, size(f.output_size), t.bytes(f.output_size))}</span>
                </li>
                {match (&d.undo, f.undo_size) {
                    (Some(undo), Some(undo_size)) => html! {
                        <li>
                            <a id="download-undo" class="button" href={undo.clone()} download={f.undo_name.clone()}>{t.download_undo()}</a>
                            <span class="sub">{format!("{} — {}", f.undo_name, size(undo_size))}</span>
                            <span class="sub">{t.undo_hint()}</span>
                        </li>
                    },
                    _ => html! {
                        <li id="no-undo"><span class="sub">{t.no_undo_file(f.fixed_vhd)}</span></li>
                    },
                }}
                <li>
                    <a id="download-report" class="button" href={d.report.clone()} download={f.report_name.clone()}>{t.download_report()}</a>
                    <span class="sub">{&f.report_name}</span>
                </li>
            </ul>
            <p class="note">{t.download_note()}</p>
            <p class="next">{t.next_steps(props.chkdsk)}</p>
            <p class="reads">{format!("{} · {}", t.done_in(f.reads.bytes, f.reads.calls, f.reads.ms), t.memory_line(f.wasm_memory))}</p>
        </section>
    }
}
