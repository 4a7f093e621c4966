//! Conformance scenarios and their runner on loopspec's virtual clock.
//!
//! A [`Scenario`] is the language-neutral program of `conformance/FORMAT.md`:
//! tasks with scripted steps, recording callbacks, plain futures, and a main
//! program of loop calls. [`run`] executes one on a fresh virtual-clock loop
//! of a given [`Profile`] and returns its trace — the ordered events with their
//! virtual times and each future's final state — as JSON, exactly as
//! `conformance/python/runner.py` writes it for CPython. [`compare`] tells
//! whether two traces match.
//!
//! The `conformance` binary serves it to the kit; `check/tests/` runs the
//! corpus and the differential comparison with it.

use loopspec::{
    ClockKind, Error, EventLoop, ExceptionContext, Future, Gathered, Handle, LocalDoneCallback,
    Profile, ReturnWhen, Task, TaskGroup, Timeout, TimerHandle,
};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value, json};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

// ---------------------------------------------------------------------------
// The format
// ---------------------------------------------------------------------------

/// A time value in scenario units (seconds on the virtual clock): a number,
/// or the string `"nan"`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Num(pub f64);

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_nan() {
            s.serialize_str("nan")
        } else if self.0.fract() == 0.0 && self.0.abs() < 1e15 {
            s.serialize_i64(self.0 as i64)
        } else {
            s.serialize_f64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Num, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => n
                .as_f64()
                .map(Num)
                .ok_or_else(|| de::Error::custom("bad number")),
            Value::String(s) if s.eq_ignore_ascii_case("nan") => Ok(Num(f64::NAN)),
            other => Err(de::Error::custom(format!(
                "expected a number or \"nan\", got {other}"
            ))),
        }
    }
}

fn default_horizon() -> Option<f64> {
    Some(100.0)
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A single-thread program for one loop (FORMAT.md, "Scenario").
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A name for the trace; not used by the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Task scripts by name. A task exists once `create_task` (or
    /// `run_until_complete` of `{"task": name}`) made it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tasks: BTreeMap<String, Vec<Op>>,
    /// Callback scripts by name: what a callback does when it runs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub callbacks: BTreeMap<String, Vec<Op>>,
    /// Plain futures, made before the main program starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub futures: Vec<String>,
    /// The main program: loop calls and synchronous operations, in order.
    pub main: Vec<Op>,
    /// The time of the runner's safety timer (records `horizon`, stops the
    /// loop, re-arms itself); `null` disables it. Default 100.
    #[serde(default = "default_horizon")]
    pub horizon: Option<f64>,
    /// The loop's task factory is `asyncio.eager_task_factory` (3.12+),
    /// set before the main program starts.
    #[serde(default, skip_serializing_if = "is_false")]
    pub eager_tasks: bool,
}

/// One operation of a script: its kind and, for awaiting steps, whether an
/// exception is caught (recorded, then the script goes on) or propagates.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Op {
    #[serde(flatten)]
    pub kind: OpKind,
    #[serde(default, skip_serializing_if = "is_false")]
    pub catch: bool,
}

impl From<OpKind> for Op {
    fn from(kind: OpKind) -> Op {
        Op { kind, catch: false }
    }
}

/// An exception: a Python class name and an optional message (its one
/// argument).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Exc {
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg: Option<String>,
}

/// The children of `gather`, `make_gather`, `wait` and `as_completed`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct GatherArgs {
    pub of: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub return_exceptions: bool,
    /// Registers the gathering future under this name.
    #[serde(rename = "as", default, skip_serializing_if = "Option::is_none")]
    pub as_: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct WaitArgs {
    pub of: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Num>,
    /// `ALL_COMPLETED` (default), `FIRST_COMPLETED` or `FIRST_EXCEPTION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_when: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AsCompletedArgs {
    pub of: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Num>,
}

/// What `wait_for` waits for: a task or future by name, or a task script
/// run as a bare coroutine.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(untagged)]
pub enum WaitForTarget {
    Name(String),
    Coro { coro: String },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct WaitForArgs {
    pub target: WaitForTarget,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Num>,
}

/// `cancel`: a name, or a name and a message.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(untagged)]
pub enum CancelArgs {
    Name(String),
    WithMsg {
        target: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        msg: Option<String>,
    },
}

/// `call_soon` / `call_soon_threadsafe`: a callback name, or a name and a
/// handle label for `cancel_handle`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(untagged)]
pub enum CbArgs {
    Name(String),
    WithHandle {
        cb: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        handle: Option<String>,
    },
}

impl CbArgs {
    fn parts(&self) -> (&str, Option<&str>) {
        match self {
            CbArgs::Name(n) => (n, None),
            CbArgs::WithHandle { cb, handle } => (cb, handle.as_deref()),
        }
    }
}

/// What `run_until_complete` runs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum RunTarget {
    /// A task by name; made first if it does not exist yet (as
    /// `run_until_complete(coro)` wraps a coroutine).
    Task(String),
    /// A plain future or a named gather.
    Future(String),
    /// A new gathering future.
    Gather(GatherArgs),
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct RunForeverArgs {
    /// Callbacks another thread submits with `call_soon_threadsafe`, one each
    /// time the loop blocks with nothing to do (needs `horizon: null`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_thread: Vec<String>,
}

/// `task_group`: `async with asyncio.TaskGroup() as name:` body.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TaskGroupArgs {
    pub name: String,
    #[serde(default)]
    pub body: Vec<Op>,
}

