//! The shared GPU adapter the kernel tests run on.

use std::sync::Arc;

use wgfit::Gpu;

pub fn gpu() -> Arc<Gpu> {
    Gpu::shared().expect("a GPU adapter (lavapipe on CI)")
}
