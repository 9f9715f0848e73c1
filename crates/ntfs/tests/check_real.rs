//! The invariant checker on real volumes: fresh mkntfs volumes populated through ntfs-3g (four
//! geometries), the Windows-made volumes and the attribute-list volume of the shared test data must
//! check clean; copies broken on purpose (a byte patch each, positions from our reader, the break
//! confirmed by sleuthkit where it can see it) must be flagged with the right kind, by the
//! whole-volume check and by the targeted checks the fix step runs.

mod common;

use common::{
    breaks, build_volume, cmd, dir_entries, edit_index_block, edit_record, first_lcn, gpl_data,
    gunzip, record_of, run, set_cluster_bit, shared, Scratch, VolFile,
};
use kaifuku_ntfs::check::{
    check_cluster_bits, check_directory, check_mft_bits, check_records, check_side_indexes,
    check_volume, CheckReport, ClusterState, ProblemKind, SideIndex,
};
use std::sync::OnceLock;

fn show(r: &CheckReport) -> String {
    r.problems
        .iter()
        .map(|p| format!("  {:?} {:?}: {}\n", p.kind, p.record, p.message))
        .collect()
}

fn assert_clean(what: &str, r: &CheckReport) {
    assert!(
        r.is_clean(),
        "{what} should check clean but has {} problem(s):\n{}",
        r.problems.len(),
        show(r)
    );
}

fn assert_flags(what: &str, r: &CheckReport, kind: ProblemKind, record: Option<u64>) {
    // KAIFUKU_SHOW_PROBLEMS=1 cargo test ... -- --nocapture prints what each case reports.
    if std::env::var_os("KAIFUKU_SHOW_PROBLEMS").is_some() {
        eprintln!("--- {what}:\n{}", show(r));
    }
    let hit = r
        .problems
        .iter()
        .any(|p| p.kind == kind && (record.is_none() || p.record == record));
    assert!(
        hit,
        "{what}: expected {kind:?} for record {record:?}; got:\n{}",
        show(r)
    );
}

/// The populated base volume, built once per test run.
fn base() -> &'static VolFile {
    static BASE: OnceLock<(Scratch, VolFile)> = OnceLock::new();
    &BASE
        .get_or_init(|| {
            let s = Scratch::new("base");
            let v = build_volume(&s.0, "base.raw", 96, 512, 4096);
            (s, v)
        })
        .1
}

fn broken(tag: &str) -> (Scratch, VolFile) {
    let s = Scratch::new(tag);
    let v = base().copy_to(&s.0, "broken.raw");
    (s, v)
}

#[test]
fn fresh_mkntfs_volumes_check_clean() {
    let s = Scratch::new("geometries");
    for (sector, cluster, mib) in [
        (512u32, 4096u32, 96u64),
        (512, 512, 96),
        (512, 65536, 192),
        (4096, 4096, 128),
    ] {
        let name = format!("s{sector}-c{cluster}.raw");
        let v = build_volume(&s.0, &name, mib, sector, cluster);
        // An independent reader agrees the volume is sound before ours judges it.
        run(cmd("ntfsfix").arg("-n").arg(&v.path));
        let r = check_volume(&v.open()).unwrap();
        assert_clean(&name, &r);
        let st = &r.stats;
        assert!(
            st.records_in_use > 1900 && st.directories >= 8 && st.index_blocks > 20,
            "{name}: {st:?}"
        );
        assert!(
            st.extension_records >= 1,
            "{name}: the 41 hard links should need an extension record: {st:?}"
        );
        assert_eq!(st.object_ids, 1, "{name}");
        assert_eq!(st.reparse_points, 1, "{name}");
        assert_eq!(st.clusters_in_use, st.clusters_marked, "{name}");
        let vs = r.volume.as_ref().unwrap();
        assert_eq!(vs.dirty, Some(false), "{name}");
        std::fs::remove_file(&v.path).unwrap();
    }
}

