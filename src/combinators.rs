//! Combining futures: [`gather`], [`wait`], [`as_completed`] (SPEC.md
//! GATHER-*, WAIT-*, ASCOMP-*), and [`wait_for`] (WAITFOR-*), which lives in
//! its own module (`src/wait_for.rs`) and is re-exported here.
//!
//! Each is built the way asyncio builds it — done callbacks scheduled with
//! `call_soon`, a waiter future, timers on the loop's clock — so that which
//! iteration a combinator completes in is the same as in CPython.

use crate::error::{Error, Result};
use crate::event_loop::{EventLoop, get_running_loop};
use crate::future::{DoneCallback, Failure, Future, WeakFuture};
use crate::home::IdHasher;
use crate::profile::Profile;
use crate::sync::{AtomicBool, AtomicUsize, Mutex, Ordering};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

pub use crate::wait_for::wait_for;

/// A set of futures by [identity](Future::identity), which is an address:
/// hashed as it is, not with SipHash.
type IdentitySet = HashSet<usize, BuildHasherDefault<IdHasher>>;

/// An empty [`IdentitySet`] with room for `n`.
fn identity_set(n: usize) -> IdentitySet {
    HashSet::with_capacity_and_hasher(n, Default::default())
}

/// The distinct futures of `fs` (by identity), in first-appearance order.
fn distinct<T: Send + 'static>(fs: impl Iterator<Item = Future<T>>) -> Vec<Future<T>> {
    let mut seen = identity_set(fs.size_hint().0);
    fs.filter(|f| seen.insert(f.identity())).collect()
}

/// The children's outcomes in argument order, as `gather` reports them.
pub type Gathered<T> = Vec<Result<T>>;

/// asyncio's `gather(*children, return_exceptions=...)` (GATHER-1…9).
///
/// Returns a future of the children's outcomes in argument order. Without
/// `return_exceptions`, the first exception (or cancellation) of a child, in
/// completion order, finishes the gather with that exception and the other
/// children keep running; with it, exceptions and cancellations are entries of
/// the list (a cancelled child is `Err(Cancelled(Some(msg or "")))`), and every
/// entry of a gather that finished normally is then `Ok` only if its child
/// succeeded. The same future passed twice is one child, reported twice.
/// Cancelling the returned future cancels the children; it then finishes with
/// a `CancelledError` *exception*, not in the cancelled state.
///
/// With no children, the result is an already finished future of `[]` on
/// [`get_event_loop`](crate::get_event_loop)'s loop. Children of different
/// loops are a `ValueError`.
///
/// Timing (GATHER-8): in the 3.11 profile the gather completes through its
/// children's done callbacks, so at least one iteration after `gather()` even
/// when every child is already done; from the 3.12 profile on, children already
/// done are counted at once, and a gather of done children is done on return.
///
/// ```
/// use loopspec::{ClockKind, EventLoop};
///
/// let lp = EventLoop::with_clock(ClockKind::Virtual);
/// let a = lp.create_task(async { loopspec::sleep(2.0).await?; Ok('a') }).unwrap();
/// let b = lp.create_task(async { loopspec::sleep(1.0).await?; Ok('b') }).unwrap();
/// let all = loopspec::gather([a, b], false).unwrap();
/// let out: Vec<char> = lp.run_until_complete(all).unwrap().into_iter().map(Result::unwrap).collect();
/// assert_eq!(out, ['a', 'b']); // argument order, not completion order
/// ```
pub fn gather<T, I, F>(children: I, return_exceptions: bool) -> Result<Future<Gathered<T>>>
where
    T: Clone + Send + 'static,
    I: IntoIterator<Item = F>,
    F: Into<Future<T>>,
{
    let children: Vec<Future<T>> = children.into_iter().map(Into::into).collect();
    let Some(first) = children.first() else {
        let lp = crate::policy::get_event_loop()?;
        let outer = lp.create_future::<Gathered<T>>();
        let _ = outer.set_result(Vec::new());
        return Ok(outer);
    };
    let lp = first.get_loop();
    // One pass over the children (a gather of many fresh tasks is bound by
    // how often it walks their cores, not by instructions): the loop check,
    // the weak handles in argument order, and one child per distinct future
    // in first-appearance order (by index).
    let mut seen = identity_set(children.len());
    let mut weak = Vec::with_capacity(children.len());
    let mut unique = Vec::new();
    for (i, child) in children.iter().enumerate() {
        if !child.belongs_to(&lp) {
            return Err(Error::DifferentLoop);
        }
        weak.push(child.downgrade());
        if seen.insert(child.identity()) {
            unique.push(i);
        }
    }
    drop(seen);
    // Cancelling the gather cancels every position, so a child passed twice
    // is cancelled twice (as CPython's `_GatheringFuture.cancel` does). The
    // outer future holds the children through this closure.
    let positions = Arc::new(children);
    let cancel_positions = positions.clone();
    let cancel_children = Box::new(move |msg: Option<String>| {
        let mut any = false;
        for child in cancel_positions.iter() {
            any |= child.cancel_with(msg.clone());
        }
        any
    });
    let outer = Future::new_gathering(&lp, cancel_children);
    let state = Arc::new(GatherState {
        outer: outer.downgrade(),
        outer_done: AtomicBool::new(false),
        children: weak,
        nfuts: unique.len(),
        nfinished: AtomicUsize::new(0),
        return_exceptions,
    });
    let eager = lp.profile() >= Profile::Py312;
    let mut already_done = Vec::new();
    let st = state.clone();
    let on_done: DoneCallback<T> = Arc::new(move |f: &Future<T>| st.on_child_done(f));
    for child in unique.into_iter().map(|i| &positions[i]) {
        if eager && child.done() {
            already_done.push(child.clone());
        } else {
            child.add_done_callback(on_done.clone())?;
        }
    }
    for child in already_done {
        state.on_child_done(&child);
    }
    Ok(outer)
}

