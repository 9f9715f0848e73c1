//! The judge of a fix: the same deletion done by kaifuku on the whole image and by ntfs-3g's own
//! `rm` on a copy of the volume (the oracle), compared byte for byte where NTFS leaves no choice,
//! then read back by ntfs-3g, sleuthkit, `ntfsfix -n` and `kaifuku check` (see `fix_oracle.rs` for
//! the full list). Shared by the test files that judge fixes this way.
#![allow(dead_code)]

use crate::common::{
    assert_check_clean, blkstat_allocated, diff_files, dump_index, extract, fls, index_differences,
    istat, kaifuku, listing, load_json, ntfs3g, run, run_ok, sparse_copy, tsk_args, Attr, Istat,
    Rec, Scratch, Vol,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A file to delete, as a `/`-separated path from the volume root.
#[derive(Debug, Clone)]
pub struct Target(pub String);

impl Target {
    pub fn new(p: &str) -> Target {
        Target(format!("/{}", p.trim_start_matches('/')))
    }
    pub fn dir(&self) -> &str {
        let (d, _) = self.0.rsplit_once('/').unwrap();
        if d.is_empty() {
            "/"
        } else {
            d
        }
    }
    pub fn windows(&self) -> String {
        self.0.replace('/', "\\")
    }
    pub fn rel(&self) -> &str {
        self.0.trim_start_matches('/')
    }
}

pub fn parent_of(dir: &str) -> &str {
    match dir.rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((p, _)) => p,
    }
}

// ---------------------------------------------------------------------------------------------
// The judge

pub struct Case<'a> {
    pub s: &'a Scratch,
    /// The image kaifuku fixes (raw).
    pub image: PathBuf,
    /// The same volume as a bare file.
    pub in_vol: PathBuf,
    pub vol_off: u64,
    pub vol_len: u64,
    pub sector: u64,
    pub path_arg: Option<String>,
    /// A rule file given with `--rule`.
    pub rule_file: Option<PathBuf>,
    /// More options for every `fix` of the case, e.g. `--txr-logs`.
    pub flags: Vec<&'static str>,
    pub targets: Vec<Target>,
    /// Generator hashes of every file, when the volume is the fixture's own.
    pub files_json: Option<PathBuf>,
}

pub struct TargetInfo {
    pub record: u64,
    pub parent: u64,
    pub grandparent: u64,
    /// The file keeps other names (hard links): only the asked name and its DOS partner go.
    pub hard_link: bool,
    /// Directories holding the names the file keeps.
    pub other_parents: Vec<u64>,
    /// Names removed: the asked one, and its DOS partner when it is a Win32 name.
    pub names_removed: usize,
    pub side: Vec<(u64, &'static str)>,
    pub before: Istat,
}

pub fn fix_args(
    image: &Path,
    out: &Path,
    path_arg: &Option<String>,
    extra: &[&str],
) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["fix".into(), image.into(), "-o".into(), out.into()];
    for e in extra {
        a.push(e.into());
    }
    if let Some(p) = path_arg {
        a.push("--path".into());
        a.push(p.into());
    }
    a
}

/// `args` with the case's `--rule FILE`, when it has one, and its other options.
pub fn with_rule_file(c: &Case, mut args: Vec<OsString>) -> Vec<OsString> {
    if let Some(file) = &c.rule_file {
        args.push("--rule".into());
        args.push(file.into());
    }
    args.extend(c.flags.iter().map(OsString::from));
    args
}

/// The MFT record of `$Extend\name` (`$ObjId`, `$Reparse`, ...), as ntfsls lists it.
pub fn extend_inode(vol: &Path, name: &str) -> u64 {
    ntfsls_inode(vol, &format!("/$Extend/{name}"))
}