/// `timeout` (`delay`) and `timeout_at` (`when`, scenario time):
/// `async with asyncio.timeout(...) as name:` body; no time means `None`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TimeoutArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub body: Vec<Op>,
}

/// Every operation; FORMAT.md says where each is allowed and what it records.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    // Awaiting steps (tasks only).
    Sleep(Num),
    Yield(()),
    Await(String),
    Gather(GatherArgs),
    Wait(WaitArgs),
    WaitFor(WaitForArgs),
    AsCompleted(AsCompletedArgs),
    // Blocks (tasks only): `async with` statements around a body of steps.
    TaskGroup(TaskGroupArgs),
    Timeout(TimeoutArgs),
    TimeoutAt(TimeoutArgs),
    // Ending a task (`raise` also in callbacks).
    Return(Value),
    Raise(Exc),
    // Synchronous operations (tasks, callbacks, main).
    Cancel(CancelArgs),
    SetResult {
        target: String,
        #[serde(default)]
        value: Value,
    },
    SetException {
        target: String,
        exc: Exc,
    },
    Result(String),
    AddDoneCallback {
        target: String,
        cb: String,
    },
    RemoveDoneCallback {
        target: String,
        cb: String,
    },
    CallSoon(CbArgs),
    CallSoonThreadsafe(CbArgs),
    CallLater {
        cb: String,
        delay: Num,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        handle: Option<String>,
    },
    CallAt {
        cb: String,
        when: Num,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        handle: Option<String>,
    },
    CancelHandle(String),
    Stop(()),
    CreateTask(String),
    MakeGather(GatherArgs),
    Check(String),
    Cancelling(String),
    Uncancel(String),
    Record(String),
    SetHandler(String),
    /// `group.create_task(script coro)`, named `name` (default: `coro`).
    TgCreateTask {
        group: String,
        coro: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// `cm.reschedule(...)`: scenario time `when`, `now + delay`, or `None`.
    Reschedule {
        cm: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        when: Option<Num>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delay: Option<Num>,
    },
    Expired(String),
    CmWhen(String),
    /// `name = asyncio.shield(target)`.
    Shield {
        target: String,
        name: String,
    },
    // Loop runs (main only).
    RunUntilComplete(RunTarget),
    RunForever(Option<RunForeverArgs>),
}

impl OpKind {
    /// Whether this step suspends the task (allowed in tasks only).
    pub fn is_awaiting(&self) -> bool {
        matches!(
            self,
            OpKind::Sleep(_)
                | OpKind::Yield(())
                | OpKind::Await(_)
                | OpKind::Gather(_)
                | OpKind::Wait(_)
                | OpKind::WaitFor(_)
                | OpKind::AsCompleted(_)
                | OpKind::TaskGroup(_)
                | OpKind::Timeout(_)
                | OpKind::TimeoutAt(_)
        )
    }

    /// The body of a block (`task_group`, `timeout`, `timeout_at`).
    pub fn body(&self) -> Option<&[Op]> {
        match self {
            OpKind::TaskGroup(a) => Some(&a.body),
            OpKind::Timeout(a) | OpKind::TimeoutAt(a) => Some(&a.body),
            _ => None,
        }
    }

    /// The operation's key in the JSON form.
    pub fn key(&self) -> String {
        match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m.keys().next().cloned().unwrap_or_default(),
            Ok(Value::String(s)) => s,
            _ => String::new(),
        }
    }
}

/// One expected trace of a corpus entry and the Python versions it holds for.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Expectation {
    /// Minor versions (`"3.11"`) whose CPython gives this trace.
    pub python: Vec<String>,
    /// The interpreter that recorded it (`"3.11.7"`).
    pub recorded_with: String,
    pub events: Vec<Value>,
    #[serde(rename = "final")]
    pub final_: Map<String, Value>,
}

/// A corpus file `conformance/scenarios/*.json`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct CorpusEntry {
    pub id: String,
    /// The SPEC.md rules the scenario checks.
    pub rules: Vec<String>,
    #[serde(default)]
    pub title: String,
    /// The oldest Python the scenario means anything on (`"3.11"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_python: Option<String>,
    pub scenario: Scenario,
    /// Traces recorded from CPython, one per group of versions that agree.
    #[serde(default)]
    pub expect: Vec<Expectation>,
    /// Whether real-time loops can run it (events well separated in time).
    #[serde(default)]
    pub realtime: bool,
}

/// The loopspec profile that models a CPython minor version (`"3.11"`, or a
/// full `"3.11.7"`); `None` for versions loopspec does not model (3.10).
pub fn profile_for(version: &str) -> Option<Profile> {
    let mut parts = version.split('.');
    let minor = (parts.next()?, parts.next()?);
    match minor {
        ("3", "11") => Some(Profile::Py311),
        ("3", "12") => Some(Profile::Py312),
        ("3", "13") => Some(Profile::Py313),
        ("3", "14") => Some(Profile::Py314),
        ("3", "15") => Some(Profile::Py315),
        _ => None,
    }
}

/// Reads every corpus file of `dir`, sorted by file name.
pub fn load_corpus(dir: &Path) -> Vec<(String, CorpusEntry)> {
    super::read_json_dir(dir)
}

// ---------------------------------------------------------------------------
// Comparing traces
// ---------------------------------------------------------------------------

pub use super::normalize;

