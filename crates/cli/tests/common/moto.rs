//! moto (an AWS emulator for S3, the EBS direct APIs and EC2) in server mode for the cloud tests,
//! driven through `tests/s3.py` (boto3, AWS's own SDK — never kaifuku's code), and kaifuku run
//! against it with credentials whose secret key must never be printed.

use super::Out;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The secret key kaifuku is given; it must never appear in its output.
pub const SECRET: &str = "kaifuku-test-secret-never-printed";
/// The session token kaifuku is given; it must never appear in its output either.
pub const SESSION_TOKEN: &str = "kaifuku-test-session-token-never-printed";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `tests/s3.py ARGS` with the interpreter of .venv-tools; its standard output.
pub fn s3_py(args: &[&str]) -> String {
    let python = repo().join(".venv-tools/bin/python");
    let out = Command::new(&python)
        .arg(repo().join("tests/s3.py"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (setup.sh makes it)", python.display()));
    assert!(
        out.status.success(),
        "tests/s3.py {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// moto in server mode on a free port, stopped (its process group) when dropped.
pub struct Moto {
    pub port: String,
    pid: i32,
}

impl Moto {
    pub fn start(s: &super::Scratch) -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
            .to_string();
        let out = s3_py(&["start", s.path("moto").to_str().unwrap(), &port]);
        Moto {
            pid: out.trim().parse().unwrap(),
            port,
        }
    }

    /// `kaifuku ARGS` with credentials and the endpoint in the environment, as the AWS CLI takes
    /// them.
    pub fn kaifuku(&self, args: &[&str]) -> Out {
        self.kaifuku_with(&[], args)
    }

    /// The same with `env` set too.
    pub fn kaifuku_with(&self, env: &[(&str, &str)], args: &[&str]) -> Out {
        let out = Command::new(env!("CARGO_BIN_EXE_kaifuku"))
            .args(args)
            .envs(env.iter().copied())
            .env("AWS_ACCESS_KEY_ID", "AKIAKAIFUKUTEST")
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_SESSION_TOKEN", SESSION_TOKEN)
            .env("AWS_REGION", "us-east-1")
            .env(
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", self.port),
            )
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL_S3")
            .env_remove("AWS_ENDPOINT_URL_EBS")
            .env_remove("AWS_ENDPOINT_URL_EC2")
            .output()
            .unwrap();
        let o = Out {
            code: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
        assert!(
            !o.both().contains(SECRET) && !o.both().contains(SESSION_TOKEN),
            "a credential was printed: {}",
            o.both()
        );
        o
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("--")
            .arg(format!("-{}", self.pid))
            .status();
    }
}
