//! Cross-thread chains under real concurrency: `run_coroutine_threadsafe`,
//! `wrap_future`, cancels and closes racing with completions
//! (`loopspec_check::fuzz::run_chain`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    loopspec_check::fuzz::run_chain(data);
});