/// The state gather's done callback works on. The children hold the
/// callback, so the state holds them (and the outer future, which holds
/// them too) weakly: an abandoned gather is freed, no cycle keeps it.
struct GatherState<T> {
    /// The future `gather` returned.
    outer: WeakFuture<Gathered<T>>,
    /// The outer future was done when last seen (it is completed here): a
    /// done gather that nobody refers to any more is still done for the
    /// callbacks of its remaining children.
    outer_done: AtomicBool,
    /// The children in argument order (a future passed twice is here
    /// twice): the order of the results.
    children: Vec<WeakFuture<T>>,
    /// Distinct children: how many done callbacks complete the gather.
    nfuts: usize,
    /// Done callbacks run so far (asyncio's `nfinished`); up to `nfuts`.
    nfinished: AtomicUsize,
    /// `gather`'s `return_exceptions`. Fixed.
    return_exceptions: bool,
}

impl<T: Clone + Send + 'static> GatherState<T> {
    /// asyncio's `_done_callback` of `gather`.
    ///
    /// A gather nobody refers to any more is gone here, but in CPython this
    /// callback keeps it alive: the callback reads its children just the
    /// same (a cancelled child's first-reader message is used up, TASK-11;
    /// exceptions count as retrieved) and only has nothing to complete.
    fn on_child_done(&self, fut: &Future<T>) {
        let nfinished = self.nfinished.fetch_add(1, Ordering::Relaxed) + 1;
        let outer = self.outer.upgrade();
        let outer_done = self.outer_done.load(Ordering::Relaxed);
        if outer.as_ref().map_or(outer_done, Future::done) {
            self.outer_done.store(true, Ordering::Relaxed);
            if !fut.cancelled() {
                let _ = fut.exception(); // marks it retrieved
            }
            return;
        }
        if !self.return_exceptions {
            match fut.failure() {
                Some(Failure::Cancelled) => {
                    let e = fut.make_cancelled_error();
                    self.complete(outer.as_ref(), Err(e));
                    return;
                }
                Some(Failure::Raised(e)) => {
                    self.complete(outer.as_ref(), Err(e));
                    return;
                }
                None => {}
            }
        }
        if nfinished == self.nfuts {
            // A live outer future holds every child, so they are all alive.
            // One pass: each child is read while its core is in cache.
            let results: Gathered<T> = (self.children.iter())
                .filter_map(|c| c.upgrade().map(|c| c.gathered()))
                .collect();
            let Some(outer) = outer else { return };
            if outer.gather_cancel_requested() {
                // CPython takes the error from the last child in argument
                // order (its results loop rebinds `fut`), not the one that
                // just finished.
                let last = self.children.last().and_then(WeakFuture::upgrade);
                let e = last.as_ref().unwrap_or(fut).make_cancelled_error();
                self.complete(Some(&outer), Err(e));
            } else {
                self.complete(Some(&outer), Ok(results));
            }
        }
    }
}

impl<T: Send + 'static> GatherState<T> {
    /// Completes the outer future, if it still exists, and remembers that it
    /// is done.
    fn complete(&self, outer: Option<&Future<Gathered<T>>>, outcome: Result<Gathered<T>>) {
        self.outer_done.store(true, Ordering::Relaxed);
        if let Some(outer) = outer {
            let _ = match outcome {
                Ok(results) => outer.set_result(results),
                Err(e) => outer.set_exception(e),
            };
        }
    }
}

/// When [`wait`] returns (asyncio's `return_when`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReturnWhen {
    /// When every future is done.
    #[default]
    AllCompleted,
    /// When any future is done.
    FirstCompleted,
    /// When any future finishes with an exception (a cancellation does not
    /// count), or when all are done.
    FirstException,
}