#[test]
fn windows_made_volumes_check_clean() {
    let s = Scratch::new("windows");
    for name in ["ntfs-ptrn.raw.gz", "ntfs-ramslack.raw.gz"] {
        let img = s.path(name.trim_end_matches(".gz"));
        gunzip(&shared(&format!("windows-made/{name}")), &img);
        let v = VolFile::first_mbr_partition(&img);
        let r = check_volume(&v.open()).unwrap();
        assert_clean(name, &r);
        assert!(
            r.stats.object_ids > 0,
            "{name}: Windows gives some files object IDs: {:?}",
            r.stats
        );
        std::fs::remove_file(&img).unwrap();
    }
    run(cmd("tar")
        .arg("-xzf")
        .arg(shared("windows-made/ntfs-20h1.tar.gz"))
        .arg("-C")
        .arg(&s.0));
    let v = VolFile::first_mbr_partition(&s.path("ntfs.raw"));
    let r = check_volume(&v.open()).unwrap();
    assert_clean("ntfs-20h1", &r);
    assert!(r.stats.clusters_in_use > 100_000, "{:?}", r.stats);
}

#[test]
fn attribute_list_volume_checks_clean() {
    let s = Scratch::new("attrlist");
    let img = s.path("attrlist.raw");
    let Some(gz) = gpl_data(
        "dfir_ntfs/ntfs3_attrlist.raw.gz",
        "attribute_list_volume_checks_clean",
    ) else {
        return;
    };
    gunzip(&gz, &img);
    let v = VolFile::bare(&img);
    let r = check_volume(&v.open()).unwrap();
    assert_clean("ntfs3_attrlist", &r);
    assert!(r.stats.extension_records > 0, "{:?}", r.stats);
    // Record 27 (the file with the attribute list and its many hard links) also passes the
    // targeted record check.
    assert_clean("record 27", &check_records(&v.open(), &[27]).unwrap());
}

#[test]
fn base_volume_is_clean_and_targeted_checks_agree() {
    let v = base();
    assert_clean("base", &check_volume(&v.open()).unwrap());
    let vol = v.open();
    let big = record_of(v, "\\big");
    let recs = [
        record_of(v, "\\small\\big.bin"),
        record_of(v, "\\links\\target.txt"),
        big,
        5,
    ];
    assert_clean("check_records", &check_records(&vol, &recs).unwrap());
    assert_clean("check_mft_bits", &check_mft_bits(&vol, &recs).unwrap());
    for dir in ["\\big", "\\long", "\\small", "\\links", "\\Ünïcödé"] {
        let r = check_directory(&vol, record_of(v, dir)).unwrap();
        assert_clean(dir, &r);
        assert!(r.stats.index_entries > 0);
    }
    let (_, lcn) = first_lcn(v, "\\small\\big.bin");
    assert_clean(
        "cluster bits",
        &check_cluster_bits(&vol, &[(lcn, 3)], ClusterState::Used).unwrap(),
    );
    assert_flags(
        "free?",
        &check_cluster_bits(&vol, &[(lcn, 3)], ClusterState::Free).unwrap(),
        ProblemKind::BitmapStale,
        None,
    );
}

/// The side-index check the fix runs after a delete: the base volume's `$O` and `$R` are sound,
/// and an entry naming a record the delete freed is flagged (here: the carriers themselves, as if
/// the delete had freed them but left their keys).
#[test]
fn side_index_entries_naming_a_freed_record_are_flagged() {
    let v = base();
    let vol = v.open();
    let carrier_of_object_id = record_of(v, "\\small\\a.txt");
    let carrier_of_reparse_point = record_of(v, "\\small\\reparse.dat");
    // ntfs-3g confirms independently that these files carry what the check looks for.
    for (file, want) in [
        ("small/a.txt", "$OBJECT_ID"),
        ("small/reparse.dat", "$REPARSE_POINT"),
    ] {
        let out = run(cmd("ntfsinfo")
            .arg("-F")
            .arg(format!("/{file}"))
            .arg(&v.path));
        assert!(out.contains(want), "ntfsinfo {file}: no {want}:\n{out}");
    }
    let unrelated = record_of(v, "\\small\\big.bin");
    let r = check_side_indexes(&vol, &SideIndex::ALL, &[unrelated]).unwrap();
    assert_clean("$O and $R with an unrelated record freed", &r);
    assert_eq!(r.stats.index_entries, 2, "one key in $O, one in $R");
    let objid = record_of(v, "\\$Extend\\$ObjId");
    let reparse = record_of(v, "\\$Extend\\$Reparse");
    let r = check_side_indexes(&vol, &[SideIndex::ObjectIds], &[carrier_of_object_id]).unwrap();
    assert_flags("$O", &r, ProblemKind::ObjectIdIndex, Some(objid));
    assert!(
        r.problems[0]
            .message
            .contains(&format!("record {carrier_of_object_id} ")),
        "{}",
        show(&r)
    );
    let r = check_side_indexes(
        &vol,
        &[SideIndex::ReparsePoints],
        &[carrier_of_reparse_point],
    )
    .unwrap();
    assert_flags("$R", &r, ProblemKind::ReparseIndex, Some(reparse));
    // Each index is judged only for the records it names: $R does not name a.txt.
    assert_clean(
        "$R with a.txt freed",
        &check_side_indexes(&vol, &[SideIndex::ReparsePoints], &[carrier_of_object_id]).unwrap(),
    );
}

