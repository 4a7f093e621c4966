//! Warnings: what asyncio reports with `warnings.warn` instead of raising —
//! the `DeprecationWarning`s of implicit loop creation (POLICY-3) and of the
//! policy API (POLICY-14).
//!
//! A warning goes to the innermost scope ([`catch`], [`catch_warnings`]) of
//! the thread that raises it. Outside any scope it is dropped: Python's default filters
//! show a `DeprecationWarning` only when the code that triggers it is in
//! `__main__`, and a library has no `__main__`, so loopspec never prints.
//! A program that wants to see them opens a scope, as a Python test wraps
//! its calls in `warnings.catch_warnings(record=True)`.

use crate::sync::thread_local;
use std::cell::{Cell, RefCell};
use std::fmt;

/// A warning, as Python's `warnings.warn(message, category)` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The warning class, e.g. `"DeprecationWarning"`.
    pub category: &'static str,
    /// The message, e.g. `"There is no current event loop"`.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.category, self.message)
    }
}

#[cfg(not(loom))]
thread_local! {
    /// The open scopes of this thread, oldest first: (scope id, its warnings).
    static SCOPES: RefCell<Vec<(u64, Vec<Warning>)>> = const { RefCell::new(Vec::new()) };
    /// The id of the next scope opened on this thread.
    static NEXT_SCOPE: Cell<u64> = const { Cell::new(0) };
}

// The same under `--cfg loom`, whose `thread_local!` takes no `const`
// initializer.
#[cfg(loom)]
thread_local! {
    static SCOPES: RefCell<Vec<(u64, Vec<Warning>)>> = RefCell::new(Vec::new());
    static NEXT_SCOPE: Cell<u64> = Cell::new(0);
}

/// An open scope of [`catch`]: it takes the warnings raised on this thread
/// from its opening until it is dropped, unless an inner scope takes them.
/// Not `Send`: a scope belongs to its thread.
#[derive(Debug)]
pub struct Caught {
    /// The scope's id on this thread's stack of scopes.
    id: u64,
    /// Makes the scope `!Send`.
    _not_send: std::marker::PhantomData<*const ()>,
}

/// Opens a scope that takes the warnings raised on this thread until the
/// returned guard is dropped — Python's `with warnings.catch_warnings(record=True)
/// as w:`. Scopes nest: an inner scope takes what is raised while it is
/// open, and the outer one does not see it.
///
/// ```
/// use loopspec::{Policy, Profile, warnings};
///
/// let policy = Policy::new(Profile::Py312).with_main_thread(std::thread::current().id());
/// let caught = warnings::catch();
/// let lp = policy.get_event_loop().unwrap(); // the main thread, 3.12 rules: POLICY-3
/// assert_eq!(caught.take()[0].to_string(), "DeprecationWarning: There is no current event loop");
/// assert_eq!(policy.get_event_loop().unwrap(), lp); // only the creating call warns
/// assert!(caught.take().is_empty());
/// ```
pub fn catch() -> Caught {
    let id = NEXT_SCOPE.with(|n| {
        let id = n.get();
        n.set(id + 1);
        id
    });
    SCOPES.with(|s| s.borrow_mut().push((id, Vec::new())));
    Caught {
        id,
        _not_send: std::marker::PhantomData,
    }
}

impl Caught {
    /// Takes the warnings this scope caught so far, in order.
    pub fn take(&self) -> Vec<Warning> {
        SCOPES
            .try_with(|s| {
                let mut s = s.borrow_mut();
                s.iter_mut()
                    .find(|(id, _)| *id == self.id)
                    .map(|(_, w)| std::mem::take(w))
            })
            .ok()
            .flatten()
            .unwrap_or_default()
    }
}

impl Drop for Caught {
    fn drop(&mut self) {
        let _ = SCOPES.try_with(|s| s.borrow_mut().retain(|(id, _)| *id != self.id));
    }
}

/// Runs `f` and returns what it returned with the warnings raised on this
/// thread while it ran, in order ([`catch`] around `f`).
///
/// ```
/// use loopspec::{Policy, Profile, catch_warnings};
///
/// let policy = Policy::new(Profile::Py315);
/// let (_, warnings) = catch_warnings(|| loopspec::set_event_loop_policy(Some(policy)));
/// assert_eq!(
///     warnings[0].to_string(),
///     "DeprecationWarning: 'asyncio.set_event_loop_policy' is deprecated and slated for removal in Python 3.16"
/// );
/// # loopspec::set_event_loop_policy(None);
/// ```
pub fn catch_warnings<R>(f: impl FnOnce() -> R) -> (R, Vec<Warning>) {
    let caught = catch();
    let r = f();
    (r, caught.take())
}

/// Raises a warning on this thread: it goes to the innermost open scope, or
/// nowhere.
pub(crate) fn warn(category: &'static str, message: impl Into<String>) {
    let _ = SCOPES.try_with(|s| {
        if let Some((_, scope)) = s.borrow_mut().last_mut() {
            scope.push(Warning {
                category,
                message: message.into(),
            });
        }
    });
}
