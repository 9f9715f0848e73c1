//! The worker-side code in a real browser worker (headless Chromium): `FileReaderSync` reads of a
//! `File`, and the `Blob`s the download is made of, compared with the bytes they must hold.
//!
//! Run with: `CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
//! CHROMEDRIVER=/usr/bin/chromedriver cargo test --target wasm32-unknown-unknown -p kaifuku-web --test worker`
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Uint8Array};
use kaifuku_bitlocker::RecoveryPasswordFault;
use kaifuku_container::{FileFill, FileWrite, FileWriteLabel, OutputPlan, WriteHow};
use kaifuku_container::{Format, OtherFormat};
use kaifuku_io::{BlockCache, Counted, ReadAt};
use kaifuku_ntfs::check::{Problem as CheckProblem, ProblemKind};
use kaifuku_ntfs::edit::ChangedStructure;
use kaifuku_ntfs::{Damage, Location, LogState, Structure};
use kaifuku_partition::{PartitionType, Scheme, WordedType};
use kaifuku_rescue::registry::{HiveName, HiveReport, RegistryReport};
use kaifuku_rescue::undo::{self, UndoEntry};
use kaifuku_rescue::vocabulary::{
    BitLockerProblem, Blocker, Checked, ContainerProblem, FixFailure, NtfsProblem, Reason,
    RuleNotice, RuleSkip, SkippedRule, VerifyFailure, VolumeName, VolumeProblem,
};
use kaifuku_rescue::vocabulary::{HiveState, WindowsVersion};
use kaifuku_rescue::Rule;
use kaifuku_rescue::{FileSystem, FixError, Outcome, RuleId, Verdict};
use kaifuku_web::protocol::{FromWorker, KeyInput, Phase, Progress, RuleChoice, Stretch, ToWorker};
use kaifuku_web::session::{cache_config, image_pieces, undo_pieces};
use kaifuku_web::view::{
    BitmapView, CheckView, ContainerView, DeletionView, FixedView, IndexBlockView, InspectView,
    JournalFactsView, JournalReplayView, JournalView, KeyFileKind, KeyRequest, MatchView, NtfsView,
    OutputView, OverlapView, PartitionView, PartitionsView, PlanView, PlannedOverlapView,
    PlannedReplayView, Problem, ProblemView, RangeView, Reads, RuleView, VolumeView,
};
use kaifuku_web::worker::{image_blob, undo_blob, FileSource};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use web_sys::{Blob, File, FileReaderSync};

wasm_bindgen_test_configure!(run_in_dedicated_worker);

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
}

fn file_of(bytes: &[u8]) -> File {
    let parts = Array::new();
    let part: JsValue = Uint8Array::from(bytes).into();
    parts.push(&part);
    File::new_with_u8_array_sequence(&parts, "disk.img").unwrap()
}

fn blob_bytes(b: &Blob) -> Vec<u8> {
    let ab = FileReaderSync::new()
        .unwrap()
        .read_as_array_buffer(b)
        .unwrap();
    Uint8Array::new(&ab).to_vec()
}

#[wasm_bindgen_test]
fn file_source_reads_exact_ranges_and_refuses_past_the_end() {
    let data = pattern(300_000);
    let src = FileSource::new(file_of(&data)).unwrap();
    assert_eq!(src.size(), 300_000);
    let mut buf = vec![0u8; 1000];
    src.read_at(123_456, &mut buf).unwrap();
    assert_eq!(buf, data[123_456..124_456]);
    src.read_at(299_000, &mut buf).unwrap();
    assert_eq!(buf, data[299_000..]);
    assert!(src.read_at(299_001, &mut buf).is_err());
    src.read_at(300_000, &mut []).unwrap();
}

