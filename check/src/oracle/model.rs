//! The scenarios the properties run, and the oracle that predicts them.
//!
//! Nothing here uses loopspec: the oracle is a small model of asyncio's loop
//! written from SPEC.md (SCHED-1 iterations, TASK-1/TASK-4 steps and
//! cancellation, FUT-6 callbacks, WAIT-3/WAIT-4, GATHER-4..8) and from
//! CPython's [`tasks.py`](https://github.com/python/cpython/blob/v3.14.0/Lib/asyncio/tasks.py):
//! a ready queue, timers in (deadline, creation) order,
//! futures with done callbacks and tasks as explicit state machines.

use std::collections::VecDeque;

/// How a child ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Returns `100 + i`.
    Value,
    /// Raises `ValueError("e{i}")`.
    Error,
    /// Panics with `"p{i}"`.
    Panic,
    /// Raises `CancelledError("s{i}")` itself.
    SelfCancel,
    /// Calls `current_task().cancel("r{i}")` and returns in the same step
    /// (TASK-5).
    SelfCancelReturn,
    /// Returns `100 + i`, but a canceller task cancels it with `"c{i}"`
    /// at this virtual time (0: after one iteration).
    CancelledBy(u8),
}

#[derive(Clone, Debug)]
pub struct Child {
    /// The child sleeps this long (0: `sleep(0)`, one iteration) before
    /// its outcome.
    pub delay: u8,
    pub outcome: Outcome,
    /// An earlier child it awaits first; it propagates that child's
    /// cancellation and ignores its other outcomes.
    pub dep: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    All,
    First,
    FirstExc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Wait { timeout: Option<i8>, when: When },
    Gather { return_exceptions: bool },
}

/// A cancellation from outside, by a task that sleeps until `at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interrupt {
    /// Cancel the driver task (the one awaiting wait/gather) with "D".
    Driver(u8),
    /// Cancel the gather's future with "G" (nothing if not made yet).
    Gather(u8),
}

/// Tasks are made in this order before the loop runs: the children, the
/// cancellers of `CancelledBy` children (by child index), the driver,
/// the interrupter. The driver sleeps `start` (if > 0), then calls wait
/// or gather with the children in index order followed by `dups`.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub children: Vec<Child>,
    pub dups: Vec<usize>,
    pub mode: Mode,
    pub start: u8,
    pub interrupt: Option<Interrupt>,
    pub py312: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Exc {
    /// An exception: Python class (`Panic` for a panic) and message.
    Raised(String, String),
    /// `CancelledError`, with its message if it has one.
    Cancelled(Option<String>),
    /// `ValueError: Set of Tasks/Futures is empty.`
    Empty,
}

pub type Out = Result<i64, Exc>;

/// A child's final state (cancellation messages depend on who reads
/// first, so they are not part of it).
#[derive(Clone, Debug, PartialEq)]
pub enum Final {
    Ok(i64),
    Raised(String, String),
    Cancelled,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// The driver was cancelled in its start sleep.
    CancelledBeforeStart,
    /// What `wait` returned (done, pending as child indices) or raised,
    /// and the virtual time the driver resumed.
    Wait {
        time: i64,
        result: Result<(Vec<usize>, Vec<usize>), Exc>,
    },
    /// What awaiting the gather gave, and when.
    Gather {
        time: i64,
        result: Result<Vec<Out>, Exc>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    pub finals: Vec<Final>,
    /// (child, virtual time) in completion order.
    pub completions: Vec<(usize, i64)>,
    pub record: Record,
}

pub fn value_of(i: usize) -> i64 {
    100 + i as i64
}

// ------------------------------------------------------------------
// The model
// ------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Val {
    Int(i64),
    List(Vec<Out>),
}

