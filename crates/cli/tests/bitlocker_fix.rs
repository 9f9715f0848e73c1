//! BitLocker end to end. Real encrypted NTFS volumes with the CrowdStrike tree are made by
//! writing through an independent implementation: a Windows-made BitLocker volume of the shared
//! test set is opened read-write with dislocker (FUSE), mkntfs formats the decrypted file and an
//! ntfs-3g mount of it gets the tree, so the volume's metadata is Windows' and its sectors were
//! encrypted by dislocker. It is placed in an MBR or GPT disk (raw, or a dynamic VHD made by
//! qemu-img). kaifuku fixes it with the recovery password; the output is judged by decrypting it
//! with dislocker again: ntfs-3g mounts it with the file gone and the rest intact, it equals
//! ntfs-3g's own `rm` of the file on the decrypted input in `$Bitmap`, `$MFT:$BITMAP` and the
//! folder's entries, `ntfsfix -n` and `kaifuku check` find it clean, every byte that differs
//! from the input lies in the re-encrypted sectors the plan lists, and BitLocker's metadata
//! blocks are untouched. A wrong or mistyped key is refused with no output.
//!
//! dislocker cannot write volumes that use the Elephant diffuser (its writes fail), so the
//! volumes made here are XTS and CBC; the Elephant write path is judged in
//! `crates/bitlocker/tests/write_path.rs` (dislocker reads what kaifuku wrote).

mod common;
mod judge;

use common::{diff_files, gpl_testdata, kaifuku, kaifuku_check, ntfs3g, run, run_ok, Scratch};
use serde_json::Value;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

const CS_DIR: &str = "Windows/System32/drivers/CrowdStrike";
const FAULTY: &str = "C-00000291-00000000-00000032.sys";
const CS_HEADER: [u8; 8] = [0xaa, 0xaa, 0xaa, 0xaa, 0x01, 0x00, 0x23, 0x01];
const MIB: u64 = 1 << 20;

struct Archive {
    dir: PathBuf,
    conf: String,
}

impl Archive {
    /// A fact of `[image]`, empty when images.conf leaves it empty.
    fn fact_or_empty(&self, image: &str, key: &str) -> String {
        let section = self.conf.split(&format!("[{image}]")).nth(1).unwrap_or("");
        section
            .lines()
            .take_while(|l| !l.starts_with('['))
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or("")
            .to_string()
    }

    /// A fact of `[image]` in images.conf.
    fn fact(&self, image: &str, key: &str) -> String {
        let section = self
            .conf
            .split(&format!("[{image}]"))
            .nth(1)
            .unwrap_or_else(|| panic!("{image} is not in images.conf"));
        section
            .lines()
            .take_while(|l| !l.starts_with('['))
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{image} has no {key}"))
            .to_string()
    }
}

fn archive(s: &Scratch, test: &str) -> Option<Archive> {
    let tar = gpl_testdata("bitlk/bitlk-images.tar.xz", test)?;
    run_ok(
        "tar",
        [
            OsStr::new("-xJf"),
            tar.as_os_str(),
            OsStr::new("-C"),
            s.dir.as_os_str(),
        ],
    );
    let dir = s.path("bitlk-images");
    let conf = std::fs::read_to_string(dir.join("images.conf")).unwrap();
    Some(Archive { dir, conf })
}

/// How dislocker unlocks `image`: its recovery password, or its clear key when it has none.
fn dislocker_key(a: &Archive, image: &str) -> String {
    match a.fact_or_empty(image, "RP").as_str() {
        "" => "-c".to_string(),
        rp => format!("-p{rp}"),
    }
}

/// What kaifuku is given for `image`: its recovery password, or nothing for a clear key.
fn kaifuku_key(a: &Archive, image: &str) -> Vec<String> {
    match a.fact_or_empty(image, "RP").as_str() {
        "" => Vec::new(),
        rp => vec!["--recovery-password".into(), rp.into()],
    }
}

