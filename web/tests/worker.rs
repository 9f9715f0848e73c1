//! The worker-side code in a real browser worker (headless Chromium): `FileReaderSync` reads of a
//! `File`, and the `Blob`s the download is made of, compared with the bytes they must hold.
//!
//! Run with: `CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
//! CHROMEDRIVER=/usr/bin/chromedriver cargo test --target wasm32-unknown-unknown -p kaifuku-web --test worker`
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Uint8Array};
use kaifuku_container::{FileFill, FileWrite, OutputPlan};
use kaifuku_io::{BlockCache, Counted, ReadAt};
use kaifuku_rescue::undo::{self, UndoEntry};
use kaifuku_web::session::{cache_config, image_pieces, undo_pieces};
use kaifuku_web::worker::{image_blob, undo_blob, FileSource};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;
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
                label: "a".into(),
            },
            FileWrite {
                file_offset: 299_990,
                bytes: vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
                label: "end".into(),
            },
        ],
        // Larger than one fill chunk (1 MiB) is not needed to test the reuse; 2.5 chunks is.
        fills: vec![FileFill {
            file_offset: 100_000,
            len: 150_000,
            byte: 0xFF,
            label: "journal".into(),
        }],
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
            label: "journal".into(),
        }],
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
