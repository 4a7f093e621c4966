//! Threaded conformance scenarios (format 2 of `conformance/FORMAT.md`) on
//! loopspec, with real threads, and the kit's judge of their observations.
//!
//! [`run_once`] runs one scenario once and returns its [`Observation`]: the
//! log of everything the scenario recorded, each entry with its `seq` (from
//! one atomic counter, taken under the log's lock, so `seq` order is a real
//! order of the recording instants across threads) and the scenario thread
//! that recorded it (`other` for a thread the scenario did not start: an
//! executor's worker). It is the Rust counterpart of the kit's
//! `loopspec_conformance/program.py`; [`outcome`], [`violations`] and
//! [`allowed_outcomes`] are the counterpart of its `judge.py`, so a Rust test
//! can judge runs without Python.
//!
//! # How operations map to loopspec
//!
//! * The scenario's `main` runs on a thread of its own, named `main`, made
//!   for the run; the thread that calls [`run_once`] supervises it (below).
//!   Every other scenario thread is a Rust thread named after it, so the
//!   names loopspec prints are the scenario's (POLICY-9).
//! * The modelled Python minor gives the [`Profile`] (`Profile::for_python`)
//!   of every loop the run makes and of the run's [`Policy`], whose main
//!   thread is the scenario's `main` (`MainThread`). `get_event_loop`,
//!   `set_event_loop`, `new_event_loop`, `asyncio.run()` and `Runner()` use
//!   that policy explicitly, as CPython's functions use the interpreter's
//!   default policy. The functions that find a loop themselves
//!   (`ensure_future`, `gather()` and `Future()` without a loop) and the
//!   policy API use loopspec's process-wide policy: a run that needs it
//!   installs its policy there with `set_event_loop_policy` for the run's
//!   duration, one run at a time per process.
//! * `make_loop` and `new_event_loop` make real-clock loops; the run
//!   installs a recording exception handler on every loop it names.
//! * Callbacks (`call_soon`, `call_soon_threadsafe`, timers, done callbacks,
//!   executor jobs) are closures that run the callback script; a `raise` in
//!   a callback run by a loop is a panic (the Rust mapping: a panic is an
//!   exception), whose payload carries the Python class so the `reported`
//!   entry can name it.
//! * Coroutine scripts are Rust futures; `run_coroutine_threadsafe` gets a
//!   `Send` closure that makes the coroutine on the loop's thread.
//! * `asyncio.run(c)` is `Policy::run`, and with `loop_factory` it is
//!   `run_with_loop_factory` (in every profile: loopspec has it even where
//!   CPython 3.11 has no such argument). `Runner()` is
//!   `Runner::with_policy` or `Runner::with_loop_factory`; `__enter__` is
//!   the lazy initialisation (`get_loop`), `__exit__` is `close`. A runner's
//!   `run()` nested in its own run gets the error `Runner::run` checks
//!   first (`Runner.run() cannot be called from a running event loop`).
//! * Executors are loopspec's `ThreadPool`s (`executor_submit` completes a
//!   `ConcurrentFuture` the way `ThreadPoolExecutor.submit` does), and
//!   `run_in_executor` is `EventLoop::run_in_executor`. No operation of the
//!   format is a `LoopThread`: the corpus spells that pattern out
//!   (`xthread-10-a-loop-on-its-own-thread`).
//! * Loop futures and tasks are not `Send` (THREAD-6): each lives in a table
//!   of the thread that made it. Using one from another thread — which
//!   loopspec's types forbid — records THREAD-1's error
//!   (`Non-thread-safe operation invoked on an event loop other than the
//!   current one`) as the operation's outcome.
//! * Warnings are taken with `warnings::catch()` around each recorded call
//!   and logged before the call's own entry, as Python records them when
//!   they are raised.
//! * What loopspec has no counterpart for is a `runner_error` (the run
//!   fails; the script goes on): the policy classes
//!   (`DefaultEventLoopPolicy`, `AbstractEventLoopPolicy`), task factories
//!   (`eager_task_factory`), `wrap_future` of a loop future (CPython returns
//!   it unchanged; loopspec's types keep the two apart, CHAIN-1), and a
//!   second thread's `Runner.run()` while the runner runs (`run` takes
//!   `&mut self`, RUNNER-3). A scenario that is malformed is a
//!   `runner_error` too; nothing in the input makes the runner panic.
//!
//! # Bounded waits
//!
//! Every wait is bounded by the scenario's `wait_timeout` (default: the
//! runner's, 5 s), as FORMAT.md says: `wait`, `arrive` and `join` record
//! `wait_timeout`, `barrier_timeout` or `join_timeout` and end the script
//! that waited (when that script is `main`, every event is set and every
//! barrier broken so that the other threads finish). After `main`'s script
//! every started thread is joined (bounded); one still alive is recorded as
//! `hang`, every event is set and every running loop is stopped with
//! `call_soon_threadsafe(stop)`, and a thread that still does not finish
//! makes the run *poisoned*. The supervising thread bounds `main` itself
//! (a loop that `main` runs and that never wakes up): after twice the wait
//! bound plus three seconds it records `hang` for `main`, unsticks the
//! run the same way and, if `main` still does not finish, returns the log
//! so far as a poisoned observation.

use loopspec::warnings;
use loopspec::{
    ClockKind, ConcurrentFuture, DoneCallback, Error, EventLoop, Executor, Future, Handle, Policy,
    Profile, Runner, Task, TaskFactory, TaskGroup, TaskRef, ThreadPool, TimerHandle,
};
use serde_json::{Map, Value, json};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, TryLockError, Weak};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Options and observations
// ---------------------------------------------------------------------------

/// Log entries that fail a run by a bounded wait (FORMAT.md, "Running a
/// scenario once"): a runner stops repeating a scenario after such a run.
pub const TIMEOUT_EVENTS: [&str; 4] = ["wait_timeout", "barrier_timeout", "join_timeout", "hang"];

/// The bound of each wait when neither the request nor the scenario gives
/// one (the kit's default).
pub const DEFAULT_WAIT_TIMEOUT: f64 = 5.0;

/// What a runner models: a CPython minor and its loopspec profile, and the
/// bound of every wait.
#[derive(Clone, Debug)]
pub struct Options {
    /// The CPython minor whose recordings the runs are compared with
    /// (`"3.13"`).
    pub minor: String,
    /// Its loopspec profile.
    pub profile: Profile,
    /// The default bound of each wait, in seconds (a scenario's
    /// `wait_timeout` overrides it).
    pub wait_timeout: f64,
}

impl Options {
    /// The options that model CPython `minor` (`"3.11"`, or a full
    /// `"3.11.7"`); an error for a version loopspec has no profile for.
    pub fn for_minor(minor: &str, wait_timeout: f64) -> Result<Options, String> {
        let mut parts = minor.trim().split('.');
        let major = parts.next().and_then(|m| m.parse::<u32>().ok());
        let min = parts.next().and_then(|m| m.parse::<u32>().ok());
        let profile = match (major, min) {
            (Some(a), Some(b)) => Profile::for_python(a, b),
            _ => None,
        };
        match (profile, major, min) {
            (Some(profile), Some(a), Some(b)) => Ok(Options {
                minor: format!("{a}.{b}"),
                profile,
                wait_timeout,
            }),
            _ => Err(format!(
                "no loopspec profile models Python {minor:?} (3.10 to 3.15 have one)"
            )),
        }
    }
}

/// One run's observation (FORMAT.md, "Observations").
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observation {
    /// The entries, in `seq` order.
    pub log: Vec<Value>,
    /// Threads of the run could not be unstuck: the process must not run
    /// another scenario.
    pub poisoned: bool,
    /// What the runner could not do (a malformed scenario, an operation
    /// loopspec has no counterpart for); the run fails.
    pub runner_error: Option<String>,
}

impl Observation {
    /// An observation of a run that could not start.
    pub fn error(message: impl Into<String>) -> Observation {
        let message = message.into();
        Observation {
            log: vec![
                json!({"seq": 0, "thread": "main", "ev": "runner_error", "message": message}),
            ],
            poisoned: false,
            runner_error: Some(message),
        }
    }

    /// The observation as the runner protocol writes it (without `run`).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("log".into(), Value::Array(self.log.clone()));
        m.insert("poisoned".into(), Value::Bool(self.poisoned));
        if let Some(e) = &self.runner_error {
            m.insert("runner_error".into(), Value::String(e.clone()));
        }
        Value::Object(m)
    }

    /// Whether the run failed in a way that repeating it only repeats: a
    /// bounded wait timed out, a thread hung, the run was poisoned, or the
    /// runner could not run it. A runner may stop after such a run.
    pub fn ends_the_scenario(&self) -> bool {
        self.poisoned
            || self.runner_error.is_some()
            || self.log.iter().any(|e| {
                e["ev"]
                    .as_str()
                    .is_some_and(|ev| TIMEOUT_EVENTS.contains(&ev))
            })
    }
}

/// Runs `scenario` up to `repeat` times, handing each observation to `emit`
/// with its index, and stops early after a run that
/// [ends the scenario](Observation::ends_the_scenario). Returns whether the
/// last run was poisoned.
pub fn run_repeatedly(
    scenario: &Value,
    opts: &Options,
    repeat: usize,
    mut emit: impl FnMut(usize, &Observation),
) -> bool {
    for k in 0..repeat {
        let obs = run_once(scenario, opts);
        emit(k, &obs);
        if obs.ends_the_scenario() {
            return obs.poisoned;
        }
    }
    false
}

/// Runs a format-2 scenario (a corpus file's object) once; see the
/// [module docs](self).
pub fn run_once(scenario: &Value, opts: &Options) -> Observation {
    let prog = match Program::parse(scenario) {
        Ok(p) => p,
        Err(e) => return Observation::error(e),
    };
    let wait = scenario
        .get("wait_timeout")
        .and_then(Value::as_f64)
        .unwrap_or(opts.wait_timeout);
    let run = Arc::new(Run::new(prog, opts.profile, secs(wait)));
    let done = Arc::new(Flag::default());
    let slot: Arc<Mutex<Option<Observation>>> = Arc::new(Mutex::new(None));
    let (r, d, s) = (run.clone(), done.clone(), slot.clone());
    let spawned = thread::Builder::new().name("main".into()).spawn(move || {
        let _done = SetOnDrop(d);
        WHO.with(|w| *w.borrow_mut() = Some("main".into()));
        let obs = match catch_unwind(AssertUnwindSafe(|| r.main_body())) {
            Ok(obs) => obs,
            Err(p) => {
                r.bad(format!("the runner panicked: {}", panic_message(&p)));
                r.snapshot()
            }
        };
        *lock(&s) = Some(obs);
    });
    let handle = match spawned {
        Ok(h) => h,
        Err(e) => return Observation::error(format!("cannot start the main thread: {e}")),
    };
    let bound = run.wait * 2 + Duration::from_secs(3);
    if !done.wait(bound) {
        run.rec("hang", vec![("target", json!("main"))]);
        run.unstick();
        if !done.wait(Duration::from_secs(2)) {
            run.poisoned.store(true, Ordering::SeqCst);
            return run.snapshot();
        }
    }
    let _ = handle.join();
    let obs = lock(&slot).take();
    obs.unwrap_or_else(|| run.snapshot())
}

// ---------------------------------------------------------------------------
// Small synchronisation helpers
// ---------------------------------------------------------------------------

/// Locks `m`, recovering the data if a panic poisoned it (the runner
/// reports its own panics; it does not stop on them).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A duration of `s` seconds, clamped to [0, one day] (NaN: 0).
fn secs(s: f64) -> Duration {
    if s.is_nan() || s <= 0.0 {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(s.min(86_400.0))
    }
}

/// A flag threads wait for with a bound: scenario events, and "this thread
/// finished".
#[derive(Default)]
struct Flag {
    set: Mutex<bool>,
    cv: Condvar,
}

impl Flag {
    fn set(&self) {
        *lock(&self.set) = true;
        self.cv.notify_all();
    }

    fn clear(&self) {
        *lock(&self.set) = false;
    }

    fn is_set(&self) -> bool {
        *lock(&self.set)
    }

    /// Waits until set or `timeout` passes; whether it is set.
    fn wait(&self, timeout: Duration) -> bool {
        let (set, _) = self
            .cv
            .wait_timeout_while(lock(&self.set), timeout, |set| !*set)
            .unwrap_or_else(|e| e.into_inner());
        *set
    }
}

/// Sets its flag when dropped, however the thread body ends.
struct SetOnDrop(Arc<Flag>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}

