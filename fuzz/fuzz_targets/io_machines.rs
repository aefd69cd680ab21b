#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../targets/io_machines.rs"]
mod io_machines;

fuzz_target!(|data: &[u8]| {
    io_machines::run(data);
});
