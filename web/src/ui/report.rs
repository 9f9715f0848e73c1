//! What the image holds: the container, the outcome, partitions, volumes and the rule's matches.

use super::metrics;
use crate::i18n::{grouped, size, T};
use crate::view::{code, InspectView, JournalView, PartitionsView, VolumeView};
use kaifuku_partition::Scheme;
use kaifuku_rescue::{FileSystem, Outcome};
use std::rc::Rc;
use yew::{classes, function_component, html, use_effect_with, Html, NodeRef, Properties};

#[derive(Properties, PartialEq)]
pub struct ReportProps {
    pub t: T,
    pub view: Rc<InspectView>,
    /// Where the keyboard focus goes (a fresh ref when it goes elsewhere).
    pub focus: NodeRef,
}

#[function_component(ImageReport)]
pub fn image_report(props: &ReportProps) -> Html {
    let t = props.t;
    let v = &*props.view;
    // For the benchmark: when the report of this image is on the page.
    use_effect_with(props.view.clone(), |_| metrics::mark("listed"));
    let outcome = code(serde_json::to_value(v.outcome));
    html! {
        <section class="report" id="report" aria-labelledby="report-title">
            <h2 id="report-title" tabindex="-1" ref={props.focus.clone()}>{t.image_heading()}</h2>
            <dl class="facts">
                <dt>{t.file()}</dt><dd id="file-name">{&v.file_name}</dd>
                {match &v.container {
                    Some(c) => html! {<>
                        <dt>{t.format()}</dt><dd id="container-format" data-format={code(serde_json::to_value(c.format))}>{t.format_name(c.format)}</dd>
                        <dt>{t.virtual_size()}</dt><dd id="virtual-size" data-bytes={c.virtual_size.to_string()}>{format!("{} ({})", size(c.virtual_size), t.bytes(c.virtual_size))}</dd>
                        <dt>{t.file_size()}</dt><dd>{format!("{} ({})", size(c.file_size), t.bytes(c.file_size))}</dd>
                    </>},
                    None => html! {},
                }}
            </dl>
            <p class={classes!("outcome", outcome.clone())} id="outcome" data-outcome={outcome.clone()}>
                {if v.outcome == Outcome::Matches && !v.can_fix && !v.needs_consent {
                    t.outcome_blocked(v.match_count())
                } else {
                    t.outcome(v.outcome, v.match_count())
                }}
            </p>
            {v.partitions.as_ref().map(|p| partitions(t, p)).unwrap_or_default()}
            {volumes(t, v)}
            {matches(t, v)}
            <p class="reads">{t.done_in(v.reads.bytes, v.reads.calls, v.reads.ms)}</p>
        </section>
    }
}

fn partitions(t: T, p: &PartitionsView) -> Html {
    html! {
        <section aria-labelledby="parts-title">
            <h3 id="parts-title">{t.partitions_heading()}</h3>
            <p id="partition-scheme" data-scheme={code(serde_json::to_value(p.scheme))}>{t.scheme(p.scheme, p.sector_size)}</p>
            {if p.scheme != Scheme::None {
                html! {
                    <div class="scroll">
                    <table id="partitions">
                        <thead><tr>
                            <th scope="col">{t.col_number()}</th>
                            <th scope="col" class="num">{t.col_start()}</th>
                            <th scope="col" class="num">{t.col_size()}</th>
                            <th scope="col">{t.col_type()}</th>
                            <th scope="col">{t.col_name()}</th>
                        </tr></thead>
                        <tbody>
                        {for p.partitions.iter().map(|x| html! {
                            <tr>
                                <td>{x.number}</td>
                                <td class="num">{grouped(x.start)}</td>
                                <td class="num">{size(x.size)}</td>
                                <td>{t.partition_type(x.partition_type)}{if x.container { t.extended() } else { "" }}</td>
                                <td>{x.name.clone().unwrap_or_default()}</td>
                            </tr>
                        })}
                        </tbody>
                    </table>
                    </div>
                }
            } else { html! {} }}
            {for p.notes.iter().map(|n| html! {<p class="note">{format!("{}: {}", t.table_note(), t.notice(n))}</p>})}
            {for p.warnings.iter().map(|n| html! {<p class="warning">{format!("{}: {}", t.table_warning(), t.notice(n))}</p>})}
        </section>
    }
}

