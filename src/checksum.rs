//! The digest that verifies backups and identifies data sets: SHA-256, as lower-case hex.
//! Changing the digest is a change to this file (and the format's version).

use sha2::{Digest, Sha256};

/// The SHA-256 of `bytes`, as lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    hex_of(&[bytes])
}

/// The SHA-256 of pieces laid end to end, as lower-case hex.
pub fn hex_of(pieces: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for piece in pieces {
        hasher.update(piece);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