#[derive(Clone, Debug)]
enum St {
    Pending,
    Fin(Result<Val, Exc>),
    Cancelled,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Cb {
    Wakeup(usize),
    Gather,
    Wait,
    Log(usize),
}

struct Fut {
    st: St,
    waiters: Vec<Cb>,
    task: Option<usize>,
    gather: bool,
    /// asyncio's `_cancel_message`.
    cancel_message: Option<String>,
    /// asyncio's `_cancelled_exc`: the error that ended a task, handed
    /// to the first reader only (TASK-11).
    cancelled_exc: Option<Option<String>>,
}

enum Ready {
    Step(usize),
    Call(Cb, usize),
    Timer(usize),
}

enum TimerAct {
    Sleep(usize),
    WaitTimeout,
}

struct Timer {
    when: i64,
    act: TimerAct,
    cancelled: bool,
    fired: bool,
}

#[derive(Clone, Copy)]
enum Prog {
    Child(usize),
    Canceller(usize),
    Interrupter(Interrupt),
    Driver,
}

struct Task {
    fut: usize,
    prog: Prog,
    pc: u8,
    fut_waiter: Option<usize>,
    must_cancel: bool,
    sleep_timer: Option<usize>,
}

enum Yield {
    Return(Val),
    Raise(Exc),
    Await(usize),
    Yield0,
}

struct GatherSt {
    outer: usize,
    children: Vec<usize>,
    unique: Vec<usize>,
    nfinished: usize,
    return_exceptions: bool,
    cancel_requested: bool,
    last_finished: Option<usize>,
}

struct WaitSt {
    waiter: usize,
    timer: Option<usize>,
    counter: i64,
    when: When,
    unique: Vec<usize>,
}

struct Sim<'a> {
    sc: &'a Scenario,
    now: i64,
    futs: Vec<Fut>,
    tasks: Vec<Task>,
    timers: Vec<Timer>,
    ready: VecDeque<Ready>,
    gather: Option<GatherSt>,
    wait: Option<WaitSt>,
    child_task: Vec<usize>,
    driver: usize,
    completions: Vec<(usize, i64)>,
    record: Option<Record>,
}

/// Runs the scenario on the model and returns what CPython does.
pub fn predict(sc: &Scenario) -> Prediction {
    let mut sim = Sim {
        sc,
        now: 0,
        futs: Vec::new(),
        tasks: Vec::new(),
        timers: Vec::new(),
        ready: VecDeque::new(),
        gather: None,
        wait: None,
        child_task: Vec::new(),
        driver: 0,
        completions: Vec::new(),
        record: None,
    };
    for i in 0..sc.children.len() {
        let t = sim.spawn(Prog::Child(i));
        sim.child_task.push(t);
        let f = sim.tasks[t].fut;
        sim.futs[f].waiters.push(Cb::Log(i));
    }
    for (i, c) in sc.children.iter().enumerate() {
        if let Outcome::CancelledBy(_) = c.outcome {
            sim.spawn(Prog::Canceller(i));
        }
    }
    sim.driver = sim.spawn(Prog::Driver);
    if let Some(int) = sc.interrupt {
        sim.spawn(Prog::Interrupter(int));
    }
    while sim.run_once() {}
    let finals = (0..sc.children.len())
        .map(|i| {
            let f = sim.tasks[sim.child_task[i]].fut;
            match &sim.futs[f].st {
                St::Fin(Ok(Val::Int(v))) => Final::Ok(*v),
                St::Fin(Err(Exc::Raised(k, m))) => Final::Raised(k.clone(), m.clone()),
                St::Cancelled => Final::Cancelled,
                other => panic!("child {i} ended in {other:?}"),
            }
        })
        .collect();
    Prediction {
        finals,
        completions: sim.completions,
        record: sim.record.expect("the driver never finished"),
    }
}

