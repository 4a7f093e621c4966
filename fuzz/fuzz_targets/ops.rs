//! Operation programs over three threads and a few virtual-clock loops,
//! checked against a sequential model (`loopspec_check::fuzz::run_ops`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    loopspec_check::fuzz::run_ops(data);
});
