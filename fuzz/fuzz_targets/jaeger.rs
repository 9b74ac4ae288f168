#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| faultline_model::fuzzing::read_capture(Some(faultline_model::Format::JaegerJson), data));
