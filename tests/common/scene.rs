//! Loops, the log tests write to, and the scene that holds both.

use loopspec::{
    ClockKind, Error, EventLoop, ExceptionContext, Handle, Profile, Task, TaskRef, TimerHandle,
};
use std::cell::RefCell;
use std::ops::Deref;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

/// A new loop on the virtual clock.
pub fn vloop() -> EventLoop {
    EventLoop::with_clock(ClockKind::Virtual)
}

/// A new virtual-clock loop that follows `profile`'s rules.
pub fn profile_loop(profile: Profile) -> EventLoop {
    EventLoop::builder()
        .clock(ClockKind::Virtual)
        .profile(profile)
        .build()
}

/// An ordered record of events, shared by the callbacks of one test, on any
/// thread.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    pub fn new() -> Log {
        Log::default()
    }

    pub fn push(&self, s: impl Into<String>) {
        self.0.lock().unwrap().push(s.into());
    }

    /// A callback that records `s` when it runs.
    pub fn cb(&self, s: impl Into<String>) -> impl FnOnce() + Send + 'static {
        let log = self.clone();
        let s = s.into();
        move || log.push(s)
    }

    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    pub fn get(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// One test's scenario: a loop (on the virtual clock unless given) and the
/// log its callbacks and tasks write to. It derefs to the loop, so
/// `s.time()`, `s.stop()`, `s.run_until_complete(..)` are the loop's.
#[derive(Clone)]
pub struct Scene {
    pub lp: EventLoop,
    pub log: Log,
}

impl Default for Scene {
    fn default() -> Scene {
        Scene::on(vloop())
    }
}

impl Deref for Scene {
    type Target = EventLoop;
    fn deref(&self) -> &EventLoop {
        &self.lp
    }
}

impl Scene {
    /// A scene on a new virtual-clock loop.
    pub fn new() -> Scene {
        Scene::default()
    }

    /// A scene on a new virtual-clock loop of `profile`.
    pub fn with_profile(profile: Profile) -> Scene {
        Scene::on(profile_loop(profile))
    }

    /// A scene on `lp`.
    pub fn on(lp: EventLoop) -> Scene {
        Scene {
            lp,
            log: Log::new(),
        }
    }

    /// Records `s` in the log.
    pub fn push(&self, s: impl Into<String>) {
        self.log.push(s);
    }

    /// What the log holds, emptying it.
    pub fn take(&self) -> Vec<String> {
        self.log.take()
    }

    /// A callback that records `s`.
    pub fn cb(&self, s: impl Into<String>) -> impl FnOnce() + Send + 'static {
        self.log.cb(s)
    }

    /// A callback that records `s`, then stops the loop.
    pub fn cb_stop(&self, s: impl Into<String>) -> impl FnOnce() + Send + 'static {
        let (lp, log, s) = (self.lp.clone(), self.log.clone(), s.into());
        move || {
            log.push(s);
            lp.stop();
        }
    }

    /// A callback that records `s@t`, `t` the loop time when it runs.
    pub fn cb_time(&self, s: impl Into<String>) -> impl FnOnce() + Send + 'static {
        let (lp, log, s) = (self.lp.clone(), self.log.clone(), s.into());
        move || log.push(format!("{s}@{}", lp.time()))
    }

    /// `call_soon` of `f`, which is given the scene.
    pub fn soon(&self, f: impl FnOnce(&Scene) + 'static) -> Handle {
        let me = self.clone();
        self.lp.call_soon_local(move || f(&me)).unwrap()
    }

    /// `call_later(delay, f)`; `f` is given the scene.
    pub fn later(&self, delay: f64, f: impl FnOnce(&Scene) + 'static) -> TimerHandle {
        let me = self.clone();
        self.lp.call_later_local(delay, move || f(&me)).unwrap()
    }

    /// `call_soon` of a callback that records `s`.
    pub fn soon_log(&self, s: impl Into<String>) -> Handle {
        self.lp.call_soon(self.cb(s)).unwrap()
    }

    /// `call_soon_local` of a callback that records `s` (local work: this
    /// thread becomes the loop's local home).
    pub fn soon_local_log(&self, s: impl Into<String>) -> Handle {
        self.lp.call_soon_local(self.cb(s)).unwrap()
    }

    /// `call_later_local(delay, ..)` of a callback that records `s`.
    pub fn later_local_log(&self, delay: f64, s: impl Into<String>) -> TimerHandle {
        self.lp.call_later_local(delay, self.cb(s)).unwrap()
    }

    /// `call_later(delay, ..)` of a callback that records `s`.
    pub fn later_log(&self, delay: f64, s: impl Into<String>) -> TimerHandle {
        self.lp.call_later(delay, self.cb(s)).unwrap()
    }

    /// `call_later(delay, ..)` of a callback that records `s` and stops the
    /// loop.
    pub fn later_stop(&self, delay: f64, s: impl Into<String>) -> TimerHandle {
        self.lp.call_later(delay, self.cb_stop(s)).unwrap()
    }

    /// A task on the loop running `body`, which is given the scene.
    pub fn task<T: Send + 'static, F>(&self, body: impl FnOnce(Scene) -> F) -> Task<T>
    where
        F: std::future::Future<Output = loopspec::Result<T>> + 'static,
    {
        self.lp.create_task_local(body(self.clone())).unwrap()
    }

    /// A task like [`Scene::task`] whose future holds `data`, dropped with
    /// the future (not when it completes).
    pub fn task_with<T: Send + 'static, D: 'static, F>(
        &self,
        data: D,
        body: impl FnOnce(Scene) -> F,
    ) -> Task<T>
    where
        F: std::future::Future<Output = loopspec::Result<T>> + 'static,
    {
        let fut = Box::pin(body(self.clone()));
        self.lp
            .create_task_local(crate::Holding { fut, _data: data })
            .unwrap()
    }

    /// Runs one iteration; what it recorded.
    pub fn once(&self) -> Vec<String> {
        run_once(&self.lp);
        self.take()
    }

    /// `run_forever()` until a stop; what the run recorded.
    pub fn forever(&self) -> Vec<String> {
        self.lp.run_forever().unwrap();
        self.take()
    }
}