/// `None` when `actual` has the events and final states of `expected`;
/// otherwise a short description of the first difference.
pub fn compare(expected: &Value, actual: &Value) -> Option<String> {
    if let Some(err) = actual.get("runner_error") {
        return Some(format!("runner error: {}", err.as_str().unwrap_or("?")));
    }
    let empty = Vec::new();
    let ev = |t: &Value| {
        t.get("events")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_else(|| empty.clone())
    };
    let (e, a) = (ev(expected), ev(actual));
    for i in 0..e.len().max(a.len()) {
        let (x, y) = (e.get(i).map(normalize), a.get(i).map(normalize));
        if x != y {
            let show = |v: Option<Value>| v.map_or("(none)".to_string(), |v| v.to_string());
            return Some(format!(
                "event {i} differs\n  expected: {}\n  actual:   {}",
                show(x),
                show(y)
            ));
        }
    }
    let fin = |t: &Value| normalize(t.get("final").unwrap_or(&Value::Null));
    let (x, y) = (fin(expected), fin(actual));
    if x != y {
        return Some(format!(
            "final states differ\n  expected: {x}\n  actual:   {y}"
        ));
    }
    None
}

/// The expectation as a trace value (`events` and `final`).
pub fn expected_trace(e: &Expectation) -> Value {
    json!({"events": e.events, "final": e.final_})
}

// ---------------------------------------------------------------------------
// Running a scenario
// ---------------------------------------------------------------------------

type Boxed<T> = Pin<Box<dyn std::future::Future<Output = loopspec::Result<T>>>>;

#[derive(Clone)]
enum Entry {
    Task(Task<Value>),
    Fut(Future<Value>),
    Gather(Future<Gathered<Value>>),
}

impl Entry {
    fn done(&self) -> bool {
        match self {
            Entry::Task(t) => t.done(),
            Entry::Fut(f) => f.done(),
            Entry::Gather(g) => g.done(),
        }
    }

    fn cancelled(&self) -> bool {
        match self {
            Entry::Task(t) => t.cancelled(),
            Entry::Fut(f) => f.cancelled(),
            Entry::Gather(g) => g.cancelled(),
        }
    }

    fn result(&self) -> loopspec::Result<Value> {
        match self {
            Entry::Task(t) => t.result(),
            Entry::Fut(f) => f.result(),
            Entry::Gather(g) => g.result().map(|r| gathered(&r)),
        }
    }

    fn cancel(&self, msg: Option<String>) -> bool {
        match self {
            Entry::Task(t) => t.cancel_with(msg),
            Entry::Fut(f) => f.cancel_with(msg),
            Entry::Gather(g) => g.cancel_with(msg),
        }
    }
}

enum HandleRef {
    Plain(Handle),
    Timer(TimerHandle),
}

/// Why an operation could not run: an exception (recorded as an `error`
/// event) or a bad scenario (the run's `runner_error`).
enum Fail {
    Exc(Error),
    Bad(String),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        Fail::Exc(e)
    }
}

/// An exception as trace JSON: `{"exc": class, "args": [...]}`.
pub fn exc_json(e: &Error) -> Value {
    if let Error::ExceptionGroup(g) = e {
        // The message as its one argument; the members, in order, apart.
        let members: Vec<Value> = g.exceptions.iter().map(exc_json).collect();
        return json!({"exc": e.python_type(), "args": [g.message], "exceptions": members});
    }
    let args: Vec<String> = match e {
        Error::Cancelled(m) => m.iter().cloned().collect(),
        Error::Timeout => Vec::new(),
        Error::Panic(m) => (!m.is_empty()).then(|| m.clone()).into_iter().collect(),
        other => {
            let s = other.to_string();
            (!s.is_empty()).then_some(s).into_iter().collect()
        }
    };
    json!({"exc": e.python_type(), "args": args})
}

fn outcome(r: &loopspec::Result<Value>) -> Value {
    match r {
        Ok(v) => json!({"ok": v}),
        Err(e) => exc_json(e),
    }
}

fn gathered(r: &Gathered<Value>) -> Value {
    Value::Array(r.iter().map(outcome).collect())
}

fn make_err(e: &Exc) -> Error {
    if e.ty == "CancelledError" {
        Error::Cancelled(e.msg.clone())
    } else if e.ty == "TimeoutError" && e.msg.is_none() {
        Error::Timeout
    } else {
        Error::raise(e.ty.clone(), e.msg.clone().unwrap_or_default())
    }
}

thread_local! {
    /// The runner of the scenario running on this thread: thread-safe
    /// callbacks and the exception handler (which must be `Send`) find it here.
    static CURRENT: RefCell<Option<Rc<Rt>>> = const { RefCell::new(None) };
}

fn with_rt(f: impl FnOnce(&Rc<Rt>)) {
    let rt = CURRENT.with(|c| c.borrow().clone());
    if let Some(rt) = rt {
        f(&rt);
    }
}

fn record_handler(_: &EventLoop, ctx: &ExceptionContext) {
    if ctx.message.starts_with("Exception in callback") {
        let args = match &ctx.exception {
            Some(e) => exc_json(e)["args"].clone(),
            None => json!([]),
        };
        with_rt(|rt| rt.ev(json!({"ev": "reported", "kind": "callback", "args": args})));
    }
}

struct Rt {
    lp: EventLoop,
    sc: Scenario,
    events: RefCell<Vec<Value>>,
    reg: RefCell<BTreeMap<String, Entry>>,
    handles: RefCell<HashMap<String, HandleRef>>,
    /// Timeouts by name (the `timeout` and `timeout_at` blocks).
    cms: RefCell<HashMap<String, Timeout>>,
    /// Task groups by name (the `task_group` blocks).
    groups: RefCell<HashMap<String, TaskGroup>>,
    done_cbs: RefCell<HashMap<String, LocalDoneCallback<Value>>>,
    gather_cbs: RefCell<HashMap<String, LocalDoneCallback<Gathered<Value>>>>,
    bad: RefCell<Option<String>>,
}

