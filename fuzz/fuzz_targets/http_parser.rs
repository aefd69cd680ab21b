#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../targets/http_parser.rs"]
mod http_parser;

fuzz_target!(|data: &[u8]| {
    http_parser::run(data);
});