/// A named case of a table-driven test: its name and its body.
pub type Case = (&'static str, fn(&Scene));

/// Runs a table of named cases, each on a new [`Scene`] which is then
/// [finished](finish): every case runs, even after one failed, and the test
/// fails naming each case that did, with its panic.
#[track_caller]
pub fn cases(table: &[Case]) {
    let failed: Vec<String> = table
        .iter()
        .filter_map(|(name, case)| {
            let s = Scene::new();
            let r = std::panic::catch_unwind(AssertUnwindSafe(|| case(&s)));
            finish(&s);
            let p = r.err()?;
            Some(format!("{name}: {}", crate::panic_text(&*p)))
        })
        .collect();
    crate::assert_no_failed_case(&failed, table.len());
}

/// Runs exactly one iteration with the `stop(); run_forever()` idiom.
pub fn run_once(lp: &EventLoop) {
    lp.stop();
    lp.run_forever().expect("run_forever");
}

/// Ends a test's loop the way a runner closes one (RUNNER-4): cancels every
/// task still pending, runs the loop until each is done, and closes it. For a
/// test whose point is elsewhere, so that no task is destroyed pending
/// (TASK-8), which the default exception handler would report on stderr.
/// A loop that is closed, or whose work lives on another thread, is left as
/// it is.
pub fn finish(lp: &EventLoop) {
    let tasks: Rc<RefCell<Vec<TaskRef>>> = Rc::default();
    let t = tasks.clone();
    let looked = lp.call_soon_local(move || {
        let all = loopspec::all_tasks().expect("all_tasks in a callback");
        for task in &all {
            task.cancel();
        }
        *t.borrow_mut() = all;
    });
    if looked.is_err() || lp.is_running() {
        return;
    }
    run_once(lp);
    let mut rounds = 0;
    while tasks.borrow().iter().any(|t| !t.done()) {
        rounds += 1;
        assert!(rounds < 1000, "finish: tasks still pending: {tasks:?}");
        run_once(lp);
    }
    lp.close().expect("finish: close");
}

/// Asserts that `lp` holds no loop-bound work any more (no uncancelled timer,
/// no ready callback, no unfinished task): then it has no home, and another
/// thread can run it (THREAD-3); live work would keep it bound here
/// (THREAD-2).
pub fn assert_holds_no_work(lp: &EventLoop) {
    let l = lp.clone();
    let r = crate::in_thread("holds-no-work", move || {
        l.stop();
        l.run_forever()
    });
    assert_eq!(r, Ok(()), "the loop still holds work");
}

/// The contexts an exception handler installed by [`capture_exceptions`]
/// received; it derefs to their mutex.
#[derive(Clone, Default)]
pub struct Reports(Arc<Mutex<Vec<ExceptionContext>>>);

impl Deref for Reports {
    type Target = Mutex<Vec<ExceptionContext>>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Reports {
    /// The message of each report, in order.
    pub fn messages(&self) -> Vec<String> {
        self.each(|c| c.message.clone())
    }

    /// `f` of each report, in order.
    pub fn each<T>(&self, f: impl Fn(&ExceptionContext) -> T) -> Vec<T> {
        self.0.lock().unwrap().iter().map(f).collect()
    }
}

/// Installs an exception handler that records every context it receives.
pub fn capture_exceptions(lp: &EventLoop) -> Reports {
    let seen = Reports::default();
    let s = seen.clone();
    lp.set_exception_handler(Some(Arc::new(
        move |_lp: &EventLoop, ctx: &ExceptionContext| {
            s.lock().unwrap().push(ctx.clone());
        },
    )));
    seen
}

/// A task that sleeps `delay` seconds and then returns `value`.
pub fn sleeper<T: Clone + Send + 'static>(lp: &EventLoop, delay: f64, value: T) -> Task<T> {
    lp.create_task(async move {
        loopspec::sleep(delay).await?;
        Ok(value)
    })
    .unwrap()
}

/// A task that sleeps `delay` seconds and then raises `err`.
pub fn failer(lp: &EventLoop, delay: f64, err: Error) -> Task<i32> {
    lp.create_task(async move {
        loopspec::sleep(delay).await?;
        Err(err)
    })
    .unwrap()
}