/// More events than this means a scenario that never settles (a callback
/// that keeps rescheduling itself): the run stops with a runner error.
pub const MAX_EVENTS: usize = 20_000;

impl Rt {
    fn ev(&self, mut e: Value) {
        if self.events.borrow().len() >= MAX_EVENTS {
            self.bad(format!(
                "more than {MAX_EVENTS} events: the scenario never settles"
            ));
            self.lp.stop();
            return;
        }
        let mut m = Map::new();
        m.insert("t".into(), json!(self.lp.time()));
        if let Value::Object(o) = &mut e {
            m.append(o);
        }
        self.events.borrow_mut().push(Value::Object(m));
    }

    fn bad(&self, msg: impl Into<String>) {
        let mut b = self.bad.borrow_mut();
        if b.is_none() {
            *b = Some(msg.into());
        }
    }

    fn entry(&self, name: &str) -> Result<Entry, Fail> {
        self.reg
            .borrow()
            .get(name)
            .cloned()
            .ok_or_else(|| Fail::Bad(format!("unknown future or task {name:?}")))
    }

    fn children(&self, names: &[String]) -> Result<Vec<Future<Value>>, Fail> {
        names
            .iter()
            .map(|n| match self.entry(n)? {
                Entry::Task(t) => Ok(t.as_future().clone()),
                Entry::Fut(f) => Ok(f),
                Entry::Gather(_) => {
                    Err(Fail::Bad(format!("{n:?} is not a task or a plain future")))
                }
            })
            .collect()
    }

    fn make_gather(&self, a: &GatherArgs) -> Result<Future<Gathered<Value>>, Fail> {
        let g = loopspec::gather(self.children(&a.of)?, a.return_exceptions)?;
        if let Some(name) = &a.as_ {
            self.reg
                .borrow_mut()
                .insert(name.clone(), Entry::Gather(g.clone()));
        }
        Ok(g)
    }

    fn create_task(self: &Rc<Self>, name: &str) -> Result<Task<Value>, Fail> {
        self.create_task_in(name, None, name)
    }

    /// Makes task `label` of script `name`, in `group` (`None`: the loop's
    /// `create_task`).
    fn create_task_in(
        self: &Rc<Self>,
        name: &str,
        group: Option<&TaskGroup>,
        label: &str,
    ) -> Result<Task<Value>, Fail> {
        if !self.sc.tasks.contains_key(name) {
            return Err(Fail::Bad(format!("unknown task {name:?}")));
        }
        if self.reg.borrow().contains_key(label) {
            return Err(Fail::Bad(format!("task {label:?} created twice")));
        }
        let coro = script_as(self.clone(), name.to_string(), label.to_string());
        let t = match group {
            Some(g) => g.create_task_local(coro)?,
            None => self.lp.create_task_local(coro)?,
        };
        t.set_name(label);
        self.reg
            .borrow_mut()
            .insert(label.to_string(), Entry::Task(t.clone()));
        Ok(t)
    }

    fn cm(&self, name: &str) -> Result<Timeout, Fail> {
        self.cms
            .borrow()
            .get(name)
            .cloned()
            .ok_or_else(|| Fail::Bad(format!("unknown timeout {name:?}")))
    }

    fn known_cb(&self, name: &str) -> Result<(), Fail> {
        if self.sc.callbacks.contains_key(name) {
            Ok(())
        } else {
            Err(Fail::Bad(format!("unknown callback {name:?}")))
        }
    }

