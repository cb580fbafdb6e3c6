//! Configuration that deployments draw on: the encrypted secret vault and
//! the `${SECRET:name}` references that manifests use in `env`.
//!
//! Secret values are kept in [`SecretValue`], which zeroes its memory when
//! dropped and prints as `[REDACTED]` in debug output. Errors name secrets,
//! never their values.

pub mod cipher;
pub mod keys;
pub mod render;
pub mod secret;
pub mod vault;

#[cfg(test)]
mod tests;

pub use keys::{KeyError, KeySource};
pub use render::{check_spec, render_env, RenderError, RenderedEnv, SecretLookup};
pub use secret::{SecretRuleError, SecretValue, MAX_VALUE_LEN};
pub use vault::{Rotation, SecretInfo, Vault, VaultError};
