//! AES-256-GCM encryption under the master key, in a versioned format.
//!
//! A ciphertext is `version (1 byte) | key id (4 bytes, big-endian) |
//! nonce (12 bytes) | encrypted value and 16-byte tag`. The associated data
//! is the version and key id followed by the caller's context (a secret's
//! name), so a changed header, or a ciphertext copied to another name, fails
//! to decrypt. Every encryption takes a fresh random nonce from the OS
//! generator: with 96-bit random nonces, NIST SP 800-38D allows 2^32
//! encryptions under one key, far more than a vault performs between
//! rotations.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use zeroize::Zeroizing;

/// Length of a master key in bytes.
pub const KEY_LEN: usize = 32;

/// Length of a nonce in bytes (96 bits, the size GCM is designed for).
pub const NONCE_LEN: usize = 12;

/// Format version written by [`encrypt`].
const FORMAT_V1: u8 = 1;

const HEADER_LEN: usize = 1 + 4;

const TAG_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum CipherError {
    #[error("the operating system's random number generator failed: {0}")]
    Random(getrandom::Error),
    #[error("the ciphertext is {len} bytes, shorter than the {min} bytes of header, nonce and tag; it was truncated")]
    Truncated { len: usize, min: usize },
    #[error("the ciphertext has format version {found}, and this shipdeck reads only version {FORMAT_V1}")]
    UnknownFormat { found: u8 },
    #[error(
        "the ciphertext was encrypted under key id {found}, but the vault's key id is {expected}"
    )]
    WrongKeyId { found: u32, expected: u32 },
    #[error("decryption failed: the ciphertext, its name or the key does not match")]
    Decrypt,
    #[error("encryption failed")]
    Encrypt,
    #[error("a master key must be {expected} hexadecimal digits (32 bytes); the given one is not")]
    InvalidKeyText { expected: usize },
}

/// A 256-bit master key, zeroed when dropped and redacted in debug output.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; KEY_LEN]>);

impl MasterKey {
    /// Generates a key from the OS random number generator.
    pub fn generate() -> Result<Self, CipherError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(bytes.as_mut_slice()).map_err(CipherError::Random)?;
        Ok(Self(bytes))
    }

    pub fn from_bytes(bytes: Zeroizing<[u8; KEY_LEN]>) -> Self {
        Self(bytes)
    }

    /// Parses 64 hexadecimal digits, ignoring surrounding whitespace.
    pub fn from_hex(text: &str) -> Result<Self, CipherError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        hex::decode_to_slice(text.trim(), bytes.as_mut_slice()).map_err(|_| {
            CipherError::InvalidKeyText {
                expected: KEY_LEN * 2,
            }
        })?;
        Ok(Self(bytes))
    }

    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0.as_slice()))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.0.as_slice()))
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

/// Returns a fresh nonce from the OS random number generator.
pub fn fresh_nonce() -> Result<[u8; NONCE_LEN], CipherError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(CipherError::Random)?;
    Ok(nonce)
}