    fn callback(self: &Rc<Self>, name: &str) -> Result<impl FnOnce() + 'static, Fail> {
        self.known_cb(name)?;
        let (rt, name) = (self.clone(), name.to_string());
        Ok(move || rt.run_callback(&name))
    }

    fn done_cb(self: &Rc<Self>, name: &str) -> Result<LocalDoneCallback<Value>, Fail> {
        self.named_cb(&self.done_cbs, name)
    }

    fn gather_cb(self: &Rc<Self>, name: &str) -> Result<LocalDoneCallback<Gathered<Value>>, Fail> {
        self.named_cb(&self.gather_cbs, name)
    }

    /// The done callback that runs callback `name`: one per name and future
    /// type, so that `remove_done_callback` finds the one `add_done_callback`
    /// added.
    fn named_cb<T: Send + 'static>(
        self: &Rc<Self>,
        table: &RefCell<HashMap<String, LocalDoneCallback<T>>>,
        name: &str,
    ) -> Result<LocalDoneCallback<T>, Fail> {
        self.known_cb(name)?;
        let mut table = table.borrow_mut();
        let cb = table.entry(name.to_string()).or_insert_with(|| {
            let (rt, name) = (self.clone(), name.to_string());
            Rc::new(move |_: &Future<T>| rt.run_callback(&name))
        });
        Ok(cb.clone())
    }

    fn run_callback(self: &Rc<Self>, name: &str) {
        self.ev(json!({"ev": "cb", "cb": name}));
        let ops = self.sc.callbacks.get(name).cloned().unwrap_or_default();
        for op in &ops {
            if op.kind.is_awaiting() || matches!(op.kind, OpKind::Return(_)) {
                self.bad(format!(
                    "callback {name:?}: {} is only allowed in a task",
                    op.kind.key()
                ));
                return;
            }
            if let OpKind::Raise(e) = &op.kind {
                super::planned_panic(e.msg.clone().unwrap_or_default());
            }
            self.action(name, &op.kind);
        }
    }

    /// Runs a synchronous operation; an exception becomes an `error` event.
    fn action(self: &Rc<Self>, by: &str, kind: &OpKind) {
        match self.try_action(by, kind) {
            Ok(()) => {}
            Err(Fail::Exc(e)) => {
                self.ev(json!({"ev": "error", "by": by, "op": kind.key(), "out": exc_json(&e)}))
            }
            Err(Fail::Bad(msg)) => self.bad(msg),
        }
    }

    fn store_handle(&self, label: Option<&str>, h: HandleRef) {
        if let Some(l) = label {
            self.handles.borrow_mut().insert(l.to_string(), h);
        }
    }

    fn try_action(self: &Rc<Self>, by: &str, kind: &OpKind) -> Result<(), Fail> {
        let lp = &self.lp;
        match kind {
            OpKind::Cancel(a) => {
                let (target, msg) = match a {
                    CancelArgs::Name(n) => (n, None),
                    CancelArgs::WithMsg { target, msg } => (target, msg.clone()),
                };
                let ret = self.entry(target)?.cancel(msg);
                self.ev(json!({"ev": "cancel", "by": by, "target": target, "ret": ret}));
            }
            OpKind::SetResult { target, value } => match self.entry(target)? {
                Entry::Task(t) => t.set_result(value.clone())?,
                Entry::Fut(f) => f.set_result(value.clone())?,
                Entry::Gather(_) => return Err(Fail::Bad("set_result on a gather".into())),
            },
            OpKind::SetException { target, exc } => match self.entry(target)? {
                Entry::Task(t) => t.set_exception(make_err(exc))?,
                Entry::Fut(f) => f.set_exception(make_err(exc))?,
                Entry::Gather(g) => g.set_exception(make_err(exc))?,
            },
            OpKind::Result(target) => {
                let out = outcome(&self.entry(target)?.result());
                self.ev(json!({"ev": "result", "by": by, "target": target, "out": out}));
            }
            OpKind::AddDoneCallback { target, cb } => match self.entry(target)? {
                Entry::Task(t) => t.add_done_callback_local(self.done_cb(cb)?)?,
                Entry::Fut(f) => f.add_done_callback_local(self.done_cb(cb)?)?,
                Entry::Gather(g) => g.add_done_callback_local(self.gather_cb(cb)?)?,
            },
            OpKind::RemoveDoneCallback { target, cb } => {
                let n = match self.entry(target)? {
                    Entry::Task(t) => t.remove_done_callback_local(&self.done_cb(cb)?),
                    Entry::Fut(f) => f.remove_done_callback_local(&self.done_cb(cb)?),
                    Entry::Gather(g) => g.remove_done_callback_local(&self.gather_cb(cb)?),
                };
                self.ev(json!({"ev": "removed", "by": by, "target": target, "cb": cb, "ret": n}));
            }
            OpKind::CallSoon(a) => {
                let (cb, label) = a.parts();
                let h = lp.call_soon_local(self.callback(cb)?)?;
                self.store_handle(label, HandleRef::Plain(h));
            }
            OpKind::CallSoonThreadsafe(a) => {
                let (cb, label) = a.parts();
                self.known_cb(cb)?;
                let name = cb.to_string();
                let h = lp.call_soon_threadsafe(move || {
                    with_rt(|rt| rt.run_callback(&name));
                })?;
                self.store_handle(label, HandleRef::Plain(h));
            }
            OpKind::CallLater { cb, delay, handle } => {
                let h = lp.call_later_local(delay.0, self.callback(cb)?)?;
                self.store_handle(handle.as_deref(), HandleRef::Timer(h));
            }
            OpKind::CallAt { cb, when, handle } => {
                let h = lp.call_at_local(when.0, self.callback(cb)?)?;
                self.store_handle(handle.as_deref(), HandleRef::Timer(h));
            }
            // A label not bound (yet) does nothing.
            OpKind::CancelHandle(label) => match self.handles.borrow().get(label) {
                Some(HandleRef::Plain(h)) => h.cancel(),
                Some(HandleRef::Timer(h)) => h.cancel(),
                None => {}
            },
            OpKind::Stop(()) => lp.stop(),
            OpKind::CreateTask(name) => {
                self.create_task(name)?;
            }
            OpKind::MakeGather(a) => {
                if a.as_.is_none() {
                    return Err(Fail::Bad("make_gather needs \"as\"".into()));
                }
                self.make_gather(a)?;
            }
            OpKind::Check(target) => {
                let e = self.entry(target)?;
                let state = if e.cancelled() {
                    "cancelled"
                } else if e.done() {
                    "done"
                } else {
                    "pending"
                };
                self.ev(json!({"ev": "check", "by": by, "target": target, "state": state}));
            }
            OpKind::Cancelling(target) | OpKind::Uncancel(target) => {
                let Entry::Task(t) = self.entry(target)? else {
                    return Err(Fail::Bad(format!("{target:?} is not a task")));
                };
                let (ev, ret) = if matches!(kind, OpKind::Cancelling(_)) {
                    ("cancelling", t.cancelling())
                } else {
                    ("uncancel", t.uncancel())
                };
                self.ev(json!({"ev": ev, "by": by, "target": target, "ret": ret}));
            }
            OpKind::Record(label) => self.ev(json!({"ev": "record", "by": by, "label": label})),
            OpKind::TgCreateTask { group, coro, name } => {
                let g = self.groups.borrow().get(group).cloned();
                let g = g.ok_or_else(|| Fail::Bad(format!("unknown task group {group:?}")))?;
                self.create_task_in(coro, Some(&g), name.as_deref().unwrap_or(coro))?;
            }
            OpKind::Reschedule { cm, when, delay } => {
                let when = match (when, delay) {
                    (Some(w), _) => Some(w.0),
                    (None, Some(d)) => Some(lp.time() + d.0),
                    (None, None) => None,
                };
                self.cm(cm)?.reschedule(when)?;
            }
            OpKind::Expired(cm) => {
                let ret = self.cm(cm)?.expired();
                self.ev(json!({"ev": "expired", "by": by, "cm": cm, "ret": ret}));
            }
            OpKind::CmWhen(cm) => {
                let ret = self.cm(cm)?.when();
                self.ev(json!({"ev": "cm_when", "by": by, "cm": cm, "ret": ret}));
            }
            OpKind::Shield { target, name } => {
                let outer = match self.entry(target)? {
                    Entry::Task(t) => loopspec::shield(t)?,
                    Entry::Fut(f) => loopspec::shield(f)?,
                    Entry::Gather(_) => return Err(Fail::Bad("shield of a gather".into())),
                };
                if self.reg.borrow().contains_key(name) {
                    return Err(Fail::Bad(format!("{name:?} named twice")));
                }
                self.reg
                    .borrow_mut()
                    .insert(name.clone(), Entry::Fut(outer));
            }
            OpKind::SetHandler(mode) => match mode.as_str() {
                "record" => lp.set_exception_handler(Some(Arc::new(record_handler))),
                "raise" => lp.set_exception_handler(Some(Arc::new(|_: &EventLoop, _: &_| {
                    super::planned_panic("exception handler failed".into())
                }))),
                "default" => lp.set_exception_handler(None),
                other => return Err(Fail::Bad(format!("bad set_handler {other:?}"))),
            },
            other => {
                return Err(Fail::Bad(format!(
                    "{} is not a synchronous operation",
                    other.key()
                )));
            }
        }
        Ok(())
    }

    fn run_until_complete(self: &Rc<Self>, target: &RunTarget) -> Result<Value, Fail> {
        let lp = &self.lp;
        let r = match target {
            RunTarget::Task(name) => {
                let t = match self.reg.borrow().get(name).cloned() {
                    Some(Entry::Task(t)) => Some(t),
                    Some(_) => return Err(Fail::Bad(format!("{name:?} is not a task"))),
                    None => None,
                };
                let t = match t {
                    Some(t) => t,
                    None => self.create_task(name)?,
                };
                lp.run_until_complete(t)
            }
            RunTarget::Future(name) => match self.entry(name)? {
                Entry::Task(t) => lp.run_until_complete(t),
                Entry::Fut(f) => lp.run_until_complete(f),
                Entry::Gather(g) => lp.run_until_complete(g).map(|r| gathered(&r)),
            },
            RunTarget::Gather(a) => {
                let g = self.make_gather(a)?;
                lp.run_until_complete(g).map(|r| gathered(&r))
            }
        };
        Ok(outcome(&r))
    }

    fn run_forever(self: &Rc<Self>, args: &RunForeverArgs) -> Value {
        if args.from_thread.is_empty() {
            return outcome(&self.lp.run_forever().map(|()| Value::Null));
        }
        for n in &args.from_thread {
            if let Err(Fail::Bad(m)) = self.known_cb(n) {
                self.bad(m);
                return Value::Null;
            }
        }
        // Another thread submits each callback once the loop has parked
        // (blocked with nothing to do), then waits for the next park.
        let done = Arc::new(AtomicBool::new(false));
        let (lp, names, stop) = (self.lp.clone(), args.from_thread.clone(), done.clone());
        let mut seen = lp.inbox_stats().parks;
        let external = std::thread::Builder::new()
            .name("external".into())
            .spawn(move || {
                for name in names {
                    loop {
                        if stop.load(Ordering::Acquire) {
                            return;
                        }
                        let parks = lp.inbox_stats().parks;
                        if parks > seen {
                            seen = parks;
                            break;
                        }
                        std::thread::yield_now();
                    }
                    let _ = lp.call_soon_threadsafe(move || with_rt(|rt| rt.run_callback(&name)));
                }
            })
            .expect("spawn the external thread");
        let r = self.lp.run_forever();
        done.store(true, Ordering::Release);
        let _ = external.join();
        outcome(&r.map(|()| Value::Null))
    }

    fn final_states(&self) -> Value {
        let mut out = Map::new();
        for (name, e) in self.reg.borrow().iter() {
            let v = if !e.done() {
                json!({"state": "pending"})
            } else if e.cancelled() {
                json!({"state": "cancelled", "args": outcome(&e.result())["args"]})
            } else {
                json!({"state": "finished", "out": outcome(&e.result())})
            };
            out.insert(name.clone(), v);
        }
        Value::Object(out)
    }
}