#[test]
fn cleared_bitmap_cluster_of_a_live_file() {
    let (_s, v) = broken("bitmap");
    let (rec, lcn) = breaks::clear_cluster_of_live_file(&v);
    // sleuthkit sees the cluster as free now.
    let out = run(cmd("blkstat").arg(&v.path).arg(lcn.to_string()));
    assert!(out.contains("Not Allocated"), "blkstat {lcn}: {out}");
    let vol = v.open();
    let r = check_volume(&vol).unwrap();
    assert_flags("whole volume", &r, ProblemKind::BitmapMissing, Some(rec));
    assert!(
        r.problems
            .iter()
            .any(|p| p.message.contains(&format!("cluster {lcn} is free"))),
        "{}",
        show(&r)
    );
    assert_flags(
        "check_records",
        &check_records(&vol, &[rec]).unwrap(),
        ProblemKind::BitmapMissing,
        Some(rec),
    );
    assert_flags(
        "check_cluster_bits",
        &check_cluster_bits(&vol, &[(lcn, 1)], ClusterState::Used).unwrap(),
        ProblemKind::BitmapMissing,
        None,
    );
}

#[test]
fn freed_record_with_mft_bitmap_bit_left_set() {
    let (_s, v) = broken("mftbit");
    let n = breaks::free_record_keep_bit(&v);
    let out = run(cmd("istat").arg(&v.path).arg(n.to_string()));
    assert!(out.contains("Not Allocated"), "istat {n}: {out}");
    let vol = v.open();
    let r = check_volume(&vol).unwrap();
    assert_flags("whole volume", &r, ProblemKind::MftBitmapStale, Some(n));
    // Its directory entry now points at a free record.
    assert_flags("whole volume", &r, ProblemKind::IndexEntryStale, None);
    assert_flags(
        "check_records",
        &check_records(&vol, &[n]).unwrap(),
        ProblemKind::MftBitmapStale,
        Some(n),
    );
    assert_flags(
        "check_mft_bits",
        &check_mft_bits(&vol, &[n]).unwrap(),
        ProblemKind::MftBitmapStale,
        Some(n),
    );
    let small = record_of(&v, "\\small");
    assert_flags(
        "check_directory",
        &check_directory(&vol, small).unwrap(),
        ProblemKind::IndexEntryStale,
        Some(small),
    );
}

#[test]
fn index_entry_with_wrong_sequence() {
    let (_s, v) = broken("sequence");
    let (dir, rec) = breaks::entry_wrong_sequence(&v);
    let vol = v.open();
    let r = check_volume(&vol).unwrap();
    assert_flags("whole volume", &r, ProblemKind::IndexEntryStale, Some(dir));
    assert!(
        r.problems
            .iter()
            .any(|p| p.kind == ProblemKind::IndexEntryStale
                && p.message.contains(&format!("record {rec} with sequence"))),
        "{}",
        show(&r)
    );
    // The real name is then indexed by no valid entry.
    assert_flags("whole volume", &r, ProblemKind::NameNotIndexed, Some(rec));
    let d = check_directory(&vol, dir).unwrap();
    assert_flags(
        "check_directory",
        &d,
        ProblemKind::IndexEntryStale,
        Some(dir),
    );
}

