//! Durations written as `500ms`, `30s`, `5m`, `1h`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ManifestDuration {
    millis: u64,
}

impl ManifestDuration {
    pub const fn from_millis(millis: u64) -> Self {
        Self { millis }
    }

    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.millis)
    }
}

impl TryFrom<String> for ManifestDuration {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        todo!("{text}")
    }
}

impl From<ManifestDuration> for String {
    fn from(d: ManifestDuration) -> String {
        format!("{}ms", d.millis)
    }
}