#[wasm_bindgen_test]
fn the_cache_keeps_file_reads_few() {
    let data = pattern(4 << 20);
    let counted = Counted::new(FileSource::new(file_of(&data)).unwrap());
    let cache = BlockCache::new(&counted, cache_config());
    // Many small reads, as NTFS parsing makes them: a sequential walk and some revisits.
    let mut buf = [0u8; 1024];
    for i in 0..2048u64 {
        let at = i * 1024;
        cache.read_at(at, &mut buf).unwrap();
        assert_eq!(buf[..], data[at as usize..at as usize + 1024]);
    }
    for i in (0..2048u64).step_by(97) {
        cache.read_at(i * 1024, &mut buf).unwrap();
    }
    let calls = counted.stats().calls;
    assert!(
        calls <= 12,
        "{calls} FileReaderSync calls for 2 MiB of small reads"
    );
}

fn plan() -> OutputPlan {
    OutputPlan {
        writes: vec![
            FileWrite {
                file_offset: 10,
                bytes: vec![0xAB; 20],
                label: FileWriteLabel::virtual_bytes(10, 30, WriteHow::Bytes),
            },
            FileWrite {
                file_offset: 299_990,
                bytes: vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
                label: FileWriteLabel::virtual_bytes(299_990, 300_000, WriteHow::Bytes),
            },
        ],
        // Larger than one fill chunk (1 MiB) is not needed to test the reuse; 2.5 chunks is.
        fills: vec![FileFill {
            file_offset: 100_000,
            len: 150_000,
            byte: 0xFF,
            label: FileWriteLabel::virtual_bytes(100_000, 250_000, WriteHow::Filled),
        }],
        file_size: None,
    }
}

#[wasm_bindgen_test]
fn the_fixed_image_blob_is_the_file_with_the_writes_applied() {
    let data = pattern(300_000);
    let file = file_of(&data);
    let out = plan();
    let pieces = image_pieces(data.len() as u64, &out).unwrap();
    let blob = image_blob(&file, &pieces).unwrap();
    let mut expect = data.clone();
    expect[10..30].fill(0xAB);
    expect[299_990..].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect[100_000..250_000].fill(0xFF);
    assert_eq!(blob.size() as usize, expect.len());
    assert!(blob_bytes(&blob) == expect, "blob bytes differ");
}

#[wasm_bindgen_test]
fn a_large_fill_is_built_from_shared_chunks() {
    let data = vec![0u8; 5 << 20];
    let file = file_of(&data);
    let out = OutputPlan {
        writes: vec![],
        fills: vec![FileFill {
            file_offset: 1000,
            len: (3 << 20) + 12_345,
            byte: 0xFF,
            label: FileWriteLabel::virtual_bytes(1000, 1000 + (3 << 20) + 12_345, WriteHow::Filled),
        }],
        file_size: None,
    };
    let blob = image_blob(&file, &image_pieces(data.len() as u64, &out).unwrap()).unwrap();
    let got = blob_bytes(&blob);
    assert_eq!(got.len(), data.len());
    assert!(got[..1000].iter().all(|b| *b == 0));
    assert!(got[1000..1000 + (3 << 20) + 12_345]
        .iter()
        .all(|b| *b == 0xFF));
    assert!(got[1000 + (3 << 20) + 12_345..].iter().all(|b| *b == 0));
}

#[wasm_bindgen_test]
fn the_undo_blob_is_what_the_command_line_writes() {
    let data = pattern(300_000);
    let file = file_of(&data);
    let out = plan();
    let id = undo::Identity {
        file_size: data.len() as u64,
        virtual_size: data.len() as u64,
        kind: kaifuku_container::Format::Raw,
    };
    // The worker hashes the originals by reading them from the picked file.
    let source = FileSource::new(file.clone()).unwrap();
    let blob = undo_blob(&file, &undo_pieces(&id, &out, &source).unwrap()).unwrap();
    // What the command line does: read the originals, hash the new bytes, encode.
    let mut entries: Vec<UndoEntry> = out
        .writes
        .iter()
        .map(|w| UndoEntry {
            offset: w.file_offset,
            original: data[w.file_offset as usize..w.end() as usize].to_vec(),
            new_hash: undo::fnv1a(&w.bytes),
        })
        .chain(out.fills.iter().map(|f| UndoEntry {
            offset: f.file_offset,
            original: data[f.file_offset as usize..(f.file_offset + f.len) as usize].to_vec(),
            new_hash: undo::fnv1a_fill(f.byte, f.len),
        }))
        .collect();
    entries.sort_by_key(|e| e.offset);
    let expect = undo::encode(&id, &entries);
    assert!(blob_bytes(&blob) == expect, "undo bytes differ");
    let (back_id, back) = undo::decode(&expect).unwrap();
    assert_eq!(back_id, id);
    assert_eq!(back.len(), 3);
}

