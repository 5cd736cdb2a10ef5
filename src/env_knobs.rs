//! The environment variables that tune wgfit (`WGFIT_*`), parsed in one place so that a value
//! wgfit cannot use is an [`Error::Environment`] naming the variable and the value, never
//! silently replaced by the default.

use crate::error::{Error, Result};

/// One tuning variable: a whole number, at least `min`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Knob {
    /// The variable's name.
    pub name: &'static str,
    /// The unit of its value, for the message on a bad one.
    pub unit: &'static str,
    /// The smallest value that makes sense.
    pub min: u64,
    /// The largest.
    pub max: u64,
}

/// How long a wait on the GPU may take before it is a hang (0 times out at once, for tests).
pub const GPU_TIMEOUT_MS: Knob = Knob {
    name: "WGFIT_GPU_TIMEOUT_MS",
    unit: "milliseconds",
    min: 0,
    max: u64::MAX,
};
/// The most bytes one piece of the parameters may bind (below the adapter's limit).
pub const MAX_BINDING_BYTES: Knob = Knob {
    name: "WGFIT_MAX_BINDING_BYTES",
    unit: "bytes",
    min: 256,
    max: u64::MAX,
};
/// The most bytes a data set may have to stay on the GPU (below the adapter's limit).
pub const RESIDENT_LIMIT_BYTES: Knob = Knob {
    name: "WGFIT_RESIDENT_LIMIT_BYTES",
    unit: "bytes",
    min: 0,
    max: u64::MAX,
};
/// How long an object-store request is retried.
pub const STORE_RETRY_SECONDS: Knob = Knob {
    name: "WGFIT_STORE_RETRY_SECONDS",
    unit: "seconds",
    min: 0,
    max: u64::MAX,
};
/// How long an object-store backup's lease lasts without renewal.
pub const LEASE_SECONDS: Knob = Knob {
    name: "WGFIT_LEASE_SECONDS",
    unit: "seconds",
    min: 1,
    max: u64::MAX,
};

/// The nice value of the backup writer's threads (0 runs them at the process's priority;
/// at most 19).
pub const WRITER_NICE: Knob = Knob {
    name: "WGFIT_WRITER_NICE",
    unit: "nice levels",
    min: 0,
    max: 19,
};

/// The least bytes of gradients a bucket of a distributed step holds before the next layer
/// boundary cuts it: each bucket is exchanged while the backward pass of the earlier layers
/// runs (0 cuts at every layer with parameters; more than the model's gradients, one bucket).
pub const BUCKET_BYTES: Knob = Knob {
    name: "WGFIT_BUCKET_BYTES",
    unit: "bytes",
    min: 0,
    max: u64::MAX,
};

/// Every variable wgfit reads to tune itself.
pub const ALL: [Knob; 7] = [
    GPU_TIMEOUT_MS,
    MAX_BINDING_BYTES,
    RESIDENT_LIMIT_BYTES,
    STORE_RETRY_SECONDS,
    LEASE_SECONDS,
    WRITER_NICE,
    BUCKET_BYTES,
];

impl Knob {
    /// The variable's value: `None` when it is unset, an error when it is set to anything but
    /// a whole number of at least `min` (surrounding blanks allowed).
    pub fn read(self) -> Result<Option<u64>> {
        match std::env::var_os(self.name) {
            None => Ok(None),
            Some(raw) => self.parse(&raw.to_string_lossy()).map(Some),
        }
    }

    fn parse(self, value: &str) -> Result<u64> {
        let bad = |reason: String| Error::Environment {
            variable: self.name.into(),
            value: value.into(),
            reason,
        };
        let n: u64 = value.trim().parse().map_err(|_| {
            bad(format!(
                "not a whole number of {}; give one of at least {}",
                self.unit, self.min
            ))
        })?;
        if n < self.min {
            return Err(bad(format!(
                "below {} {}, the least that works",
                self.min, self.unit
            )));
        }
        if n > self.max {
            return Err(bad(format!(
                "above {} {}, the most that works",
                self.max, self.unit
            )));
        }
        Ok(n)
    }
}

/// Checks every tuning variable, and wgpu's `WGPU_BACKEND`, so that a program can refuse a bad
/// one at startup rather than when the code that reads it first runs.
pub fn check() -> Result<()> {
    for knob in ALL {
        knob.read()?;
    }
    crate::gpu::check_backend_env()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_or_name_the_variable() {
        assert_eq!(LEASE_SECONDS.parse("30").unwrap(), 30);
        assert_eq!(GPU_TIMEOUT_MS.parse(" 0 ").unwrap(), 0);
        for (knob, value) in [
            (LEASE_SECONDS, "abc"),
            (LEASE_SECONDS, "0"),
            (GPU_TIMEOUT_MS, "-1"),
            (GPU_TIMEOUT_MS, "1.5"),
            (MAX_BINDING_BYTES, "255"),
            (RESIDENT_LIMIT_BYTES, ""),
            (STORE_RETRY_SECONDS, "99999999999999999999999"),
            (WRITER_NICE, "20"),
        ] {
            let e = knob.parse(value).unwrap_err().to_string();
            assert!(
                e.contains(knob.name) && e.contains(&format!("{value:?}")),
                "{e}"
            );
        }
    }
}
