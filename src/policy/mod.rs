//! The per-thread "current loop" rules: `get_event_loop`, `set_event_loop`,
//! `new_event_loop`, and the profiles for the Python versions where they
//! changed.
//!
//! Each thread has one *slot* (a thread-local): the loop set as current in
//! that thread, and whether `set_event_loop` was ever called there. A
//! [`Policy`] is a set of rules applied to the slot — which Python version to
//! follow, which thread counts as the main thread, which clock new loops get —
//! so tests and embedders can choose the rules without global state. The free
//! functions ([`get_event_loop`], [`set_event_loop`], [`new_event_loop`]) use
//! `Policy::default()`: the 3.11 rules, main thread = the thread Rust calls
//! `main`.
//!
//! The loop *running* in a thread is separate state (asyncio keeps it apart
//! too) and always wins in [`get_event_loop`] (POLICY-2).
//!
//! [`Runner`] is here too (`runner.rs`; its public path is
//! [`loopspec::runner`](crate::runner)): a runner without a loop factory
//! takes its loop from a policy, and a policy's [`run`](Policy::run) is a
//! runner's — the two depend on each other, so they are one module.

pub(crate) mod runner;

use crate::clock::ClockKind;
use crate::error::{Error, Result};
use crate::event_loop::EventLoop;
use crate::loop_core::running_loop;
use crate::sync::{Global, thread, thread_local};
use crate::thread_name;
use crate::warnings::warn;

use self::runner::Runner;
pub use crate::profile::Profile;
use std::cell::RefCell;
use std::fmt;

/// One thread's slot.
#[derive(Default)]
struct Slot {
    /// The thread's current loop, set by `set_event_loop` (or made by an
    /// implicit `get_event_loop`, POLICY-3).
    current: Option<EventLoop>,
    /// `set_event_loop` was called in this thread (with a loop or `None`).
    set_called: bool,
}

thread_local! {
    static SLOT: RefCell<Slot> = RefCell::new(Slot::default());
}

/// Runs `f` on the calling thread's slot; `None` while the thread is exiting.
#[cfg(not(loopspec_mutant = "shared-slot"))]
fn with_slot<R>(f: impl FnOnce(&mut Slot) -> R) -> Option<R> {
    SLOT.try_with(|s| f(&mut s.borrow_mut())).ok()
}

// Seeded bug (loom mutant check): one slot shared by every thread.
#[cfg(all(loopspec_mutant = "shared-slot", loom))]
loom::lazy_static! {
    static ref SHARED_SLOT: crate::sync::Mutex<Slot> = crate::sync::Mutex::new(Slot::default());
}

#[cfg(all(loopspec_mutant = "shared-slot", loom))]
fn with_slot<R>(f: impl FnOnce(&mut Slot) -> R) -> Option<R> {
    Some(f(&mut SHARED_SLOT.lock()))
}

#[cfg(all(loopspec_mutant = "shared-slot", not(loom)))]
compile_error!("the loopspec_mutant cfg is for the loom mutant check only");

/// The rules for the per-thread current loop; see the [module docs](self).
///
/// ```
/// use loopspec::{Policy, Profile};
///
/// // In a thread that is not the main thread, nothing is created implicitly.
/// let policy = Policy::new(Profile::Py311);
/// std::thread::Builder::new().name("worker".into()).spawn(move || {
///     let err = policy.get_event_loop().unwrap_err();
///     assert_eq!(err.to_string(), "There is no current event loop in thread 'worker'.");
///     let lp = policy.new_event_loop();
///     policy.set_event_loop(Some(&lp));
///     assert_eq!(policy.get_event_loop().unwrap(), lp);
/// }).unwrap().join().unwrap();
/// ```
#[derive(Clone)]
pub struct Policy {
    /// The Python version whose rules apply.
    profile: Profile,
    /// The main thread; `None`: the thread Rust names `main`.
    main: Option<thread::ThreadId>,
    /// The clock of the loops the policy makes.
    clock: ClockKind,
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("profile", &self.profile)
            .field("main", &self.main)
            .field("clock", &self.clock)
            .finish()
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::new(Profile::default())
    }
}

