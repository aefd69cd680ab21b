#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../targets/buffer_ops.rs"]
mod buffer_ops;

fuzz_target!(|data: &[u8]| {
    buffer_ops::run(data);
});