/// What `postMessage` does to a message: a structured clone (the worker and the page share no
/// objects; a `File` or `Blob` arrives as a new handle to the same bytes).
fn posted(message: JsValue) -> JsValue {
    let clone: js_sys::Function =
        js_sys::Reflect::get(&js_sys::global(), &"structuredClone".into())
            .unwrap()
            .unchecked_into();
    clone.call1(&JsValue::NULL, &message).unwrap()
}

fn volume() -> VolumeName {
    VolumeName {
        partition: Some(3),
        label: Some("Windows".into()),
    }
}

fn reads() -> Reads {
    Reads {
        calls: 50,
        bytes: 3_774_873,
        ms: 131.25,
    }
}

/// A user rule from a rule file: its window's times are NTFS ticks past 2^53.
fn user_rule() -> Rule {
    let text = r#"format = 1
[[rule]]
id = "contoso-agent"
directory = '\ProgramData\Contoso'
name = "CH-*.bin"
faulty = { from = 2025-03-02T04:09:00Z, to = 2025-03-02T04:10:00Z }
[rule.title]
en = "Contoso"
ja = "Contoso(日本語)"
[rule.description]
en = "Contoso's channel files."
ja = "Contoso のチャネルファイルです。"
"#;
    kaifuku_rescue::rule_file::parse(text)
        .unwrap()
        .rules
        .remove(0)
}