fn arm_horizon(rt: &Rc<Rt>, delay: f64) {
    let r = rt.clone();
    let _ = rt.lp.call_later_local(delay, move || {
        r.ev(json!({"ev": "horizon"}));
        r.lp.stop();
        arm_horizon(&r, delay);
    });
}

/// A task's script as a coroutine.
fn script(rt: Rc<Rt>, name: String) -> Boxed<Value> {
    script_as(rt, name.clone(), name)
}

/// Script `name` as a coroutine whose events name it `label`.
fn script_as(rt: Rc<Rt>, name: String, label: String) -> Boxed<Value> {
    Box::pin(async move {
        rt.ev(json!({"ev": "start", "task": label}));
        let steps = rt.sc.tasks.get(&name).cloned().unwrap_or_default();
        Ok(run_steps(rt, label, steps, None)
            .await?
            .unwrap_or(Value::Null))
    })
}

/// Runs task steps: `block` names the enclosing block (`None`: the script
/// itself). `Ok(Some(v))` when a `return` step ended the script.
fn run_steps(
    rt: Rc<Rt>,
    name: String,
    steps: Vec<Op>,
    block: Option<String>,
) -> Boxed<Option<Value>> {
    Box::pin(async move {
        let resumed = |i: usize, key: String, out: Value| {
            let mut e = json!({"ev": "resume", "task": name, "step": i, "op": key, "out": out});
            if let Some(b) = &block {
                e["block"] = json!(b);
            }
            rt.ev(e);
        };
        for (i, op) in steps.iter().enumerate() {
            match &op.kind {
                k if k.body().is_some() => {
                    let r = run_block(rt.clone(), name.clone(), k.clone()).await;
                    let out = match &r {
                        Ok(_) => json!({"ok": null}),
                        Err(e) => exc_json(e),
                    };
                    resumed(i, k.key(), out);
                    match r {
                        Ok(Some(v)) => return Ok(Some(v)),
                        Ok(None) => {}
                        Err(_) if op.catch => {}
                        Err(e) => return Err(e),
                    }
                }
                k if k.is_awaiting() => {
                    let r = awaiting(rt.clone(), name.clone(), k.clone()).await;
                    resumed(i, k.key(), outcome(&r));
                    if let Err(e) = r
                        && !op.catch
                    {
                        return Err(e);
                    }
                }
                OpKind::Return(v) => return Ok(Some(v.clone())),
                OpKind::Raise(e) => return Err(make_err(e)),
                k => rt.action(&name, k),
            }
        }
        Ok(None)
    })
}