/// asyncio's `wait(fs, timeout=..., return_when=...)` (WAIT-1…5): waits on
/// the running loop and returns `(done, pending)`.
///
/// `done` and `pending` hold the distinct futures of `fs` (duplicates collapse),
/// each in argument order. `wait` never raises a child's exception and never
/// cancels anything — not even on timeout. An empty `fs` is
/// `ValueError: Set of Tasks/Futures is empty.`
///
/// ```
/// use loopspec::{ClockKind, EventLoop, ReturnWhen};
///
/// let lp = EventLoop::with_clock(ClockKind::Virtual);
/// let fast = lp.create_task(async { loopspec::sleep(1.0).await?; Ok(1) }).unwrap();
/// let slow = lp.create_task(async { loopspec::sleep(5.0).await?; Ok(5) }).unwrap();
/// let (done, pending) = lp
///     .run_until_complete(loopspec::wait([fast, slow], Some(2.0), ReturnWhen::AllCompleted))
///     .unwrap();
/// assert_eq!((done.len(), pending.len(), lp.time()), (1, 1, 2.0));
/// ```
pub async fn wait<T, I, F>(
    fs: I,
    timeout: Option<f64>,
    return_when: ReturnWhen,
) -> Result<(Vec<Future<T>>, Vec<Future<T>>)>
where
    T: Clone + Send + 'static,
    I: IntoIterator<Item = F>,
    F: Into<Future<T>>,
{
    let unique = distinct(fs.into_iter().map(Into::into));
    if unique.is_empty() {
        return Err(Error::EmptyWait);
    }
    let lp = get_running_loop()?;
    let waiter = lp.create_future::<()>();
    let timeout_handle = match timeout {
        Some(t) => {
            let w = waiter.clone();
            Some(lp.call_later(t, move || release_waiter(&w))?)
        }
        None => None,
    };
    let counter = Arc::new(AtomicUsize::new(unique.len()));
    let on_completion: DoneCallback<T> = {
        let (waiter, counter, timeout_handle) =
            (waiter.clone(), counter.clone(), timeout_handle.clone());
        Arc::new(move |f: &Future<T>| {
            // Saturating: a callback that runs after the count reached zero
            // leaves it there.
            let left = counter
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .map_or(0, |n| n - 1);
            // Evaluated in asyncio's order: the exception is read (and so
            // marked retrieved) only when it can decide a FIRST_EXCEPTION wait.
            if left == 0
                || return_when == ReturnWhen::FirstCompleted
                || (return_when == ReturnWhen::FirstException
                    && matches!(f.failure(), Some(Failure::Raised(_))))
            {
                if let Some(h) = &timeout_handle {
                    h.cancel();
                }
                release_waiter(&waiter);
            }
        })
    };
    for f in &unique {
        f.add_done_callback(on_completion.clone())?;
    }
    let waited = waiter.await;
    if let Some(h) = &timeout_handle {
        h.cancel();
    }
    // One pass: each future's callback goes and its state is read while
    // its core is in cache.
    let (mut done, mut pending) = (Vec::new(), Vec::new());
    for f in unique {
        f.remove_done_callback(&on_completion);
        if f.done() {
            done.push(f);
        } else {
            pending.push(f);
        }
    }
    waited?;
    Ok((done, pending))
}

fn release_waiter(waiter: &Future<()>) {
    if !waiter.done() {
        let _ = waiter.set_result(());
    }
}

/// The state shared by an [`AsCompleted`] and its callbacks.
struct AsCompletedState<T> {
    /// The loop of the futures (or `get_event_loop()`'s, with none).
    lp: EventLoop,
    /// Futures not yet completed (asyncio's `todo`), by identity.
    todo: Mutex<HashMap<usize, Future<T>>>,
    /// Completed futures in completion order; `None` marks a timeout.
    done: Mutex<VecDeque<Option<Future<T>>>>,
    /// A reader waiting for `done` to fill (asyncio's queue getter).
    getter: Mutex<Option<Future<()>>>,
    /// The timeout's timer, if a timeout was given; cancelled once every
    /// future completed.
    timeout: Mutex<Option<crate::TimerHandle>>,
    /// The done callback added to every future, removed from those still
    /// pending at the timeout.
    on_completion: Mutex<Option<DoneCallback<T>>>,
}