/// A barrier whose waits are bounded and which can be broken, like Python's
/// `threading.Barrier`: a wait that times out breaks it for everyone.
struct Barrier {
    parties: usize,
    st: Mutex<BarrierState>,
    cv: Condvar,
}

#[derive(Default)]
struct BarrierState {
    count: usize,
    generation: u64,
    broken: bool,
}

impl Barrier {
    fn new(parties: usize) -> Barrier {
        Barrier {
            parties: parties.max(1),
            st: Mutex::new(BarrierState::default()),
            cv: Condvar::new(),
        }
    }

    /// Whether every party arrived before `timeout` (false: broken).
    fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = lock(&self.st);
        if st.broken {
            return false;
        }
        let generation = st.generation;
        st.count += 1;
        if st.count == self.parties {
            st.count = 0;
            st.generation += 1;
            self.cv.notify_all();
            return true;
        }
        loop {
            if st.broken {
                return false;
            }
            if st.generation != generation {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                st.broken = true;
                self.cv.notify_all();
                return false;
            }
            st = self
                .cv
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn abort(&self) {
        lock(&self.st).broken = true;
        self.cv.notify_all();
    }
}

/// The process-wide state a run may need (loopspec's process-wide policy):
/// one run at a time installs its policy there.
static PROCESS_BUSY: Mutex<bool> = Mutex::new(false);
static PROCESS_FREE: Condvar = Condvar::new();

/// Holds the process-wide policy for one run; restores the default when
/// dropped.
struct ProcessPolicy;

impl ProcessPolicy {
    /// Waits (at most `timeout`) until no other run holds the process-wide
    /// state, then installs `policy` there.
    fn acquire(policy: &Policy, timeout: Duration) -> Option<ProcessPolicy> {
        let deadline = Instant::now() + timeout;
        let mut busy = lock(&PROCESS_BUSY);
        while *busy {
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            busy = PROCESS_FREE
                .wait_timeout(busy, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *busy = true;
        drop(busy);
        // Installing warns under 3.14+; that is not the scenario's doing.
        let _ = warnings::catch_warnings(|| loopspec::set_event_loop_policy(Some(policy.clone())));
        Some(ProcessPolicy)
    }
}

impl Drop for ProcessPolicy {
    fn drop(&mut self) {
        let _ = warnings::catch_warnings(|| loopspec::set_event_loop_policy(None));
        *lock(&PROCESS_BUSY) = false;
        PROCESS_FREE.notify_all();
    }
}

// ---------------------------------------------------------------------------
// The program
// ---------------------------------------------------------------------------

/// A scenario's `program`, checked for shape; operations stay JSON and are
/// interpreted as they run (a malformed one is a runner error then).
struct Program {
    threads: Map<String, Value>,
    callbacks: Map<String, Value>,
    coroutines: Map<String, Value>,
    events: Vec<String>,
    barriers: Vec<(String, usize)>,
    warn_categories: HashSet<String>,
    /// `"process": "fresh"`, or an operation that uses process-wide state:
    /// the run installs its policy process-wide.
    process_wide: bool,
}

/// Operations that use loopspec's process-wide policy.
const PROCESS_WIDE_OPS: [&str; 4] = [
    "policy_api",
    "gather_without_loop",
    "ensure_future_without_loop",
    "future_without_loop",
];

impl Program {
    fn parse(scenario: &Value) -> Result<Program, String> {
        let prog = scenario
            .get("program")
            .and_then(Value::as_object)
            .ok_or("the scenario has no program object")?;
        let obj = |key: &str| -> Result<Map<String, Value>, String> {
            match prog.get(key) {
                None => Ok(Map::new()),
                Some(Value::Object(m)) => Ok(m.clone()),
                Some(_) => Err(format!("program.{key} is not an object")),
            }
        };
        let threads = obj("threads")?;
        if !threads.contains_key("main") {
            return Err("no main thread script".into());
        }
        let callbacks = obj("callbacks")?;
        let coroutines = obj("coroutines")?;
        for (kind, scripts) in [
            ("thread", &threads),
            ("callback", &callbacks),
            ("coroutine", &coroutines),
        ] {
            for (name, s) in scripts {
                if !s.is_array() {
                    return Err(format!("{kind} script {name:?} is not a list"));
                }
            }
        }
        let events = match prog.get("events") {
            None => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|e| {
                    e.as_str()
                        .map(String::from)
                        .ok_or("an event name is not a string")
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("program.events is not a list".into()),
        };
        let barriers = obj("barriers")?
            .into_iter()
            .map(|(k, v)| {
                v.as_u64()
                    .map(|n| (k.clone(), n as usize))
                    .ok_or_else(|| format!("barrier {k:?} has no party count"))
            })
            .collect::<Result<_, _>>()?;
        let warn_categories = match scenario.get("warnings") {
            None => HashSet::from(["DeprecationWarning".to_string()]),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect(),
            Some(_) => return Err("warnings is not a list".into()),
        };
        let mut process_wide = scenario.get("process").and_then(Value::as_str) == Some("fresh");
        for scripts in [&threads, &callbacks, &coroutines] {
            for ops in scripts.values() {
                process_wide |= mentions(ops, &PROCESS_WIDE_OPS);
            }
        }
        Ok(Program {
            threads,
            callbacks,
            coroutines,
            events,
            barriers,
            warn_categories,
            process_wide,
        })
    }
}

/// Whether a script (recursively, through `repeat`) has one of `kinds`.
fn mentions(ops: &Value, kinds: &[&str]) -> bool {
    ops.as_array().is_some_and(|ops| {
        ops.iter().any(|op| match op_of(op) {
            Ok(("repeat", arg)) => arg.get("ops").is_some_and(|o| mentions(o, kinds)),
            Ok((kind, _)) => kinds.contains(&kind),
            Err(_) => false,
        })
    })
}

/// (kind, argument) of an operation: its one key besides `catch` and `label`.
fn op_of(op: &Value) -> Result<(&str, &Value), String> {
    let m = op
        .as_object()
        .ok_or_else(|| format!("an operation is an object: {op}"))?;
    let mut keys = m
        .iter()
        .filter(|(k, _)| k.as_str() != "catch" && k.as_str() != "label");
    match (keys.next(), keys.next()) {
        (Some((k, v)), None) => Ok((k.as_str(), v)),
        _ => Err(format!(
            "an operation has exactly one key besides catch and label: {op}"
        )),
    }
}

/// Awaiting steps: coroutines only.
const AWAITING: [&str; 8] = [
    "await",
    "sleep",
    "yield",
    "task_group",
    "timeout",
    "shield",
    "to_thread",
    "shutdown_default_executor",
];

// ---------------------------------------------------------------------------
// Values and exceptions as JSON
// ---------------------------------------------------------------------------

/// The character that frames the Python class in the payload of a panic
/// that stands for a `raise` in a callback.
const RAISE_MARK: char = '\u{1f}';

/// An exception as an outcome: `{"exc": class, "args": [...]}` (FORMAT.md,
/// "Trace"), addresses in messages written `0x…` as the kit does.
pub fn exc_json(e: &Error) -> Value {
    let args: Vec<String> = match e {
        Error::Cancelled(m) => m.iter().cloned().collect(),
        Error::Timeout => Vec::new(),
        // Python's `args`: the message, then the list of the exceptions.
        Error::ExceptionGroup(eg) => vec![eg.message.clone(), format!("{:?}", eg.exceptions)],
        Error::Panic(m) => {
            if let Some((ty, msg)) = decode_raise(m) {
                return json!({"exc": ty, "args": msg.into_iter().collect::<Vec<_>>()});
            }
            vec![m.clone()]
        }
        other => {
            let s = other.to_string();
            (!s.is_empty()).then_some(s).into_iter().collect()
        }
    };
    let args: Vec<String> = args.iter().map(|a| normalize_addresses(a)).collect();
    json!({"exc": e.python_type(), "args": args})
}

/// `{"ok": v}`.
fn ok(v: Value) -> Value {
    json!({ "ok": v })
}

/// An outcome of a call.
fn out_of(r: &loopspec::Result<Value>) -> Value {
    match r {
        Ok(v) => ok(v.clone()),
        Err(e) => exc_json(e),
    }
}

/// `0x` followed by hex digits becomes `0x…` (the kit's `normalize_reprs`).
fn normalize_addresses(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'0' && b.get(i + 1) == Some(&b'x') {
            let mut j = i + 2;
            while j < b.len() && b[j].is_ascii_hexdigit() {
                j += 1;
            }
            if j > i + 2 {
                out.push_str("0x…");
                i = j;
                continue;
            }
        }
        let c = s[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// The exception a scenario names: `{"type": "ValueError", "msg": "x"}`.
fn make_err(spec: &Value) -> Result<Error, String> {
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("an exception needs a type: {spec}"))?;
    let msg = match spec.get("msg") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    Ok(match (ty, msg) {
        ("CancelledError", m) => Error::Cancelled(m),
        ("TimeoutError", None) => Error::Timeout,
        (ty, m) => Error::raise(ty, m.unwrap_or_default()),
    })
}

/// The panic payload of a `raise` in a callback: the class and the message.
fn encode_raise(e: &Error) -> String {
    let j = exc_json(e);
    let ty = j["exc"].as_str().unwrap_or("Exception").to_string();
    match j["args"].get(0).and_then(Value::as_str) {
        Some(msg) => format!("{RAISE_MARK}{ty}{RAISE_MARK}{msg}"),
        None => format!("{RAISE_MARK}{ty}"),
    }
}

fn decode_raise(payload: &str) -> Option<(String, Option<String>)> {
    let rest = payload.strip_prefix(RAISE_MARK)?;
    Some(match rest.split_once(RAISE_MARK) {
        Some((ty, msg)) => (ty.to_string(), Some(msg.to_string())),
        None => (rest.to_string(), None),
    })
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic".to_string()
    }
}

/// A time value: a number, or the string "nan".
fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s.eq_ignore_ascii_case("nan") => Some(f64::NAN),
        _ => None,
    }
}

thread_local! {
    /// The scenario thread this thread is (`None`: a thread the scenario
    /// did not start, recorded as `other`).
    static WHO: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Panics with the encoded exception: a `raise` in a callback that a loop
/// (or a concurrent future) runs.
fn raise_in_callback(e: &Error) -> ! {
    super::planned_panic(encode_raise(e))
}

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

/// A loop future or task, kept by the thread that made it.
#[derive(Clone)]
enum LocalObj {
    Fut(Future<Value>),
    Task(Task<Value>),
}

impl LocalObj {
    fn fut(&self) -> Future<Value> {
        match self {
            LocalObj::Fut(f) => f.clone(),
            LocalObj::Task(t) => t.as_future().clone(),
        }
    }
}

/// What a name refers to. Loop futures and tasks are only marked here; they
/// live in their thread's table.
#[derive(Clone)]
enum Obj {
    Loop(EventLoop),
    Cf(ConcurrentFuture<Value>),
    Executor(Arc<ThreadPool>),
    Runner(Arc<Mutex<Runner>>),
    Local(LocalObj),
}

impl Obj {
    fn kind(&self) -> &'static str {
        match self {
            Obj::Loop(_) => "loop",
            Obj::Cf(_) => "cf",
            Obj::Executor(_) => "executor",
            Obj::Runner(_) => "runner",
            Obj::Local(LocalObj::Task(_)) => "task",
            Obj::Local(LocalObj::Fut(_)) => "future",
        }
    }
}

#[derive(Clone)]
enum HandleRef {
    Plain(Handle),
    Timer(TimerHandle),
}

#[derive(Default)]
struct Registry {
    objs: HashMap<String, Obj>,
    /// Every loop the run named, with its name (the last one given).
    loops: Vec<(EventLoop, String)>,
    /// How many loops got a `loop#N` name.
    unnamed: usize,
    /// Names whose making operation failed.
    failed: HashSet<String>,
    handles: HashMap<String, HandleRef>,
    /// Tasks whose coroutine script started without the scenario naming
    /// the task, with the script's name (asyncio's runner registers them
    /// the same way).
    task_names: Vec<(TaskRef, String)>,
}

/// Binds `name` to `value` in `map`, or records that the operation making
/// it failed (`None`).
fn bind_in<T>(
    map: &mut HashMap<String, T>,
    failed: &mut HashSet<String>,
    name: &str,
    value: Option<T>,
) {
    match value {
        Some(v) => {
            map.insert(name.to_string(), v);
            failed.remove(name);
        }
        None => {
            failed.insert(name.to_string());
        }
    }
}

/// A started scenario thread.
struct Started {
    name: String,
    done: Arc<Flag>,
    handle: Option<JoinHandle<()>>,
}

/// A flood's counters: submitted (added when the flood ends) and ran.
///
/// `ran` is leaked (8 bytes per flood and run) so that each of the
/// hundreds of thousands of no-op callbacks captures a plain reference: an
/// `Arc` clone per callback would add two contended atomic operations to
/// every submission and every run, which is the runner's cost, not the
/// loop's.
struct Flood {
    submitted: u64,
    ran: &'static AtomicU64,
}

impl Default for Flood {
    fn default() -> Flood {
        Flood {
            submitted: 0,
            ran: Box::leak(Box::new(AtomicU64::new(0))),
        }
    }
}

/// Why an operation did not complete normally.
enum Fault {
    /// The scenario is malformed, or the operation has no counterpart: a
    /// runner error.
    Bad(String),
    /// The operation that should have made this object failed.
    NotCreated(String),
    /// The script stops.
    Halt(Halt),
}

/// Why a script stops before its end.
enum Halt {
    /// A bounded wait timed out.
    Aborted,
    /// A `raise` step.
    Raised(Error),
}

impl From<Halt> for Fault {
    fn from(h: Halt) -> Fault {
        Fault::Halt(h)
    }
}

fn bad(msg: impl Into<String>) -> Fault {
    Fault::Bad(msg.into())
}

/// A target of the future operations (`set_result`, `cancel`, ...): a
/// concurrent future, or a loop future or task (or the error of reaching
/// one held by another thread).
enum Target {
    Cf(ConcurrentFuture<Value>),
    Local(loopspec::Result<LocalObj>),
}

type Coro = Pin<Box<dyn std::future::Future<Output = loopspec::Result<Value>> + Send>>;

/// One run of one scenario: what every thread of the run shares.
struct Run {
    prog: Program,
    profile: Profile,
    /// The run's policy, whose main thread is the scenario's `main` (set
    /// when `main` starts).
    policy: OnceLock<Policy>,
    wait: Duration,
    seq: AtomicU64,
    log: Mutex<Vec<Value>>,
    /// Set when the log was taken: later entries are dropped.
    closed: AtomicBool,
    reg: Mutex<Registry>,
    events: BTreeMap<String, Arc<Flag>>,
    barriers: BTreeMap<String, Arc<Barrier>>,
    threads: Mutex<Vec<Started>>,
    floods: Mutex<BTreeMap<String, Flood>>,
    runner_error: Mutex<Option<String>>,
    poisoned: AtomicBool,
}

impl Run {
    fn new(prog: Program, profile: Profile, wait: Duration) -> Run {
        let events = prog
            .events
            .iter()
            .map(|e| (e.clone(), Arc::new(Flag::default())))
            .collect();
        let barriers = prog
            .barriers
            .iter()
            .map(|(b, n)| (b.clone(), Arc::new(Barrier::new(*n))))
            .collect();
        Run {
            prog,
            profile,
            policy: OnceLock::new(),
            wait,
            seq: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            reg: Mutex::new(Registry::default()),
            events,
            barriers,
            threads: Mutex::new(Vec::new()),
            floods: Mutex::new(BTreeMap::new()),
            runner_error: Mutex::new(None),
            poisoned: AtomicBool::new(false),
        }
    }

