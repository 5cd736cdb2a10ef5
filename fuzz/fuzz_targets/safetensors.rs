//! libFuzzer target: [`wgfit_fuzz::safetensors`] on every input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = wgfit_fuzz::safetensors(data);
});