fn volumes(t: T, v: &InspectView) -> Html {
    if v.volumes.is_empty() {
        return html! {};
    }
    let row = |x: &VolumeView| {
        let name = t.vol(&x.name);
        let n = x.ntfs.as_ref();
        html! {
            <tr class={classes!(x.windows.then_some("windows"))}>
                <th scope="row">{name}{if x.windows { html! {<span class="badge" title={t.windows_volume()}>{t.windows_badge()}</span>} } else { html! {} }}</th>
                <td>{t.fs_name(x.filesystem, n.map(|n| n.version.as_str()))}</td>
                <td class="num">{size(n.map_or(x.size, |n| n.size))}</td>
                <td class="num">{n.map(|n| format!("{} B", n.cluster_size)).unwrap_or_default()}</td>
                <td class="journal" data-state={n.map(|n| code(serde_json::to_value(n.log_state))).unwrap_or_default()}>{n.map(|n| t.journal_state(n.log_state, n.log_empty)).unwrap_or_default()}</td>
                <td>{n.map(|n| t.dirty(n.dirty)).unwrap_or_default()}</td>
                <td>{t.bitlocker(x.filesystem == FileSystem::Bitlocker)}</td>
                <td>{n.map(|n| t.hibernation(n.hibernated, n.hiberfil_present)).unwrap_or_default()}</td>
            </tr>
        }
    };
    html! {
        <section aria-labelledby="vols-title">
            <h3 id="vols-title">{t.volumes_heading()}</h3>
            <div class="scroll">
            <table id="volumes">
                <thead><tr>
                    <th scope="col">{t.col_volume()}</th>
                    <th scope="col">{t.col_fs()}</th>
                    <th scope="col" class="num">{t.col_size()}</th>
                    <th scope="col" class="num">{t.col_cluster()}</th>
                    <th scope="col">{t.col_journal()}</th>
                    <th scope="col">{t.col_dirty()}</th>
                    <th scope="col">{t.col_encryption()}</th>
                    <th scope="col">{t.col_hibernation()}</th>
                </tr></thead>
                <tbody>{for v.volumes.iter().map(row)}</tbody>
            </table>
            </div>
            {for v.volumes.iter().filter_map(|x| x.error.as_ref().map(|e| (x, e))).map(|(x, e)| html! {
                <p class="warning">{format!("{} — {}: {e}", t.vol(&x.name), t.volume_error(x.refused))}</p>
            })}
            {for v.volumes.iter().filter_map(|x| x.journal.as_ref().map(|j| (x, j))).map(|(x, j)| {
                let overlap = match j {
                    JournalView::Analysed(facts) => facts
                        .overlap
                        .as_ref()
                        .map(|o| code(serde_json::to_value(o)))
                        .unwrap_or_default(),
                    _ => String::new(),
                };
                html! {
                    <div class="journal-content" data-code={code(serde_json::to_value(j))} data-overlap={overlap}>
                        <p>{format!("{} — {}", t.vol(&x.name), t.journal_heading())}</p>
                        <ul>{for t.journal_lines(j).into_iter().map(|l| html! {<li>{l}</li>})}</ul>
                        {for x.journal_replay.iter().map(|r| html! {
                            <p class="journal-replay" data-code={code(serde_json::to_value(r))}>{t.journal_replay(r)}</p>
                        })}
                    </div>
                }
            })}
            {for v.volumes.iter().filter_map(|x| x.registry.as_ref().map(|r| (x, r))).map(|(x, r)| html! {
                <div class="registry" data-build={r.build().map(|b| b.to_string()).unwrap_or_default()}>
                    <p>{format!("{} — {}", t.vol(&x.name), t.registry_heading())}</p>
                    <ul>
                        <li class="windows-version" data-code={code(serde_json::to_value(&r.windows_version))}>{t.windows_version(&r.windows_version)}</li>
                        {for [&r.system, &r.software].into_iter().map(|h| html! {
                            <li class="hive" data-hive={h.hive.file_name()} data-code={code(serde_json::to_value(&h.state))} title={h.state.to_string()}>{t.hive_state(h.hive, &h.state)}</li>
                        })}
                    </ul>
                </div>
            })}
            {for v.volumes.iter().filter(|x| !x.skipped_rules.is_empty()).map(|x| html! {
                <ul class="skipped-rules">
                    {for x.skipped_rules.iter().map(|s| {
                        let title = v
                            .rules
                            .iter()
                            .find(|r| r.key == s.rule_id)
                            .map_or_else(|| s.rule_id.clone(), |r| t.rule_title_of(r));
                        html! {
                            <li class="rule-skipped" data-rule={s.rule_id.clone()}
                                data-code={code(serde_json::to_value(&s.why))} title={s.why.to_string()}>
                                {format!("{} — {}", t.vol(&x.name), t.rule_skipped(&title, &s.why))}
                            </li>
                        }
                    })}
                </ul>
            })}
        </section>
    }
}

