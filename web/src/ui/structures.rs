//! "Show the bytes": the structures kaifuku read for this image and the bytes the fix changes, as
//! hex views with every field named. The hex views are hidden from screen readers; the tables
//! and lists beside them say the same in words (each field with its offset, length and value).

use crate::i18n::T;
use crate::view::ExplainView;
use kaifuku_rescue::explain::{Field, PatchView, StructureView};
use std::rc::Rc;
use yew::{classes, function_component, html, Html, NodeRef, Properties};

#[derive(Properties, PartialEq)]
pub struct StructuresProps {
    pub t: T,
    pub view: Rc<ExplainView>,
    pub focus: NodeRef,
}

/// A value as JSON, for scripts and tests (`data-*` attributes).
fn json<S: serde::Serialize>(v: &S) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Index of the smallest field covering each byte.
fn field_of_bytes(len: usize, fields: &[Field]) -> Vec<Option<usize>> {
    (0..len)
        .map(|at| {
            fields
                .iter()
                .enumerate()
                .filter(|(_, f)| f.offset <= at && at < f.offset + f.len)
                .min_by_key(|(_, f)| f.len)
                .map(|(i, _)| i)
        })
        .collect()
}

fn hex_view(disk_offset: u64, bytes: &[u8], fields: &[Field]) -> Html {
    let owner = field_of_bytes(bytes.len(), fields);
    html! {
        <pre class="hex" aria-hidden="true">
            {for bytes.chunks(16).enumerate().map(|(row, line)| {
                let at = row * 16;
                html! {
                    <>
                        <span class="addr">{format!("{:012x} ", disk_offset + at as u64)}</span>
                        {for line.iter().enumerate().map(|(i, b)| {
                            let class = match owner[at + i] {
                                Some(f) => classes!("b", format!("f{}", f % 6)),
                                None => classes!("b"),
                            };
                            html! { <><span {class}>{format!("{b:02x}")}</span>{" "}</> }
                        })}
                        {"\n"}
                    </>
                }
            })}
        </pre>
    }
}

pub(super) fn structure(t: T, s: &StructureView) -> Html {
    html! {
        <article class="structure" data-what={json(&s.what)} data-disk-offset={s.disk_offset.to_string()}>
            <h3>{t.structure_kind(&s.what)}</h3>
            <p class="where">{t.at_disk_byte(s.disk_offset, s.bytes.len())}</p>
            {hex_view(s.disk_offset, &s.bytes, &s.fields)}
            <table class="fields">
                <caption class="visually-hidden">{t.structure_kind(&s.what)}</caption>
                <thead><tr>
                    <th scope="col">{t.col_field_offset()}</th>
                    <th scope="col">{t.col_length()}</th>
                    <th scope="col">{t.col_field()}</th>
                    <th scope="col">{t.col_value()}</th>
                </tr></thead>
                <tbody>
                    {for s.fields.iter().enumerate().map(|(i, f)| html! {
                        <tr data-field={json(&f.name)} data-value={json(&f.value)}>
                            <td class="num">{format!("+{:#06x}", f.offset)}</td>
                            <td class="num">{f.len}</td>
                            <th scope="row"><span class={format!("swatch f{}", i % 6)} aria-hidden="true"></span>{t.field_name(f.name)}</th>
                            <td>{t.field_value(&f.value)}</td>
                        </tr>
                    })}
                </tbody>
            </table>
        </article>
    }
}

fn patch_hex(disk_offset: u64, bytes: &[u8], other: &[u8]) -> Html {
    html! {
        <pre class="hex" aria-hidden="true">
            {for bytes.chunks(16).enumerate().map(|(row, line)| {
                let at = row * 16;
                html! {
                    <>
                        <span class="addr">{format!("{:012x} ", disk_offset + at as u64)}</span>
                        {for line.iter().enumerate().map(|(i, b)| {
                            let text = format!("{b:02x}");
                            if other.get(at + i) != Some(b) {
                                html! { <><mark>{text}</mark>{" "}</> }
                            } else {
                                html! { <>{text}{" "}</> }
                            }
                        })}
                        {"\n"}
                    </>
                }
            })}
        </pre>
    }
}

pub(super) fn patch(t: T, p: &PatchView) -> Html {
    html! {
        <article class="patch" data-label={json(&p.label)} data-disk-offset={p.disk_offset.to_string()}>
            <h4>{t.structure(&p.label)}</h4>
            <p class="where">{t.at_disk_byte(p.disk_offset, p.after.len())}</p>
            {match p.fill {
                Some((byte, len)) => html! { <p>{t.filled(byte, len)}</p> },
                None => html! {
                    <div class="before-after">
                        <div><p class="side">{t.before()}</p>{patch_hex(p.disk_offset, &p.before, &p.after)}</div>
                        <div><p class="side">{t.after()}</p>{patch_hex(p.disk_offset, &p.after, &p.before)}</div>
                    </div>
                },
            }}
            <ul class="changed">
                {for p.changed.iter().map(|c| html! {
                    <li data-field={json(&c.field)}>
                        {t.changed_run(c.offset, c.len, c.field)}
                        {if c.bits.is_empty() { html! {} } else { html! {
                            <ul>
                                {for c.bits.iter().map(|b| html! {
                                    <li class="bit" data-bit={b.bit.to_string()} data-set-after={b.set_after.to_string()}>
                                        {t.changed_bit(b.bit, b.set_after)}
                                    </li>
                                })}
                            </ul>
                        }}}
                    </li>
                })}
            </ul>
        </article>
    }
}

#[function_component(Structures)]
pub fn structures(props: &StructuresProps) -> Html {
    let t = props.t;
    let v = &props.view;
    html! {
        <section class="structures" id="structures" aria-labelledby="structures-title">
            <h2 id="structures-title" tabindex="-1" ref={props.focus.clone()}>{t.structures_heading()}</h2>
            <p>{t.structures_intro()}</p>
            {for v.structures.iter().map(|s| structure(t, s))}
            {if v.patches.is_empty() { html! {} } else { html! {
                <>
                    <h3 id="patches-title">{t.patches_heading()}</h3>
                    {for v.patches.iter().map(|p| patch(t, p))}
                </>
            }}}
        </section>
    }
}
