//! A VMware text descriptor (`kaifuku_container::vmdk_descriptor`): any bytes. Checked: a parsed
//! descriptor has extents back to back from 0 whose sizes add up to the disk, file names that are
//! plain names in the descriptor's folder, names the lenient listing also finds, and renaming its
//! data files to their own names gives the text back byte for byte; renamed to other names it
//! parses to the same extents with those names.
#![no_main]

use kaifuku_container::vmdk_descriptor::{extent_file_names, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let listed = extent_file_names(data);
    let Ok(d) = parse(data) else {
        return;
    };
    let mut at = 0u64;
    for e in &d.extents {
        assert_eq!(e.disk_offset, at);
        assert!(e.len > 0 && e.len % 512 == 0 && e.file_offset % 512 == 0);
        assert!(!e.file_name.is_empty() && !e.file_name.contains(['/', '\\', '"']));
        assert!(e.file_name != "." && e.file_name != "..");
        at = at.checked_add(e.len).expect("sizes checked");
    }
    assert_eq!(d.disk_size(), at);
    let names: Vec<String> = d.extents.iter().map(|e| e.file_name.clone()).collect();
    assert_eq!(listed, names, "the listing finds the parsed names");
    assert_eq!(d.with_file_names(&names).as_deref(), Some(d.text()));
    let renamed: Vec<String> = (0..names.len()).map(|i| format!("out-f{i:03}.vmdk")).collect();
    let text = d.with_file_names(&renamed).expect("plain names");
    let again = parse(text.as_bytes()).expect("a renamed descriptor still parses");
    assert_eq!(again.extents.len(), d.extents.len());
    for ((a, b), n) in again.extents.iter().zip(&d.extents).zip(&renamed) {
        assert_eq!(&a.file_name, n);
        assert_eq!((a.kind, a.file_offset, a.disk_offset, a.len), (b.kind, b.file_offset, b.disk_offset, b.len));
    }
});