/// Times as the core writes them (RFC 3339, UTC) in a shorter form: "2024-07-19 04:09:00".
fn utc(s: &str) -> String {
    s.replace('T', " ").trim_end_matches('Z').to_string()
}

fn matches(t: T, v: &InspectView) -> Html {
    if !v.volumes.iter().any(|x| x.rule_ran) {
        return html! {};
    }
    let several = v.rules.len() > 1;
    let rows = v.volumes.iter().flat_map(|x| x.matches.iter()).map(|m| {
        let verdict = code(serde_json::to_value(m.verdict));
        let rule = v.rules.get(m.rule);
        html! {
            <tr class={classes!("match", verdict.clone())} data-verdict={verdict.clone()}>
                <th scope="row" class="path">
                    <code>{&m.path}</code>
                    <span class="sub">{t.mft_record(m.mft_record)}</span>
                    {m.dos_name.as_ref().map(|d| html! {<span class="sub">{t.short_name(d)}</span>}).unwrap_or_default()}
                </th>
                <td class="num">{t.bytes(m.size)}</td>
                <td>{utc(&m.created)}</td>
                <td>{utc(&m.modified)}</td>
                <td><code>{if m.header_hex.is_empty() { t.empty_file().to_string() } else { m.header_hex.clone() }}</code>
                    <span class="sub">{t.header_known_bad(m.header_known_bad)}</span></td>
                <td class="zero" data-zero={m.all_zero.to_string()}>{t.yes_no(m.all_zero)}</td>
                <td class="verdict">{t.verdict_of(rule, m.verdict)}</td>
                {match rule.filter(|_| several) {
                    Some(r) => html! {<td class="match-rule" data-rule={r.key.clone()}>{t.rule_title_of(r)}</td>},
                    None => html! {},
                }}
            </tr>
        }
    });
    html! {
        <section aria-labelledby="matches-title">
            <h3 id="matches-title">{t.matches_heading()}</h3>
            {if v.rules.is_empty() {
                html! {<p class="rule">{t.rule_line(v.rule_id, &v.rule_path)}</p>}
            } else {
                html! {<>{for v.rules.iter().map(|r| html! {
                    <p class="rule" data-rule={r.key.clone()}>{t.rule_line_titled(&t.rule_title_of(r), &r.target)}</p>
                })}</>}
            }}
            {if v.match_count() > 0 {
                html! {<>
                <div class="scroll">
                <table id="matches">
                    <thead><tr>
                        <th scope="col">{t.col_file()}</th>
                        <th scope="col" class="num">{t.col_size()}</th>
                        <th scope="col">{t.col_created()}</th>
                        <th scope="col">{t.col_modified()}</th>
                        <th scope="col">{t.col_header()}</th>
                        <th scope="col">{t.col_zero()}</th>
                        <th scope="col">{t.col_verdict()}</th>
                        {if several { html! {<th scope="col">{t.col_rule()}</th>} } else { html! {} }}
                    </tr></thead>
                    <tbody>{for rows}</tbody>
                </table>
                </div>
                {if v.rules.is_empty() || v.rules.iter().any(|r| r.id == kaifuku_rescue::RuleId::CrowdStrike20240719) {
                    html! {<p class="guidance">{t.guidance()}</p>}
                } else { html! {} }}
                </>}
            } else { html! {} }}
        </section>
    }
}
