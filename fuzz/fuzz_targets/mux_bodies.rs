#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| openvod::fuzz_targets::mux_bodies(data));