    fn policy(&self) -> Policy {
        self.policy
            .get()
            .cloned()
            .unwrap_or_else(|| Policy::new(self.profile))
    }

    // -- recording ----------------------------------------------------------

    /// Appends `{seq, thread, ev, ...fields}`; `seq` comes from one atomic
    /// counter, taken under the log's lock.
    fn rec(&self, ev: &str, fields: Vec<(&str, Value)>) {
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        let who = WHO
            .with(|w| w.borrow().clone())
            .unwrap_or_else(|| "other".into());
        let mut entry = Map::new();
        entry.insert("thread".into(), Value::String(who));
        entry.insert("ev".into(), Value::String(ev.into()));
        for (k, v) in fields {
            entry.insert(k.into(), v);
        }
        let mut log = lock(&self.log);
        let seq = self.seq.fetch_add(1, Ordering::SeqCst);
        entry.insert("seq".into(), json!(seq));
        log.push(Value::Object(entry));
    }

    /// A runner error: recorded, and the run's `runner_error` (the first).
    fn bad(&self, message: String) {
        self.rec("runner_error", vec![("message", json!(message))]);
        lock(&self.runner_error).get_or_insert(message);
    }

    /// Takes the log (later entries are dropped) as the run's observation.
    fn snapshot(&self) -> Observation {
        let log = {
            let mut log = lock(&self.log);
            self.closed.store(true, Ordering::SeqCst);
            std::mem::take(&mut *log)
        };
        Observation {
            log,
            poisoned: self.poisoned.load(Ordering::SeqCst),
            runner_error: lock(&self.runner_error).clone(),
        }
    }

    /// Records the warnings a scope caught, if their category is recorded.
    fn rec_warnings(&self, caught: Vec<warnings::Warning>) {
        for w in caught {
            if self.prog.warn_categories.contains(w.category) {
                self.rec(
                    "warning",
                    vec![
                        ("category", json!(w.category)),
                        ("message", json!(w.message)),
                    ],
                );
            }
        }
    }

    /// Runs `f` and records `{ev: kind, ...fields, out}` when `always`, when
    /// the operation has a `label`, or when `f` failed; warnings `f` raised
    /// are recorded first. Returns `f`'s value.
    fn call<T>(
        &self,
        kind: &str,
        op: &Value,
        always: bool,
        mut fields: Vec<(&str, Value)>,
        f: impl FnOnce() -> loopspec::Result<T>,
        conv: impl FnOnce(&T) -> Value,
    ) -> Option<T> {
        let caught = warnings::catch();
        let r = f();
        self.rec_warnings(caught.take());
        drop(caught);
        let (value, out) = match r {
            Ok(v) => {
                let out = ok(conv(&v));
                (Some(v), out)
            }
            Err(e) => (None, exc_json(&e)),
        };
        let label = op.get("label");
        if always || label.is_some() || value.is_none() {
            if let Some(l) = label {
                fields.push(("label", l.clone()));
            }
            fields.push(("out", out));
            self.rec(kind, fields);
        }
        value
    }

    // -- names --------------------------------------------------------------

    /// The scenario name of a loop; a loop the scenario did not name gets
    /// `loop#1`, `loop#2`... in the order the run first saw it (and the
    /// recording handler).
    fn loop_name(self: &Arc<Self>, lp: &EventLoop) -> String {
        let name = {
            let mut reg = lock(&self.reg);
            if let Some((_, n)) = reg.loops.iter().find(|(l, _)| l == lp) {
                return n.clone();
            }
            reg.unnamed += 1;
            let name = format!("loop#{}", reg.unnamed);
            reg.objs.insert(name.clone(), Obj::Loop(lp.clone()));
            reg.loops.push((lp.clone(), name.clone()));
            name
        };
        self.install_handler(lp, &name);
        name
    }

    /// Names a loop and installs the recording exception handler.
    fn register_loop(self: &Arc<Self>, name: &str, lp: &EventLoop) {
        {
            let mut reg = lock(&self.reg);
            reg.objs.insert(name.to_string(), Obj::Loop(lp.clone()));
            match reg.loops.iter_mut().find(|(l, _)| l == lp) {
                Some(entry) => entry.1 = name.to_string(),
                None => reg.loops.push((lp.clone(), name.to_string())),
            }
            reg.failed.remove(name);
        }
        self.install_handler(lp, name);
    }

    /// Records what the loop passes to its exception handler: the exception,
    /// or the message when there is none (`reported`).
    fn install_handler(self: &Arc<Self>, lp: &EventLoop, name: &str) {
        let run: Weak<Run> = Arc::downgrade(self);
        let name = name.to_string();
        lp.set_exception_handler(Some(Arc::new(move |_lp, ctx| {
            if let Some(run) = run.upgrade() {
                match &ctx.exception {
                    Some(e) => run.rec(
                        "reported",
                        vec![("loop", json!(name)), ("out", exc_json(e))],
                    ),
                    None => run.rec(
                        "reported",
                        vec![("loop", json!(name)), ("message", json!(ctx.message))],
                    ),
                }
            }
        })));
    }

    fn bind(&self, name: &str, obj: Option<Obj>) {
        let reg = &mut *lock(&self.reg);
        bind_in(&mut reg.objs, &mut reg.failed, name, obj);
    }

    /// Keeps a loop future or task under `name` (futures and tasks are
    /// `Send`: any scenario thread may use them, SPEC.md THREAD-9).
    fn bind_local(&self, name: &str, obj: Option<LocalObj>) {
        self.bind(name, obj.map(Obj::Local));
    }

    /// The object named `name`, of one of `kinds` (none: any).
    fn get(&self, name: &str, kinds: &[&str]) -> Result<Obj, Fault> {
        let reg = lock(&self.reg);
        match reg.objs.get(name) {
            Some(o) if kinds.is_empty() || kinds.contains(&o.kind()) => Ok(o.clone()),
            Some(o) => Err(bad(format!(
                "{name:?} is a {}, not a {}",
                o.kind(),
                kinds.join("/")
            ))),
            None if reg.failed.contains(name) => Err(Fault::NotCreated(name.to_string())),
            None => Err(bad(format!("unknown name {name:?}"))),
        }
    }

    fn get_loop(&self, name: &str) -> Result<EventLoop, Fault> {
        match self.get(name, &["loop"])? {
            Obj::Loop(lp) => Ok(lp),
            _ => Err(bad("not a loop")),
        }
    }

    fn target(&self, name: &str, kinds: &[&str]) -> Result<Target, Fault> {
        match self.get(name, kinds)? {
            Obj::Cf(cf) => Ok(Target::Cf(cf)),
            Obj::Local(o) => Ok(Target::Local(Ok(o))),
            other => Err(bad(format!("{name:?} is a {}", other.kind()))),
        }
    }

    fn runner(&self, name: &str) -> Result<Arc<Mutex<Runner>>, Fault> {
        match self.get(name, &["runner"])? {
            Obj::Runner(r) => Ok(r),
            _ => Err(bad("not a runner")),
        }
    }

    fn event(&self, arg: &Value) -> Result<(String, Arc<Flag>), Fault> {
        let name = name_arg(arg, "event")?;
        self.events
            .get(name)
            .map(|e| (name.to_string(), e.clone()))
            .ok_or_else(|| bad(format!("unknown event {name:?}")))
    }

    /// The Python name of the calling thread (POLICY-9): `MainThread` for
    /// the scenario's main thread, else the Rust thread's name.
    fn py_thread_name(&self) -> String {
        if self.policy().is_main_thread() {
            return "MainThread".into();
        }
        // An unnamed thread is `Thread-N`, N from its `ThreadId`, as loopspec
        // names it.
        let me = thread::current();
        let number = || -> String {
            let id = format!("{:?}", me.id());
            id.chars().filter(char::is_ascii_digit).collect()
        };
        me.name()
            .map_or_else(|| format!("Thread-{}", number()), str::to_string)
    }

    // -- callables ----------------------------------------------------------

    fn check_callback(&self, name: &str) -> Result<(), Fault> {
        if self.prog.callbacks.contains_key(name) {
            Ok(())
        } else {
            Err(bad(format!("unknown callback {name:?}")))
        }
    }

    /// Runs callback script `name` (recording `cb` first); the outcome of
    /// its `return` or `raise`.
    fn callback_body(self: &Arc<Self>, name: &str) -> Result<Option<Value>, Halt> {
        self.rec("cb", vec![("cb", json!(name))]);
        match self.prog.callbacks.get(name).cloned() {
            Some(ops) => self.exec_ops(&ops),
            None => {
                self.bad(format!("unknown callback {name:?}"));
                Ok(None)
            }
        }
    }

    /// A callback run by a loop or by a concurrent future's completion: a
    /// `raise` is a panic (the Rust mapping of an exception).
    fn loop_callback(self: &Arc<Self>, name: &str) {
        if let Err(Halt::Raised(e)) = self.callback_body(name) {
            raise_in_callback(&e);
        }
    }

    /// An executor job: the value of its `return` step, or its exception.
    fn job(self: &Arc<Self>, name: &str) -> loopspec::Result<Value> {
        match self.callback_body(name) {
            Ok(v) => Ok(v.unwrap_or(Value::Null)),
            Err(Halt::Raised(e)) => Err(e),
            Err(Halt::Aborted) => Err(Error::raise("Abort", "a bounded wait timed out")),
        }
    }