/// The MFT record of the file or folder at `path` (`/`-separated, from the volume's root), as
/// ntfs-3g's ntfsls lists it in its folder (system files included).
pub fn ntfsls_inode(vol: &Path, path: &str) -> u64 {
    let (dir, name) = path.rsplit_once('/').unwrap();
    let dir = if dir.is_empty() { "/" } else { dir };
    let o = run_ok(
        "ntfsls",
        [
            OsStr::new("-f"),
            OsStr::new("-a"),
            OsStr::new("-s"),
            OsStr::new("-i"),
            OsStr::new("-p"),
            OsStr::new(dir),
            vol.as_os_str(),
        ],
    );
    for l in String::from_utf8_lossy(&o).lines() {
        if let Some((n, nm)) = l.trim().split_once(' ') {
            if nm == name {
                return n.parse().unwrap();
            }
        }
    }
    panic!("{}: {path} not found by ntfsls", vol.display())
}

pub fn check_writes(
    input: &Path,
    output: &Path,
    plan: &Value,
    every_range_changes: bool,
    ctx: &str,
) {
    let writes: Vec<(u64, u64)> = plan["file_writes"]
        .as_array()
        .unwrap_or_else(|| panic!("{ctx}: fix --json has no file_writes"))
        .iter()
        .map(|w| {
            let o = w["file_offset"].as_u64().unwrap();
            (o, o + w["len"].as_u64().unwrap())
        })
        .collect();
    assert!(!writes.is_empty(), "{ctx}: no planned writes");
    let mut merged = writes.clone();
    merged.sort();
    let mut m: Vec<(u64, u64)> = Vec::new();
    for (a, b) in merged {
        match m.last_mut() {
            Some(l) if a <= l.1 => l.1 = l.1.max(b),
            _ => m.push((a, b)),
        }
    }
    let diffs = diff_files(input, output);
    assert!(!diffs.is_empty(), "{ctx}: the output equals the input");
    let covered = |s: u64, e: u64| m.iter().any(|(a, b)| *a <= s && e <= *b);
    let stray: Vec<&(u64, u64)> = diffs.iter().filter(|(s, e)| !covered(*s, *e)).collect();
    assert!(
        stray.is_empty(),
        "{ctx}: bytes changed outside the planned writes: {:?}",
        &stray[..stray.len().min(10)]
    );
    if every_range_changes {
        let idle: Vec<&(u64, u64)> = writes
            .iter()
            .filter(|(a, b)| !diffs.iter().any(|(s, e)| s < b && a < e))
            .collect();
        assert!(
            idle.is_empty(),
            "{ctx}: planned writes that change nothing: {:?}",
            &idle[..idle.len().min(10)]
        );
    }
}

pub fn ntfscat_bytes(vol: &Path, inode: u64, ty: Option<&str>) -> Vec<u8> {
    let mut a: Vec<OsString> = vec!["-f".into(), "-i".into(), inode.to_string().into()];
    if let Some(t) = ty {
        a.push("-a".into());
        a.push(t.into());
    }
    a.push(vol.into());
    run_ok("ntfscat", &a)
}

pub fn ntfsls_dir(vol: &Path, dir: &str) -> Vec<String> {
    let o = run_ok(
        "ntfsls",
        [
            OsStr::new("-f"),
            OsStr::new("-a"),
            OsStr::new("-F"),
            OsStr::new("-l"),
            OsStr::new("-i"),
            OsStr::new("-p"),
            OsStr::new(dir),
            vol.as_os_str(),
        ],
    );
    String::from_utf8_lossy(&o)
        .lines()
        .filter(|l| !l.ends_with(" ./") && !l.ends_with(" ../"))
        .map(|l| l.to_string())
        .collect()
}

pub fn first_diff(a: &[u8], b: &[u8]) -> String {
    if a.len() != b.len() {
        return format!("lengths {} vs {}", a.len(), b.len());
    }
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => format!(
            "first difference at byte {i}: {:#04x} vs {:#04x}",
            a[i], b[i]
        ),
        None => "equal".into(),
    }
}

