#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| openvod::fuzz_targets::tc3_authorization(data));