    fn check_coro(&self, name: &str) -> Result<(), Fault> {
        if self.prog.coroutines.contains_key(name) {
            Ok(())
        } else {
            Err(bad(format!("unknown coroutine {name:?}")))
        }
    }

    /// A new coroutine object of script `name`.
    fn coro(self: &Arc<Self>, name: &str) -> Result<Coro, Fault> {
        self.check_coro(name)?;
        Ok(self.coro_unchecked(name.to_string()))
    }

    fn coro_unchecked(self: &Arc<Self>, name: String) -> Coro {
        let run = self.clone();
        Box::pin(async move { run.run_coro(name).await })
    }

    async fn run_coro(self: Arc<Self>, name: String) -> loopspec::Result<Value> {
        self.rec("start", vec![("coro", json!(name))]);
        if let Ok(Some(t)) = loopspec::current_task() {
            let reg = &mut *lock(&self.reg);
            let known = reg
                .objs
                .values()
                .any(|o| matches!(o, Obj::Local(LocalObj::Task(task)) if t.is(task)))
                || reg.task_names.iter().any(|(tr, _)| *tr == t);
            if !known {
                reg.task_names.push((t, name.clone()));
            }
        }
        let steps = self.prog.coroutines.get(&name).cloned().unwrap_or_default();
        let steps = steps.as_array().cloned().unwrap_or_default();
        for (i, step) in steps.iter().enumerate() {
            let (kind, arg) = match op_of(step) {
                Ok(x) => x,
                Err(m) => {
                    self.bad(m);
                    continue;
                }
            };
            if kind == "return" {
                return Ok(arg.clone());
            }
            if !AWAITING.contains(&kind) {
                match self.exec_op(step) {
                    Ok(()) => continue,
                    Err(Halt::Raised(e)) => return Err(e),
                    Err(Halt::Aborted) => {
                        return Err(Error::raise("Abort", "a bounded wait timed out"));
                    }
                }
            }
            let r = match self.awaiting(kind, arg).await {
                Ok(r) => r,
                Err(m) => {
                    self.bad(m);
                    continue;
                }
            };
            let catch = step.get("catch").and_then(Value::as_bool) == Some(true);
            let fields = |out: Value| {
                vec![
                    ("coro", json!(name)),
                    ("step", json!(i)),
                    ("op", json!(kind)),
                    ("out", out),
                ]
            };
            match r {
                Ok(v) => self.rec("resume", fields(ok(v))),
                Err(e) => {
                    self.rec("resume", fields(exc_json(&e)));
                    if !catch {
                        return Err(e);
                    }
                }
            }
        }
        Ok(Value::Null)
    }

    /// A coroutine script's name, checked; `Err` for a malformed step.
    fn coro_arg(&self, arg: Option<&Value>, step: &str) -> Result<String, String> {
        let name = arg
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{step} needs a coroutine's name"))?;
        match self.check_coro(name) {
            Ok(()) => Ok(name.to_string()),
            Err(Fault::Bad(m)) => Err(m),
            Err(_) => Err(format!("unknown coroutine {name:?}")),
        }
    }

    /// An awaiting step; `Err` for a malformed one.
    async fn awaiting(
        self: &Arc<Self>,
        kind: &str,
        arg: &Value,
    ) -> Result<loopspec::Result<Value>, String> {
        match kind {
            "sleep" => {
                let d = num(arg).ok_or_else(|| format!("sleep needs a delay: {arg}"))?;
                Ok(loopspec::sleep(d).await.map(|()| Value::Null))
            }
            "yield" => Ok(loopspec::yield_now().await.map(|()| Value::Null)),
            "task_group" => {
                let names = arg
                    .as_array()
                    .ok_or("task_group needs a list of coroutine names")?
                    .iter()
                    .map(|n| self.coro_arg(Some(n), "task_group"))
                    .collect::<Result<Vec<_>, _>>()?;
                let run = self.clone();
                let children = TaskGroup::run(|tg| async move {
                    names
                        .into_iter()
                        .map(|n| tg.create_task(run.coro_unchecked(n)))
                        .collect::<loopspec::Result<Vec<_>>>()
                })
                .await;
                Ok(children.and_then(|children| {
                    children
                        .iter()
                        .map(|t| t.result())
                        .collect::<loopspec::Result<Vec<Value>>>()
                        .map(Value::from)
                }))
            }
            "timeout" => {
                let delay = match arg.get("delay") {
                    None | Some(Value::Null) => None,
                    Some(d) => Some(num(d).ok_or_else(|| format!("timeout needs a delay: {arg}"))?),
                };
                let coro = self.coro_unchecked(self.coro_arg(arg.get("coro"), "timeout")?);
                Ok(loopspec::timeout(delay, |_| coro).await)
            }
            "shutdown_default_executor" => {
                let name = arg
                    .as_str()
                    .ok_or("shutdown_default_executor needs a loop's name")?;
                let lp = match self.get_loop(name) {
                    Ok(lp) => lp,
                    Err(Fault::Bad(m)) => return Err(m),
                    Err(_) => return Err(format!("unknown loop {name:?}")),
                };
                Ok(lp
                    .shutdown_default_executor(None)
                    .await
                    .map(|()| Value::Null))
            }
            "to_thread" => {
                let name = arg.as_str().ok_or("to_thread needs a callback's name")?;
                if let Err(Fault::Bad(m)) = self.check_callback(name) {
                    return Err(m);
                }
                let (run, name) = (self.clone(), name.to_string());
                Ok(loopspec::to_thread(move || run.job(&name)).await)
            }
            _ => {
                let name = arg.as_str().ok_or("await needs a future's name")?;
                let fut = match self.get(name, &["future", "task"]) {
                    Ok(Obj::Local(o)) => Ok(o.fut()),
                    Ok(_) => return Err(format!("{name:?} cannot be awaited")),
                    Err(Fault::NotCreated(n)) => Err(Error::raise("NotCreated", n)),
                    Err(Fault::Bad(m)) => return Err(m),
                    Err(Fault::Halt(_)) => return Err("unexpected halt".into()),
                };
                Ok(match fut {
                    Ok(f) if kind == "shield" => match loopspec::shield(f) {
                        Ok(outer) => outer.await,
                        Err(e) => Err(e),
                    },
                    Ok(f) => f.await,
                    Err(e) => Err(e),
                })
            }
        }
    }

    // -- scripts ------------------------------------------------------------

    /// Runs synchronous operations in order; `Some(v)` when a `return` step
    /// ended them.
    fn exec_ops(self: &Arc<Self>, ops: &Value) -> Result<Option<Value>, Halt> {
        let Some(ops) = ops.as_array() else {
            self.bad(format!("a script is a list: {ops}"));
            return Ok(None);
        };
        for op in ops {
            if let Ok(("return", v)) = op_of(op) {
                return Ok(Some(v.clone()));
            }
            self.exec_op(op)?;
        }
        Ok(None)
    }

    /// Runs one synchronous operation. A runner error is recorded and the
    /// script goes on; so is the use of a name whose making failed.
    fn exec_op(self: &Arc<Self>, op: &Value) -> Result<(), Halt> {
        let (kind, arg) = match op_of(op) {
            Ok(x) => x,
            Err(m) => {
                self.bad(m);
                return Ok(());
            }
        };
        let r = if AWAITING.contains(&kind) {
            Err(bad(format!("{kind:?} is only allowed in a coroutine")))
        } else {
            self.dispatch(kind, arg, op)
        };
        match r {
            Ok(()) => Ok(()),
            Err(Fault::Bad(m)) => {
                self.bad(m);
                Ok(())
            }
            Err(Fault::NotCreated(name)) => {
                self.rec(
                    kind,
                    vec![("out", json!({"exc": "NotCreated", "args": [name]}))],
                );
                Ok(())
            }
            Err(Fault::Halt(h)) => Err(h),
        }
    }

    /// A thread's script: a `raise` at its level is `thread_raised`; a
    /// timed-out wait ends it (in `main`, every wait of the run is released).
    fn exec_script(self: &Arc<Self>, name: &str) {
        let ops = self.prog.threads.get(name).cloned().unwrap_or_default();
        match self.exec_ops(&ops) {
            Ok(_) => {}
            Err(Halt::Raised(e)) => self.rec("thread_raised", vec![("out", exc_json(&e))]),
            Err(Halt::Aborted) => {
                if name == "main" {
                    self.release_waits();
                }
            }
        }
    }

    /// Sets every event and breaks every barrier.
    fn release_waits(&self) {
        for e in self.events.values() {
            e.set();
        }
        for b in self.barriers.values() {
            b.abort();
        }
    }

    /// After a hang: releases every wait and stops every running loop with
    /// `call_soon_threadsafe(loop.stop)`.
    fn unstick(&self) {
        self.release_waits();
        let loops: Vec<EventLoop> = lock(&self.reg)
            .loops
            .iter()
            .map(|(l, _)| l.clone())
            .collect();
        for lp in loops {
            if lp.is_running() {
                let target = lp.clone();
                let _ = lp.call_soon_threadsafe(move || target.stop());
            }
        }
    }

    /// The scenario's `main` thread: the script, then the bounded joins, the
    /// flood counts, the log, and the clean-up (which records nothing).
    fn main_body(self: &Arc<Self>) -> Observation {
        let policy = Policy::new(self.profile).with_main_thread(thread::current().id());
        let _ = self.policy.set(policy.clone());
        let process = if self.prog.process_wide {
            match ProcessPolicy::acquire(&policy, self.wait * 4 + Duration::from_secs(5)) {
                Some(p) => Some(p),
                None => {
                    self.bad("another run holds the process-wide policy".into());
                    return self.snapshot();
                }
            }
        } else {
            None
        };
        self.exec_script("main");
        self.finish_threads();
        let floods: Vec<_> = lock(&self.floods)
            .iter()
            .map(|(t, f)| {
                vec![
                    ("tag", json!(t)),
                    ("submitted", json!(f.submitted)),
                    ("ran", json!(f.ran.load(Ordering::SeqCst))),
                ]
            })
            .collect();
        for fields in floods {
            self.rec("flood_count", fields);
        }
        let obs = self.snapshot();
        self.cleanup();
        drop(process);
        obs
    }

    /// Joins every started thread (bounded); records `hang` for one still
    /// alive, then tries to unstick it; the run is poisoned if that fails.
    fn finish_threads(&self) {
        let mut seen = 0;
        loop {
            let batch: Vec<(String, Arc<Flag>)> = lock(&self.threads)[seen..]
                .iter()
                .map(|s| (s.name.clone(), s.done.clone()))
                .collect();
            if batch.is_empty() {
                break;
            }
            seen += batch.len();
            for (name, done) in batch {
                if !done.wait(self.wait) {
                    self.rec("hang", vec![("target", json!(name))]);
                }
            }
        }
        let stuck: Vec<Arc<Flag>> = lock(&self.threads)
            .iter()
            .filter(|s| !s.done.is_set())
            .map(|s| s.done.clone())
            .collect();
        if !stuck.is_empty() {
            self.unstick();
            let mut poisoned = false;
            for done in stuck {
                poisoned |= !done.wait(Duration::from_secs(2));
            }
            self.poisoned.store(poisoned, Ordering::SeqCst);
        }
        let handles: Vec<JoinHandle<()>> = lock(&self.threads)
            .iter_mut()
            .filter(|s| s.done.is_set())
            .filter_map(|s| s.handle.take())
            .collect();
        for h in handles {
            let _ = h.join();
        }
    }

    /// Closes the loops the run made or saw (unless running), shuts the
    /// executors down without waiting, closes the runners, and drops what
    /// the run held — here, on the main thread.
    fn cleanup(&self) {
        let objs: Vec<Obj> = lock(&self.reg).objs.values().cloned().collect();
        for obj in &objs {
            match obj {
                Obj::Loop(lp) if !lp.is_running() && !lp.is_closed() => {
                    let _ = lp.close();
                }
                Obj::Executor(ex) => ex.shutdown(false),
                Obj::Runner(r) => {
                    if let Ok(mut r) = r.try_lock() {
                        r.close();
                    }
                }
                _ => {}
            }
        }
        drop(objs);
        let reg = std::mem::take(&mut *lock(&self.reg));
        drop(reg);
    }

    // -- operations -----------------------------------------------------------

