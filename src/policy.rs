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

use crate::clock::ClockKind;
use crate::error::{Error, Result};
use crate::event_loop::EventLoop;
use crate::local;
use crate::sync::{Arc, Mutex, thread, thread_local};
use std::cell::RefCell;
use std::fmt;

/// The Python version whose rules a [`Policy`] or an [`EventLoop`] follows
/// where versions differ. See SPEC.md's version matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Profile {
    /// 3.11 (and 3.10.10+): the main thread creates a loop implicitly, silently.
    #[default]
    Py311,
    /// 3.12: implicit creation also reports a `DeprecationWarning`.
    Py312,
    /// 3.13: as 3.12; `uncancel()` reaching zero withdraws a pending cancel.
    Py313,
    /// 3.14 and later: no implicit creation in any thread.
    Py314,
}

impl Profile {
    /// Every profile, oldest first.
    pub const ALL: [Profile; 4] = [
        Profile::Py311,
        Profile::Py312,
        Profile::Py313,
        Profile::Py314,
    ];
}

/// A warning a policy reported, like Python's `warnings.warn`.
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

/// One thread's slot.
#[derive(Default)]
struct Slot {
    current: Option<EventLoop>,
    /// `set_event_loop` was called in this thread (with a loop or `None`).
    set_called: bool,
}

thread_local! {
    static SLOT: RefCell<Slot> = RefCell::new(Slot::default());
}

/// Runs `f` on the calling thread's slot; `None` while the thread is exiting.
#[cfg(not(feature = "mutant-shared-slot"))]
fn with_slot<R>(f: impl FnOnce(&mut Slot) -> R) -> Option<R> {
    SLOT.try_with(|s| f(&mut s.borrow_mut())).ok()
}

// Seeded bug (loom mutant check): one slot shared by every thread.
#[cfg(all(feature = "mutant-shared-slot", loom))]
loom::lazy_static! {
    static ref SHARED_SLOT: crate::sync::Mutex<Slot> = crate::sync::Mutex::new(Slot::default());
}

#[cfg(all(feature = "mutant-shared-slot", loom))]
fn with_slot<R>(f: impl FnOnce(&mut Slot) -> R) -> Option<R> {
    Some(f(&mut SHARED_SLOT.lock()))
}

#[cfg(all(feature = "mutant-shared-slot", not(loom)))]
compile_error!("the mutant-* features are for the loom mutant check only");

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
    profile: Profile,
    /// The main thread; `None`: the thread Rust names `main`.
    main: Option<thread::ThreadId>,
    clock: ClockKind,
    warnings: Option<Arc<Mutex<Vec<Warning>>>>,
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
        let warns = matches!(profile, Profile::Py312 | Profile::Py313);
        Policy {
            profile,
            main: None,
            clock: ClockKind::Real,
            warnings: warns.then(|| Arc::new(Mutex::new(Vec::new()))),
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
        let me = thread::current();
        match self.main {
            Some(id) => me.id() == id,
            None => me.name() == Some("main"),
        }
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
    /// thread, never set, profile before 3.14) a new loop made current, else
    /// `There is no current event loop in thread 'NAME'.` It does not look at
    /// the running loop; [`get_event_loop_with`] does (POLICY-2).
    pub fn get_event_loop(&self) -> Result<EventLoop> {
        let (current, set_called) =
            with_slot(|s| (s.current.clone(), s.set_called)).unwrap_or((None, true));
        if let Some(lp) = current {
            return Ok(lp);
        }
        if self.profile < Profile::Py314 && !set_called && self.is_main_thread() {
            let lp = self.new_event_loop();
            self.set_event_loop(Some(&lp));
            if let Some(w) = &self.warnings {
                w.lock().push(Warning {
                    category: "DeprecationWarning",
                    message: "There is no current event loop".into(),
                });
            }
            return Ok(lp);
        }
        Err(Error::NoCurrentLoop {
            thread: current_thread_name(Some(self)),
        })
    }

    /// Takes the warnings reported so far (3.12 and 3.13 profiles report a
    /// `DeprecationWarning` on implicit creation, POLICY-3).
    pub fn take_warnings(&self) -> Vec<Warning> {
        match &self.warnings {
            Some(w) => std::mem::take(&mut *w.lock()),
            None => Vec::new(),
        }
    }

    /// asyncio's `run(main)` under this policy: refuses to run inside a
    /// running loop; otherwise makes a new loop current, runs `main` to
    /// completion, cancels the tasks still pending and waits for them, closes
    /// the loop and leaves `None` in the slot (POLICY-6).
    pub fn run<T, F>(&self, main: F) -> Result<T>
    where
        T: Clone + 'static,
        F: std::future::Future<Output = Result<T>> + 'static,
    {
        if local::running_loop().is_some() {
            return Err(Error::RunInRunningLoop);
        }
        let lp = self.new_event_loop();
        self.set_event_loop(Some(&lp));
        let result = lp.run_until_complete(main);
        cancel_all_tasks(&lp);
        let _ = lp.close();
        self.set_event_loop(None);
        result
    }
}