#[test]
fn dos_entry_removed_while_its_file_name_stays() {
    let (_s, v) = broken("dos");
    let (dir, rec) = breaks::remove_dos_entry(&v);
    // The Win32 name still resolves; the record keeps its DOS $FILE_NAME.
    assert_eq!(v.open().read_record(rec).unwrap().link_count(), 2);
    let vol = v.open();
    let r = check_volume(&vol).unwrap();
    assert_flags("whole volume", &r, ProblemKind::NameNotIndexed, Some(rec));
    assert!(
        r.problems
            .iter()
            .all(|p| p.kind == ProblemKind::NameNotIndexed),
        "only the missing name: {}",
        show(&r)
    );
    assert_flags(
        "check_directory",
        &check_directory(&vol, dir).unwrap(),
        ProblemKind::NameNotIndexed,
        Some(rec),
    );
}

#[test]
fn adjacent_entries_swapped() {
    let (_s, v) = broken("order");
    let dir = breaks::swap_adjacent_entries(&v);
    let vol = v.open();
    let r = check_volume(&vol).unwrap();
    assert_flags("whole volume", &r, ProblemKind::IndexOrder, Some(dir));
    assert!(
        r.problems.iter().all(|p| p.kind == ProblemKind::IndexOrder),
        "only the order: {}",
        show(&r)
    );
    assert_flags(
        "check_directory",
        &check_directory(&vol, dir).unwrap(),
        ProblemKind::IndexOrder,
        Some(dir),
    );
}

#[test]
fn index_block_with_wrong_own_vcn() {
    let (_s, v) = broken("vcn");
    let (dir, vcn) = breaks::change_block_vcn(&v);
    let vol = v.open();
    let r = check_volume(&vol).unwrap();
    assert_flags("whole volume", &r, ProblemKind::IndexBlockVcn, Some(dir));
    assert!(
        r.problems.iter().any(|p| p.message.contains(&format!(
            "index block VCN {vcn} of directory {dir} says it is VCN {}",
            vcn + 1000
        ))),
        "{}",
        show(&r)
    );
    assert_flags(
        "check_directory",
        &check_directory(&vol, dir).unwrap(),
        ProblemKind::IndexBlockVcn,
        Some(dir),
    );
}

#[test]
fn leaked_cluster_and_bad_link_count() {
    let (_s, v) = broken("leak");
    // A free cluster near the end of the volume marked in use: a leak.
    let vol = v.open();
    let total = vol.boot().total_clusters();
    let r0 = check_volume(&vol).unwrap();
    assert!(r0.stats.clusters_marked < total);
    let lcn = total - 100;
    assert!(check_cluster_bits(&vol, &[(lcn, 1)], ClusterState::Free)
        .unwrap()
        .is_clean());
    set_cluster_bit(&v, lcn, true);
    let n = record_of(&v, "\\small\\a.txt");
    edit_record(&v, n, |b| b[0x12] += 1);
    let r = check_volume(&v.open()).unwrap();
    assert_flags("leak", &r, ProblemKind::BitmapStale, None);
    assert_flags("link count", &r, ProblemKind::LinkCount, Some(n));
    assert_eq!(r.problems.len(), 2, "{}", show(&r));
}

/// First cluster of a system file's `$DATA` (record `n`), as a byte offset in the volume.
fn data_start(v: &VolFile, n: u64) -> u64 {
    let vol = v.open();
    let rec = vol.read_record(n).unwrap();
    let Some(kaifuku_ntfs::volume::AttrValue::NonResident(s)) = vol
        .value(&rec, kaifuku_ntfs::AttributeType::Data, "")
        .unwrap()
    else {
        panic!("record {n} data")
    };
    s.runs[0].lcn.unwrap() * vol.cluster_size()
}

/// Offset (in the fixed-up record) of the first attribute of `type_code` named `name`.
fn attr_offset(b: &[u8], n: u64, kind: kaifuku_ntfs::AttributeType, name: &str) -> usize {
    let rec = kaifuku_ntfs::FileRecord::parse(n, b.to_vec()).unwrap();
    rec.find(kind, name)
        .unwrap()
        .unwrap_or_else(|| panic!("record {n} has no {} {name}", kind.name()))
        .offset
}