    fn dispatch(self: &Arc<Self>, kind: &str, arg: &Value, op: &Value) -> Result<(), Fault> {
        match kind {
            "raise" => Err(Halt::Raised(make_err(arg).map_err(Fault::Bad)?).into()),
            "return" => Err(bad("return ends a callback, job or coroutine")),
            // Threads and synchronisation.
            "start" => self.op_start(arg),
            "join" => self.op_join(arg),
            "set" => {
                self.event(arg)?.1.set();
                Ok(())
            }
            "clear" => {
                self.event(arg)?.1.clear();
                Ok(())
            }
            "wait" => {
                let (name, ev) = self.event(arg)?;
                let timeout = arg.get("timeout").and_then(num).map_or(self.wait, secs);
                if ev.wait(timeout) {
                    Ok(())
                } else {
                    self.rec("wait_timeout", vec![("event", json!(name))]);
                    Err(Halt::Aborted.into())
                }
            }
            "arrive" => {
                let name = arg.as_str().ok_or_else(|| bad("arrive needs a barrier"))?;
                let b = self
                    .barriers
                    .get(name)
                    .ok_or_else(|| bad(format!("unknown barrier {name:?}")))?;
                if b.wait(self.wait) {
                    Ok(())
                } else {
                    self.rec("barrier_timeout", vec![("barrier", json!(name))]);
                    Err(Halt::Aborted.into())
                }
            }
            "repeat" => {
                let n = arg
                    .get("n")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| bad("repeat needs n"))?;
                let ops = arg.get("ops").ok_or_else(|| bad("repeat needs ops"))?;
                for _ in 0..n {
                    self.exec_ops(ops)?;
                }
                Ok(())
            }
            "record" => {
                self.rec("record", vec![("label", arg.clone())]);
                Ok(())
            }
            "thread_name" => {
                self.rec("thread_name", vec![("name", json!(self.py_thread_name()))]);
                Ok(())
            }
            // Loops and the current loop.
            "make_loop" | "new_event_loop" => {
                let name = arg
                    .as_str()
                    .ok_or_else(|| bad(format!("{kind} needs a name")))?;
                let profile = self.profile;
                let policy = self.policy();
                let made = self.call(
                    kind,
                    op,
                    false,
                    vec![],
                    || {
                        Ok(if kind == "make_loop" {
                            EventLoop::builder()
                                .clock(ClockKind::Real)
                                .profile(profile)
                                .build()
                        } else {
                            policy.new_event_loop()
                        })
                    },
                    |_| Value::Null,
                );
                match made {
                    Some(lp) => self.register_loop(name, &lp),
                    None => self.bind(name, None),
                }
                Ok(())
            }
            "set_event_loop" => {
                let lp = match arg {
                    Value::Null => None,
                    a => Some(
                        self.get_loop(
                            a.as_str()
                                .ok_or_else(|| bad("set_event_loop needs a loop"))?,
                        )?,
                    ),
                };
                let policy = self.policy();
                self.call(
                    kind,
                    op,
                    false,
                    vec![],
                    || {
                        policy.set_event_loop(lp.as_ref());
                        Ok(())
                    },
                    |_| Value::Null,
                );
                Ok(())
            }
            "get_event_loop" => {
                let policy = self.policy();
                self.call(
                    kind,
                    op,
                    true,
                    vec![],
                    || loopspec::get_event_loop_with(&policy),
                    |lp| json!(self.loop_name(lp)),
                );
                Ok(())
            }
            "get_running_loop" => {
                self.call(kind, op, true, vec![], loopspec::get_running_loop, |lp| {
                    json!(self.loop_name(lp))
                });
                Ok(())
            }
            "loop_state" => {
                let name = arg.as_str().ok_or_else(|| bad("loop_state needs a loop"))?;
                let lp = self.get_loop(name)?;
                self.rec(
                    "loop_state",
                    vec![
                        ("loop", json!(name)),
                        ("running", json!(lp.is_running())),
                        ("closed", json!(lp.is_closed())),
                    ],
                );
                Ok(())
            }
            "run_forever" | "stop" | "stop_threadsafe" | "close" => {
                self.op_loop_call(kind, arg, op)
            }
            "run_until_complete" => self.op_run_until_complete(arg, op),
            "set_task_factory" => {
                let lp = self.get_loop(field_str(arg, "loop")?)?;
                let factory = match arg.get("factory") {
                    None | Some(Value::Null) => TaskFactory::Default,
                    Some(f) if f == "eager_task_factory" => TaskFactory::Eager,
                    Some(f) => {
                        return Err(bad(format!(
                            "no counterpart: loopspec's task factories are the default and the \
                             eager one ({f}; EAGER-1)"
                        )));
                    }
                };
                lp.set_task_factory(factory);
                Ok(())
            }
            // Callbacks.
            "call_soon" | "call_soon_threadsafe" | "call_later" => self.op_schedule(kind, arg, op),
            "cancel_handle" => {
                let name = arg
                    .as_str()
                    .ok_or_else(|| bad("cancel_handle needs a handle"))?;
                let h = {
                    let reg = lock(&self.reg);
                    match reg.handles.get(name) {
                        Some(h) => h.clone(),
                        None if reg.failed.contains(name) => {
                            return Err(Fault::NotCreated(name.to_string()));
                        }
                        None => return Err(bad(format!("unknown handle {name:?}"))),
                    }
                };
                self.call(
                    kind,
                    op,
                    false,
                    vec![("handle", json!(name))],
                    || {
                        match &h {
                            HandleRef::Plain(h) => h.cancel(),
                            HandleRef::Timer(h) => h.cancel(),
                        }
                        Ok(())
                    },
                    |_| Value::Null,
                );
                Ok(())
            }
            "burst" => self.op_burst(arg),
            "flood" => self.op_flood(arg),
            // Futures, tasks, concurrent futures.
            "create_future" => {
                let lp = self.get_loop(field_str(arg, "loop")?)?;
                let name = field_str(arg, "as")?;
                let f = self.call(
                    kind,
                    op,
                    false,
                    vec![],
                    || Ok(lp.create_future::<Value>()),
                    |_| Value::Null,
                );
                self.bind_local(name, f.map(LocalObj::Fut));
                Ok(())
            }
            "create_task" => {
                let lp = self.get_loop(field_str(arg, "loop")?)?;
                let coro_name = field_str(arg, "coro")?;
                let name = arg.get("as").and_then(Value::as_str).unwrap_or(coro_name);
                let coro = self.coro(coro_name)?;
                let t = self.call(
                    kind,
                    op,
                    false,
                    vec![("coro", json!(coro_name))],
                    || {
                        let t = lp.create_task(coro)?;
                        t.set_name(name);
                        Ok(t)
                    },
                    |_| Value::Null,
                );
                self.bind_local(name, t.map(LocalObj::Task));
                Ok(())
            }
            "run_coroutine_threadsafe" => {
                let loop_name = field_str(arg, "loop")?;
                let lp = self.get_loop(loop_name)?;
                let coro_name = field_str(arg, "coro")?;
                self.check_coro(coro_name)?;
                let name = field_str(arg, "as")?;
                let run = self.clone();
                let script = coro_name.to_string();
                let cf = self.call(
                    kind,
                    op,
                    false,
                    vec![("loop", json!(loop_name)), ("coro", json!(coro_name))],
                    move || loopspec::run_coroutine_threadsafe(run.coro_unchecked(script), &lp),
                    |_| Value::Null,
                );
                self.bind(name, cf.map(Obj::Cf));
                Ok(())
            }
            "wrap_future" => self.op_wrap_future(arg, op),
            "cf_new" => {
                let name = arg.as_str().ok_or_else(|| bad("cf_new needs a name"))?;
                self.bind(name, Some(Obj::Cf(ConcurrentFuture::new())));
                Ok(())
            }
            "set_running" => {
                let name = arg
                    .as_str()
                    .ok_or_else(|| bad("set_running needs a future"))?;
                let Target::Cf(cf) = self.target(name, &["cf"])? else {
                    return Err(bad("set_running needs a concurrent future"));
                };
                self.call(
                    kind,
                    op,
                    true,
                    vec![("target", json!(name))],
                    || cf.set_running_or_notify_cancel(),
                    |b| json!(b),
                );
                Ok(())
            }
            "set_result" | "set_exception" => self.op_complete(kind, arg, op),
            "cancel" => self.op_cancel(arg, op),
            "result" => self.op_result(arg, op),
            "state" => self.op_state(arg),
            "add_done_callback" => self.op_add_done_callback(arg, op),
            "current_task" => {
                self.call(
                    kind,
                    op,
                    true,
                    vec![],
                    loopspec::current_task,
                    |t| match t {
                        None => Value::Null,
                        Some(t) => json!(self.task_name(t)),
                    },
                );
                Ok(())
            }
            // Executors.
            "executor_new" => {
                let name = field_str(arg, "as")?;
                let workers = match arg.get("workers") {
                    None | Some(Value::Null) => ThreadPool::default_size(),
                    Some(w) => w.as_u64().ok_or_else(|| bad("workers is a number"))? as usize,
                };
                self.bind(
                    name,
                    Some(Obj::Executor(Arc::new(ThreadPool::new(workers, name)))),
                );
                Ok(())
            }
            "executor_submit" => self.op_executor_submit(arg, op),
            "set_default_executor" => {
                let lp = self.get_loop(field_str(arg, "loop")?)?;
                let Obj::Executor(ex) = self.get(field_str(arg, "executor")?, &["executor"])?
                else {
                    return Err(bad("not an executor"));
                };
                lp.set_default_executor(ex);
                Ok(())
            }
            "executor_shutdown" => {
                let name = field_str(arg, "executor")?;
                let Obj::Executor(ex) = self.get(name, &["executor"])? else {
                    return Err(bad("not an executor"));
                };
                let wait = arg.get("wait").and_then(Value::as_bool).unwrap_or(false);
                self.call(
                    kind,
                    op,
                    false,
                    vec![("executor", json!(name))],
                    || {
                        ex.shutdown(wait);
                        Ok(())
                    },
                    |_| Value::Null,
                );
                Ok(())
            }
            "run_in_executor" => self.op_run_in_executor(arg, op),
            // asyncio.run, Runner, and the functions that find a loop.
            "asyncio_run" => self.op_asyncio_run(arg, op),
            "runner_new" => {
                let name = field_str(arg, "as")?;
                let runner = if arg.get("loop_factory").and_then(Value::as_bool) == Some(true) {
                    let profile = self.profile;
                    Runner::with_loop_factory(move || {
                        EventLoop::builder()
                            .clock(ClockKind::Real)
                            .profile(profile)
                            .build()
                    })
                } else {
                    Runner::with_policy(self.policy())
                };
                self.bind(name, Some(Obj::Runner(Arc::new(Mutex::new(runner)))));
                Ok(())
            }
            "runner_run" => self.op_runner_run(arg, op),
            "runner_get_loop" => {
                let rname = field_str(arg, "runner")?;
                let r = self.runner(rname)?;
                let lp = self.with_runner(rname, &r, |r| r.get_loop())?;
                if let (Ok(lp), Some(as_name)) = (&lp, arg.get("as").and_then(Value::as_str)) {
                    let known = lock(&self.reg).loops.iter().any(|(l, _)| l == lp);
                    if !known {
                        self.register_loop(as_name, lp);
                    }
                }
                self.call(
                    kind,
                    op,
                    true,
                    vec![("runner", json!(rname))],
                    || lp,
                    |lp| json!(self.loop_name(lp)),
                );
                Ok(())
            }
            "runner_close" | "runner_exit" => {
                let rname = arg
                    .as_str()
                    .ok_or_else(|| bad(format!("{kind} needs a runner")))?;
                let r = self.runner(rname)?;
                let closed = self.with_runner(rname, &r, |r| {
                    r.close();
                    Ok(())
                })?;
                self.call(
                    kind,
                    op,
                    true,
                    vec![("runner", json!(rname))],
                    || closed,
                    |_| Value::Null,
                );
                Ok(())
            }
            "runner_enter" => {
                // `__enter__` is the lazy initialisation, returning the runner.
                let rname = arg
                    .as_str()
                    .ok_or_else(|| bad("runner_enter needs a runner"))?;
                let r = self.runner(rname)?;
                let entered = self.with_runner(rname, &r, |r| r.get_loop())?;
                self.call(
                    kind,
                    op,
                    true,
                    vec![("runner", json!(rname))],
                    || entered,
                    |_| json!(true),
                );
                Ok(())
            }
            "future_without_loop" => {
                self.call(
                    kind,
                    op,
                    true,
                    vec![],
                    || {
                        Ok(loopspec::get_event_loop()?
                            .create_future::<Value>()
                            .get_loop())
                    },
                    |lp| json!(self.loop_name(lp)),
                );
                Ok(())
            }
            "ensure_future_without_loop" => {
                let coro = self.coro(arg.as_str().ok_or_else(|| bad("needs a coroutine"))?)?;
                self.call(
                    kind,
                    op,
                    true,
                    vec![],
                    || Ok(loopspec::ensure_future(coro)?.get_loop()),
                    |lp| json!(self.loop_name(lp)),
                );
                Ok(())
            }
            "gather_without_loop" => {
                self.call(
                    kind,
                    op,
                    true,
                    vec![],
                    || Ok(loopspec::gather(Vec::<Future<Value>>::new(), false)?.get_loop()),
                    |lp| json!(self.loop_name(lp)),
                );
                Ok(())
            }
            "policy_api" => {
                let name = arg.as_str().ok_or_else(|| bad("policy_api needs a name"))?;
                match name {
                    "get_event_loop_policy" => self.call(
                        kind,
                        op,
                        true,
                        vec![("name", json!(name))],
                        || {
                            let _ = loopspec::get_event_loop_policy();
                            Ok(())
                        },
                        |_| Value::Null,
                    ),
                    "set_event_loop_policy" => self.call(
                        kind,
                        op,
                        true,
                        vec![("name", json!(name))],
                        || {
                            loopspec::set_event_loop_policy(None);
                            Ok(())
                        },
                        |_| Value::Null,
                    ),
                    "DefaultEventLoopPolicy" | "AbstractEventLoopPolicy" => {
                        return Err(bad(format!(
                            "no counterpart: asyncio.{name} is a class; loopspec's policy is a \
                             value (Policy), with no classes to read or subclass (POLICY-14)"
                        )));
                    }
                    other => return Err(bad(format!("unknown policy API name {other:?}"))),
                };
                Ok(())
            }
            other => Err(bad(format!("unknown operation {other:?}"))),
        }
    }