/// Cancels every unfinished task of `lp` and runs the loop until they are
/// done, as asyncio's runner does at the end of `run()` (by gathering them):
/// the loop waits on their done callbacks, so it can park and a virtual
/// clock can move while a cancelled task still sleeps.
fn cancel_all_tasks(lp: &EventLoop) {
    let tasks = lp.local_tasks();
    if tasks.is_empty() {
        return;
    }
    let all_done = lp.create_future::<()>();
    let left = std::rc::Rc::new(std::cell::Cell::new(tasks.len()));
    for t in &tasks {
        let (left, all_done) = (left.clone(), all_done.clone());
        let hook: std::rc::Rc<dyn Fn()> = std::rc::Rc::new(move || {
            left.set(left.get() - 1);
            if left.get() == 0 {
                let _ = all_done.set_result(());
            }
        });
        if t.clone().add_done_hook(hook).is_err() {
            return; // the loop is closed: nothing can run any more
        }
    }
    for t in tasks {
        crate::task::TaskRef::from_dyn(t).cancel();
    }
    let _ = lp.run_until_complete(all_done);
}

/// The name asyncio would print for the calling thread (POLICY-9): the
/// policy's main thread is `MainThread`; another thread is called by its
/// Rust name, or `Thread-N` (N from its `ThreadId`) if it has none. With no
/// policy, the default policy's main thread (Rust's `main`) is `MainThread`.
pub(crate) fn current_thread_name(policy: Option<&Policy>) -> String {
    let me = thread::current();
    let is_main = match policy {
        Some(p) => p.is_main_thread(),
        None => me.name() == Some("main"),
    };
    if is_main {
        return "MainThread".to_string();
    }
    match me.name() {
        Some(name) => name.to_string(),
        None => {
            let id = format!("{:?}", me.id());
            let n: String = id.chars().filter(char::is_ascii_digit).collect();
            format!("Thread-{n}")
        }
    }
}

/// asyncio's `get_event_loop()` with the default policy: the loop running in
/// this thread if any, else [`Policy::get_event_loop`] (POLICY-2).
///
/// ```
/// let err = std::thread::spawn(|| loopspec::get_event_loop().unwrap_err())
///     .join()
///     .unwrap();
/// assert!(err.to_string().starts_with("There is no current event loop in thread 'Thread-"));
/// ```
pub fn get_event_loop() -> Result<EventLoop> {
    get_event_loop_with(&Policy::default())
}

/// asyncio's `get_event_loop()` under `policy`: the running loop wins, then
/// the policy's rules.
pub fn get_event_loop_with(policy: &Policy) -> Result<EventLoop> {
    match local::running_loop() {
        Some(lp) => Ok(lp),
        None => policy.get_event_loop(),
    }
}

/// Sets (or clears) the calling thread's current loop; see
/// [`Policy::set_event_loop`].
pub fn set_event_loop(lp: Option<&EventLoop>) {
    Policy::default().set_event_loop(lp);
}

/// A new loop on the real clock; it does not become current (POLICY-8).
pub fn new_event_loop() -> EventLoop {
    Policy::default().new_event_loop()
}

/// asyncio's `run(main)` with the default policy; see [`Policy::run`].
///
/// ```
/// let v = std::thread::spawn(|| loopspec::run(async { Ok(5) })).join().unwrap();
/// assert_eq!(v.unwrap(), 5);
/// ```
pub fn run<T, F>(main: F) -> Result<T>
where
    T: Clone + 'static,
    F: std::future::Future<Output = Result<T>> + 'static,
{
    Policy::default().run(main)
}

/// asyncio's `ensure_future(f)` without a loop: the loop is found with
/// [`get_event_loop`] (POLICY-11), then see [`EventLoop::ensure_future`].
pub fn ensure_future<T, F>(f: F) -> Result<crate::Future<T>>
where
    T: 'static,
    F: std::future::Future<Output = Result<T>> + 'static,
{
    let mut slot = Some(f);
    if let Some(fut) = crate::event_loop::take_future_like(&mut slot) {
        return Ok(fut);
    }
    let f = slot.take().ok_or(Error::Closed)?;
    get_event_loop()?.ensure_future(f)
}
