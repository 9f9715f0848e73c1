//! `fix`'s rules about its arguments (checked by clap): each broken rule is explained in kaifuku's
//! words with exit 3, nothing is written, and clap's own usage errors keep clap's exit status 2.

mod common;

use common::{fixtures, kaifuku, sha256, Scratch};

#[test]
fn fix_argument_rules_are_explained() {
    let s = Scratch::new("usage");
    let img = fixtures().join("bare-64k.raw");
    let img = img.to_str().unwrap();
    let out = s.path("out.raw");
    let undo = s.path("out.undo");
    let (out_s, undo_s) = (out.to_str().unwrap(), undo.to_str().unwrap());
    let before = sha256(&fixtures().join("bare-64k.raw"));
    for (args, words) in [
        (
            vec!["fix", img],
            "say where to write the fixed image with -o OUT",
        ),
        (
            vec!["fix", "--in-place", img, "-o", out_s, "--undo", undo_s],
            "give one of them",
        ),
        (
            vec!["fix", img, "-o", out_s, "--in-place"],
            "give one of them",
        ),
        (
            vec!["fix", "--in-place", img],
            "--in-place needs --undo FILE",
        ),
    ] {
        let o = kaifuku(&args);
        assert_eq!(o.code, 3, "{args:?}: {}", o.both());
        assert!(
            o.stderr.starts_with("kaifuku: ") && o.stderr.lines().count() == 1,
            "{args:?}: one line of kaifuku's own: {}",
            o.stderr
        );
        assert!(o.stderr.contains(words), "{args:?}: {}", o.stderr);
        assert!(o.stdout.is_empty(), "{args:?}: {}", o.text());
        assert!(!out.exists() && !undo.exists(), "{args:?} wrote something");
    }
    // A dry run needs neither -o nor --undo.
    let o = kaifuku(["fix", "--in-place", img, "--dry-run"]);
    assert_eq!(o.code, 0, "{}", o.both());
    // A missing image is clap's to explain, with clap's usage status.
    let o = kaifuku(["fix", "-o", out_s]);
    assert_eq!(o.code, 2, "{}", o.both());
    assert!(o.stderr.contains("<IMAGE>"), "{}", o.stderr);
    assert_eq!(sha256(&fixtures().join("bare-64k.raw")), before);
}