    /// The scenario name of a task, or `other`.
    fn task_name(&self, t: &TaskRef) -> String {
        let reg = lock(&self.reg);
        let named = reg.objs.iter().find_map(|(name, o)| match o {
            Obj::Local(LocalObj::Task(task)) if t.is(task) => Some(name.clone()),
            _ => None,
        });
        named
            .or_else(|| {
                reg.task_names
                    .iter()
                    .find(|(tr, _)| tr == t)
                    .map(|(_, name)| name.clone())
            })
            .unwrap_or_else(|| "other".into())
    }

    fn op_start(self: &Arc<Self>, arg: &Value) -> Result<(), Fault> {
        let name = arg.as_str().ok_or_else(|| bad("start needs a thread"))?;
        if name == "main" || !self.prog.threads.contains_key(name) {
            return Err(bad(format!("unknown thread {name:?}")));
        }
        let done = Arc::new(Flag::default());
        let (run, flag, who) = (self.clone(), done.clone(), name.to_string());
        let spawned = thread::Builder::new().name(name.into()).spawn(move || {
            let _done = SetOnDrop(flag);
            WHO.with(|w| *w.borrow_mut() = Some(who.clone()));
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| run.exec_script(&who))) {
                run.bad(format!(
                    "the runner panicked in thread {who}: {}",
                    panic_message(&p)
                ));
            }
        });
        match spawned {
            Ok(handle) => {
                lock(&self.threads).push(Started {
                    name: name.to_string(),
                    done,
                    handle: Some(handle),
                });
                Ok(())
            }
            Err(e) => Err(bad(format!("cannot start thread {name:?}: {e}"))),
        }
    }

    fn op_join(&self, arg: &Value) -> Result<(), Fault> {
        let name = arg.as_str().ok_or_else(|| bad("join needs a thread"))?;
        let done = lock(&self.threads)
            .iter()
            .rev()
            .find(|s| s.name == name)
            .map(|s| s.done.clone())
            .ok_or_else(|| bad(format!("thread {name:?} was not started")))?;
        if !done.wait(self.wait) {
            self.rec("join_timeout", vec![("target", json!(name))]);
            return Err(Halt::Aborted.into());
        }
        let handle = lock(&self.threads)
            .iter_mut()
            .rev()
            .find(|s| s.name == name)
            .and_then(|s| s.handle.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
        Ok(())
    }

    fn op_run_until_complete(self: &Arc<Self>, arg: &Value, op: &Value) -> Result<(), Fault> {
        let loop_name = field_str(arg, "loop")?;
        let lp = self.get_loop(loop_name)?;
        let fields = vec![("loop", json!(loop_name))];
        if let Some(c) = arg.get("coro").and_then(Value::as_str) {
            let coro = self.coro(c)?;
            self.call(
                "run_until_complete",
                op,
                true,
                fields,
                || lp.run_until_complete(coro),
                |v| v.clone(),
            );
            return Ok(());
        }
        let name = field_str(arg, "future")?;
        let Target::Local(target) = self.target(name, &["future", "task"])? else {
            return Err(bad("run_until_complete needs a loop future or task"));
        };
        self.call(
            "run_until_complete",
            op,
            true,
            fields,
            || match target? {
                LocalObj::Fut(f) => lp.run_until_complete(f),
                LocalObj::Task(t) => lp.run_until_complete(t),
            },
            |v| v.clone(),
        );
        Ok(())
    }

    fn op_schedule(self: &Arc<Self>, kind: &str, arg: &Value, op: &Value) -> Result<(), Fault> {
        let loop_name = field_str(arg, "loop")?;
        let lp = self.get_loop(loop_name)?;
        let cb = field_str(arg, "cb")?;
        self.check_callback(cb)?;
        let (run, name) = (self.clone(), cb.to_string());
        let f = move || run.loop_callback(&name);
        let fields = vec![("loop", json!(loop_name)), ("cb", json!(cb))];
        let h = match kind {
            "call_soon" => self
                .call(kind, op, false, fields, || lp.call_soon(f), |_| Value::Null)
                .map(HandleRef::Plain),
            "call_soon_threadsafe" => self
                .call(
                    kind,
                    op,
                    false,
                    fields,
                    || lp.call_soon_threadsafe(f),
                    |_| Value::Null,
                )
                .map(HandleRef::Plain),
            _ => {
                let delay = arg
                    .get("delay")
                    .map_or(Some(0.0), num)
                    .ok_or_else(|| bad("bad delay"))?;
                self.call(
                    kind,
                    op,
                    false,
                    fields,
                    || lp.call_later(delay, f),
                    |_| Value::Null,
                )
                .map(HandleRef::Timer)
            }
        };
        if let Some(hname) = arg.get("handle").and_then(Value::as_str) {
            let reg = &mut *lock(&self.reg);
            bind_in(&mut reg.handles, &mut reg.failed, hname, h);
        }
        Ok(())
    }

    /// `run_forever`, `stop`, `stop_threadsafe` (`call_soon_threadsafe(stop)`)
    /// or `close` of the loop `arg` names; a stop is recorded only when it
    /// fails or is labelled.
    fn op_loop_call(&self, kind: &str, arg: &Value, op: &Value) -> Result<(), Fault> {
        let name = arg
            .as_str()
            .ok_or_else(|| bad(format!("{kind} needs a loop")))?;
        let lp = self.get_loop(name)?;
        let always = matches!(kind, "run_forever" | "close");
        let f = || match kind {
            "run_forever" => lp.run_forever(),
            "close" => lp.close(),
            "stop" => {
                lp.stop();
                Ok(())
            }
            _ => {
                let target = lp.clone();
                lp.call_soon_threadsafe(move || target.stop()).map(drop)
            }
        };
        self.call(kind, op, always, vec![("loop", json!(name))], f, |_| {
            Value::Null
        });
        Ok(())
    }

    /// n submissions of a callback that records `ran` (tag, i); each records
    /// `submit` with `closed_before` and its outcome.
    fn op_burst(self: &Arc<Self>, arg: &Value) -> Result<(), Fault> {
        let lp = self.get_loop(field_str(arg, "loop")?)?;
        let tag = field_str(arg, "tag")?.to_string();
        let n = arg
            .get("n")
            .and_then(Value::as_u64)
            .ok_or_else(|| bad("burst needs n"))?;
        let via = arg
            .get("via")
            .and_then(Value::as_str)
            .unwrap_or("call_soon_threadsafe");
        if via != "call_soon_threadsafe" && via != "call_soon" {
            return Err(bad(format!("burst via {via:?}")));
        }
        for i in 0..n {
            let closed_before = lp.is_closed();
            let (run, t) = (self.clone(), tag.clone());
            let tick = move || run.rec("ran", vec![("tag", json!(t)), ("i", json!(i))]);
            let r = if via == "call_soon" {
                lp.call_soon(tick)
            } else {
                lp.call_soon_threadsafe(tick)
            };
            let out = match r {
                Ok(_) => ok(Value::Null),
                Err(e) => exc_json(&e),
            };
            self.rec(
                "submit",
                vec![
                    ("tag", json!(tag)),
                    ("i", json!(i)),
                    ("closed_before", json!(closed_before)),
                    ("out", out),
                ],
            );
        }
        Ok(())
    }

    /// Submits no-op callbacks without pause until event `until` is set,
    /// `max` were submitted, or one is refused; sets event `signal` after
    /// `signal_after` submissions. The counts go to `flood_count` at the end
    /// of the run.
    fn op_flood(self: &Arc<Self>, arg: &Value) -> Result<(), Fault> {
        let lp = self.get_loop(field_str(arg, "loop")?)?;
        let tag = field_str(arg, "tag")?.to_string();
        let (_, until) = self.event(arg.get("until").ok_or_else(|| bad("flood needs until"))?)?;
        let signal = match arg.get("signal") {
            Some(Value::Null) | None => None,
            Some(s) => Some(self.event(s)?.1),
        };
        let signal_after = arg.get("signal_after").and_then(Value::as_u64).unwrap_or(1);
        let limit = arg.get("max").and_then(Value::as_u64).unwrap_or(1_000_000);
        let ran: &'static AtomicU64 = lock(&self.floods).entry(tag.clone()).or_default().ran;
        let (mut ended, mut out) = ("max", ok(Value::Null));
        let mut n = 0u64;
        while n < limit {
            if n.is_multiple_of(64) && until.is_set() {
                ended = "until";
                break;
            }
            if let Err(e) = lp.call_soon_threadsafe(move || {
                ran.fetch_add(1, Ordering::Relaxed);
            }) {
                ended = "refused";
                out = exc_json(&e);
                break;
            }
            n += 1;
            if n == signal_after
                && let Some(s) = &signal
            {
                s.set();
            }
        }
        lock(&self.floods).entry(tag.clone()).or_default().submitted += n;
        self.rec(
            "flood",
            vec![("tag", json!(tag)), ("ended", json!(ended)), ("out", out)],
        );
        Ok(())
    }

    fn op_wrap_future(self: &Arc<Self>, arg: &Value, op: &Value) -> Result<(), Fault> {
        let src = field_str(arg, "cf")?;
        let lp = self.get_loop(field_str(arg, "loop")?)?;
        let name = field_str(arg, "as")?;
        match self.target(src, &["cf", "future", "task"])? {
            Target::Cf(cf) => {
                let f = self.call(
                    "wrap_future",
                    op,
                    false,
                    vec![],
                    || loopspec::wrap_future(&cf, &lp),
                    |_| Value::Null,
                );
                let made = f.is_some();
                self.bind_local(name, f.map(LocalObj::Fut));
                let identity = arg.get("check_identity").and_then(Value::as_bool) == Some(true);
                if made && (identity || op.get("label").is_some()) {
                    self.rec(
                        "wrap_future",
                        vec![("target", json!(name)), ("same_object", json!(false))],
                    );
                }
                Ok(())
            }
            Target::Local(_) => Err(bad(
                "no counterpart: wrap_future of an asyncio future (CPython returns it \
                 unchanged); loopspec's wrap_future takes a ConcurrentFuture, its types keep \
                 the two apart (CHAIN-1)",
            )),
        }
    }

    fn op_complete(self: &Arc<Self>, kind: &str, arg: &Value, op: &Value) -> Result<(), Fault> {
        let name = field_str(arg, "target")?;
        let target = self.target(name, &["cf", "future", "task"])?;
        let value = if kind == "set_result" {
            Ok(arg.get("value").cloned().unwrap_or(Value::Null))
        } else {
            Err(make_err(
                arg.get("exc")
                    .ok_or_else(|| bad("set_exception needs exc"))?,
            )
            .map_err(Fault::Bad)?)
        };
        self.call(
            kind,
            op,
            false,
            vec![("target", json!(name))],
            || match (target, value) {
                (Target::Cf(cf), Ok(v)) => cf.set_result(v),
                (Target::Cf(cf), Err(e)) => cf.set_exception(e),
                (Target::Local(l), Ok(v)) => match l? {
                    LocalObj::Fut(f) => f.set_result(v),
                    LocalObj::Task(t) => t.set_result(v),
                },
                (Target::Local(l), Err(e)) => match l? {
                    LocalObj::Fut(f) => f.set_exception(e),
                    LocalObj::Task(t) => t.set_exception(e),
                },
            },
            |_| Value::Null,
        );
        Ok(())
    }

    fn op_cancel(self: &Arc<Self>, arg: &Value, op: &Value) -> Result<(), Fault> {
        let name = name_arg(arg, "target")?;
        let msg = arg.get("msg").and_then(Value::as_str).map(String::from);
        self.call_on(
            "cancel",
            op,
            name,
            |target| match target {
                Target::Cf(cf) => Ok(cf.cancel()),
                Target::Local(l) => Ok(match l? {
                    LocalObj::Fut(f) => f.cancel_with(msg),
                    LocalObj::Task(t) => t.cancel_with(msg),
                }),
            },
            |b| json!(b),
        )
    }

    fn op_result(self: &Arc<Self>, arg: &Value, op: &Value) -> Result<(), Fault> {
        let name = name_arg(arg, "target")?;
        let timeout = arg.get("timeout").and_then(num).map_or(self.wait, secs);
        self.call_on(
            "result",
            op,
            name,
            |target| match target {
                Target::Cf(cf) => cf.result(Some(timeout)),
                Target::Local(l) => l?.fut().result(),
            },
            |v| v.clone(),
        )
    }

    /// Calls `f` on the future `name` names (a concurrent future, a loop
    /// future or a task) and records `kind` with its outcome.
    fn call_on<T>(
        &self,
        kind: &str,
        op: &Value,
        name: &str,
        f: impl FnOnce(Target) -> loopspec::Result<T>,
        conv: impl FnOnce(&T) -> Value,
    ) -> Result<(), Fault> {
        let target = self.target(name, &["cf", "future", "task"])?;
        let fields = vec![("target", json!(name))];
        self.call(kind, op, true, fields, || f(target), conv);
        Ok(())
    }

    /// Records a future's state without waiting: pending, running (a
    /// concurrent future), cancelled, or finished with its outcome.
    fn op_state(self: &Arc<Self>, arg: &Value) -> Result<(), Fault> {
        let name = arg.as_str().ok_or_else(|| bad("state needs a future"))?;
        let target = self.target(name, &["cf", "future", "task"])?;
        let mut fields = vec![("target", json!(name))];
        match target {
            Target::Cf(cf) => {
                if cf.cancelled() {
                    fields.push(("state", json!("cancelled")));
                } else if cf.done() {
                    let out = match cf.exception(Some(Duration::ZERO)) {
                        Ok(None) => out_of(&cf.result(Some(Duration::ZERO))),
                        Ok(Some(e)) | Err(e) => exc_json(&e),
                    };
                    fields.push(("state", json!("finished")));
                    fields.push(("out", out));
                } else if cf.running() {
                    fields.push(("state", json!("running")));
                } else {
                    fields.push(("state", json!("pending")));
                }
            }
            Target::Local(Err(e)) => fields.push(("out", exc_json(&e))),
            Target::Local(Ok(l)) => {
                let f = l.fut();
                if f.cancelled() {
                    fields.push(("state", json!("cancelled")));
                } else if f.done() {
                    let out = match f.exception() {
                        Ok(Some(e)) | Err(e) => exc_json(&e),
                        Ok(None) => out_of(&f.result()),
                    };
                    fields.push(("state", json!("finished")));
                    fields.push(("out", out));
                } else {
                    fields.push(("state", json!("pending")));
                }
            }
        }
        self.rec("state", fields);
        Ok(())
    }

    fn op_add_done_callback(self: &Arc<Self>, arg: &Value, op: &Value) -> Result<(), Fault> {
        let name = field_str(arg, "target")?;
        let cb = field_str(arg, "cb")?;
        self.check_callback(cb)?;
        let target = self.target(name, &["cf", "future", "task"])?;
        let (run, cb) = (self.clone(), cb.to_string());
        self.call(
            "add_done_callback",
            op,
            false,
            vec![("target", json!(name))],
            || match target {
                Target::Cf(cf) => {
                    cf.add_done_callback(move |_| run.loop_callback(&cb));
                    Ok(())
                }
                Target::Local(l) => {
                    let f = l?.fut();
                    let done: DoneCallback<Value> =
                        Arc::new(move |_: &Future<Value>| run.loop_callback(&cb));
                    f.add_done_callback(done)
                }
            },
            |_| Value::Null,
        );
        Ok(())
    }

    fn op_executor_submit(self: &Arc<Self>, arg: &Value, op: &Value) -> Result<(), Fault> {
        let ex_name = field_str(arg, "executor")?;
        let Obj::Executor(ex) = self.get(ex_name, &["executor"])? else {
            return Err(bad("not an executor"));
        };
        let job = field_str(arg, "job")?;
        self.check_callback(job)?;
        let name = field_str(arg, "as")?;
        // ThreadPoolExecutor.submit: a concurrent future the worker starts
        // (unless it was cancelled) and completes with the job's outcome.
        let cf = ConcurrentFuture::<Value>::new();
        let (run, job, job_cf) = (self.clone(), job.to_string(), cf.clone());
        let work = move || {
            if job_cf.set_running_or_notify_cancel() == Ok(true) {
                let _ = match run.job(&job) {
                    Ok(v) => job_cf.set_result(v),
                    Err(e) => job_cf.set_exception(e),
                };
            }
        };
        let made = self.call(
            "executor_submit",
            op,
            false,
            vec![("executor", json!(ex_name))],
            || ex.submit(Box::new(work)).map(|()| cf),
            |_| Value::Null,
        );
        self.bind(name, made.map(Obj::Cf));
        Ok(())
    }

    fn op_run_in_executor(self: &Arc<Self>, arg: &Value, op: &Value) -> Result<(), Fault> {
        let loop_name = field_str(arg, "loop")?;
        let lp = self.get_loop(loop_name)?;
        let ex = match arg.get("executor") {
            None | Some(Value::Null) => None,
            Some(e) => {
                let e = e.as_str().ok_or_else(|| bad("executor is a name"))?;
                match self.get(e, &["executor"])? {
                    Obj::Executor(ex) => Some(ex),
                    _ => return Err(bad("not an executor")),
                }
            }
        };
        let job = field_str(arg, "job")?;
        self.check_callback(job)?;
        let name = field_str(arg, "as")?;
        let (run, job_name) = (self.clone(), job.to_string());
        let f = self.call(
            "run_in_executor",
            op,
            false,
            vec![("loop", json!(loop_name)), ("job", json!(job))],
            || {
                lp.run_in_executor(ex.as_deref().map(|p| p as &dyn Executor), move || {
                    run.job(&job_name)
                })
            },
            |_| Value::Null,
        );
        self.bind_local(name, f.map(LocalObj::Fut));
        Ok(())
    }

    fn op_asyncio_run(self: &Arc<Self>, arg: &Value, op: &Value) -> Result<(), Fault> {
        let coro = self.coro(field_str(arg, "coro")?)?;
        let factory = arg.get("loop_factory").and_then(Value::as_bool) == Some(true);
        let (policy, profile) = (self.policy(), self.profile);
        self.call(
            "asyncio_run",
            op,
            true,
            vec![],
            || {
                if factory {
                    loopspec::run_with_loop_factory(coro, move || {
                        EventLoop::builder()
                            .clock(ClockKind::Real)
                            .profile(profile)
                            .build()
                    })
                } else {
                    policy.run(coro)
                }
            },
            |v| v.clone(),
        );
        Ok(())
    }

    fn op_runner_run(self: &Arc<Self>, arg: &Value, op: &Value) -> Result<(), Fault> {
        let rname = field_str(arg, "runner")?;
        let r = self.runner(rname)?;
        let coro_name = field_str(arg, "coro")?;
        self.check_coro(coro_name)?;
        let fields = vec![("runner", json!(rname))];
        let free = match r.try_lock() {
            Ok(runner) => Ok(runner),
            Err(TryLockError::Poisoned(e)) => Ok(e.into_inner()),
            Err(TryLockError::WouldBlock) => Err(()),
        };
        match free {
            Ok(mut runner) => {
                let coro = self.coro_unchecked(coro_name.to_string());
                let run = || runner.run(coro);
                self.call("runner_run", op, true, fields, run, |v| v.clone());
                Ok(())
            }
            Err(()) if loopspec::get_running_loop().is_ok() => {
                // Nested in this runner's own run: `Runner::run` refuses
                // before it touches the runner (RUNNER-3).
                self.call(
                    "runner_run",
                    op,
                    true,
                    fields,
                    || Err::<Value, _>(Error::RunnerInRunningLoop),
                    |v| v.clone(),
                );
                Ok(())
            }
            Err(()) => Err(bad(format!(
                "no counterpart: runner {rname:?} is running in another thread; Runner::run \
                 takes &mut self, so one runner cannot run in two threads at once (RUNNER-3; \
                 CPython: This event loop is already running)"
            ))),
        }
    }

    /// Runs `f` on a runner that is not running; a runner in use by a run
    /// has no counterpart (`&mut self`).
    fn with_runner<T>(
        &self,
        rname: &str,
        r: &Mutex<Runner>,
        f: impl FnOnce(&mut Runner) -> loopspec::Result<T>,
    ) -> Result<loopspec::Result<T>, Fault> {
        match r.try_lock() {
            Ok(mut runner) => Ok(f(&mut runner)),
            Err(TryLockError::Poisoned(e)) => Ok(f(&mut e.into_inner())),
            Err(TryLockError::WouldBlock) => Err(bad(format!(
                "no counterpart: runner {rname:?} is in use by a run; a Runner's methods take \
                 &mut self (RUNNER-3)"
            ))),
        }
    }
}