/// Compares two records attribute by attribute, leaving out `skip` types; `$INDEX_ROOT` values are
/// compared by the index dumps, so only its sizes are compared here.
pub fn record_differences(a: &Rec, b: &Rec, skip: &[u32]) -> Vec<String> {
    let mut d = Vec::new();
    let key = |x: &Attr| (x.type_code, x.name.clone());
    let aa: Vec<Attr> = a
        .attrs()
        .into_iter()
        .filter(|x| !skip.contains(&x.type_code))
        .collect();
    let bb: Vec<Attr> = b
        .attrs()
        .into_iter()
        .filter(|x| !skip.contains(&x.type_code))
        .collect();
    let ak: Vec<_> = aa.iter().map(key).collect();
    let bk: Vec<_> = bb.iter().map(key).collect();
    if ak != bk {
        d.push(format!(
            "record {}: attributes {ak:x?} vs {bk:x?}",
            a.number
        ));
        return d;
    }
    for (x, y) in aa.iter().zip(&bb) {
        let same = if x.type_code == 0x90 {
            x.raw.len() == y.raw.len() && x.value.len() == y.value.len()
        } else {
            x.raw == y.raw
        };
        if !same {
            d.push(format!(
                "record {}: attribute {:#x} {:?} differs ({})",
                a.number,
                x.type_code,
                x.name,
                first_diff(&x.raw, &y.raw)
            ));
        }
    }
    if skip.is_empty() && a.bytes_in_use() != b.bytes_in_use() {
        d.push(format!(
            "record {}: bytes_in_use {} vs {}",
            a.number,
            a.bytes_in_use(),
            b.bytes_in_use()
        ));
    }
    d
}

pub fn next_sequence(s: u16) -> u16 {
    match s {
        0 => 0,
        0xFFFF => 1,
        s => s + 1,
    }
}

