//! Operation programs over three threads and a few virtual-clock loops,
//! checked against a sequential model (`loopspec::fuzz::run_ops`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    loopspec::fuzz::run_ops(data);
});