impl<T: Clone + Send + 'static> AsCompletedState<T> {
    fn put(&self, item: Option<Future<T>>) {
        self.done.lock().push_back(item);
        let getter = self.getter.lock().take();
        if let Some(g) = getter {
            release_waiter(&g);
        }
    }

    fn on_completion(&self, f: &Future<T>) {
        let remaining = {
            let mut todo = self.todo.lock();
            if todo.is_empty() {
                return; // the timeout came first
            }
            todo.remove(&f.identity());
            todo.len()
        };
        self.put(Some(f.clone()));
        if remaining == 0 {
            let timeout = self.timeout.lock().clone();
            if let Some(h) = timeout {
                h.cancel();
            }
        }
    }

    fn on_timeout(&self) {
        let todo = std::mem::take(&mut *self.todo.lock());
        let cb = self.on_completion.lock().clone();
        for f in todo.into_values() {
            if let Some(cb) = &cb {
                f.remove_done_callback(cb);
            }
            self.put(None);
        }
    }
}

/// The futures of [`as_completed`], in completion order.
pub struct AsCompleted<T> {
    /// Shared with the done callbacks and the timeout.
    state: Arc<AsCompletedState<T>>,
    /// Items still to be yielded by `next`.
    remaining: usize,
}

impl<T> fmt::Debug for AsCompleted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<AsCompleted remaining={}>", self.remaining)
    }
}

/// asyncio's `as_completed(fs, timeout=...)` (ASCOMP-1, ASCOMP-2): yields the distinct
/// futures of `fs` in the order they complete.
///
/// [`AsCompleted::next`] returns `None` once every future has been yielded.
/// After the timeout, each call for a future not yet completed returns
/// `Err(TimeoutError)`; the futures themselves are not cancelled.
///
/// ```
/// use loopspec::{ClockKind, EventLoop};
///
/// let lp = EventLoop::with_clock(ClockKind::Virtual);
/// let slow = lp.create_task(async { loopspec::sleep(2.0).await?; Ok("slow") }).unwrap();
/// let fast = lp.create_task(async { loopspec::sleep(1.0).await?; Ok("fast") }).unwrap();
/// let order = lp.run_until_complete(async move {
///     let mut it = loopspec::as_completed([slow, fast], None)?;
///     let mut order = Vec::new();
///     while let Some(f) = it.next().await {
///         order.push(f?.result()?);
///     }
///     Ok(order)
/// }).unwrap();
/// assert_eq!(order, ["fast", "slow"]);
/// ```
pub fn as_completed<T, I, F>(fs: I, timeout: Option<f64>) -> Result<AsCompleted<T>>
where
    T: Clone + Send + 'static,
    I: IntoIterator<Item = F>,
    F: Into<Future<T>>,
{
    let todo = distinct(fs.into_iter().map(Into::into));
    let lp = match todo.first() {
        Some(f) => f.get_loop(),
        None => crate::policy::get_event_loop()?,
    };
    let remaining = todo.len();
    let state = Arc::new(AsCompletedState {
        lp: lp.clone(),
        todo: Mutex::new(todo.iter().map(|f| (f.identity(), f.clone())).collect()),
        done: Mutex::new(VecDeque::new()),
        getter: Mutex::new(None),
        timeout: Mutex::new(None),
        on_completion: Mutex::new(None),
    });
    let weak = Arc::downgrade(&state);
    let cb: DoneCallback<T> = Arc::new(move |f: &Future<T>| {
        if let Some(st) = weak.upgrade() {
            st.on_completion(f);
        }
    });
    *state.on_completion.lock() = Some(cb.clone());
    for f in &todo {
        f.add_done_callback(cb.clone())?;
    }
    if let (Some(t), false) = (timeout, todo.is_empty()) {
        let weak = Arc::downgrade(&state);
        let h = lp.call_later(t, move || {
            if let Some(st) = weak.upgrade() {
                st.on_timeout();
            }
        })?;
        *state.timeout.lock() = Some(h);
    }
    Ok(AsCompleted { state, remaining })
}

impl<T: Clone + Send + 'static> AsCompleted<T> {
    /// The next future to complete: `None` when all were yielded,
    /// `Some(Err(Timeout))` for each future still pending at the timeout.
    /// A wait that is interrupted (the awaiting task is cancelled) returns
    /// its error and, under the 3.14 and later profiles, does not count as a
    /// yielded item (ASCOMP-3).
    pub async fn next(&mut self) -> Option<Result<Future<T>>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        loop {
            let item = self.state.done.lock().pop_front();
            if let Some(item) = item {
                return Some(item.ok_or(Error::Timeout));
            }
            let getter = self.state.lp.create_future::<()>();
            // A getter left from before is dropped unlocked.
            let old = self.state.getter.lock().replace(getter.clone());
            drop(old);
            if let Err(e) = getter.await {
                // Interrupted (cancelled) before a future was taken: from
                // 3.14 the item is given back, so one more is yielded
                // (ASCOMP-3).
                if self.state.lp.profile() >= crate::Profile::Py314 {
                    self.remaining += 1;
                }
                return Some(Err(e));
            }
        }
    }

    /// How many futures are still to be yielded.
    pub fn remaining(&self) -> usize {
        self.remaining
    }
}