#[test]
fn more_broken_structures() {
    // $MFTMirr's copy of record 3 differs from $MFT.
    {
        let (_s, v) = broken("mirror");
        let vol = v.open();
        let at = data_start(&v, 1) + 3 * vol.boot().file_record_size as u64 + 0x100;
        let b = v.read(at, 1)[0];
        v.write(at, &[b ^ 0x5A]);
        assert_flags(
            "mirror",
            &check_volume(&v.open()).unwrap(),
            ProblemKind::MftMirror,
            Some(3),
        );
    }
    // A torn write in a record in use is damage; in a free record it is not a problem.
    {
        let (_s, v) = broken("torn");
        let n = record_of(&v, "\\small\\a.txt");
        let vol = v.open();
        let free = (24..vol.record_count())
            .rev()
            .find(|r| !vol.read_record(*r).unwrap().in_use())
            .unwrap();
        let (off, _) = vol.record_location(n).unwrap()[0];
        v.write(off + 510, &[0xEE, 0xEE]);
        let (foff, _) = vol.record_location(free).unwrap()[0];
        v.write(foff + 510, &[0xEE, 0xEE]);
        let r = check_volume(&v.open()).unwrap();
        assert_flags("torn", &r, ProblemKind::RecordHeader, Some(n));
        // The damaged record's entry and object ID are not judged again.
        assert_eq!(r.problems.len(), 1, "{}", show(&r));
        assert!(
            r.problems.iter().all(|p| p.record != Some(free)),
            "free record {free} judged: {}",
            show(&r)
        );
    }
    // The $I30 bitmap bit of a block in the tree is cleared.
    {
        let (_s, v) = broken("i30bitmap");
        let big = record_of(&v, "\\big");
        edit_record(&v, big, |b| {
            let a = attr_offset(b, big, kaifuku_ntfs::AttributeType::Bitmap, "$I30");
            let value = a + u16::from_le_bytes([b[a + 0x14], b[a + 0x15]]) as usize;
            b[value] &= !1;
        });
        assert_flags(
            "i30 bitmap",
            &check_volume(&v.open()).unwrap(),
            ProblemKind::IndexBitmap,
            Some(big),
        );
        assert_flags(
            "i30 bitmap",
            &check_directory(&v.open(), big).unwrap(),
            ProblemKind::IndexBitmap,
            Some(big),
        );
    }
    // A directory without its directory flag.
    {
        let (_s, v) = broken("dirflag");
        let n = record_of(&v, "\\empty");
        edit_record(&v, n, |b| b[0x16] &= !2);
        let r = check_volume(&v.open()).unwrap();
        assert_flags("dir flag", &r, ProblemKind::DirectoryFlag, Some(n));
        assert_flags(
            "dir flag",
            &check_records(&v.open(), &[n]).unwrap(),
            ProblemKind::DirectoryFlag,
            Some(n),
        );
    }
    // Two files claiming the same clusters: big.bin's run moved onto frag-a.bin's clusters.
    {
        let (_s, v) = broken("crosslink");
        let (big, _) = first_lcn(&v, "\\small\\big.bin");
        let (frag, target) = first_lcn(&v, "\\small\\frag-a.bin");
        edit_record(&v, big, |b| {
            let a = attr_offset(b, big, kaifuku_ntfs::AttributeType::Data, "");
            let mp = a + u16::from_le_bytes([b[a + 0x20], b[a + 0x21]]) as usize;
            let (lb, ob) = ((b[mp] & 0xF) as usize, (b[mp] >> 4) as usize);
            assert!(
                ob >= 3 || target < 1 << (8 * ob - 1),
                "LCN field too narrow"
            );
            let bytes = (target as i64).to_le_bytes();
            b[mp + 1 + lb..mp + 1 + lb + ob].copy_from_slice(&bytes[..ob]);
        });
        let r = check_volume(&v.open()).unwrap();
        assert_flags("cross-link", &r, ProblemKind::ClusterDoubleUse, None);
        assert!(
            r.problems
                .iter()
                .any(|p| p.kind == ProblemKind::ClusterDoubleUse
                    && (p.record == Some(big) || p.record == Some(frag))),
            "{}",
            show(&r)
        );
        assert_flags("cross-link", &r, ProblemKind::BitmapStale, None);
    }
    // A leaf block emptied (only END left); its names are then missing too.
    {
        let (_s, v) = broken("emptyblock");
        let (at, ..) = dir_entries(&v, "\\long")
            .into_iter()
            .find(|(at, _, _, _, child)| {
                matches!(at.node, kaifuku_ntfs::NodeId::Block(_)) && !child
            })
            .unwrap();
        let kaifuku_ntfs::NodeId::Block(vcn) = at.node else {
            unreachable!()
        };
        edit_index_block(&v, at.dir, vcn, |b| {
            let h = 0x18;
            let eo = u32::from_le_bytes(b[h..h + 4].try_into().unwrap()) as usize;
            let end = vec![0u8; 16];
            b[h + eo..h + eo + 16].copy_from_slice(&end);
            b[h + eo + 8] = 16; // length
            b[h + eo + 12] = 2; // END
            b[h + 4..h + 8].copy_from_slice(&((eo + 16) as u32).to_le_bytes());
        });
        let r = check_volume(&v.open()).unwrap();
        assert_flags(
            "empty block",
            &r,
            ProblemKind::IndexEmptyBlock,
            Some(at.dir),
        );
        assert_flags("empty block", &r, ProblemKind::NameNotIndexed, None);
    }
    // A record whose next attribute instance is not above its attributes' instances.
    {
        let (_s, v) = broken("instance");
        let n = record_of(&v, "\\small\\Case");
        edit_record(&v, n, |b| {
            b[0x28..0x2A].copy_from_slice(&1u16.to_le_bytes())
        });
        let r = check_volume(&v.open()).unwrap();
        assert_flags("instance", &r, ProblemKind::AttributeLayout, Some(n));
        let t = check_records(&v.open(), &[n]).unwrap();
        assert_flags("instance", &t, ProblemKind::AttributeLayout, Some(n));
        let once = t
            .problems
            .iter()
            .filter(|p| p.kind == ProblemKind::AttributeLayout)
            .count();
        let whole = r
            .problems
            .iter()
            .filter(|p| p.kind == ProblemKind::AttributeLayout)
            .count();
        assert_eq!(once, whole, "each attribute reported once: {}", show(&t));
    }
    // A leaf block emptied (only END left); its names are then missing too.
    {
        let (_s, v) = broken("emptyblock");
        let (at, ..) = dir_entries(&v, "\\long")
            .into_iter()
            .find(|(at, _, _, _, child)| {
                matches!(at.node, kaifuku_ntfs::NodeId::Block(_)) && !child
            })
            .unwrap();
        let kaifuku_ntfs::NodeId::Block(vcn) = at.node else {
            unreachable!()
        };
        edit_index_block(&v, at.dir, vcn, |b| {
            let h = 0x18;
            let eo = u32::from_le_bytes(b[h..h + 4].try_into().unwrap()) as usize;
            b[h + eo..h + eo + 16].fill(0);
            b[h + eo + 8] = 16; // length
            b[h + eo + 12] = 2; // END
            b[h + 4..h + 8].copy_from_slice(&((eo + 16) as u32).to_le_bytes());
        });
        let r = check_volume(&v.open()).unwrap();
        assert_flags(
            "empty block",
            &r,
            ProblemKind::IndexEmptyBlock,
            Some(at.dir),
        );
        assert_flags("empty block", &r, ProblemKind::NameNotIndexed, None);
    }
    // A record whose next attribute instance is not above its attributes' instances.
    {
        let (_s, v) = broken("instance");
        let n = record_of(&v, "\\small\\Case");
        edit_record(&v, n, |b| {
            b[0x28..0x2A].copy_from_slice(&1u16.to_le_bytes())
        });
        let r = check_volume(&v.open()).unwrap();
        assert_flags("instance", &r, ProblemKind::AttributeLayout, Some(n));
        let t = check_records(&v.open(), &[n]).unwrap();
        assert_flags("instance", &t, ProblemKind::AttributeLayout, Some(n));
        let once = t
            .problems
            .iter()
            .filter(|p| p.kind == ProblemKind::AttributeLayout)
            .count();
        let whole = r
            .problems
            .iter()
            .filter(|p| p.kind == ProblemKind::AttributeLayout)
            .count();
        assert_eq!(once, whole, "each attribute reported once: {}", show(&t));
    }
    // $LogFile overwritten with something that is neither a restart area nor erased.
    {
        let (_s, v) = broken("log");
        let at = data_start(&v, 2);
        v.write(at, &[0x42; 8192]);
        assert_flags(
            "log",
            &check_volume(&v.open()).unwrap(),
            ProblemKind::LogFile,
            Some(2),
        );
    }
}