fn blob(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// The files put on the volume, by path under the root.
fn tree() -> Vec<(String, Vec<u8>)> {
    let mut faulty = CS_HEADER.to_vec();
    faulty.extend(blob(40_000, 291));
    let mut other = CS_HEADER.to_vec();
    other.extend(blob(12_000, 292));
    let mut agent = b"MZ".to_vec();
    agent.extend(blob(150_000, 7));
    vec![
        (format!("{CS_DIR}/{FAULTY}"), faulty),
        (format!("{CS_DIR}/C-00000292-00000000-00000001.sys"), other),
        (format!("{CS_DIR}/csagent.sys"), agent),
        ("Windows/System32/hal.dll".into(), blob(90_000, 9)),
    ]
}

/// A copy of the archive's `image`, formatted and populated through dislocker: an encrypted NTFS
/// volume holding [`tree`]. `first_sector` is the partition's start (mkntfs's hidden sectors).
fn encrypted_windows_volume(s: &Scratch, a: &Archive, image: &str, first_sector: u64) -> PathBuf {
    let vol = s.path(&format!("{image}.vol"));
    run_ok(
        "cp",
        [
            OsStr::new("--sparse=always"),
            a.dir.join(format!("{image}.img")).as_os_str(),
            vol.as_os_str(),
        ],
    );
    let clear = s.path(&format!("{image}.clear"));
    std::fs::create_dir_all(&clear).unwrap();
    let o = run(
        "dislocker-fuse",
        [
            OsStr::new("-V"),
            vol.as_os_str(),
            OsStr::new(&dislocker_key(a, image)),
            OsStr::new("--"),
            clear.as_os_str(),
        ],
    );
    assert_eq!(
        o.code,
        0,
        "dislocker-fuse (Debian package dislocker): {}",
        o.both()
    );
    let decrypted = clear.join("dislocker-file");
    // Windows keeps BitLocker's three metadata areas as files of the volume; mkntfs cannot know
    // them, and dislocker refuses writes into them. mkntfs puts `$LogFile` at the middle of the
    // volume, which on the 128 MiB Elephant volumes is the second area: there the NTFS is made
    // to end where the first area begins (a volume smaller than its partition, as Windows
    // allows), so nothing of it can land on one.
    let sectors = if image.contains("elephant") {
        let boot = common::read_at(&vol, 0, 512);
        let first_area = (0..3).map(|i| u64_at(&boot, 0xB0 + 8 * i)).min().unwrap();
        Some((first_area / 512).to_string())
    } else {
        None
    };
    let hidden = first_sector.to_string();
    let mut args: Vec<&OsStr> = [
        "-F", "-Q", "-L", "Windows", "-p", &hidden, "-H", "255", "-S", "63",
    ]
    .into_iter()
    .map(OsStr::new)
    .collect();
    args.push(decrypted.as_os_str());
    args.extend(sectors.iter().map(OsStr::new));
    run_ok("mkntfs", args);
    let m = ntfs3g(&decrypted, &s.path(&format!("{image}.ntfs")), true);
    for (path, data) in tree() {
        let p = m.p(&path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
    }
    m.unmount();
    run_ok("umount", [clear.as_os_str()]);
    vol
}

/// A disk of `scheme` ("dos" or "gpt") with `vol` as its one partition at 1 MiB.
fn disk_with(s: &Scratch, vol: &Path, scheme: &str) -> PathBuf {
    let size = std::fs::metadata(vol).unwrap().len();
    let disk = s.path(&format!("disk-{scheme}.img"));
    let f = std::fs::File::create(&disk).unwrap();
    f.set_len(size + 2 * MIB).unwrap();
    drop(f);
    let kind = if scheme == "gpt" {
        "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
    } else {
        "7"
    };
    let layout = format!(
        "label: {scheme}\nstart=2048, size={}, type={kind}\n",
        size / 512
    );
    let o = run(
        "sh",
        [
            OsStr::new("-c"),
            OsStr::new(&format!(
                "printf '{}' | sfdisk -q \"$0\"",
                layout.replace('\n', "\\n")
            )),
            disk.as_os_str(),
        ],
    );
    assert_eq!(o.code, 0, "sfdisk: {}", o.both());
    run_ok(
        "dd",
        [
            OsStr::new(&format!("if={}", vol.display())),
            OsStr::new(&format!("of={}", disk.display())),
            OsStr::new("bs=1M"),
            OsStr::new("seek=1"),
            OsStr::new("conv=notrunc,sparse"),
            OsStr::new("status=none"),
        ],
    );
    disk
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Decrypts the BitLocker partition at `offset` of `disk` with dislocker into a file.
fn dislocker_decrypt(disk: &Path, offset: u64, key: &str, out: &Path) {
    let o = run(
        "dislocker-file",
        [
            OsStr::new("-V"),
            disk.as_os_str(),
            OsStr::new("-O"),
            OsStr::new(&offset.to_string()),
            OsStr::new(key),
            OsStr::new("--"),
            out.as_os_str(),
        ],
    );
    assert_eq!(o.code, 0, "dislocker-file: {}", o.both());
}

/// `qemu-img convert` from `from` to `to` (formats as qemu-img names them).
fn convert(src: &Path, from: &str, dst: &Path, to: &str) {
    let mut args = vec!["convert", "-f", from, "-O", to];
    if to == "vpc" {
        args.extend(["-o", "subformat=dynamic"]);
    }
    let mut all: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    all.push(src.as_os_str());
    all.push(dst.as_os_str());
    run_ok("qemu-img", all);
}

/// Which container the disk is fixed in: the raw disk, or a dynamic VHD of it.
#[derive(Clone, Copy, PartialEq)]
enum Container {
    Raw,
    DynamicVhd,
}

fn fix_and_judge(image: &str, scheme: &str, test: &str) {
    fix_and_judge_in(image, scheme, Container::Raw, test)
}

fn fix_and_judge_in(image: &str, scheme: &str, container: Container, test: &str) {
    let s = Scratch::new(test);
    let Some(a) = archive(&s, test) else {
        return;
    };
    let key = kaifuku_key(&a, image);
    let vol = encrypted_windows_volume(&s, &a, image, 2048);
    let raw_disk = disk_with(&s, &vol, scheme);
    let part = MIB;
    let (disk, out) = match container {
        Container::Raw => (raw_disk.clone(), s.path("out.img")),
        Container::DynamicVhd => {
            let vhd = s.path("disk.vhd");
            convert(&raw_disk, "raw", &vhd, "vpc");
            (vhd, s.path("out.vhd"))
        }
    };

    // Without a key: refused, saying it is BitLocker (a clear-key volume needs none).
    if !key.is_empty() {
        let o = kaifuku([OsStr::new("inspect"), disk.as_os_str()]);
        assert_eq!(o.code, 2, "{}", o.both());
        assert!(o.both().contains("BitLocker"), "{}", o.both());
    }

    let mut args: Vec<&OsStr> = vec![
        OsStr::new("fix"),
        disk.as_os_str(),
        OsStr::new("-o"),
        out.as_os_str(),
        OsStr::new("--json"),
    ];
    args.extend(key.iter().map(OsStr::new));
    let o = kaifuku(args);
    assert_eq!(o.code, 0, "fix: {}", o.both());
    if let Some(rp) = key.get(1) {
        assert!(
            !o.both().contains(rp.as_str()),
            "the recovery password was echoed"
        );
    }
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let plan = &report["plan"];
    assert_eq!(plan["deletions"].as_array().unwrap().len(), 1);
    let sectors: Vec<(u64, u64)> = plan["encrypted_sectors"]
        .as_array()
        .expect("the plan lists the re-encrypted sectors")
        .iter()
        .map(|p| {
            let at = p["offset"].as_u64().unwrap();
            (at, at + p["len"].as_u64().unwrap())
        })
        .collect();
    assert!(!sectors.is_empty());
    // BitLocker's own sector size (512 or 4096), from the volume's boot sector.
    let fve_boot = common::read_at(&raw_disk, part, 512);
    let sector = u64::from(u16::from_le_bytes([fve_boot[11], fve_boot[12]]));
    for p in plan["encrypted_sectors"].as_array().unwrap() {
        assert!(p["label"]
            .as_str()
            .unwrap()
            .starts_with("BitLocker sectors "));
        assert_eq!(p["offset"].as_u64().unwrap() % sector, 0, "whole sectors");
        assert_eq!(p["len"].as_u64().unwrap() % sector, 0, "whole sectors");
    }

    // Every byte that differs lies in a re-encrypted sector of the plan.
    // Judged on the virtual disks: a VHD (input and output alike) is read back by qemu-img.
    let (disk, out) = match container {
        Container::Raw => (raw_disk, out),
        Container::DynamicVhd => {
            let (raw_in, raw_out) = (s.path("in.raw"), s.path("out.raw"));
            convert(&disk, "vpc", &raw_in, "raw");
            convert(&out, "vpc", &raw_out, "raw");
            (raw_in, raw_out)
        }
    };
    let diffs = diff_files(&disk, &out);
    assert!(!diffs.is_empty());
    // Planned runs that touch are one: a diffuser changes whole sectors, so a difference runs on
    // from one planned run into the next.
    let mut sectors = sectors;
    sectors.sort();
    let mut joined: Vec<(u64, u64)> = Vec::new();
    for (from, to) in sectors {
        match joined.last_mut() {
            Some(last) if last.1 >= from => last.1 = last.1.max(to),
            _ => joined.push((from, to)),
        }
    }
    let sectors = joined;
    for (start, end) in &diffs {
        assert!(
            sectors.iter().any(|(s0, s1)| s0 <= start && end <= s1),
            "bytes {start:#x}..{end:#x} changed outside the planned sectors {sectors:x?}"
        );
    }
    // BitLocker's three metadata blocks (offsets from the boot sector) are untouched.
    let boot = common::read_at(&disk, part, 512);
    for i in 0..3 {
        let m = part + u64_at(&boot, 0xB0 + 8 * i);
        assert!(
            diffs
                .iter()
                .all(|(a0, a1)| *a1 <= m || *a0 >= m + 64 * 1024),
            "metadata block {i} at {m:#x} changed"
        );
    }

    // dislocker decrypts the output: the file is gone, the rest is intact, and the volume is
    // clean to ntfsfix and to kaifuku's own checker.
    let dec = s.path("out.decrypted");
    dislocker_decrypt(&out, part, &dislocker_key(&a, image), &dec);

    // ntfs-3g's own `rm` of the file on the input, decrypted by dislocker, is the oracle: the
    // decrypted output equals it in `$Bitmap`, `$MFT:$BITMAP` and the folder's entries.
    let oracle = s.path("in.decrypted");
    dislocker_decrypt(&disk, part, &dislocker_key(&a, image), &oracle);
    let m = ntfs3g(&oracle, &s.path("oracle.ntfs"), true);
    std::fs::remove_file(m.p(&format!("{CS_DIR}/{FAULTY}"))).expect("ntfs-3g rm");
    m.unmount();
    assert!(
        judge::ntfscat_bytes(&dec, 6, None) == judge::ntfscat_bytes(&oracle, 6, None),
        "$Bitmap differs from ntfs-3g's rm"
    );
    let (ours, theirs) = (
        judge::ntfscat_bytes(&dec, 0, Some("0xB0")),
        judge::ntfscat_bytes(&oracle, 0, Some("0xB0")),
    );
    assert!(
        ours == theirs,
        "$MFT:$BITMAP differs from ntfs-3g's rm: {}",
        judge::first_diff(&ours, &theirs)
    );
    let folder = format!("/{CS_DIR}");
    assert_eq!(
        judge::ntfsls_dir(&dec, &folder),
        judge::ntfsls_dir(&oracle, &folder),
        "the folder's entries differ from ntfs-3g's rm"
    );
    let m = ntfs3g(&dec, &s.path("out.ntfs"), false);
    assert!(
        !m.p(&format!("{CS_DIR}/{FAULTY}")).exists(),
        "the faulty file is still there"
    );
    for (path, data) in tree().into_iter().skip(1) {
        assert_eq!(std::fs::read(m.p(&path)).unwrap(), data, "{path}");
    }
    m.unmount();
    // ntfsfix takes the device's last sector for the backup boot sector; the NTFS may end before
    // its partition (the Elephant volumes), so it is judged on the NTFS's own length.
    let ntfs_len = (u64_at(&common::read_at(&dec, 0, 512), 0x28) + 1) * 512;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&dec)
        .unwrap()
        .set_len(ntfs_len)
        .unwrap();
    let o = run("ntfsfix", [OsStr::new("-n"), dec.as_os_str()]);
    assert_eq!(o.code, 0, "ntfsfix -n: {}", o.both());
    let o = kaifuku_check(&dec);
    assert_eq!(
        o.code,
        0,
        "kaifuku check on the decrypted output: {}",
        o.both()
    );
    // kaifuku itself reads the output back the same way (a fresh unlock).
    let mut args: Vec<&OsStr> = vec![OsStr::new("inspect"), out.as_os_str()];
    args.extend(key.iter().map(OsStr::new));
    let o = kaifuku(args);
    assert_eq!(o.code, 1, "nothing left to fix: {}", o.both());
}

#[test]
fn bitlocker_xts_in_mbr_is_fixed_and_dislocker_reads_the_result() {
    fix_and_judge(
        "bitlk-aes-xts-128",
        "dos",
        "bitlocker_xts_in_mbr_is_fixed_and_dislocker_reads_the_result",
    );
}

#[test]
fn bitlocker_cbc_in_gpt_is_fixed_and_dislocker_reads_the_result() {
    fix_and_judge(
        "bitlk-aes-cbc-256",
        "gpt",
        "bitlocker_cbc_in_gpt_is_fixed_and_dislocker_reads_the_result",
    );
}

#[test]
fn bitlocker_in_a_dynamic_vhd_is_fixed_and_dislocker_reads_the_result() {
    fix_and_judge_in(
        "bitlk-aes-xts-256",
        "gpt",
        Container::DynamicVhd,
        "bitlocker_in_a_dynamic_vhd_is_fixed_and_dislocker_reads_the_result",
    );
}

#[test]
fn bitlocker_clear_key_volume_is_fixed_without_a_key() {
    fix_and_judge(
        "bitlk-aes-xts-128-clearkey-only",
        "dos",
        "bitlocker_clear_key_volume_is_fixed_without_a_key",
    );
}

#[test]
fn wrong_or_mistyped_keys_are_refused_with_no_output() {
    let test = "wrong_or_mistyped_keys_are_refused_with_no_output";
    let s = Scratch::new(test);
    let Some(a) = archive(&s, test) else {
        return;
    };
    let image = "bitlk-aes-xts-128";
    let vol = encrypted_windows_volume(&s, &a, image, 2048);
    let disk = disk_with(&s, &vol, "dos");
    let good = a.fact(image, "RP");
    let out = s.path("out.img");
    let wrong = "111111-222222-333333-444444-555555-666666-000011-121121".to_string();
    let mistyped = good.replacen(
        &good[14..20],
        &format!(
            "{:06}",
            (good[14..20].parse::<u32>().unwrap() + 1) % 1_000_000
        ),
        1,
    );
    for (key, says) in [
        (&wrong, "does not unlock"),
        (&mistyped, "group 3 of the recovery password is mistyped"),
    ] {
        let o = kaifuku([
            OsStr::new("fix"),
            disk.as_os_str(),
            OsStr::new("-o"),
            out.as_os_str(),
            OsStr::new("--recovery-password"),
            OsStr::new(key),
        ]);
        assert_eq!(o.code, 2, "{}", o.both());
        assert!(o.both().contains(says), "{}", o.both());
        assert!(
            !o.both().contains(key.as_str()),
            "the key was echoed: {}",
            o.both()
        );
        assert!(!out.exists(), "no output for a key that does not unlock");
    }
    // A key list with the protector's GUID unlocks it; one without says so.
    let id = a.fact(image, "RP_VMK_GUID");
    let list = s.path("keys.csv");
    std::fs::write(
        &list,
        format!(
            "\u{feff}\"Id\",\"Key\"\r\n\"{{{}}}\",\"{good}\"\r\n",
            id.to_uppercase()
        ),
    )
    .unwrap();
    let o = kaifuku([
        OsStr::new("inspect"),
        disk.as_os_str(),
        OsStr::new("--keys"),
        list.as_os_str(),
    ]);
    assert_eq!(o.code, 0, "{}", o.both());
    assert!(!o.both().contains(&good));
    std::fs::write(
        &list,
        format!("KeyId,RecoveryKey\n00000000-1111-2222-3333-444444444444,{good}\n"),
    )
    .unwrap();
    let o = kaifuku([
        OsStr::new("inspect"),
        disk.as_os_str(),
        OsStr::new("--keys"),
        list.as_os_str(),
    ]);
    assert_eq!(o.code, 2, "{}", o.both());
    assert!(o.both().contains(&id.to_uppercase()), "{}", o.both());
}

/// AES-CBC with the Elephant diffuser (Windows 7's default), judged by dislocker, which
/// implements the diffuser on its own.
#[test]
fn bitlocker_cbc_elephant_is_fixed_and_dislocker_reads_the_result() {
    fix_and_judge(
        "bitlk-aes-cbc-elephant-128",
        "gpt",
        "bitlocker_cbc_elephant_is_fixed_and_dislocker_reads_the_result",
    );
}

/// 4096-byte BitLocker sectors: each change re-encrypts whole 4 KiB sectors.
#[test]
fn bitlocker_4k_sectors_are_fixed_and_dislocker_reads_the_result() {
    fix_and_judge(
        "bitlk-aes-xts-128-4k",
        "gpt",
        "bitlocker_4k_sectors_are_fixed_and_dislocker_reads_the_result",
    );
}
