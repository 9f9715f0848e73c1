//! The messages between the page and its worker, typed on both sides: the page posts a
//! [`ToWorker`], the worker answers with [`FromWorker`]s. Both are serde enums carried as plain
//! JavaScript objects (`serde-wasm-bindgen`); the picked `File` and the download's `Blob`s travel
//! inside them as the same JavaScript objects (structured clone), never as copies of their bytes.

use serde::{Deserialize, Serialize};

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
    use super::Progress;
    use crate::view::{FixedView, InspectView, PlanView, ProblemView};
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
        },
        /// Plan the fix of the inspected image; `discard_journal` is the user's consent to reset
        /// an unclean journal.
        Plan { discard_journal: bool },
        /// Verify the planned fix and assemble the downloads.
        Fix,
        /// Show the bytes: the structures read and the plan's patches, annotated.
        Explain,
        /// The same structures re-read from the fixed image (after a plan).
        ExplainFixed,
        /// Unlock the inspected image's BitLocker volumes with this key and inspect it again.
        Unlock { key: KeyInput },
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
}
