//! Kubernetes resource quantities.

use serde::{Deserialize, Serialize};

/// CPU amount in millicores, keeping the text the user wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CpuQuantity {
    pub millicores: u64,
    pub text: String,
}

impl TryFrom<String> for CpuQuantity {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        todo!("{text}")
    }
}

impl From<CpuQuantity> for String {
    fn from(q: CpuQuantity) -> String {
        q.text
    }
}

/// Memory amount in bytes, keeping the text the user wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MemoryQuantity {
    pub bytes: u64,
    pub text: String,
}

impl TryFrom<String> for MemoryQuantity {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        todo!("{text}")
    }
}

impl From<MemoryQuantity> for String {
    fn from(q: MemoryQuantity) -> String {
        q.text
    }
}
