//! The BitLocker keys given on the command line: `--recovery-password`, `--password`,
//! `--startup-key FILE`, `--keys FILE`. None is ever printed; a password given as `-` is read
//! from standard input, so it stays out of the process list and the shell history.

use std::io::BufRead;
use std::path::PathBuf;

use kaifuku_bitlocker::{parse_key_list, StartupKey, UnlockKey};
use kaifuku_rescue::VolumeKeys;

/// The options that unlock BitLocker volumes.
#[derive(clap::Args, Default, Clone)]
pub struct KeyArgs {
    /// BitLocker: the volume's 48-digit recovery password (dashes or spaces between the groups
    /// are fine); `-` reads it from standard input.
    #[arg(long, value_name = "DIGITS")]
    recovery_password: Option<String>,
    /// BitLocker: a user password of the volume; `-` reads it from standard input.
    #[arg(long, value_name = "PASSWORD")]
    password: Option<String>,
    /// BitLocker: a startup key file (.BEK).
    #[arg(long, value_name = "FILE")]
    startup_key: Option<PathBuf>,
    /// BitLocker: recovery passwords as exported from Entra ID or Active Directory (CSV with
    /// the protector ID and the recovery password on each line).
    #[arg(long = "keys", value_name = "FILE")]
    key_list: Option<PathBuf>,
}

fn from_stdin(value: String, what: &str) -> Result<String, String> {
    if value != "-" {
        return Ok(value);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the {what} from standard input: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

impl KeyArgs {
    /// The keys, in the order they are tried: recovery password, key list, password, startup
    /// key. An unreadable file is an error that names the option, never its content.
    pub fn volume_keys(self) -> Result<VolumeKeys, String> {
        let mut keys = Vec::new();
        if let Some(rp) = self.recovery_password {
            keys.push(UnlockKey::RecoveryPassword(from_stdin(
                rp,
                "recovery password",
            )?));
        }
        if let Some(path) = &self.key_list {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the key list {}: {e}", path.display()))?;
            let list =
                parse_key_list(&text).map_err(|e| format!("key list {}: {e}", path.display()))?;
            if list.is_empty() {
                return Err(format!(
                    "the key list {} holds no recovery password",
                    path.display()
                ));
            }
            keys.push(UnlockKey::KeyList(list));
        }
        if let Some(pw) = self.password {
            keys.push(UnlockKey::Password(from_stdin(pw, "password")?));
        }
        if let Some(path) = &self.startup_key {
            let bytes = std::fs::read(path)
                .map_err(|e| format!("cannot read the startup key {}: {e}", path.display()))?;
            let key = StartupKey::parse(&bytes)
                .map_err(|e| format!("startup key {}: {e}", path.display()))?;
            keys.push(UnlockKey::StartupKey(key));
        }
        Ok(VolumeKeys::new(keys))
    }

    /// The same options for the `fix` runs of a batch, each a process of its own: a password
    /// given as `-` is read from standard input once, here, and handed to every run on its
    /// standard input (never on its command line, where the process list would show it). The
    /// keys are checked once first, so an unreadable key list stops the batch before it starts.
    pub fn for_batch(self) -> Result<BatchKeys, String> {
        let recovery_password = self
            .recovery_password
            .map(|v| from_stdin(v, "recovery password"))
            .transpose()?;
        let password = self
            .password
            .map(|v| from_stdin(v, "password"))
            .transpose()?;
        let resolved = KeyArgs {
            recovery_password,
            password,
            startup_key: self.startup_key,
            key_list: self.key_list,
        };
        resolved.clone().volume_keys()?;
        let mut args: Vec<std::ffi::OsString> = Vec::new();
        let mut stdin = String::new();
        // One line each, in the order `volume_keys` reads them.
        if let Some(rp) = &resolved.recovery_password {
            args.extend(["--recovery-password".into(), "-".into()]);
            stdin.push_str(rp);
            stdin.push('\n');
        }
        if let Some(path) = &resolved.key_list {
            args.extend(["--keys".into(), path.clone().into_os_string()]);
        }
        if let Some(pw) = &resolved.password {
            args.extend(["--password".into(), "-".into()]);
            stdin.push_str(pw);
            stdin.push('\n');
        }
        if let Some(path) = &resolved.startup_key {
            args.extend(["--startup-key".into(), path.clone().into_os_string()]);
        }
        Ok(BatchKeys { args, stdin })
    }
}

/// The key options of one `fix` run in a batch: its arguments and what its standard input holds.
pub struct BatchKeys {
    pub args: Vec<std::ffi::OsString>,
    pub stdin: String,
}