fn inspect_view() -> InspectView {
    InspectView {
        file_name: "disk.vhd".into(),
        file_size: 2000 << 30,
        rule_id: RuleId::CrowdStrike20240719,
        rule_path: "\\Windows\\System32\\drivers\\CrowdStrike\\C-00000291*.sys".into(),
        rules: vec![
            RuleView::of(&Rule::crowdstrike_2024_07_19()),
            RuleView::of(&user_rule()),
        ],
        container: Some(ContainerView {
            format: Format::VhdDynamic,
            virtual_size: 2000 << 30,
            file_size: 5 << 20,
        }),
        partitions: Some(PartitionsView {
            scheme: Scheme::Gpt,
            sector_size: 512,
            partitions: vec![PartitionView {
                number: 3,
                start: 1 << 20,
                size: 100 << 20,
                partition_type: PartitionType::Worded(WordedType::BasicData),
                name: None,
                container: false,
            }],
            notes: vec![kaifuku_partition::NoticeKind::GptCopiesDiffer],
            warnings: vec![kaifuku_partition::NoticeKind::DiskEnlarged {
                backup_lba: 77,
                last_lba: 99,
            }],
        }),
        volumes: vec![VolumeView {
            name: volume(),
            partition: Some(3),
            offset: 1 << 20,
            size: 100 << 20,
            filesystem: FileSystem::Ntfs,
            windows: true,
            ntfs: Some(NtfsView {
                label: Some("Windows".into()),
                version: "3.1".into(),
                size: 100 << 20,
                cluster_size: 4096,
                sector_size: 512,
                serial: "1234-ABCD".into(),
                dirty: false,
                log_state: LogState::V2,
                log_empty: false,
                hiberfil_present: false,
                hibernated: false,
                quota_tracking: false,
            }),
            rule_ran: true,
            directory_exists: true,
            matches: vec![MatchView {
                path: "\\Windows\\System32\\drivers\\CrowdStrike\\C-00000291-1.sys".into(),
                name: "C-00000291-1.sys".into(),
                dos_name: Some("C-0000~1.SYS".into()),
                mft_record: 2146,
                size: 41_000,
                created: "2024-07-19T04:09:00Z".into(),
                modified: "2024-07-19T04:09:00Z".into(),
                header_hex: "aa aa aa aa".into(),
                header_known_bad: None,
                all_zero: false,
                verdict: Verdict::NotApplicable,
                rule: 0,
            }],
            error: None,
            refused: false,
            registry: Some(RegistryReport {
                windows_version: WindowsVersion::Build {
                    build: 17763,
                    product_name: Some("Windows Server 2019 Datacenter".into()),
                },
                system: HiveReport {
                    hive: HiveName::System,
                    path: "\\Windows\\System32\\config\\SYSTEM".into(),
                    state: HiveState::Dirty {
                        primary_sequence: 3,
                        secondary_sequence: 2,
                    },
                },
                software: HiveReport {
                    hive: HiveName::Software,
                    path: "\\Windows\\System32\\config\\SOFTWARE".into(),
                    state: HiveState::Damaged {
                        error: kaifuku_registry::HiveError::Truncated {
                            hive_bins_size: 9216000,
                            file_size: 8192,
                        },
                    },
                },
            }),
            skipped_rules: vec![SkippedRule {
                rule_id: "registry-txr-log".into(),
                why: RuleSkip::BuildBelow {
                    build: 9600,
                    needs: 14393,
                },
            }],
            journal_replay: Some(JournalReplayView::UnsupportedVersion {
                version: "2.0".into(),
            }),
            journal: Some(JournalView::Analysed(Box::new(JournalFactsView {
                version: "2.0".into(),
                checkpoint_lsn: 0x8042d1,
                current_lsn: 0x80541d,
                records_after_checkpoint: 66,
                committed: 12,
                uncommitted: 1,
                file_records: vec![(5, Some("\\".into())), (40, None)],
                index_blocks: vec![IndexBlockView {
                    record: 5,
                    name: "$I30".into(),
                    vcn: 0,
                }],
                lcn_ranges: vec![(35, 7)],
                bitmap_ranges: vec![
                    (BitmapView::MftRecords, 35, 6),
                    (
                        BitmapView::IndexBlocks {
                            record: 5,
                            name: "$I30".into(),
                        },
                        0,
                        1,
                    ),
                ],
                unresolved: 0,
                overlap: Some(OverlapView::Overlaps {
                    file_records: vec![],
                    index_blocks: vec![],
                    mft_bitmap_pages: vec![0],
                    cluster_bitmap_pages: vec![],
                    clusters: vec![],
                }),
            }))),
        }],
        outcome: Outcome::Matches,
        problems: [
            Problem::Blocked {
                volume: volume(),
                blocker: Blocker::JournalNotClean {
                    state: LogState::Unclean,
                },
            },
            Problem::Notice {
                volume: volume(),
                notice: RuleNotice::LinkFollowed {
                    link: "\\Windows\\CS".into(),
                    target: "\\??\\C:\\CS".into(),
                },
            },
            Problem::Reason {
                reason: Reason::Volume {
                    volume: VolumeName::place(Some(2)),
                    problem: VolumeProblem::Ntfs {
                        error: NtfsProblem::Damaged {
                            damage: Damage {
                                structure: Structure::IndexNode,
                                at: Some(Location::MftRecord { record: 5 }),
                                detail: "bad entry length".into(),
                            },
                        },
                    },
                },
            },
            Problem::Reason {
                reason: Reason::DirectoryMissing {
                    volume: volume(),
                    directory: "\\Windows\\System32\\drivers\\CrowdStrike".into(),
                },
            },
        ]
        .into_iter()
        .map(ProblemView::of)
        .collect(),
        can_fix: true,
        needs_consent: true,
        key_request: Some(KeyRequest::Refused {
            problem: BitLockerProblem::RecoveryPassword {
                fault: RecoveryPasswordFault::MistypedGroup { group: 3 },
            },
        }),
        reads: reads(),
    }
}

