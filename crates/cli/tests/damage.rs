//! Damaged metadata never makes kaifuku panic, hang or exhaust memory: copies of a fixture with
//! random bytes changed (fixed seed) in the boot sector and the MFT records that matter go through
//! `inspect`, `fix --dry-run` and `check`, which must each end with one of the documented exit
//! codes within a time limit.

mod common;

use common::{fixtures, load_json, sparse_copy, write_at, Scratch};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn run_limited(args: &[&str], limit: Duration) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kaifuku"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kaifuku");
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (st.code().unwrap_or(-1), err);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("kaifuku {args:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn damaged_metadata_gives_an_exit_code_not_a_crash() {
    let fx = fixtures();
    let exp = load_json(&fx.join("bare-64k.raw.expected.json"));
    let v = &exp["volumes"][0];
    let cs = v["cluster_size"].as_u64().unwrap();
    let rs = v["mft_record_size"].as_u64().unwrap();
    let mft = v["mft_lcn"].as_u64().unwrap() * cs;
    let dir = v["directories"]["Windows/System32/drivers/CrowdStrike"]["mft_record"]
        .as_u64()
        .unwrap();
    let mut regions: Vec<(u64, u64)> = vec![(0, 512), (mft, 16 * rs), (mft + dir * rs, rs)];
    for m in v["matches"].as_array().unwrap() {
        regions.push((mft + m["mft_record"].as_u64().unwrap() * rs, rs));
    }
    let s = Scratch::new("damage");
    let img = s.path("damaged.raw");
    let img_s = img.to_str().unwrap().to_string();
    let mut rng = Rng(0x6b61_6966_756b_7531);
    let mut outcomes = [0usize; 5];
    for _ in 0..60 {
        sparse_copy(&fx.join("bare-64k.raw"), &img);
        for _ in 0..1 + rng.below(12) {
            let (at, len) = regions[rng.below(regions.len() as u64) as usize];
            write_at(&img, at + rng.below(len), &[rng.below(256) as u8]);
        }
        for args in [
            vec!["inspect", &img_s],
            vec!["fix", "--dry-run", &img_s],
            vec!["check", &img_s],
        ] {
            let (code, err) = run_limited(&args, Duration::from_secs(30));
            assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
            assert!((0..=4).contains(&code), "{args:?} exited {code}: {err}");
            outcomes[code as usize] += 1;
        }
    }
    // The damage must actually be seen: some runs end in an error or a check finding.
    assert!(
        outcomes[3] + outcomes[4] > 0,
        "no damage was noticed: {outcomes:?}"
    );
}
