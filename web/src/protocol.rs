//! The messages between the page and its worker, typed on both sides: the page posts a
//! [`ToWorker`], the worker answers with [`FromWorker`]s. Both are serde enums carried as plain
//! JavaScript objects (`serde-wasm-bindgen`); the picked `File` and the download's `Blob`s travel
//! inside them as the same JavaScript objects (structured clone), never as copies of their bytes.

use kaifuku_rescue::rule_file::{RuleFile, RuleFileError};
use kaifuku_rescue::{Rule, RuleId, RuleSet, RuleSetError};
use serde::{Deserialize, Serialize};

/// The rules the next image is inspected with, as the page chose them from a rule file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleChoice {
    /// The rule file's rules in its order, after the built-in rule when the file includes it;
    /// empty: the built-in rule alone, exactly as without a rule file. Carried as JSON text:
    /// rule times are NTFS ticks, beyond what a JavaScript number holds exactly.
    #[serde(default, with = "rules_as_json")]
    pub user: Vec<Rule>,
    /// Also delete the registry transaction logs (`RuleSet::with_txr_logs`): the page's
    /// checkbox, off by default.
    #[serde(default)]
    pub txr_logs: bool,
}

impl RuleChoice {
    /// The rules a parsed rule file brings: the built-in rule first when it `include`s it, then
    /// the file's own.
    pub fn of_file(file: &RuleFile) -> RuleChoice {
        let builtin = file
            .include
            .iter()
            .any(|k| k == Rule::crowdstrike_2024_07_19().key());
        RuleChoice {
            user: builtin
                .then(Rule::crowdstrike_2024_07_19)
                .into_iter()
                .chain(file.rules.iter().cloned())
                .collect(),
            txr_logs: false,
        }
    }

    /// The worker's rule set, made anew from the rules received: the built-in rule as the core
    /// defines it (never as sent), user rules checked again by [`RuleSet::new`] (the page's
    /// parsing is not trusted), and no `--path` rule, which only the command line makes.
    pub fn rule_set(&self) -> Result<RuleSet, RuleSetError> {
        let set = if self.user.is_empty() {
            RuleSet::builtin()
        } else {
            let rules = self
                .user
                .iter()
                .map(|r| match r.id {
                    RuleId::CrowdStrike20240719 => Ok(Rule::crowdstrike_2024_07_19()),
                    RuleId::User => Ok(r.clone()),
                    // Only the command line makes a `--path` rule, and the registry
                    // transaction-log rules come with `txr_logs`, both at once, never as data.
                    RuleId::Path | RuleId::RegistryTxrContainers | RuleId::RegistryTxrLog => {
                        Err(RuleSetError::Invalid {
                            error: RuleFileError::BuiltinId {
                                rule: r.key().to_string(),
                            },
                        })
                    }
                })
                .collect::<Result<Vec<Rule>, RuleSetError>>()?;
            RuleSet::new(rules)?
        };
        if self.txr_logs {
            set.with_txr_logs()
        } else {
            Ok(set)
        }
    }
}

/// `Vec<Rule>` as one JSON string inside the message.
mod rules_as_json {
    use kaifuku_rescue::Rule;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(rules: &[Rule], s: S) -> Result<S::Ok, S::Error> {
        let text = serde_json::to_string(rules).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Rule>, D::Error> {
        let text = String::deserialize(d)?;
        serde_json::from_str(&text).map_err(serde::de::Error::custom)
    }
}

/// The step the worker is in, for the progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Reading the container, partitions, volumes and the rule's matches.
    Inspect,
    /// Trying the BitLocker key the user gave (key stretching), then inspecting the unlocked
    /// volume.
    Unlock,
    /// Planning the fix and having the core check it.
    Plan,
    /// Reading the fixed image back from scratch.
    Verify,
    /// Assembling the downloads.
    Output,
}

/// How far the current step has got: bytes and calls that reached the picked file so far, and the
/// milliseconds since the step began.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub phase: Phase,
    pub bytes: u64,
    pub calls: u64,
    pub ms: f64,
    /// While a BitLocker key is stretched: how far.
    #[serde(default)]
    pub stretch: Option<Stretch>,
}

/// Key stretching's progress: SHA-256 rounds done of all (per protector tried).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stretch {
    pub done: u32,
    pub total: u32,
}

#[cfg(target_arch = "wasm32")]
pub use messages::{FromWorker, KeyInput, ToWorker};