/// `arg[key]` as a string, for object arguments.
fn field_str<'a>(arg: &'a Value, key: &str) -> Result<&'a str, Fault> {
    arg.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("missing {key:?} in {arg}")))
}

/// A name given directly (`"X"`) or as `{key: "X", ...}`.
fn name_arg<'a>(arg: &'a Value, key: &str) -> Result<&'a str, Fault> {
    match arg {
        Value::String(s) => Ok(s),
        Value::Object(_) => field_str(arg, key),
        _ => Err(bad(format!("expected a name or an object: {arg}"))),
    }
}

// ---------------------------------------------------------------------------
// The judge (the kit's `judge.py`, in Rust)
// ---------------------------------------------------------------------------

/// Entries whose presence fails a run whatever the scenario says.
pub const FAILURE_EVENTS: [&str; 5] = [
    "wait_timeout",
    "barrier_timeout",
    "join_timeout",
    "hang",
    "runner_error",
];

/// Entries never part of a default outcome (their values vary by run).
const VOLATILE_EVENTS: [&str; 1] = ["flood_count"];

pub use super::normalize;

/// Whether `entry` has every field of `pattern`; a pattern value
/// `{"any": [a, b]}` matches any of them.
fn matches(entry: &Value, pattern: &Value) -> bool {
    let Some(p) = pattern.as_object() else {
        return false;
    };
    p.iter().all(|(k, want)| {
        let Some(got) = entry.get(k) else {
            return false;
        };
        let got = normalize(got);
        match want.as_object() {
            Some(w) if w.len() == 1 && w.contains_key("any") => w["any"]
                .as_array()
                .is_some_and(|xs| xs.iter().any(|x| normalize(x) == got)),
            _ => got == normalize(want),
        }
    })
}

fn strip(entry: &Value, drop: &[&str]) -> Value {
    match entry.as_object() {
        Some(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| k.as_str() != "seq" && !drop.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        None => entry.clone(),
    }
}

fn select<'a>(log: &'a [Value], pattern: &Value) -> Vec<&'a Value> {
    log.iter().filter(|e| matches(e, pattern)).collect()
}

fn ev_of(e: &Value) -> &str {
    e.get("ev").and_then(Value::as_str).unwrap_or("")
}

fn seq_of(e: &Value) -> u64 {
    e.get("seq").and_then(Value::as_u64).unwrap_or(0)
}

