//! The reference from a sidecar to its weights file: its name, length and digests, and the
//! check of a file's bytes against them (docs/FORMAT.md, "`latest.json` and `previous.json`").

use serde::{Deserialize, Serialize};

/// The first version whose weights carry a digest per part.
const FIRST_PARTS_VERSION: u32 = 4;
/// Digest parts smaller than this, or larger than the largest, are refused when read.
const PART_BYTES_RANGE: std::ops::RangeInclusive<u64> = (64 << 10)..=(1 << 30);

/// The weights file of a sidecar, with what it must verify against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightsRef {
    /// A plain file name inside the backup directory.
    pub file: String,
    /// Its exact length in bytes.
    pub bytes: u64,
    /// Versions 2 and 3: SHA-256 of all its bytes, lower-case hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Version 4: the size of each digest part (the last may be shorter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_bytes: Option<u64>,
    /// Version 4: SHA-256 of each part of `part_bytes`, in order, lower-case hex.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<String>,
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl WeightsRef {
    /// The reference of a version-4 file of `bytes` with these part digests.
    pub fn with_parts(file: String, bytes: u64, part_bytes: u64, parts: Vec<String>) -> Self {
        WeightsRef {
            file,
            bytes,
            sha256: None,
            part_bytes: Some(part_bytes),
            parts,
        }
    }

    /// Whether the digests are well-formed for a sidecar of `version`: one SHA-256 (versions
    /// 2 and 3), or SHA-256s of parts of a sane size (version 4).
    pub(super) fn check_digests(&self, version: u32) -> std::result::Result<(), String> {
        if version < FIRST_PARTS_VERSION {
            return match &self.sha256 {
                Some(sha) if is_sha256_hex(sha) => Ok(()),
                _ => Err("the weights SHA-256 is not 64 lower-case hex digits".into()),
            };
        }
        if self.sha256.is_some() {
            return Err(format!(
                "a version {version} sidecar has a digest per part, not `weights.sha256`"
            ));
        }
        let part = self.part_bytes.unwrap_or(0);
        if !PART_BYTES_RANGE.contains(&part) {
            return Err(format!(
                "the weights part size {part} is outside {}..={} bytes",
                PART_BYTES_RANGE.start(),
                PART_BYTES_RANGE.end()
            ));
        }
        match self.parts.iter().position(|d| !is_sha256_hex(d)) {
            Some(k) => Err(format!(
                "weights part {k}'s SHA-256 is not 64 lower-case hex digits"
            )),
            None => Ok(()),
        }
    }

    /// Whether there are as many part digests as the recorded length needs (checked once that
    /// length is known to be one a state of the model can have).
    pub(super) fn check_part_count(&self) -> std::result::Result<(), String> {
        let Some(part) = self.part_bytes else {
            return Ok(());
        };
        let expected = self.bytes.div_ceil(part);
        if self.parts.len() as u64 != expected {
            return Err(format!(
                "{} weights part digests for {} bytes in parts of {part}; expected {expected}",
                self.parts.len(),
                self.bytes
            ));
        }
        Ok(())
    }

    /// Checks `bytes` (the file, of the recorded length) against the recorded digests,
    /// hashing parts on every core. The error names the first part that differs.
    pub fn verify(&self, bytes: &[u8]) -> std::result::Result<(), String> {
        match (&self.sha256, self.part_bytes) {
            (Some(expected), _) => {
                let sha = crate::checksum::hex(bytes);
                if sha == *expected {
                    Ok(())
                } else {
                    Err(format!(
                        "SHA-256 {sha} does not match the recorded {expected}"
                    ))
                }
            }
            (None, Some(part)) => self.check_parts(&crate::checksum::parts_hex(bytes, part)),
            (None, None) => Err("the sidecar records no digest of it".into()),
        }
    }

    /// Checks the part digests of the file's bytes against the recorded ones. The error names
    /// the first part that differs.
    pub fn check_parts(&self, got: &[String]) -> std::result::Result<(), String> {
        let part = self.part_bytes.unwrap_or(0);
        match got.iter().zip(&self.parts).position(|(a, b)| a != b) {
            None if got.len() == self.parts.len() => Ok(()),
            None => Err(format!(
                "it has {} parts, the sidecar records {}",
                got.len(),
                self.parts.len()
            )),
            Some(k) => {
                let start = k as u64 * part;
                let end = (start + part).min(self.bytes);
                Err(format!(
                    "part {k} (bytes {start}..{end}) has SHA-256 {}, the sidecar records {}",
                    got[k], self.parts[k]
                ))
            }
        }
    }

    /// The digest as one line for people: the whole file's, or the parts'.
    pub fn describe_digest(&self) -> String {
        match (&self.sha256, self.part_bytes) {
            (Some(sha), _) => format!("sha256 {sha}"),
            (None, Some(part)) => format!("{} SHA-256 parts of {part} bytes", self.parts.len()),
            (None, None) => "no digest".into(),
        }
    }
}
