#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../targets/resp_parser.rs"]
mod resp_parser;

fuzz_target!(|data: &[u8]| {
    resp_parser::run(data);
});
