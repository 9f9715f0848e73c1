//! `fix` reads back what it wrote and verifies it before it exits 0. A fault between write and
//! read-back (simulated by the test hook that flips one written byte) must be caught: the copy is
//! removed, and an in-place fix says how to restore the image from its undo file.

mod common;

use common::{assert_check_clean, fixtures, kaifuku, run, sha256, sparse_copy, Out, Scratch};

const HOOK: &str = "KAIFUKU_TEST_DAMAGE_WRITTEN_OUTPUT";

fn kaifuku_damaged(args: &[&str]) -> Out {
    let o = run(
        "env",
        std::iter::once(format!("{HOOK}=1"))
            .chain(std::iter::once(env!("CARGO_BIN_EXE_kaifuku").to_string()))
            .chain(args.iter().map(|a| a.to_string())),
    );
    assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
    o
}

#[test]
fn a_copy_that_does_not_verify_is_removed() {
    let s = Scratch::new("verify-copy");
    let img = fixtures().join("cs-rootonly.raw");
    let out = s.path("out.raw");
    let undo = s.path("out.undo");
    let o = kaifuku_damaged(&[
        "fix",
        img.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--undo",
        undo.to_str().unwrap(),
    ]);
    assert_eq!(o.code, 3, "a damaged write must fail: {}", o.both());
    assert!(o.stderr.contains("does not verify"), "{}", o.stderr);
    assert!(!out.exists(), "the unverified output must be gone");
    assert!(!undo.exists(), "and its undo file with it");
    // Without the fault the same fix verifies and succeeds.
    let o = kaifuku(["fix", img.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(o.code, 0, "{}", o.both());
    assert_check_clean(&out, "verified output");
}

#[test]
fn an_in_place_fix_that_does_not_verify_says_how_to_restore() {
    let s = Scratch::new("verify-inplace");
    let img = s.path("img.raw");
    sparse_copy(&fixtures().join("cs-rootonly.raw"), &img);
    let before = sha256(&img);
    let undo = s.path("img.undo");
    let o = kaifuku_damaged(&[
        "fix",
        "--in-place",
        img.to_str().unwrap(),
        "--undo",
        undo.to_str().unwrap(),
    ]);
    assert_eq!(o.code, 3, "{}", o.both());
    assert!(o.stderr.contains("kaifuku undo"), "{}", o.stderr);
    assert!(undo.exists(), "the undo file was written first");
    // The flipped byte is neither original nor what the fix wrote: undo wants --force.
    let o = kaifuku(["undo", img.to_str().unwrap(), undo.to_str().unwrap()]);
    assert_ne!(o.code, 0, "{}", o.both());
    let o = kaifuku([
        "undo",
        "--force",
        img.to_str().unwrap(),
        undo.to_str().unwrap(),
    ]);
    assert_eq!(o.code, 0, "{}", o.both());
    assert_eq!(sha256(&img), before, "undo restores the original image");
}
