//! libFuzzer target: [`wgfit_fuzz::npy`] on every input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = wgfit_fuzz::npy(data);
});
