//! Thread names as asyncio prints them in messages (SPEC.md POLICY-9):
//! `There is no current event loop in thread 'NAME'.`, `Event loop is bound
//! to thread 'NAME', ...`.

use crate::sync::thread::{self, ThreadId};

/// Whether the calling thread is the main thread: the thread `main` names,
/// or, with `None`, the thread Rust calls `main` (the default policy's main
/// thread).
pub(crate) fn is_main_thread(main: Option<ThreadId>) -> bool {
    let me = thread::current();
    match main {
        Some(id) => me.id() == id,
        None => me.name() == Some("main"),
    }
}

/// The calling thread's name as asyncio would print it: the main thread (see
/// [`is_main_thread`]) is `MainThread`; another thread is called by its Rust
/// name, or `Thread-N` (N from its `ThreadId`) if it has none.
pub(crate) fn current(main: Option<ThreadId>) -> String {
    if is_main_thread(main) {
        return "MainThread".to_string();
    }
    let me = thread::current();
    match me.name() {
        Some(name) => name.to_string(),
        None => {
            let id = format!("{:?}", me.id());
            let n: String = id.chars().filter(char::is_ascii_digit).collect();
            format!("Thread-{n}")
        }
    }
}