fn plan_view() -> PlanView {
    PlanView {
        deletions: vec![DeletionView {
            path: "\\Windows\\C-00000291-1.sys".into(),
            volume: volume(),
            mft_record: 2146,
            record_freed: true,
            clusters_freed: 11,
            remaining_links: None,
            removed_names: vec!["C-00000291-1.sys".into(), "C-0000~1.SYS".into()],
            side_indexes: vec![],
            rule: 1,
        }],
        journal_reset: vec![volume()],
        journal_left: vec![(volume(), 2)],
        journal_replays: vec![PlannedReplayView {
            volume: volume(),
            replay: JournalReplayView::Replayed {
                committed: 3,
                uncommitted: 1,
            },
        }],
        journal_overlaps: vec![PlannedOverlapView {
            volume: volume(),
            overlap: OverlapView::NoOverlap,
        }],
        patches: vec![RangeView {
            offset: 0x1000,
            len: 1024,
            label: ChangedStructure::MftRecord {
                record: 2146,
                part: None,
            },
            fill: None,
        }],
        file_writes: vec![RangeView {
            offset: 0x4000,
            len: 64 << 20,
            label: FileWriteLabel::virtual_bytes(0x4000, 0x4000 + (64 << 20), WriteHow::Filled),
            fill: Some(0xFF),
        }],
        bytes_changed: 1024 + (64 << 20),
        matches_after: 0,
        reads: reads(),
        output: OutputView::FixedVhd {
            disk_size: 2000 << 30,
            file_size: (2000 << 30) + 512,
        },
    }
}

fn fixed_view() -> FixedView {
    FixedView {
        output_name: "disk-fixed.vhd".into(),
        undo_name: "disk-fixed.vhd.undo".into(),
        report_name: "disk-fixed.vhd.report.json".into(),
        output_size: 5 << 20,
        undo_size: Some(4242),
        checks: vec![
            CheckView::ContainerSame {
                format: Format::VhdDynamic,
                virtual_size: 2000 << 30,
            },
            CheckView::ContainerConverted {
                format: Format::VhdFixed,
                virtual_size: 2000 << 30,
                original_format: Format::VmdkStreamOptimized,
            },
            CheckView::RecordFree {
                volume: volume(),
                record: 2146,
            },
            CheckView::OnlyPlannedRanges {
                ranges: 4,
                bytes: 5000,
            },
        ],
        reads: reads(),
        wasm_memory: 5 << 20,
        fixed_vhd: true,
    }
}

fn blob_of(bytes: &[u8]) -> Blob {
    let parts = Array::new();
    parts.push(&Uint8Array::from(bytes).into());
    Blob::new_with_u8_array_sequence(&parts).unwrap()
}

#[wasm_bindgen_test]
fn page_messages_arrive_in_the_worker_as_sent() {
    let data = pattern(1000);
    let rules = RuleChoice {
        user: vec![Rule::crowdstrike_2024_07_19(), user_rule()],
        txr_logs: false,
    };
    let sent = ToWorker::Inspect {
        file: file_of(&data),
        rules: rules.clone(),
    };
    match ToWorker::from_js(posted(sent.to_js().unwrap())).unwrap() {
        ToWorker::Inspect { file, rules: got } => {
            assert_eq!(file.name(), "disk.img");
            assert!(blob_bytes(&file) == data, "the file's bytes arrive");
            // The rules' times (NTFS ticks, beyond a JavaScript number's exact range) arrive to
            // the tick.
            assert_eq!(got, rules);
            assert_eq!(got.rule_set().unwrap().len(), 2);
        }
        other => panic!("{other:?}"),
    }
    let key_file = pattern(180);
    let sent = ToWorker::Unlock {
        key: KeyInput::StartupKey {
            file: file_of(&key_file),
        },
    };
    match ToWorker::from_js(posted(sent.to_js().unwrap())).unwrap() {
        ToWorker::Unlock {
            key: KeyInput::StartupKey { file },
        } => assert!(blob_bytes(&file) == key_file, "the key file's bytes arrive"),
        other => panic!("{other:?}"),
    }
    for sent in [
        ToWorker::Unlock {
            key: KeyInput::RecoveryPassword {
                text: "111111-111111-111111-111111-111111-111111-111111-111111".into(),
            },
        },
        ToWorker::Unlock {
            key: KeyInput::Password {
                text: "pässword".into(),
            },
        },
        ToWorker::SetRules {
            rules: RuleChoice {
                user: vec![Rule::crowdstrike_2024_07_19(), user_rule()],
                txr_logs: true,
            },
        },
        ToWorker::Plan {
            discard_journal: true,
            fixed_vhd: false,
        },
        ToWorker::Plan {
            discard_journal: false,
            fixed_vhd: true,
        },
        ToWorker::Fix,
    ] {
        let got = ToWorker::from_js(posted(sent.to_js().unwrap())).unwrap();
        assert_eq!(got, sent);
    }
}