/// An `async with` block around its body; `Ok(Some(v))` when a `return` in
/// the body ended the script.
async fn run_block(rt: Rc<Rt>, name: String, kind: OpKind) -> loopspec::Result<Option<Value>> {
    match kind {
        OpKind::TaskGroup(a) => {
            // Bound before `__aenter__`, as the CPython runner does.
            let g = TaskGroup::new();
            rt.groups.borrow_mut().insert(a.name.clone(), g.clone());
            g.enter().await?;
            let body = run_steps(rt, name, a.body, Some(a.name)).await;
            g.exit(body).await
        }
        OpKind::Timeout(ref a) | OpKind::TimeoutAt(ref a) => {
            let label = a.name.clone().unwrap_or_else(|| kind.key());
            let (cm_name, body) = (a.name.clone(), a.body.clone());
            let inside = move |cm: Timeout| {
                if let Some(n) = cm_name {
                    rt.cms.borrow_mut().insert(n, cm);
                }
                run_steps(rt, name, body, Some(label))
            };
            match kind {
                OpKind::Timeout(a) => loopspec::timeout(a.delay.map(|d| d.0), inside).await,
                _ => loopspec::timeout_at(a.when.map(|w| w.0), inside).await,
            }
        }
        other => {
            let m = format!("{} is not supported by this runner", other.key());
            rt.bad(m.clone());
            Err(Error::raise("RunnerError", m))
        }
    }
}

async fn awaiting(rt: Rc<Rt>, name: String, kind: OpKind) -> loopspec::Result<Value> {
    let bad = |rt: &Rt, f: Fail| match f {
        Fail::Exc(e) => Err(e),
        Fail::Bad(m) => {
            rt.bad(m.clone());
            Err(Error::raise("RunnerError", m))
        }
    };
    match kind {
        OpKind::Sleep(d) => loopspec::sleep(d.0).await.map(|()| Value::Null),
        OpKind::Yield(()) => loopspec::yield_now().await.map(|()| Value::Null),
        OpKind::Await(target) => match rt.entry(&target) {
            Ok(Entry::Task(t)) => t.await,
            Ok(Entry::Fut(f)) => f.await,
            Ok(Entry::Gather(g)) => g.await.map(|r| gathered(&r)),
            Err(f) => bad(&rt, f),
        },
        OpKind::Gather(a) => match rt.make_gather(&a) {
            Ok(g) => g.await.map(|r| gathered(&r)),
            Err(f) => bad(&rt, f),
        },
        OpKind::Wait(a) => {
            let kids = match rt.children(&a.of) {
                Ok(k) => k,
                Err(f) => return bad(&rt, f),
            };
            let rw = match a.return_when.as_deref().unwrap_or("ALL_COMPLETED") {
                "ALL_COMPLETED" => ReturnWhen::AllCompleted,
                "FIRST_COMPLETED" => ReturnWhen::FirstCompleted,
                "FIRST_EXCEPTION" => ReturnWhen::FirstException,
                other => return bad(&rt, Fail::Bad(format!("bad return_when {other:?}"))),
            };
            let (done, pending) = loopspec::wait(kids, a.timeout.map(|t| t.0), rw).await?;
            let mut order: Vec<&String> = Vec::new();
            for n in &a.of {
                if !order.contains(&n) {
                    order.push(n);
                }
            }
            let pick = |set: &[Future<Value>]| -> Vec<String> {
                order
                    .iter()
                    .filter(|n| {
                        rt.children(std::slice::from_ref(**n))
                            .is_ok_and(|f| set.contains(&f[0]))
                    })
                    .map(|n| (*n).clone())
                    .collect()
            };
            Ok(json!({"done": pick(&done), "pending": pick(&pending)}))
        }
        OpKind::WaitFor(a) => {
            let timeout = a.timeout.map(|t| t.0);
            match &a.target {
                WaitForTarget::Coro { coro } => {
                    if !rt.sc.tasks.contains_key(coro) {
                        return bad(&rt, Fail::Bad(format!("unknown task {coro:?}")));
                    }
                    loopspec::wait_for(script(rt.clone(), coro.clone()), timeout).await
                }
                WaitForTarget::Name(target) => match rt.entry(target) {
                    Ok(Entry::Task(t)) => loopspec::wait_for(t, timeout).await,
                    Ok(Entry::Fut(f)) => loopspec::wait_for(f, timeout).await,
                    Ok(Entry::Gather(g)) => {
                        loopspec::wait_for(g, timeout).await.map(|r| gathered(&r))
                    }
                    Err(f) => bad(&rt, f),
                },
            }
        }
        OpKind::AsCompleted(a) => {
            let kids = match rt.children(&a.of) {
                Ok(k) => k,
                Err(f) => return bad(&rt, f),
            };
            let mut it = loopspec::as_completed(kids, a.timeout.map(|t| t.0))?;
            while let Some(item) = it.next().await {
                let r = item.and_then(|f| f.result());
                rt.ev(json!({"ev": "yielded", "task": name, "out": outcome(&r)}));
            }
            Ok(Value::Null)
        }
        other => bad(
            &rt,
            Fail::Bad(format!("{} is not an awaiting step", other.key())),
        ),
    }
}

