#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| openvod::fuzz_targets::tencent_bodies(data));