impl Policy {
    /// A policy following `profile`, whose main thread is the one Rust names
    /// `main` and whose loops use the real clock.
    pub fn new(profile: Profile) -> Policy {
        Policy {
            profile,
            main: None,
            clock: ClockKind::Real,
        }
    }

    /// This policy with `id` as its main thread (for tests, and for programs
    /// whose "main" loop thread is not Rust's main thread).
    pub fn with_main_thread(mut self, id: thread::ThreadId) -> Policy {
        self.main = Some(id);
        self
    }

    /// This policy, making loops on `clock`.
    pub fn with_clock(mut self, clock: ClockKind) -> Policy {
        self.clock = clock;
        self
    }

    /// The profile this policy follows.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// Whether the calling thread is this policy's main thread.
    pub fn is_main_thread(&self) -> bool {
        thread_name::is_main_thread(self.main)
    }

    /// A new loop with this policy's clock and profile. It does not become
    /// current anywhere (POLICY-8).
    pub fn new_event_loop(&self) -> EventLoop {
        EventLoop::builder()
            .clock(self.clock)
            .profile(self.profile)
            .build()
    }

    /// Sets (or, with `None`, clears) the calling thread's current loop
    /// (POLICY-1). Either way the thread counts as "set" from now on, which
    /// turns off implicit creation in the main thread (POLICY-5).
    pub fn set_event_loop(&self, lp: Option<&EventLoop>) {
        let old = with_slot(|s| {
            s.set_called = true;
            std::mem::replace(&mut s.current, lp.cloned())
        })
        .flatten();
        drop(old);
    }

    /// The policy-level `get_event_loop()`: the slot's loop, else (main
    /// thread, never set, profile before 3.14) a new loop made current — with
    /// a `DeprecationWarning` under 3.12 and 3.13 (see
    /// [`catch_warnings`](crate::warnings::catch_warnings)) — else `There is
    /// no current event loop in thread 'NAME'.` It does not look at the
    /// running loop; [`get_event_loop_with`] does (POLICY-2).
    pub fn get_event_loop(&self) -> Result<EventLoop> {
        let (current, set_called) =
            with_slot(|s| (s.current.clone(), s.set_called)).unwrap_or((None, true));
        if let Some(lp) = current {
            return Ok(lp);
        }
        if self.profile < Profile::Py314 && !set_called && self.is_main_thread() {
            if matches!(self.profile, Profile::Py312 | Profile::Py313) {
                warn("DeprecationWarning", "There is no current event loop");
            }
            let lp = self.new_event_loop();
            self.set_event_loop(Some(&lp));
            return Ok(lp);
        }
        Err(Error::NoCurrentLoop {
            thread: thread_name::current(self.main),
        })
    }

    /// asyncio's `run(main)` under this policy: refuses to run inside a
    /// running loop (`asyncio.run() cannot be called from a running event
    /// loop`); otherwise runs `main` with a [`Runner`] on a
    /// new loop of this policy made current, then closes the runner — the
    /// leftover tasks are cancelled and waited for, the loop closed and the
    /// slot left empty (POLICY-6, RUNNER-4).
    pub fn run<T, F>(&self, main: F) -> Result<T>
    where
        T: Clone + Send + 'static,
        F: std::future::Future<Output = Result<T>> + 'static,
    {
        if running_loop().is_some() {
            return Err(Error::RunInRunningLoop);
        }
        let mut runner = Runner::with_policy(self.clone());
        let result = runner.run(main);
        runner.close();
        result
    }
}

/// The policy the free functions follow ([`set_event_loop_policy`]); never
/// set: `Policy::default()`.
static PROCESS_POLICY: Global<Policy> = Global::new();

/// The process-wide policy, read without a warning (asyncio's internal
/// getter).
pub(crate) fn process_policy() -> Policy {
    PROCESS_POLICY.with(|p| p.clone()).unwrap_or_default()
}

