//! A loop's [`LocalHome`]: the values of its local work — callbacks, timer
//! callbacks, done callbacks and task coroutines that are not `Send` — by
//! id, on the one thread that made them. The loop's
//! [`Work`](super::work::Work) holds only their ids (in the `LocalCall` of a
//! `Ready::Local` or a `TimerCall::Local`, a future's `Waiter::Local`, a task
//! entry without a coroutine), so it stays `Send`.
//!
//! Ids come from the loop's `next_local` counter: one id names one value,
//! which is taken out exactly once — to run it, or to drop it (a cancelled
//! entry, `close()`, the thread's exit).

use super::IdMap;
use super::erased::LocalCoroutine;
use std::any::Any;
use std::cell::RefCell;
use std::pin::Pin;

/// The local values of one loop on one thread; see the [module docs](self).
#[derive(Default)]
pub(crate) struct LocalHome {
    /// Local callbacks (`call_soon_local`) and timer callbacks
    /// (`call_later_local`, `call_at_local`) by id. Put by the scheduling
    /// call; taken when the entry runs or is dropped cancelled.
    callbacks: RefCell<IdMap<Box<dyn FnOnce()>>>,
    /// The coroutines of local tasks (`create_task_local`) by task id. Put
    /// when the task is made; taken by each step and put back while the task
    /// is pending; gone when it finishes.
    coroutines: RefCell<IdMap<Pin<Box<dyn LocalCoroutine>>>>,
    /// Other local values that `Send` values name by id: a future's local
    /// done callbacks. Put by `EventLoop::stash`, taken by `unstash`.
    pub(crate) stash: RefCell<IdMap<Box<dyn Any>>>,
}

impl LocalHome {
    pub(crate) fn put_callback(&self, id: u64, f: Box<dyn FnOnce()>) {
        self.callbacks.borrow_mut().insert(id, f);
    }

    pub(crate) fn take_callback(&self, id: u64) -> Option<Box<dyn FnOnce()>> {
        self.callbacks.borrow_mut().remove(&id)
    }

    pub(crate) fn put_coroutine(&self, id: u64, coro: Pin<Box<dyn LocalCoroutine>>) {
        self.coroutines.borrow_mut().insert(id, coro);
    }

    pub(crate) fn take_coroutine(&self, id: u64) -> Option<Pin<Box<dyn LocalCoroutine>>> {
        self.coroutines.borrow_mut().remove(&id)
    }

    /// Whether it holds nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.callbacks.borrow().is_empty()
            && self.coroutines.borrow().is_empty()
            && self.stash.borrow().is_empty()
    }

    /// Moves everything out, for the caller to drop each value on its own.
    pub(crate) fn take_all(&self) -> LocalTaken {
        LocalTaken {
            callbacks: std::mem::take(&mut *self.callbacks.borrow_mut()),
            coroutines: std::mem::take(&mut *self.coroutines.borrow_mut()),
            stash: std::mem::take(&mut *self.stash.borrow_mut()),
        }
    }
}

/// What [`LocalHome::take_all`] took out.
pub(crate) struct LocalTaken {
    pub(crate) callbacks: IdMap<Box<dyn FnOnce()>>,
    pub(crate) coroutines: IdMap<Pin<Box<dyn LocalCoroutine>>>,
    pub(crate) stash: IdMap<Box<dyn Any>>,
}