impl Sim<'_> {
    fn new_fut(&mut self, task: Option<usize>, gather: bool) -> usize {
        self.futs.push(Fut {
            st: St::Pending,
            waiters: Vec::new(),
            task,
            gather,
            cancel_message: None,
            cancelled_exc: None,
        });
        self.futs.len() - 1
    }

    fn spawn(&mut self, prog: Prog) -> usize {
        let t = self.tasks.len();
        let fut = self.new_fut(Some(t), false);
        self.tasks.push(Task {
            fut,
            prog,
            pc: 0,
            fut_waiter: None,
            must_cancel: false,
            sleep_timer: None,
        });
        self.ready.push_back(Ready::Step(t));
        t
    }

    fn add_timer(&mut self, when: i64, act: TimerAct) -> usize {
        self.timers.push(Timer {
            when,
            act,
            cancelled: false,
            fired: false,
        });
        self.timers.len() - 1
    }

    fn done(&self, f: usize) -> bool {
        !matches!(self.futs[f].st, St::Pending)
    }

    fn cancelled(&self, f: usize) -> bool {
        matches!(self.futs[f].st, St::Cancelled)
    }

    /// Moves a pending future to `st` and schedules its callbacks (FUT-6).
    fn complete(&mut self, f: usize, st: St) {
        assert!(!self.done(f));
        self.futs[f].st = st;
        for cb in std::mem::take(&mut self.futs[f].waiters) {
            self.ready.push_back(Ready::Call(cb, f));
        }
    }

    fn add_done_callback(&mut self, f: usize, cb: Cb) {
        if self.done(f) {
            self.ready.push_back(Ready::Call(cb, f));
        } else {
            self.futs[f].waiters.push(cb);
        }
    }

    /// `_make_cancelled_error()`: consumes the first-reader error.
    fn make_cancelled_error(&mut self, f: usize) -> Option<String> {
        match self.futs[f].cancelled_exc.take() {
            Some(m) => m,
            None => self.futs[f].cancel_message.clone(),
        }
    }

    /// `result()`.
    fn read(&mut self, f: usize) -> Result<Val, Exc> {
        match &self.futs[f].st {
            St::Fin(r) => r.clone(),
            St::Cancelled => Err(Exc::Cancelled(self.make_cancelled_error(f))),
            St::Pending => panic!("read of a pending future"),
        }
    }

    /// `Future.cancel(msg)`.
    fn future_cancel(&mut self, f: usize, msg: Option<String>) -> bool {
        if self.done(f) {
            return false;
        }
        self.futs[f].cancel_message = msg;
        self.complete(f, St::Cancelled);
        true
    }

    /// `fut.cancel(msg)` for whatever `fut` is.
    fn cancel_any(&mut self, f: usize, msg: Option<String>) -> bool {
        if let Some(t) = self.futs[f].task {
            self.task_cancel(t, msg)
        } else if self.futs[f].gather {
            self.gather_cancel(msg)
        } else {
            self.future_cancel(f, msg)
        }
    }

    /// `Task.cancel(msg)` (TASK-4).
    fn task_cancel(&mut self, t: usize, msg: Option<String>) -> bool {
        let f = self.tasks[t].fut;
        if self.done(f) {
            return false;
        }
        if let Some(w) = self.tasks[t].fut_waiter
            && self.cancel_any(w, msg.clone())
        {
            return true;
        }
        self.tasks[t].must_cancel = true;
        self.futs[f].cancel_message = msg;
        true
    }

    /// `_GatheringFuture.cancel(msg)` (GATHER-6): every argument's
    /// child, duplicates included, as CPython does.
    fn gather_cancel(&mut self, msg: Option<String>) -> bool {
        let g = self.gather.as_ref().expect("gather");
        if self.done(g.outer) {
            return false;
        }
        let children = g.children.clone();
        let mut any = false;
        for c in children {
            any |= self.cancel_any(c, msg.clone());
        }
        if any {
            self.gather.as_mut().unwrap().cancel_requested = true;
        }
        any
    }

    /// One iteration (SCHED-1). False when nothing is left to do.
    fn run_once(&mut self) -> bool {
        let next_timer = self
            .timers
            .iter()
            .filter(|t| !t.cancelled && !t.fired)
            .map(|t| t.when)
            .min();
        if self.ready.is_empty() {
            match next_timer {
                None => return false,
                Some(w) => self.now = self.now.max(w),
            }
        }
        let mut due: Vec<usize> = (0..self.timers.len())
            .filter(|&i| !self.timers[i].fired && self.timers[i].when <= self.now)
            .collect();
        due.sort_by_key(|&i| (self.timers[i].when, i));
        for i in due {
            self.timers[i].fired = true;
            self.ready.push_back(Ready::Timer(i));
        }
        let n = self.ready.len();
        for _ in 0..n {
            let r = self.ready.pop_front().unwrap();
            match r {
                Ready::Step(t) => self.step(t, None),
                Ready::Call(cb, f) => self.run_cb(cb, f),
                Ready::Timer(i) => {
                    if self.timers[i].cancelled {
                        continue;
                    }
                    match self.timers[i].act {
                        TimerAct::Sleep(f) => {
                            if !self.done(f) {
                                self.complete(f, St::Fin(Ok(Val::Int(0))));
                            }
                        }
                        TimerAct::WaitTimeout => {
                            let w = self.wait.as_ref().unwrap().waiter;
                            if !self.done(w) {
                                self.complete(w, St::Fin(Ok(Val::Int(0))));
                            }
                        }
                    }
                }
            }
        }
        true
    }

    fn run_cb(&mut self, cb: Cb, f: usize) {
        match cb {
            Cb::Log(i) => self.completions.push((i, self.now)),
            Cb::Wakeup(t) => {
                // Task.__wakeup: reads the result, throws its error in.
                let exc = self.read(f).err();
                self.step(t, exc);
            }
            Cb::Gather => self.gather_cb(f),
            Cb::Wait => self.wait_cb(f),
        }
    }

    /// `Task.__step`.
    fn step(&mut self, t: usize, exc: Option<Exc>) {
        let f = self.tasks[t].fut;
        if self.done(f) {
            return;
        }
        let mut exc = exc;
        if self.tasks[t].must_cancel {
            if !matches!(exc, Some(Exc::Cancelled(_))) {
                exc = Some(Exc::Cancelled(self.make_cancelled_error(f)));
            }
            self.tasks[t].must_cancel = false;
        }
        self.tasks[t].fut_waiter = None;
        match self.resume(t, exc) {
            Yield::Return(v) => {
                if self.tasks[t].must_cancel {
                    self.tasks[t].must_cancel = false;
                    let msg = self.futs[f].cancel_message.clone();
                    self.future_cancel(f, msg);
                } else {
                    self.complete(f, St::Fin(Ok(v)));
                }
            }
            Yield::Raise(Exc::Cancelled(m)) => {
                self.futs[f].cancelled_exc = Some(m);
                self.future_cancel(f, None);
            }
            Yield::Raise(e) => self.complete(f, St::Fin(Err(e))),
            Yield::Await(w) => {
                self.futs[w].waiters.push(Cb::Wakeup(t));
                self.tasks[t].fut_waiter = Some(w);
                if self.tasks[t].must_cancel {
                    let msg = self.futs[f].cancel_message.clone();
                    if self.cancel_any(w, msg) {
                        self.tasks[t].must_cancel = false;
                    }
                }
            }
            Yield::Yield0 => self.ready.push_back(Ready::Step(t)),
        }
    }

    /// `await sleep(d)` up to its first suspension; pc `then` resumes.
    fn sleep(&mut self, t: usize, d: i64, then: u8) -> Yield {
        self.tasks[t].pc = then;
        if d <= 0 {
            return Yield::Yield0;
        }
        let f = self.new_fut(None, false);
        let h = self.add_timer(self.now + d, TimerAct::Sleep(f));
        self.tasks[t].sleep_timer = Some(h);
        Yield::Await(f)
    }

    /// `sleep`'s `finally: h.cancel()`.
    fn end_sleep(&mut self, t: usize) {
        if let Some(h) = self.tasks[t].sleep_timer.take() {
            self.timers[h].cancelled = true;
        }
    }

    /// Runs task `t`'s program from its pc until it suspends or ends.
    fn resume(&mut self, t: usize, exc: Option<Exc>) -> Yield {
        match self.tasks[t].prog {
            Prog::Child(i) => self.resume_child(t, i, exc),
            Prog::Canceller(i) => {
                if self.tasks[t].pc == 0 {
                    if let Some(e) = exc {
                        return Yield::Raise(e);
                    }
                    let Outcome::CancelledBy(at) = self.sc.children[i].outcome else {
                        unreachable!()
                    };
                    return self.sleep(t, at as i64, 1);
                }
                self.end_sleep(t);
                if let Some(e) = exc {
                    return Yield::Raise(e);
                }
                let target = self.child_task[i];
                self.task_cancel(target, Some(format!("c{i}")));
                Yield::Return(Val::Int(0))
            }
            Prog::Interrupter(int) => {
                let at = match int {
                    Interrupt::Driver(at) | Interrupt::Gather(at) => at,
                };
                if self.tasks[t].pc == 0 {
                    if let Some(e) = exc {
                        return Yield::Raise(e);
                    }
                    return self.sleep(t, at as i64, 1);
                }
                self.end_sleep(t);
                if let Some(e) = exc {
                    return Yield::Raise(e);
                }
                match int {
                    Interrupt::Driver(_) => {
                        self.task_cancel(self.driver, Some("D".into()));
                    }
                    Interrupt::Gather(_) => {
                        if let Some(g) = &self.gather {
                            let outer = g.outer;
                            self.cancel_any(outer, Some("G".into()));
                        }
                    }
                }
                Yield::Return(Val::Int(0))
            }
            Prog::Driver => self.resume_driver(t, exc),
        }
    }

    fn resume_child(&mut self, t: usize, i: usize, exc: Option<Exc>) -> Yield {
        let c = self.sc.children[i].clone();
        let mut exc = exc;
        let mut pc = self.tasks[t].pc;
        loop {
            match pc {
                // start: await the dependency, if any
                0 => {
                    if let Some(e) = exc.take() {
                        return Yield::Raise(e); // never started: body never runs
                    }
                    match c.dep {
                        Some(j) => {
                            let d = self.tasks[self.child_task[j]].fut;
                            if self.done(d) {
                                if let Err(Exc::Cancelled(m)) = self.read(d) {
                                    return Yield::Raise(Exc::Cancelled(m));
                                }
                                pc = 10;
                            } else {
                                self.tasks[t].pc = 1;
                                return Yield::Await(d);
                            }
                        }
                        None => pc = 10,
                    }
                }
                // after the dependency
                1 => {
                    if let Some(Exc::Cancelled(m)) = exc.take() {
                        return Yield::Raise(Exc::Cancelled(m));
                    }
                    pc = 10;
                }
                10 => return self.sleep(t, c.delay as i64, 11),
                // after the sleep
                11 => {
                    self.end_sleep(t);
                    if let Some(e) = exc.take() {
                        return Yield::Raise(e);
                    }
                    let v = Val::Int(value_of(i));
                    return match c.outcome {
                        Outcome::Value | Outcome::CancelledBy(_) => Yield::Return(v),
                        Outcome::Error => {
                            Yield::Raise(Exc::Raised("ValueError".into(), format!("e{i}")))
                        }
                        Outcome::Panic => {
                            Yield::Raise(Exc::Raised("Panic".into(), format!("p{i}")))
                        }
                        Outcome::SelfCancel => Yield::Raise(Exc::Cancelled(Some(format!("s{i}")))),
                        Outcome::SelfCancelReturn => {
                            self.task_cancel(t, Some(format!("r{i}")));
                            Yield::Return(v)
                        }
                    };
                }
                _ => unreachable!(),
            }
        }
    }

    fn resume_driver(&mut self, t: usize, exc: Option<Exc>) -> Yield {
        let sc = self.sc;
        match self.tasks[t].pc {
            0 => {
                if let Some(e) = exc {
                    return Yield::Raise(e);
                }
                if sc.start > 0 {
                    return self.sleep(t, sc.start as i64, 1);
                }
            }
            1 => {
                self.end_sleep(t);
                if let Some(e) = exc {
                    self.record = Some(Record::CancelledBeforeStart);
                    return Yield::Raise(e);
                }
            }
            2 => return self.after_wait(exc),
            3 => {
                let result = match exc {
                    Some(e) => Err(e),
                    None => {
                        let outer = self.gather.as_ref().unwrap().outer;
                        self.read(outer).map(|v| match v {
                            Val::List(l) => l,
                            Val::Int(_) => unreachable!(),
                        })
                    }
                };
                self.record_gather(result);
                return Yield::Return(Val::Int(0));
            }
            _ => unreachable!(),
        }
        // main part
        let n = sc.children.len();
        let args: Vec<usize> = (0..n)
            .chain(sc.dups.iter().copied())
            .map(|i| self.tasks[self.child_task[i]].fut)
            .collect();
        let mut unique = Vec::new();
        for &a in &args {
            if !unique.contains(&a) {
                unique.push(a);
            }
        }
        match sc.mode {
            Mode::Wait { timeout, when } => {
                if n == 0 {
                    self.record = Some(Record::Wait {
                        time: self.now,
                        result: Err(Exc::Empty),
                    });
                    return Yield::Return(Val::Int(0));
                }
                let waiter = self.new_fut(None, false);
                let timer =
                    timeout.map(|to| self.add_timer(self.now + to as i64, TimerAct::WaitTimeout));
                self.wait = Some(WaitSt {
                    waiter,
                    timer,
                    counter: unique.len() as i64,
                    when,
                    unique: unique.clone(),
                });
                for &u in &unique {
                    self.add_done_callback(u, Cb::Wait);
                }
                self.tasks[t].pc = 2;
                Yield::Await(waiter)
            }
            Mode::Gather { return_exceptions } => {
                if n == 0 {
                    self.record = Some(Record::Gather {
                        time: self.now,
                        result: Ok(Vec::new()),
                    });
                    return Yield::Return(Val::Int(0));
                }
                let outer = self.new_fut(None, true);
                self.gather = Some(GatherSt {
                    outer,
                    children: args,
                    unique: unique.clone(),
                    nfinished: 0,
                    return_exceptions,
                    cancel_requested: false,
                    last_finished: None,
                });
                let mut done_now = Vec::new();
                for &u in &unique {
                    if sc.py312 && self.done(u) {
                        done_now.push(u);
                    } else {
                        self.add_done_callback(u, Cb::Gather);
                    }
                }
                for u in done_now {
                    self.gather_cb(u);
                }
                if self.done(outer) {
                    // awaiting a done future does not suspend
                    let result = self.read(outer).map(|v| match v {
                        Val::List(l) => l,
                        Val::Int(_) => unreachable!(),
                    });
                    self.record_gather(result);
                    return Yield::Return(Val::Int(0));
                }
                self.tasks[t].pc = 3;
                Yield::Await(outer)
            }
        }
    }

    fn record_gather(&mut self, result: Result<Vec<Out>, Exc>) {
        self.record = Some(Record::Gather {
            time: self.now,
            result,
        });
    }

    fn after_wait(&mut self, exc: Option<Exc>) -> Yield {
        let w = self.wait.as_ref().unwrap();
        if let Some(h) = w.timer {
            self.timers[h].cancelled = true;
        }
        let unique = w.unique.clone();
        for &u in &unique {
            self.futs[u].waiters.retain(|cb| *cb != Cb::Wait);
        }
        let result = match exc {
            Some(e) => Err(e),
            None => {
                let idx = |s: &Self, f: usize| {
                    (0..s.sc.children.len())
                        .find(|&i| s.tasks[s.child_task[i]].fut == f)
                        .unwrap()
                };
                let done = unique
                    .iter()
                    .filter(|&&u| self.done(u))
                    .map(|&u| idx(self, u));
                let pending = unique
                    .iter()
                    .filter(|&&u| !self.done(u))
                    .map(|&u| idx(self, u));
                Ok((done.collect(), pending.collect()))
            }
        };
        self.record = Some(Record::Wait {
            time: self.now,
            result,
        });
        Yield::Return(Val::Int(0))
    }

    /// `wait`'s `_on_completion`.
    fn wait_cb(&mut self, f: usize) {
        let failed = !self.cancelled(f) && matches!(self.futs[f].st, St::Fin(Err(_)));
        let w = self.wait.as_mut().unwrap();
        w.counter -= 1;
        if w.counter <= 0 || w.when == When::First || (w.when == When::FirstExc && failed) {
            let (timer, waiter) = (w.timer, w.waiter);
            if let Some(h) = timer {
                self.timers[h].cancelled = true;
            }
            if !self.done(waiter) {
                self.complete(waiter, St::Fin(Ok(Val::Int(0))));
            }
        }
    }

    /// `gather`'s `_done_callback`.
    fn gather_cb(&mut self, f: usize) {
        let g = self.gather.as_mut().unwrap();
        g.nfinished += 1;
        g.last_finished = Some(f);
        let (outer, ret) = (g.outer, g.return_exceptions);
        if self.done(outer) {
            return;
        }
        if !ret {
            if self.cancelled(f) {
                let m = self.make_cancelled_error(f);
                self.complete(outer, St::Fin(Err(Exc::Cancelled(m))));
                return;
            }
            if let St::Fin(Err(e)) = &self.futs[f].st {
                let e = e.clone();
                self.complete(outer, St::Fin(Err(e)));
                return;
            }
        }
        let g = self.gather.as_ref().unwrap();
        if g.nfinished == g.unique.len() {
            let children = g.children.clone();
            let results: Vec<Out> = children
                .iter()
                .map(|&c| match &self.futs[c].st {
                    St::Cancelled => Err(Exc::Cancelled(Some(
                        self.futs[c].cancel_message.clone().unwrap_or_default(),
                    ))),
                    St::Fin(Ok(Val::Int(v))) => Ok(*v),
                    St::Fin(Err(e)) => Err(e.clone()),
                    _ => unreachable!(),
                })
                .collect();
            if g.cancel_requested {
                // The last child in argument order (CPython's loop
                // variable), GATHER-6.
                let last = *children.last().unwrap();
                let m = self.make_cancelled_error(last);
                self.complete(outer, St::Fin(Err(Exc::Cancelled(m))));
            } else {
                self.complete(outer, St::Fin(Ok(Val::List(results))));
            }
        }
    }
}
