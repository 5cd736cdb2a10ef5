//! libFuzzer target: [`wgfit_fuzz::csv`] on every input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = wgfit_fuzz::csv(data);
});