/// Python's `json.dumps(v, sort_keys=True)` of a normalized value: the
/// sort key of the `set` facet.
fn py_json(v: &Value) -> String {
    fn s(out: &mut String, x: &str) {
        out.push('"');
        for c in x.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                    let mut buf = [0u16; 2];
                    for u in c.encode_utf16(&mut buf) {
                        out.push_str(&format!("\\u{u:04x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
    /// `items` between `brackets`, separated by `, `.
    fn items<T>(
        out: &mut String,
        brackets: [char; 2],
        items: impl IntoIterator<Item = T>,
        mut each: impl FnMut(&mut String, T),
    ) {
        out.push(brackets[0]);
        for (i, x) in items.into_iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            each(out, x);
        }
        out.push(brackets[1]);
    }
    fn go(out: &mut String, v: &Value) {
        match v {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => {
                let f = n.as_f64().unwrap_or(0.0);
                if f.fract() == 0.0 && f.abs() < 1e16 {
                    out.push_str(&format!("{f:.1}"));
                } else {
                    out.push_str(&format!("{f:?}"));
                }
            }
            Value::String(x) => s(out, x),
            Value::Array(a) => items(out, ['[', ']'], a, go),
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                items(out, ['{', '}'], keys, |out, k| {
                    s(out, k);
                    out.push_str(": ");
                    go(out, &m[k]);
                });
            }
        }
    }
    let mut out = String::new();
    go(&mut out, &normalize(v));
    out
}

fn facet(log: &[Value], spec: &Value) -> Result<Value, String> {
    let m = spec
        .as_object()
        .filter(|m| m.len() == 1)
        .ok_or_else(|| format!("a facet is an object with one key: {spec}"))?;
    let (kind, arg) = m.iter().next().ok_or("empty facet")?;
    let names_thread = arg.get("thread").is_some();
    let drop: &[&str] = if names_thread { &["thread"] } else { &[] };
    Ok(match kind.as_str() {
        "thread" => Value::Array(
            log.iter()
                .filter(|e| e.get("thread") == Some(arg) && !VOLATILE_EVENTS.contains(&ev_of(e)))
                .map(|e| strip(e, &["thread"]))
                .collect(),
        ),
        "entries" => Value::Array(
            select(log, arg)
                .into_iter()
                .map(|e| strip(e, drop))
                .collect(),
        ),
        "set" => {
            let items: BTreeMap<String, Value> = select(log, arg)
                .into_iter()
                .map(|e| {
                    let s = strip(e, drop);
                    (py_json(&s), s)
                })
                .collect();
            Value::Array(items.into_values().collect())
        }
        "count" => json!(select(log, arg).len()),
        "any" => json!(!select(log, arg).is_empty()),
        "first" => select(log, arg)
            .first()
            .map_or(Value::Null, |e| strip(e, &[])),
        "order" => {
            let names = arg.as_object().ok_or("order needs named patterns")?;
            let mut firsts: Vec<(u64, String)> = names
                .iter()
                .filter_map(|(name, p)| select(log, p).first().map(|e| (seq_of(e), name.clone())))
                .collect();
            firsts.sort();
            json!(firsts.into_iter().map(|(_, n)| n).collect::<Vec<_>>())
        }
        other => return Err(format!("unknown outcome facet {other:?}")),
    })
}

/// A run's canonical outcome (FORMAT.md, "Outcome"): the scenario's facets,
/// or every entry but the volatile ones grouped by thread.
pub fn outcome(scenario: &Value, log: &[Value]) -> Result<Value, String> {
    match scenario.get("outcome") {
        None | Some(Value::Null) => {
            let mut out = Map::new();
            for e in log {
                if VOLATILE_EVENTS.contains(&ev_of(e)) {
                    continue;
                }
                let t = e.get("thread").and_then(Value::as_str).unwrap_or("?");
                let list = out
                    .entry(t.to_string())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(a) = list {
                    a.push(strip(e, &["thread"]));
                }
            }
            Ok(Value::Object(out))
        }
        Some(Value::Object(spec)) => {
            let mut out = Map::new();
            for (name, f) in spec {
                out.insert(name.clone(), facet(log, f)?);
            }
            Ok(Value::Object(out))
        }
        Some(other) => Err(format!("outcome is not an object: {other}")),
    }
}

fn inv_count(log: &[Value], arg: &Value) -> Vec<String> {
    let n = select(log, &arg["of"]).len() as f64;
    let mut bad = Vec::new();
    if let Some(eq) = arg.get("eq").and_then(Value::as_f64)
        && n != eq
    {
        bad.push(format!("expected {eq} of {}, saw {n}", arg["of"]));
    }
    if let Some(min) = arg.get("min").and_then(Value::as_f64)
        && n < min
    {
        bad.push(format!("expected at least {min} of {}, saw {n}", arg["of"]));
    }
    if let Some(max) = arg.get("max").and_then(Value::as_f64)
        && n > max
    {
        bad.push(format!("expected at most {max} of {}, saw {n}", arg["of"]));
    }
    bad
}

fn inv_submissions(log: &[Value], arg: &Value) -> Vec<String> {
    let tag = &arg["tag"];
    let subs = select(log, &json!({"ev": "submit", "tag": tag}));
    let ran: Vec<u64> = select(log, &json!({"ev": "ran", "tag": tag}))
        .iter()
        .filter_map(|e| e.get("i").and_then(Value::as_u64))
        .collect();
    let mut times: BTreeMap<u64, u64> = BTreeMap::new();
    for i in &ran {
        *times.entry(*i).or_default() += 1;
    }
    let exactly_once = arg
        .get("accepted")
        .and_then(Value::as_str)
        .unwrap_or("exactly_once")
        == "exactly_once";
    let mut bad = Vec::new();
    let mut known = HashSet::new();
    for s in &subs {
        let i = s.get("i").and_then(Value::as_u64).unwrap_or(u64::MAX);
        known.insert(i);
        let n = times.get(&i).copied().unwrap_or(0);
        let out = s.get("out").cloned().unwrap_or(Value::Null);
        if out.get("exc").is_some() {
            if n > 0 {
                bad.push(format!(
                    "submission {tag}#{i} was refused but ran {n} time(s)"
                ));
            }
            if let Some(want) = arg.get("refused_with")
                && normalize(&out) != normalize(want)
            {
                bad.push(format!(
                    "submission {tag}#{i} refused with {out}, expected {want}"
                ));
            }
        } else if exactly_once && n != 1 {
            bad.push(format!(
                "submission {tag}#{i} was accepted and ran {n} time(s)"
            ));
        } else if n > 1 {
            bad.push(format!("submission {tag}#{i} ran {n} times"));
        }
    }
    for i in times.keys() {
        if !known.contains(i) {
            bad.push(format!("{tag}#{i} ran but was never submitted"));
        }
    }
    if arg.get("fifo").and_then(Value::as_bool) == Some(true) && ran.windows(2).any(|w| w[0] > w[1])
    {
        bad.push(format!("submissions {tag} ran out of order"));
    }
    bad.truncate(10);
    bad
}

fn inv_flood(log: &[Value], arg: &Value) -> Vec<String> {
    let tag = &arg["tag"];
    let min = arg.get("min_ran").and_then(Value::as_u64).unwrap_or(0);
    let mut bad = Vec::new();
    for e in select(log, &json!({"ev": "flood_count", "tag": tag})) {
        let ran = e["ran"].as_u64().unwrap_or(0);
        let submitted = e["submitted"].as_u64().unwrap_or(0);
        if ran > submitted {
            bad.push(format!("flood {tag}: {ran} ran of {submitted} submitted"));
        }
        if ran < min {
            bad.push(format!("flood {tag}: only {ran} ran"));
        }
    }
    bad
}

/// Every broken invariant of one run (FORMAT.md, "Invariants"), with the
/// implicit ones: no timed-out wait, no hang, no runner error.
pub fn violations(scenario: &Value, obs: &Observation) -> Result<Vec<String>, String> {
    let log = &obs.log;
    let mut bad = Vec::new();
    if let Some(e) = &obs.runner_error {
        bad.push(format!("runner error: {e}"));
    }
    if obs.poisoned {
        bad.push("poisoned".to_string());
    }
    for e in log {
        if FAILURE_EVENTS.contains(&ev_of(e)) {
            bad.push(format!("{}: {}", ev_of(e), strip(e, &[])));
        }
    }
    let invariants = match scenario.get("invariants") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(other) => return Err(format!("invariants is not a list: {other}")),
    };
    for inv in &invariants {
        let m = inv
            .as_object()
            .filter(|m| m.len() == 1)
            .ok_or_else(|| format!("an invariant is an object with one key: {inv}"))?;
        let (kind, arg) = m.iter().next().ok_or("empty invariant")?;
        bad.extend(match kind.as_str() {
            "count" => inv_count(log, arg),
            "none" => {
                let found = select(log, arg);
                found
                    .first()
                    .map(|f| {
                        format!(
                            "expected no {arg}, saw {} (first: {})",
                            found.len(),
                            strip(f, &[])
                        )
                    })
                    .into_iter()
                    .collect()
            }
            "before" => {
                let (a, b) = (select(log, &arg["first"]), select(log, &arg["then"]));
                match (a.last(), b.first()) {
                    (Some(x), Some(y)) if seq_of(x) > seq_of(y) => {
                        vec![format!("{} came after {}", strip(x, &[]), strip(y, &[]))]
                    }
                    _ => Vec::new(),
                }
            }
            "none_after" => match select(log, &arg["after"]).first() {
                None => Vec::new(),
                Some(a) => {
                    let late = select(log, &arg["none"])
                        .into_iter()
                        .filter(|e| seq_of(e) > seq_of(a))
                        .count();
                    if late > 0 {
                        vec![format!("{late} of {} after {}", arg["none"], strip(a, &[]))]
                    } else {
                        Vec::new()
                    }
                }
            },
            "submissions" => inv_submissions(log, arg),
            "flood" => inv_flood(log, arg),
            other => return Err(format!("unknown invariant {other:?}")),
        });
    }
    Ok(bad)
}

fn group_for<'a>(groups: Option<&'a Value>, minor: &str) -> Option<&'a Value> {
    groups?.as_array()?.iter().find(|g| match g.get("python") {
        None => true,
        Some(p) => p
            .as_array()
            .is_some_and(|p| p.iter().any(|v| v.as_str() == Some(minor))),
    })
}

/// The outcomes allowed on Python `minor`: the scenario's hand-written
/// `allowed` group for it, else the outcomes CPython showed when recorded;
/// `None` when nothing holds for `minor`.
pub fn allowed_outcomes(scenario: &Value, minor: &str) -> Option<Vec<Value>> {
    if let Some(g) = group_for(scenario.get("allowed"), minor) {
        return g.get("outcomes")?.as_array().cloned();
    }
    let g = group_for(scenario.get("expect"), minor)?;
    Some(
        g.get("observed")?
            .as_array()?
            .iter()
            .filter_map(|h| h.get("outcome").cloned())
            .collect(),
    )
}

/// Whether the scenario means anything on Python `minor` (`min_python`,
/// `max_python`).
pub fn applies(scenario: &Value, minor: &str) -> bool {
    let v = |s: &str| -> (u32, u32) {
        let mut p = s.split('.').map(|x| x.parse::<u32>().unwrap_or(0));
        (p.next().unwrap_or(0), p.next().unwrap_or(0))
    };
    let m = v(minor);
    let lo = scenario.get("min_python").and_then(Value::as_str);
    let hi = scenario.get("max_python").and_then(Value::as_str);
    lo.is_none_or(|lo| m >= v(lo)) && hi.is_none_or(|hi| m <= v(hi))
}

/// One run judged: its outcome, whether that outcome is allowed, and the
/// invariants it broke.
#[derive(Clone, Debug)]
pub struct Verdict {
    pub outcome: Value,
    pub allowed: bool,
    pub violations: Vec<String>,
}

impl Verdict {
    /// Whether the run passes: an allowed outcome and no violation.
    pub fn passed(&self) -> bool {
        self.allowed && self.violations.is_empty()
    }
}

/// Judges one run against the outcomes `allowed` for its Python minor.
pub fn judge(scenario: &Value, obs: &Observation, allowed: &[Value]) -> Result<Verdict, String> {
    let outcome = outcome(scenario, &obs.log)?;
    let canon = normalize(&outcome);
    let allowed = allowed.iter().any(|a| normalize(a) == canon);
    Ok(Verdict {
        outcome,
        allowed,
        violations: violations(scenario, obs)?,
    })
}