/// Encrypts `plaintext` under `key`, bound to `context` (a secret's name).
pub fn encrypt(
    key: &MasterKey,
    key_id: u32,
    context: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CipherError> {
    let header = header(key_id);
    let nonce = fresh_nonce()?;
    let aad = associated_data(&header, context);
    let payload = Payload {
        msg: plaintext,
        aad: &aad,
    };
    let sealed = key
        .cipher()
        .encrypt(Nonce::from_slice(&nonce), payload)
        .map_err(|_| CipherError::Encrypt)?;

    let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + sealed.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Decrypts a ciphertext made by [`encrypt`] with the same key, key id and
/// context.
pub fn decrypt(
    key: &MasterKey,
    key_id: u32,
    context: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CipherError> {
    let min = HEADER_LEN + NONCE_LEN + TAG_LEN;
    if ciphertext.len() < min {
        return Err(CipherError::Truncated {
            len: ciphertext.len(),
            min,
        });
    }
    let (header, rest) = ciphertext.split_at(HEADER_LEN);
    if header[0] != FORMAT_V1 {
        return Err(CipherError::UnknownFormat { found: header[0] });
    }
    let found = read_key_id(header);
    if found != key_id {
        return Err(CipherError::WrongKeyId {
            found,
            expected: key_id,
        });
    }

    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    let aad = associated_data(header, context);
    let payload = Payload {
        msg: sealed,
        aad: &aad,
    };
    key.cipher()
        .decrypt(Nonce::from_slice(nonce), payload)
        .map(Zeroizing::new)
        .map_err(|_| CipherError::Decrypt)
}

fn header(key_id: u32) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[0] = FORMAT_V1;
    header[1..].copy_from_slice(&key_id.to_be_bytes());
    header
}

fn read_key_id(header: &[u8]) -> u32 {
    let mut bytes = [0u8; 4];
    bytes.copy_from_slice(&header[1..HEADER_LEN]);
    u32::from_be_bytes(bytes)
}

fn associated_data(header: &[u8], context: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + context.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(context);
    aad
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn key() -> MasterKey {
        MasterKey::generate().unwrap()
    }

    #[test]
    fn round_trip() {
        let key = key();
        let sealed = encrypt(&key, 7, b"db_password", b"s3cret value").unwrap();
        let opened = decrypt(&key, 7, b"db_password", &sealed).unwrap();
        assert_eq!(opened.as_slice(), b"s3cret value");
    }

    #[test]
    fn ciphertext_hides_plaintext() {
        let sealed = encrypt(&key(), 1, b"n", b"visible-canary").unwrap();
        let found = sealed.windows(14).any(|window| window == b"visible-canary");
        assert!(!found);
    }

    #[test]
    fn tampered_ciphertext_is_rejected() {
        let key = key();
        let sealed = encrypt(&key, 1, b"name", b"value").unwrap();
        for position in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[position] ^= 0x01;
            assert!(
                decrypt(&key, 1, b"name", &tampered).is_err(),
                "a flipped bit at byte {position} was accepted"
            );
        }
    }

    #[test]
    fn other_name_is_rejected() {
        let key = key();
        let sealed = encrypt(&key, 1, b"name", b"value").unwrap();
        let error = decrypt(&key, 1, b"other", &sealed).unwrap_err();
        assert!(matches!(error, CipherError::Decrypt), "{error}");
    }

    #[test]
    fn truncated_nonce_is_rejected() {
        let key = key();
        let sealed = encrypt(&key, 1, b"name", b"value").unwrap();
        for len in [0, HEADER_LEN, HEADER_LEN + NONCE_LEN - 1, HEADER_LEN + 8] {
            let error = decrypt(&key, 1, b"name", &sealed[..len]).unwrap_err();
            assert!(
                matches!(error, CipherError::Truncated { .. }),
                "{len}: {error}"
            );
        }
        let short_tag = &sealed[..sealed.len() - 1];
        assert!(decrypt(&key, 1, b"name", short_tag).is_err());
    }

    #[test]
    fn wrong_key_is_rejected() {
        let sealed = encrypt(&key(), 1, b"name", b"value").unwrap();
        let error = decrypt(&key(), 1, b"name", &sealed).unwrap_err();
        assert!(matches!(error, CipherError::Decrypt), "{error}");
    }

    #[test]
    fn other_key_id_is_rejected() {
        let key = key();
        let sealed = encrypt(&key, 1, b"name", b"value").unwrap();
        let error = decrypt(&key, 2, b"name", &sealed).unwrap_err();
        assert!(matches!(
            error,
            CipherError::WrongKeyId {
                found: 1,
                expected: 2
            }
        ));
    }

    #[test]
    fn unknown_format_is_rejected() {
        let key = key();
        let mut sealed = encrypt(&key, 1, b"name", b"value").unwrap();
        sealed[0] = 9;
        let error = decrypt(&key, 1, b"name", &sealed).unwrap_err();
        assert!(matches!(error, CipherError::UnknownFormat { found: 9 }));
    }

    #[test]
    fn encryptions_use_distinct_nonces() {
        let key = key();
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let sealed = encrypt(&key, 1, b"name", b"value").unwrap();
            let nonce = sealed[HEADER_LEN..HEADER_LEN + NONCE_LEN].to_vec();
            assert!(seen.insert(nonce), "a nonce repeated");
        }
    }

    /// One million nonces from the generator that every encryption uses,
    /// without the AES work, so the test stays fast in debug builds.
    #[test]
    fn million_nonces_never_repeat() {
        let mut seen = HashSet::with_capacity(1_000_000);
        for _ in 0..1_000_000 {
            assert!(seen.insert(fresh_nonce().unwrap()), "a nonce repeated");
        }
    }

    #[test]
    fn key_hex_round_trip_and_rejects_bad_text() {
        let key = key();
        let parsed = MasterKey::from_hex(&format!(" {}\n", key.to_hex().as_str())).unwrap();
        let sealed = encrypt(&key, 1, b"n", b"v").unwrap();
        assert!(decrypt(&parsed, 1, b"n", &sealed).is_ok());
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(66)] {
            assert!(MasterKey::from_hex(bad).is_err(), "{bad:?}");
        }
        assert_eq!(format!("{key:?}"), "MasterKey([REDACTED])");
    }
}
