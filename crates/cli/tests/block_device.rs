//! Block devices work like files (the rescue-VM case): a fixture attached to a loop device is
//! inspected the same as the file, fixed in place through the device with an undo file, and
//! restored exactly by `undo`.

mod common;

use common::{assert_check_clean, fixtures, kaifuku, run, sha256, sparse_copy, Out, Scratch};

struct Loop(String);

impl Loop {
    fn attach(file: &std::path::Path) -> Loop {
        let o = run("losetup", ["-f", "--show", file.to_str().unwrap()]);
        assert_eq!(
            o.code, 0,
            "losetup (util-linux) must attach a loop device, as root: {}",
            o.stderr
        );
        Loop(o.text().trim().to_string())
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = run("losetup", ["-d", &self.0]);
    }
}

#[test]
fn loop_device_inspect_fix_in_place_and_undo() {
    let s = Scratch::new("blockdev");
    let img = s.path("disk.raw");
    sparse_copy(&fixtures().join("gpt-win.raw"), &img);
    let before = sha256(&img);
    let dev = Loop::attach(&img);

    let file_report = kaifuku(["inspect", "--json", img.to_str().unwrap()]);
    let dev_report = kaifuku(["inspect", "--json", &dev.0]);
    assert_eq!(dev_report.code, 0, "{}", dev_report.both());
    let strip = |o: &Out| {
        let mut v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v.as_object_mut().unwrap().remove("image");
        v.as_object_mut().unwrap().remove("reads");
        v
    };
    assert_eq!(
        strip(&file_report),
        strip(&dev_report),
        "the device reads as the file does"
    );

    let undo = s.path("disk.undo");
    let o = kaifuku([
        "fix",
        "--in-place",
        &dev.0,
        "--undo",
        undo.to_str().unwrap(),
    ]);
    assert_eq!(o.code, 0, "{}", o.both());
    drop(dev);
    assert_ne!(
        sha256(&img),
        before,
        "the fix went through the device into the image"
    );
    let o = kaifuku(["inspect", img.to_str().unwrap()]);
    assert_eq!(o.code, 1, "nothing left to fix: {}", o.both());
    assert_check_clean(&img, "after the in-place fix through a loop device");

    let dev = Loop::attach(&img);
    let o = kaifuku(["undo", &dev.0, undo.to_str().unwrap()]);
    assert_eq!(o.code, 0, "{}", o.both());
    drop(dev);
    assert_eq!(sha256(&img), before, "undo restores the image exactly");
}