/// Raises POLICY-14's `DeprecationWarning` for `name` under the 3.14 and
/// later profiles.
fn deprecated(profile: Profile, name: &str) {
    if profile >= Profile::Py314 {
        warn(
            "DeprecationWarning",
            format!("'{name}' is deprecated and slated for removal in Python 3.16"),
        );
    }
}

/// asyncio's `get_event_loop_policy()`: the policy the free functions follow
/// ([`get_event_loop`], [`set_event_loop`], [`new_event_loop`], [`run`],
/// [`Runner::new`](crate::Runner::new)). Deprecated in 3.14 (POLICY-14):
/// under a 3.14 or later profile it raises `DeprecationWarning:
/// 'asyncio.get_event_loop_policy' is deprecated and slated for removal in
/// Python 3.16` (see [`catch_warnings`](crate::warnings::catch_warnings)).
pub fn get_event_loop_policy() -> Policy {
    let policy = process_policy();
    deprecated(policy.profile, "asyncio.get_event_loop_policy");
    policy
}

/// asyncio's `set_event_loop_policy(policy)`: installs the policy the free
/// functions follow (`None`: the default again). Deprecated in 3.14
/// (POLICY-14): it warns like [`get_event_loop_policy`] when the policy it
/// installs — for `None`, the one in effect — follows 3.14 or later. Set it
/// before threads start: it is process-wide, like asyncio's.
pub fn set_event_loop_policy(policy: Option<Policy>) {
    let profile = match &policy {
        Some(p) => p.profile,
        None => process_policy().profile,
    };
    deprecated(profile, "asyncio.set_event_loop_policy");
    PROCESS_POLICY.with(|p| *p = policy);
}

/// asyncio's `get_event_loop()` with the process-wide policy: the loop
/// running in this thread if any, else [`Policy::get_event_loop`]
/// (POLICY-2).
///
/// ```
/// let err = std::thread::spawn(|| loopspec::get_event_loop().unwrap_err())
///     .join()
///     .unwrap();
/// assert!(err.to_string().starts_with("There is no current event loop in thread 'Thread-"));
/// ```
pub fn get_event_loop() -> Result<EventLoop> {
    get_event_loop_with(&process_policy())
}

/// asyncio's `get_event_loop()` under `policy`: the running loop wins, then
/// the policy's rules.
pub fn get_event_loop_with(policy: &Policy) -> Result<EventLoop> {
    match running_loop() {
        Some(lp) => Ok(lp),
        None => policy.get_event_loop(),
    }
}

/// Sets (or clears) the calling thread's current loop; see
/// [`Policy::set_event_loop`].
pub fn set_event_loop(lp: Option<&EventLoop>) {
    process_policy().set_event_loop(lp);
}

/// A new loop of the process-wide policy; it does not become current
/// (POLICY-8).
pub fn new_event_loop() -> EventLoop {
    process_policy().new_event_loop()
}

/// asyncio's `run(main)` with the process-wide policy; see [`Policy::run`].
///
/// ```
/// let v = std::thread::spawn(|| loopspec::run(async { Ok(5) })).join().unwrap();
/// assert_eq!(v.unwrap(), 5);
/// ```
pub fn run<T, F>(main: F) -> Result<T>
where
    T: Clone + Send + 'static,
    F: std::future::Future<Output = Result<T>> + 'static,
{
    process_policy().run(main)
}

/// asyncio's `ensure_future(f)` without a loop: the loop is found with
/// [`get_event_loop`] (POLICY-11), then see [`EventLoop::ensure_future`].
pub fn ensure_future<T, F>(f: F) -> Result<crate::Future<T>>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T>> + Send + 'static,
{
    ensure_future_local(f)
}

/// [`ensure_future`] for a future that is not `Send`: a coroutine becomes a
/// local task (see [`EventLoop::ensure_future_local`]).
pub fn ensure_future_local<T, F>(f: F) -> Result<crate::Future<T>>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T>> + 'static,
{
    let mut slot = Some(f);
    if let Some(fut) = crate::task::take_future_like(&mut slot) {
        return Ok(fut);
    }
    let f = slot.take().ok_or(Error::Closed)?;
    get_event_loop()?.ensure_future_local(f)
}