#[wasm_bindgen_test]
fn worker_messages_arrive_in_the_page_as_sent() {
    for sent in [
        FromWorker::Ready,
        FromWorker::Progress(Progress {
            phase: Phase::Output,
            bytes: 3 << 20,
            calls: 50,
            ms: 12.5,
            stretch: None,
        }),
        FromWorker::Progress(Progress {
            phase: Phase::Unlock,
            bytes: 1 << 20,
            calls: 9,
            ms: 800.0,
            stretch: Some(Stretch {
                done: 0x4_0000,
                total: 0x10_0000,
            }),
        }),
        FromWorker::KeyFileRefused(ProblemView::of(Problem::KeyFile {
            kind: KeyFileKind::StartupKey,
            detail: "not a startup key".into(),
        })),
        FromWorker::Inspected(inspect_view()),
        FromWorker::Planned(plan_view()),
        FromWorker::Failed(ProblemView::of(Problem::Reason {
            reason: Reason::Container {
                problem: ContainerProblem::UnsupportedFormat {
                    format: OtherFormat::Vhdx,
                    qemu_name: "vhdx".into(),
                },
            },
        })),
        FromWorker::Failed(ProblemView::of(Problem::Fix {
            error: Box::new(FixError::Failed {
                failure: FixFailure::CheckFoundProblems {
                    volume: volume(),
                    checked: Checked::EditedDirectory,
                    problems: vec![CheckProblem {
                        kind: ProblemKind::IndexOrder,
                        record: Some(1992),
                        message: "entries out of order".into(),
                    }],
                },
            }),
        })),
        FromWorker::Failed(ProblemView::of(Problem::Fix {
            error: Box::new(FixError::NothingToFix {
                reasons: vec![Reason::NoWindowsVolume, Reason::NoNtfsVolume],
            }),
        })),
        FromWorker::Failed(ProblemView::of(Problem::Verify {
            failure: VerifyFailure::JournalNotReset {
                volume: volume(),
                state: LogState::Unreadable,
                dirty: false,
            },
        })),
        FromWorker::Failed(ProblemView::of(Problem::Reason {
            reason: Reason::DamagedBareNtfs {
                oem_id_damaged: true,
                backup_intact: false,
            },
        })),
        FromWorker::Failed(ProblemView::of(Problem::Blocked {
            volume: VolumeName::place(None),
            blocker: Blocker::Hibernated,
        })),
        FromWorker::Failed(ProblemView::internal("a bug")),
    ] {
        let got = FromWorker::from_js(posted(sent.to_js().unwrap())).unwrap();
        assert_eq!(got, sent);
    }
    let sent = FromWorker::Fixed {
        view: fixed_view(),
        image: blob_of(&[1, 2, 3]),
        undo: blob_of(&[4, 5]),
        report: blob_of(b"{}"),
    };
    match FromWorker::from_js(posted(sent.to_js().unwrap())).unwrap() {
        FromWorker::Fixed {
            view,
            image,
            undo,
            report,
        } => {
            assert_eq!(view, fixed_view());
            assert_eq!(blob_bytes(&image), [1, 2, 3]);
            assert_eq!(blob_bytes(&undo), [4, 5]);
            assert_eq!(blob_bytes(&report), b"{}");
        }
        other => panic!("{other:?}"),
    }
}

#[wasm_bindgen_test]
fn a_message_of_the_wrong_shape_is_an_error_not_a_guess() {
    let wrong = js_sys::JSON::parse(r#"{"inspect": {"file": "not a file"}}"#).unwrap();
    assert!(ToWorker::from_js(wrong).is_err());
    let unknown = js_sys::JSON::parse(r#"{"explode": {}}"#).unwrap();
    assert!(FromWorker::from_js(unknown).is_err());
}