pub fn judge(c: &Case) {
    let s = c.s;
    let ctx = format!("{} {:?}", c.image.display(), c.path_arg);
    let in_v = Vol::open(&c.in_vol);
    let tsk_in = tsk_args(&c.image, c.vol_off / c.sector, c.sector);

    // --- the oracle: ntfs-3g rm on a copy of the volume
    let oracle_vol = s.path("oracle.vol");
    sparse_copy(&c.in_vol, &oracle_vol);
    let m = ntfs3g(&oracle_vol, &s.path("oracle-rw"), true);
    // Every asked name first: two targets may be two names of one record (a hard link matched by
    // two rules), and then both go, as ntfs-3g's two `rm`s remove both.
    let mut asked_names: Vec<(u64, u64, u8, String)> = Vec::new();
    for t in &c.targets {
        let md = std::fs::symlink_metadata(m.p(&t.0))
            .unwrap_or_else(|e| panic!("{ctx}: {} not on the volume: {e}", t.0));
        let record = md.ino();
        let parent = std::fs::metadata(m.p(t.dir())).unwrap().ino();
        let leaf_name = t.0.rsplit('/').next().unwrap();
        let asked = in_v
            .record(record)
            .names()
            .into_iter()
            .find(|n| n.0 == parent && n.2 == leaf_name)
            .unwrap_or_else(|| panic!("{ctx}: record {record} has no name {leaf_name}"));
        asked_names.push((record, asked.0, asked.1, asked.2));
    }
    let mut infos = Vec::new();
    for t in &c.targets {
        let record = std::fs::symlink_metadata(m.p(&t.0)).unwrap().ino();
        let parent = std::fs::metadata(m.p(t.dir())).unwrap().ino();
        let grandparent = std::fs::metadata(m.p(parent_of(t.dir()))).unwrap().ino();
        let rec = in_v.record(record);
        let names = rec.names();
        let removed = |n: &(u64, u8, String)| {
            asked_names.iter().any(|(r, p, ns, name)| {
                *r == record && n.0 == *p && (n.2 == *name && n.1 == *ns || (*ns == 1 && n.1 == 2))
            })
        };
        let names_removed = names.iter().filter(|n| removed(n)).count();
        let other_parents: Vec<u64> = names
            .iter()
            .filter(|n| !removed(n))
            .map(|n| n.0)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let hard_link = names_removed < names.len();
        let mut side = Vec::new();
        if !hard_link {
            if rec.attr(0x40, "").is_some() {
                side.push((extend_inode(&c.in_vol, "$ObjId"), "$O"));
            }
            if rec.attr(0xC0, "").is_some() {
                side.push((extend_inode(&c.in_vol, "$Reparse"), "$R"));
            }
        }
        let before = istat(&tsk_in, record);
        assert!(
            before.allocated,
            "{ctx}: istat says {} is not allocated before the fix",
            t.0
        );
        infos.push(TargetInfo {
            record,
            parent,
            grandparent,
            hard_link,
            other_parents,
            names_removed,
            side,
            before,
        });
    }
    for t in &c.targets {
        std::fs::remove_file(m.p(&t.0)).unwrap_or_else(|e| panic!("ntfs-3g rm {}: {e}", t.0));
    }
    m.unmount();
    // Read back from a fresh mount: a live mount reports some sizes from its own memory.
    let m = ntfs3g(&oracle_vol, &s.path("oracle-ro"), false);
    let oracle_listing = listing(&m.dir);
    m.unmount();

    // --- kaifuku on the whole image
    let out = s.path("out.img");
    let r = kaifuku(with_rule_file(
        c,
        fix_args(&c.image, &out, &c.path_arg, &["--json"]),
    ));
    assert_eq!(
        r.code,
        0,
        "{ctx}: fix failed (exit {}): {}",
        r.code,
        r.both()
    );
    let plan: Value = serde_json::from_slice(&r.stdout)
        .unwrap_or_else(|e| panic!("{ctx}: fix --json: {e}: {}", r.both()));
    let planned: BTreeSet<u64> = plan["plan"]["deletions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["record"].as_u64().unwrap())
        .collect();
    let want: BTreeSet<u64> = infos.iter().map(|i| i.record).collect();
    assert_eq!(
        planned, want,
        "{ctx}: records kaifuku deletes vs the targets"
    );

    // The plan read every side index it removed a key from again (§5 of the delete's contract).
    let edited: BTreeSet<&str> = infos
        .iter()
        .flat_map(|i| i.side.iter().map(|s| s.1))
        .collect();
    let checked: BTreeSet<String> = plan["plan"]["verification"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["code"] == "side_indexes_clean")
        .flat_map(|c| c["indexes"].as_array().unwrap().iter())
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    let want: BTreeSet<String> = edited
        .iter()
        .map(|n| match *n {
            "$O" => "$Extend\\$ObjId:$O".to_string(),
            _ => "$Extend\\$Reparse:$R".to_string(),
        })
        .collect();
    assert_eq!(
        checked, want,
        "{ctx}: side indexes the plan checked again vs those the targets had keys in"
    );

    // 4. exactly the planned bytes changed
    check_writes(&c.image, &out, &plan, true, &ctx);

    let ours_vol = s.path("ours.vol");
    extract(&out, c.vol_off, c.vol_len, &ours_vol);

    // 1. equal to ntfs-3g's rm
    assert!(
        ntfscat_bytes(&ours_vol, 6, None) == ntfscat_bytes(&oracle_vol, 6, None),
        "{ctx}: $Bitmap differs from ntfs-3g's"
    );
    let (mb_ours, mb_oracle) = (
        ntfscat_bytes(&ours_vol, 0, Some("0xB0")),
        ntfscat_bytes(&oracle_vol, 0, Some("0xB0")),
    );
    assert!(
        mb_ours == mb_oracle,
        "{ctx}: $MFT:$BITMAP differs from ntfs-3g's: {}",
        first_diff(&mb_ours, &mb_oracle)
    );
    let dirs: BTreeSet<&str> = c.targets.iter().map(|t| t.dir()).collect();
    for d in &dirs {
        let (a, b) = (ntfsls_dir(&ours_vol, d), ntfsls_dir(&oracle_vol, d));
        if a != b {
            let (sa, sb): (BTreeSet<_>, BTreeSet<_>) = (a.iter().collect(), b.iter().collect());
            panic!(
                "{ctx}: ntfsls -p {d} differs from ntfs-3g's result ({} vs {} lines): only ours {:?}; only ntfs-3g's {:?}",
                a.len(),
                b.len(),
                sa.difference(&sb).take(10).collect::<Vec<_>>(),
                sb.difference(&sa).take(10).collect::<Vec<_>>()
            );
        }
    }
    let mut index_dirs: BTreeSet<u64> = BTreeSet::new();
    let mut masked: Vec<u64> = Vec::new();
    let mut sides: BTreeSet<(u64, &str)> = BTreeSet::new();
    for i in &infos {
        index_dirs.insert(i.parent);
        index_dirs.insert(i.grandparent);
        index_dirs.extend(&i.other_parents);
        masked.push(i.parent);
        if i.hard_link {
            masked.push(i.record);
        }
        sides.extend(i.side.iter().copied());
    }
    let ours_v = Vol::open(&ours_vol);
    let oracle_v = Vol::open(&oracle_vol);
    let mut problems = Vec::new();
    for d in &index_dirs {
        let mut a = dump_index(&ours_vol, *d, "$I30");
        let mut b = dump_index(&oracle_vol, *d, "$I30");
        a.mask_dup_info(&masked);
        b.mask_dup_info(&masked);
        let diff = index_differences(&a, &b);
        if !diff.is_empty() {
            problems.push(format!(
                "directory record {d}: index differs from ntfs-3g's:\n  {}\n--- kaifuku:\n{}--- ntfs-3g:\n{}",
                diff.join("\n  "),
                a.show(),
                b.show()
            ));
        }
        let skip: &[u32] = if masked.contains(d) { &[0x10] } else { &[] };
        problems.extend(record_differences(
            &ours_v.record(*d),
            &oracle_v.record(*d),
            skip,
        ));
    }
    for (rec, name) in &sides {
        let a = dump_index(&ours_vol, *rec, name);
        let b = dump_index(&oracle_vol, *rec, name);
        let diff = index_differences(&a, &b);
        if !diff.is_empty() {
            problems.push(format!(
                "{name} of record {rec} differs from ntfs-3g's:\n  {}\n--- kaifuku:\n{}--- ntfs-3g:\n{}",
                diff.join("\n  "),
                a.show(),
                b.show()
            ));
        }
    }
    for i in &infos {
        let a = ours_v.record(i.record);
        let b = oracle_v.record(i.record);
        if a.in_use() != b.in_use() || a.seq() != b.seq() {
            problems.push(format!(
                "record {}: in use/sequence {}/{} vs ntfs-3g {}/{}",
                i.record,
                a.in_use(),
                a.seq(),
                b.in_use(),
                b.seq()
            ));
        }
        if b.in_use() {
            if a.links() != b.links() {
                problems.push(format!(
                    "record {}: link count {} vs ntfs-3g {}",
                    i.record,
                    a.links(),
                    b.links()
                ));
            }
            let na: BTreeSet<_> = a.names().into_iter().collect();
            let nb: BTreeSet<_> = b.names().into_iter().collect();
            if na != nb {
                problems.push(format!(
                    "record {}: names {na:?} vs ntfs-3g {nb:?}",
                    i.record
                ));
            }
            problems.extend(record_differences(&a, &b, &[0x10, 0x30]));
        }
    }
    // Every other byte of the volume is ntfs-3g's.
    let mut allowed: Vec<(u64, u64)> = Vec::new();
    let add_record = |v: &Vol, n: u64, allowed: &mut Vec<(u64, u64)>| {
        allowed.extend(v.record_location(n));
        if let Some(m) = v.mirror_location(n) {
            allowed.extend(m);
        }
    };
    for i in &infos {
        add_record(&in_v, i.record, &mut allowed);
    }
    for d in &index_dirs {
        add_record(&in_v, *d, &mut allowed);
        if let Some(a) = in_v.record(*d).attr(0xA0, "$I30") {
            allowed.extend(in_v.runs_extent(&a.runs));
        }
    }
    for (rec, name) in &sides {
        add_record(&in_v, *rec, &mut allowed);
        if let Some(a) = in_v.record(*rec).attr(0xA0, name) {
            allowed.extend(in_v.runs_extent(&a.runs));
        }
    }
    if let Some(a) = in_v.record(2).attr(0x80, "") {
        allowed.extend(in_v.runs_extent(&a.runs));
    }
    let outside: Vec<(u64, u64)> = diff_files(&ours_vol, &oracle_vol)
        .into_iter()
        .filter(|(s, e)| !allowed.iter().any(|(a, l)| *a <= *s && *e <= a + l))
        .collect();
    if !outside.is_empty() {
        problems.push(format!(
            "bytes differ from ntfs-3g's outside the records and indexes involved (volume offsets): {:?}",
            &outside[..outside.len().min(12)]
        ));
    }
    // The journal is left alone.
    if ntfscat_bytes(&ours_vol, 2, None) != ntfscat_bytes(&c.in_vol, 2, None) {
        problems.push("$LogFile changed although the journal was clean".into());
    }
    assert!(
        problems.is_empty(),
        "{ctx}: differences from ntfs-3g's rm:\n{}",
        problems.join("\n")
    );

    // 3. sleuthkit on the output image
    let tsk_out = tsk_args(&out, c.vol_off / c.sector, c.sector);
    let fls_out = fls(&tsk_out);
    let fls_oracle = fls(&tsk_args(&oracle_vol, 0, c.sector));
    let allocated = |v: &[(bool, String, u64, String)]| -> BTreeSet<(String, u64)> {
        v.iter()
            .filter(|l| !l.0)
            .map(|l| (l.3.clone(), l.2))
            .collect()
    };
    let (fa, fb) = (allocated(&fls_out), allocated(&fls_oracle));
    assert!(
        fa == fb,
        "{ctx}: fls -r lists other allocated names than on ntfs-3g's result: only ours {:?}; only ntfs-3g's {:?}",
        fa.difference(&fb).take(10).collect::<Vec<_>>(),
        fb.difference(&fa).take(10).collect::<Vec<_>>()
    );
    for (t, i) in c.targets.iter().zip(&infos) {
        let after = istat(&tsk_out, i.record);
        if !i.hard_link {
            assert!(
                !after.allocated,
                "{ctx}: istat: record {} still allocated:\n{}",
                i.record, after.text
            );
            assert_eq!(
                after.sequence,
                next_sequence(i.before.sequence),
                "{ctx}: istat: sequence of record {}",
                i.record
            );
            for cl in &i.before.clusters {
                assert!(
                    !blkstat_allocated(&tsk_out, *cl),
                    "{ctx}: blkstat: cluster {cl} of {} still allocated",
                    t.0
                );
            }
        } else {
            assert!(
                after.allocated,
                "{ctx}: istat: hard-linked record {} was freed",
                i.record
            );
            assert_eq!(
                after.sequence, i.before.sequence,
                "{ctx}: sequence of hard-linked record {}",
                i.record
            );
            assert_eq!(
                after.links as usize,
                i.before.links as usize - i.names_removed,
                "{ctx}: link count of record {}",
                i.record
            );
            for cl in &i.before.clusters {
                assert!(
                    blkstat_allocated(&tsk_out, *cl),
                    "{ctx}: blkstat: cluster {cl} of hard-linked {} freed",
                    t.0
                );
            }
        }
        // sleuthkit also reads index blocks whose $I30 bitmap bit is clear, so after a leaf empties
        // it lists the name from the freed block on ntfs-3g's result too.
        let live: Vec<_> = fls_out.iter().filter(|l| !l.0 && l.3 == t.rel()).collect();
        if fls_oracle.iter().any(|l| !l.0 && l.3 == t.rel()) {
            eprintln!(
                "{ctx}: fls lists {} from a freed index block on ntfs-3g's result too",
                t.0
            );
        } else {
            assert!(
                live.is_empty(),
                "{ctx}: fls still lists {} as allocated: {live:?}",
                t.0
            );
        }
    }

    // 2. ntfs-3g reads the result: every other file the same
    let m = ntfs3g(&ours_vol, &s.path("ours-ro"), false);
    let ours_listing = listing(&m.dir);
    m.unmount();
    for t in &c.targets {
        assert!(
            !ours_listing.sha.contains_key(t.rel()),
            "{ctx}: {} still readable",
            t.0
        );
    }
    if ours_listing.entries != oracle_listing.entries {
        let a: BTreeSet<_> = ours_listing.entries.iter().collect();
        let b: BTreeSet<_> = oracle_listing.entries.iter().collect();
        panic!(
            "{ctx}: mounted tree differs from ntfs-3g's: only in ours {:?}; only in ntfs-3g's {:?}",
            a.difference(&b).take(10).collect::<Vec<_>>(),
            b.difference(&a).take(10).collect::<Vec<_>>()
        );
    }
    assert!(
        ours_listing.sha == oracle_listing.sha,
        "{ctx}: file contents differ from ntfs-3g's result"
    );
    if let Some(fj) = &c.files_json {
        let files = load_json(fj);
        let deleted: BTreeSet<&str> = c.targets.iter().map(|t| t.rel()).collect();
        let mut n = 0;
        for (p, f) in files.as_object().unwrap() {
            if deleted.contains(p.as_str()) {
                assert!(!ours_listing.sha.contains_key(p), "{ctx}: {p} survived");
                continue;
            }
            let got = ours_listing
                .sha
                .get(p)
                .unwrap_or_else(|| panic!("{ctx}: {p} is gone"));
            assert_eq!(got, f["sha256"].as_str().unwrap(), "{ctx}: content of {p}");
            n += 1;
        }
        assert!(n > 0, "{ctx}: {} lists no files", fj.display());
    }
    assert_check_clean(&out, &ctx);

    // ... then read-write: more creates and deletes in the edited directories
    let m = ntfs3g(&ours_vol, &s.path("ours-rw"), true);
    for (k, d) in dirs.iter().enumerate() {
        for j in 0..5 {
            let p = m.p(&format!("{d}/judge-after-{k}-{j}.dat"));
            let body: Vec<u8> = (0..(200 + 3000 * j)).map(|x| (x * 7 + j) as u8).collect();
            std::fs::write(&p, body)
                .unwrap_or_else(|e| panic!("{ctx}: creating {}: {e}", p.display()));
        }
        for j in [1, 3] {
            std::fs::remove_file(m.p(&format!("{d}/judge-after-{k}-{j}.dat"))).unwrap();
        }
    }
    m.unmount();
    assert_check_clean(
        &ours_vol,
        &format!("{ctx} after ntfs-3g wrote to the result"),
    );
    let o = run("ntfsfix", [OsStr::new("-n"), ours_vol.as_os_str()]);
    assert_eq!(o.code, 0, "{ctx}: ntfsfix -n: {}", o.both());

    // 6. a second run has nothing to do and writes nothing
    let again = s.path("again.img");
    let r = kaifuku(with_rule_file(c, fix_args(&out, &again, &c.path_arg, &[])));
    assert_eq!(r.code, 1, "{ctx}: second fix: {}", r.both());
    assert!(
        !again.exists(),
        "{ctx}: second fix wrote {}",
        again.display()
    );
}