/// Runs `sc` on a new virtual-clock loop of `profile` and returns its trace:
/// `{"id", "events", "final"}`, or `{"id", "runner_error"}` for a scenario
/// that cannot run.
pub fn run(sc: &Scenario, profile: Profile) -> Value {
    super::install_quiet_hook();
    let lp = EventLoop::builder()
        .clock(ClockKind::Virtual)
        .profile(profile)
        .build();
    loopspec::set_event_loop(Some(&lp));
    lp.set_exception_handler(Some(Arc::new(record_handler)));
    if sc.eager_tasks {
        lp.set_task_factory(loopspec::TaskFactory::Eager);
    }
    let rt = Rc::new(Rt {
        lp: lp.clone(),
        sc: sc.clone(),
        events: RefCell::default(),
        reg: RefCell::default(),
        handles: RefCell::default(),
        cms: RefCell::default(),
        groups: RefCell::default(),
        done_cbs: RefCell::default(),
        gather_cbs: RefCell::default(),
        bad: RefCell::default(),
    });
    let previous = CURRENT.with(|c| c.replace(Some(rt.clone())));
    for f in &sc.futures {
        rt.reg
            .borrow_mut()
            .insert(f.clone(), Entry::Fut(lp.create_future()));
    }
    if let Some(h) = sc.horizon {
        arm_horizon(&rt, h);
    }
    for op in &sc.main {
        if rt.bad.borrow().is_some() {
            break;
        }
        match &op.kind {
            OpKind::RunUntilComplete(target) => match rt.run_until_complete(target) {
                Ok(out) => rt.ev(json!({"ev": "run_until_complete", "out": out})),
                Err(Fail::Exc(e)) => {
                    rt.ev(json!({"ev": "run_until_complete", "out": exc_json(&e)}))
                }
                Err(Fail::Bad(m)) => rt.bad(m),
            },
            OpKind::RunForever(args) => {
                let out = rt.run_forever(&args.clone().unwrap_or_default());
                rt.ev(json!({"ev": "run_forever", "out": out}));
            }
            k if k.is_awaiting() || matches!(k, OpKind::Return(_)) => {
                rt.bad(format!("{} is only allowed in a task", k.key()));
            }
            k => rt.action("main", k),
        }
    }
    let trace = match rt.bad.borrow().clone() {
        Some(msg) => json!({"id": sc.id, "runner_error": msg}),
        None => json!({"id": sc.id, "events": *rt.events.borrow(), "final": rt.final_states()}),
    };
    if lp.is_running() {
        lp.stop();
    }
    let _ = lp.close();
    // Break the runner's reference cycles (callbacks and tasks hold it).
    rt.reg.borrow_mut().clear();
    rt.handles.borrow_mut().clear();
    rt.cms.borrow_mut().clear();
    rt.groups.borrow_mut().clear();
    rt.done_cbs.borrow_mut().clear();
    rt.gather_cbs.borrow_mut().clear();
    CURRENT.with(|c| c.replace(previous));
    loopspec::set_event_loop(None);
    trace
}

/// Parses one JSON line: a scenario, or a corpus entry (its `scenario`, with
/// the entry's `id`).
pub fn parse_line(line: &str) -> Result<Scenario, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("bad JSON: {e}"))?;
    let (sc, id) = match v.get("scenario") {
        Some(sc) => (sc.clone(), v.get("id").cloned()),
        None => (v, None),
    };
    let mut sc: Scenario = serde_json::from_value(sc).map_err(|e| format!("bad scenario: {e}"))?;
    if let Some(Value::String(id)) = id {
        sc.id = Some(id);
    }
    Ok(sc)
}