#[cfg(target_arch = "wasm32")]
mod messages {
    use super::{Progress, RuleChoice};
    use crate::view::{CheckView, FixedView, InspectView, PlanView, ProblemView, RemoteFixedView};
    use serde::{Deserialize, Serialize};
    use wasm_bindgen::JsValue;
    use web_sys::{Blob, DedicatedWorkerGlobalScope, File, Worker};

    /// What the page asks of the worker.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum ToWorker {
        /// Read this image: container, partitions, volumes, matches.
        Inspect {
            #[serde(with = "serde_wasm_bindgen::preserve")]
            file: File,
            /// The rules to inspect it with (and to plan and verify with).
            #[serde(default)]
            rules: RuleChoice,
        },
        /// Inspect the same image again with these rules (the report and any plan made with
        /// the old ones are dropped; BitLocker volumes already unlocked stay unlocked).
        /// A blob in cloud storage by its URL (an Azure SAS URL), inspected as a picked file is.
        InspectUrl {
            url: String,
            #[serde(default)]
            rules: RuleChoice,
        },
        SetRules {
            rules: RuleChoice,
        },
        /// Plan the fix of the inspected image; `discard_journal` is the user's consent to reset
        /// an unclean journal; `fixed_vhd` asks for the download as a fixed VHD (for Azure)
        /// instead of the picked file's format.
        Plan {
            discard_journal: bool,
            #[serde(default)]
            fixed_vhd: bool,
        },
        /// Verify the planned fix and assemble the downloads. For a blob: verify and make the
        /// undo file, writing nothing ([`FromWorker::RemoteUndo`]).
        Fix,
        /// A blob: write the verified fix into it, then read it back ([`FromWorker::RemoteWritten`]).
        WriteRemote,
        /// Show the bytes: the structures read and the plan's patches, annotated.
        Explain,
        /// The same structures re-read from the fixed image (after a plan).
        ExplainFixed,
        /// Unlock the inspected image's BitLocker volumes with this key and inspect it again.
        Unlock {
            key: KeyInput,
        },
    }

    /// A BitLocker key as the user gave it. `Debug` never shows it; the worker turns it into the
    /// core's `UnlockKey` (zeroed when dropped) and keeps nothing else of it.
    #[derive(Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum KeyInput {
        /// The 48-digit recovery password, as typed or pasted (dashes and spaces are fine).
        RecoveryPassword { text: String },
        /// A user password.
        Password { text: String },
        /// A startup key (`.BEK` file).
        StartupKey {
            #[serde(with = "serde_wasm_bindgen::preserve")]
            file: File,
        },
        /// A key list (CSV `Id,Key`, as exported from Entra ID or Active Directory).
        KeyList {
            #[serde(with = "serde_wasm_bindgen::preserve")]
            file: File,
        },
    }

    impl std::fmt::Debug for KeyInput {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(match self {
                KeyInput::RecoveryPassword { .. } => "KeyInput::RecoveryPassword(<hidden>)",
                KeyInput::Password { .. } => "KeyInput::Password(<hidden>)",
                KeyInput::StartupKey { .. } => "KeyInput::StartupKey(<hidden>)",
                KeyInput::KeyList { .. } => "KeyInput::KeyList(<hidden>)",
            })
        }
    }

    /// What the worker tells the page.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum FromWorker {
        /// The worker's wasm is compiled and it listens: it can take an image.
        Ready,
        Progress(Progress),
        Inspected(InspectView),
        Planned(PlanView),
        /// The annotated structures (`view::ExplainView`) as JSON text: NTFS times, serial numbers
        /// and file references are 64-bit values beyond what a JavaScript number holds exactly.
        Explained {
            json: String,
        },
        /// The structures re-read from the fixed image (`view::ExplainView` as JSON text).
        ExplainedFixed {
            json: String,
        },
        /// Verified; the downloads are `Blob`s made of slices of the picked file and new bytes.
        Fixed {
            view: FixedView,
            #[serde(with = "serde_wasm_bindgen::preserve")]
            image: Blob,
            #[serde(with = "serde_wasm_bindgen::preserve")]
            undo: Blob,
            #[serde(with = "serde_wasm_bindgen::preserve")]
            report: Blob,
        },
        /// A blob's fix is verified and its undo file made; nothing is written yet.
        RemoteUndo {
            #[serde(with = "serde_wasm_bindgen::preserve")]
            undo: Blob,
            undo_name: String,
            undo_size: u64,
            checks: Vec<CheckView>,
        },
        /// The blob is fixed where it lives and read back.
        RemoteWritten(RemoteFixedView),
        /// The key file given to unlock could not be read as a key; the image stays as inspected.
        KeyFileRefused(ProblemView),
        /// The step failed; nothing was changed.
        Failed(ProblemView),
    }

    /// Plain JavaScript objects (not `Map`s), numbers as numbers: what structured clone carries.
    fn to_js<T: Serialize>(message: &T) -> Result<JsValue, JsValue> {
        message
            .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
            .map_err(JsValue::from)
    }

    impl ToWorker {
        pub fn to_js(&self) -> Result<JsValue, JsValue> {
            to_js(self)
        }
        pub fn from_js(data: JsValue) -> Result<Self, serde_wasm_bindgen::Error> {
            serde_wasm_bindgen::from_value(data)
        }
        /// Posts the message to `worker`.
        pub fn post(&self, worker: &Worker) -> Result<(), JsValue> {
            worker.post_message(&self.to_js()?)
        }
    }

    impl FromWorker {
        pub fn to_js(&self) -> Result<JsValue, JsValue> {
            to_js(self)
        }
        pub fn from_js(data: JsValue) -> Result<Self, serde_wasm_bindgen::Error> {
            serde_wasm_bindgen::from_value(data)
        }
        /// Posts the message to the page, from inside the worker.
        pub fn post(&self, scope: &DedicatedWorkerGlobalScope) -> Result<(), JsValue> {
            scope.post_message(&self.to_js()?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_travels_with_its_phase_as_a_word() {
        let p = Progress {
            phase: Phase::Verify,
            bytes: 3 << 20,
            calls: 50,
            ms: 12.5,
            stretch: Some(Stretch {
                done: 0x8_0000,
                total: 0x10_0000,
            }),
        };
        let json = serde_json::to_value(p).unwrap();
        assert_eq!(json["phase"], "verify");
        assert_eq!(serde_json::from_value::<Progress>(json).unwrap(), p);
    }

    const RULE_FILE: &str = r#"format = 1
include = ["crowdstrike-2024-07-19"]
[[rule]]
id = "contoso-agent"
directory = '\ProgramData\Contoso'
name = "CH-*.bin"
faulty = { from = 2025-03-02T04:09:00Z, to = 2025-03-02T04:10:00Z }
[rule.title]
en = "Contoso"
ja = "Contoso(日本語)"
[rule.description]
en = "Contoso's channel files."
ja = "Contoso のチャネルファイルです。"
"#;

    #[test]
    fn rules_travel_exactly_and_are_checked_again() {
        let file = kaifuku_rescue::rule_file::parse(RULE_FILE).unwrap();
        let choice = RuleChoice::of_file(&file);
        let keys: Vec<&str> = choice.user.iter().map(|r| r.key()).collect();
        assert_eq!(keys, ["crowdstrike-2024-07-19", "contoso-agent"]);
        // Through the message and back: the times (NTFS ticks) arrive to the tick.
        let json = serde_json::to_value(&choice).unwrap();
        assert!(json["user"].is_string(), "{json}");
        let back: RuleChoice = serde_json::from_value(json).unwrap();
        assert_eq!(back, choice);
        assert_eq!(back.user[1].faulty_modified, file.rules[0].faulty_modified);
        let set = back.rule_set().unwrap();
        assert_eq!(set.len(), 2);
        // No rules: the built-in rule alone, as without a rule file; an old message without
        // `rules` reads as that.
        let none: RuleChoice = serde_json::from_str("{}").unwrap();
        assert_eq!(none, RuleChoice::default());
        let set = none.rule_set().unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(set.primary().key(), "crowdstrike-2024-07-19");

        // A message is not trusted: a rule naming $MFT, a changed built-in rule and a --path
        // rule are refused or replaced.
        let mut hostile = back.clone();
        hostile.user[1].directory = "\\$MFT".into();
        assert!(matches!(
            hostile.rule_set(),
            Err(RuleSetError::Invalid {
                error: RuleFileError::NamesSystemFile { .. }
            })
        ));
        let mut changed = back.clone();
        changed.user[0].pattern = "*".into();
        assert_eq!(
            changed.rule_set().unwrap().primary().pattern,
            "C-00000291*.sys"
        );
        let path = RuleChoice {
            user: vec![Rule::for_path("\\$MFT").unwrap()],
            txr_logs: false,
        };
        assert!(path.rule_set().is_err());
    }
}
