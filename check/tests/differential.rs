//! Differential conformance: random scenarios (conformance/FORMAT.md) run on
//! CPython's asyncio (conformance/python/runner.py, virtual clock) and on
//! loopspec (`loopspec_check::conformance::single`), and the traces must be
//! equal — every event, its virtual time, and every future's final state.
//!
//! It runs against every CPython 3.10–3.15 it finds (`LOOPSPEC_PYTHONS`, a
//! `:`-separated list of interpreters such as `.ci/pythons` prints, replaces
//! the search; otherwise the wrappers `.ci/pythons` left in
//! `target/pythons/bin`, `python3.X` on `PATH`, pyenv's versions, `python3`),
//! one runner process per version for the whole run, and prints which it
//! found and how many scenarios each compared. loopspec runs in the profile
//! of each version (`Profile::for_python`: 3.10 and 3.11 → `Py311`, ...,
//! 3.15 → `Py315`). A scenario
//! is compared only on the versions it holds for (`wait_for` on every one:
//! the `Py311` profile builds it the 3.10/3.11 way, SPEC.md WAITFOR-1/5),
//! `cancelling`/`uncancel` on 3.11+, `asyncio.TaskGroup` and
//! `asyncio.timeout`/`timeout_at` blocks on 3.11+ (they are new there),
//! `eager_tasks` (the eager task factory) on 3.12+, and on 3.10 only scenarios without cancel messages (3.10 does not propagate
//! them) or an empty `wait` (another message).
//!
//! Besides callbacks, futures, tasks and the combinators, the generator
//! writes programs with blocks (FORMAT.md, "Blocks"): task groups whose
//! children fail while siblings sleep or in the same iteration (the order of
//! the exception group's members), bodies that raise or are cancelled from a
//! timer, nested groups, timeouts around groups and groups around timeouts,
//! deadlines that fall in the iteration the body finishes, `reschedule`
//! earlier, later or to `None`, `expired` and `when` inside and after the
//! block; and `shield`s of tasks and futures whose outer future is awaited,
//! cancelled, then the inner awaited. A quarter of the programs run with
//! the eager task factory (none that uses `as_completed`, whose set CPython
//! yields already-done futures from in address order). The summary counts,
//! per version, the scenarios compared with each of TaskGroup, timeout,
//! shield and eager tasks.
//!
//! `LOOPSPEC_DIFFERENTIAL_CASES` scenarios per run (default 4,000, so that
//! 3.10, which about a quarter of them apply to, compares 500 with a
//! shield), from the
//! fixed seed `LOOPSPEC_DIFFERENTIAL_SEED` (default below);
//! `LOOPSPEC_DIFFERENTIAL_DUMP=file` also writes them there as JSON lines
//! (for other implementations' runners). A mismatch is
//! shrunk and written as a corpus file (with CPython's traces as its
//! expectations) under the test's target directory, and printed: name its
//! rules and move it to conformance/scenarios/.
//!
//! Under `CI=true` every one of the six versions must be found, or the test
//! fails naming those it found; otherwise it runs on what it finds, and with
//! none prints a skip notice and passes.

use loopspec::Profile;
use loopspec_check::conformance::single::{
    AsCompletedArgs, CancelArgs, CbArgs, CorpusEntry, Exc, Expectation, GatherArgs, Num, Op,
    OpKind, RunTarget, Scenario, TaskGroupArgs, TimeoutArgs, WaitArgs, WaitForArgs, WaitForTarget,
    normalize,
};
use loopspec_check::repo_root;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

const MINORS: [&str; 6] = ["3.10", "3.11", "3.12", "3.13", "3.14", "3.15"];
const DEFAULT_SEED: u64 = 0x1005_5bec;
/// Whether the generator makes `task_group` blocks (on once loopspec has
/// `TaskGroup`).
const TASK_GROUPS: bool = true;

// ---------------------------------------------------------------------------
// CPython runners
// ---------------------------------------------------------------------------

fn runner_script() -> PathBuf {
    repo_root().join("conformance/python/runner.py")
}

/// The full version (`3.11.7`) of an interpreter, asked through the runner.
fn version_of(exe: &Path) -> Option<String> {
    let out = Command::new(exe)
        .arg(runner_script())
        .arg("--version")
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let v = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && v.split('.').count() == 3).then_some(v)
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Candidate interpreters, in order of preference.
fn candidates() -> Vec<PathBuf> {
    if let Ok(list) = std::env::var("LOOPSPEC_PYTHONS") {
        return list
            .split(':')
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect();
    }
    let mut out = Vec::new();
    let cached = repo_root().join("target/pythons/bin");
    for m in MINORS {
        out.push(cached.join(format!("python{m}")));
        out.extend(on_path(&format!("python{m}")));
    }
    let mut roots = Vec::new();
    if let Ok(o) = Command::new("pyenv").arg("root").output()
        && o.status.success()
    {
        roots.push(PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    }
    if let Some(home) = std::env::var_os("HOME") {
        roots.push(Path::new(&home).join(".pyenv"));
    }
    for root in roots {
        let Ok(dir) = std::fs::read_dir(root.join("versions")) else {
            continue;
        };
        let mut versions: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
        versions.sort();
        for v in versions {
            let name = v.file_name().map(|n| n.to_string_lossy().into_owned());
            if name.is_some_and(|n| MINORS.iter().any(|m| n.starts_with(&format!("{m}.")))) {
                out.push(v.join("bin/python3"));
            }
        }
    }
    out.extend(on_path("python3"));
    out
}

/// One CPython runner process, fed scenarios as JSON lines.
struct PyRunner {
    minor: String,
    version: String,
    exe: PathBuf,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// What the runner wrote to stderr, shown if it dies. A passing run
    /// writes there too: CPython reports a scenario's coroutine that its
    /// closed loop left suspended ("Exception ignored in: <coroutine ...>")
    /// when the coroutine is collected; the trace, on stdout, is what counts.
    stderr: Arc<Mutex<String>>,
}

impl PyRunner {
    fn start(exe: &Path, version: &str) -> PyRunner {
        let mut child = Command::new(exe)
            .arg(runner_script())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", exe.display()));
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (mut from, to) = (child.stderr.take().expect("stderr"), stderr.clone());
        std::thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n @ 1..) = from.read(&mut buf) {
                let mut s = to.lock().unwrap();
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
                // Only the end matters: what the runner said before dying.
                if s.len() > 64 * 1024 {
                    let mut cut = s.len() - 32 * 1024;
                    while !s.is_char_boundary(cut) {
                        cut += 1;
                    }
                    s.drain(..cut);
                }
            }
        });
        PyRunner {
            minor: version.split('.').take(2).collect::<Vec<_>>().join("."),
            version: version.to_string(),
            exe: exe.to_path_buf(),
            child,
            stdin,
            stdout,
            stderr,
        }
    }

    fn run(&mut self, line: &str) -> Value {
        writeln!(self.stdin, "{line}").expect("write to the Python runner");
        self.stdin.flush().expect("flush the Python runner");
        let mut out = String::new();
        let n = self
            .stdout
            .read_line(&mut out)
            .expect("read from the Python runner");
        assert!(
            n > 0,
            "the Python runner {} exited; its stderr ends:\n{}",
            self.version,
            self.stderr.lock().unwrap()
        );
        serde_json::from_str(&out).expect("a trace from the Python runner")
    }
}

impl Drop for PyRunner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One runner per CPython minor version found, oldest first.
fn find_pythons() -> Vec<PyRunner> {
    let mut found: BTreeMap<String, (PathBuf, String)> = BTreeMap::new();
    for exe in candidates() {
        let Some(v) = version_of(&exe) else { continue };
        let minor: String = v.split('.').take(2).collect::<Vec<_>>().join(".");
        if MINORS.contains(&minor.as_str()) && !found.contains_key(&minor) {
            found.insert(minor, (exe, v));
        }
    }
    let mut out: Vec<PyRunner> = found
        .values()
        .map(|(exe, v)| PyRunner::start(exe, v))
        .collect();
    out.sort_by_key(|r| {
        r.minor
            .split('.')
            .nth(1)
            .and_then(|m| m.parse::<u32>().ok())
    });
    out
}

fn profile_of(minor: &str) -> Profile {
    let n: Option<u32> = minor.strip_prefix("3.").and_then(|m| m.parse().ok());
    n.and_then(|m| Profile::for_python(3, m))
        .unwrap_or(Profile::Py311)
}

// ---------------------------------------------------------------------------
// Which versions a scenario holds for
// ---------------------------------------------------------------------------

/// Every operation of a scenario, blocks' bodies included.
fn all_ops(sc: &Scenario) -> Vec<&Op> {
    fn walk<'a>(ops: &'a [Op], out: &mut Vec<&'a Op>) {
        for op in ops {
            out.push(op);
            if let Some(body) = op.kind.body() {
                walk(body, out);
            }
        }
    }
    let mut out = Vec::new();
    for ops in sc.tasks.values().chain(sc.callbacks.values()) {
        walk(ops, &mut out);
    }
    walk(&sc.main, &mut out);
    out
}

/// The features of a scenario the summary counts: `TaskGroup`, `timeout`
/// (`timeout` or `timeout_at`), `shield`, eager tasks.
fn features(sc: &Scenario) -> Vec<&'static str> {
    let ops = all_ops(sc);
    let has = |f: fn(&OpKind) -> bool| ops.iter().any(|op| f(&op.kind));
    let mut out = Vec::new();
    if has(|k| matches!(k, OpKind::TaskGroup(_))) {
        out.push("TaskGroup");
    }
    if has(|k| matches!(k, OpKind::Timeout(_) | OpKind::TimeoutAt(_))) {
        out.push("timeout");
    }
    if has(|k| matches!(k, OpKind::Shield { .. })) {
        out.push("shield");
    }
    if sc.eager_tasks {
        out.push("eager tasks");
    }
    out
}

/// The CPython minor versions whose behaviour loopspec models for `sc`.
fn holds_for(sc: &Scenario) -> Vec<&'static str> {
    let mut min = 10;
    let mut on_310 = true;
    if sc.eager_tasks {
        min = 12; // asyncio.eager_task_factory is new in 3.12
    }
    for op in all_ops(sc) {
        match &op.kind {
            OpKind::Cancelling(_) | OpKind::Uncancel(_) => min = min.max(11),
            // asyncio.TaskGroup and asyncio.timeout are new in 3.11.
            OpKind::TaskGroup(_)
            | OpKind::Timeout(_)
            | OpKind::TimeoutAt(_)
            | OpKind::TgCreateTask { .. }
            | OpKind::Reschedule { .. }
            | OpKind::Expired(_)
            | OpKind::CmWhen(_) => min = min.max(11),
            OpKind::Cancel(CancelArgs::WithMsg { msg: Some(_), .. }) => on_310 = false,
            OpKind::Raise(Exc { ty, msg: Some(_) }) if ty == "CancelledError" => on_310 = false,
            OpKind::Wait(w) if w.of.is_empty() => on_310 = false,
            _ => {}
        }
    }
    MINORS
        .into_iter()
        .filter(|m| {
            let minor: u32 = m[2..].parse().unwrap();
            minor >= min && (minor > 10 || on_310)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Generating scenarios
// ---------------------------------------------------------------------------

/// A synchronous operation; indices are resolved against what exists.
#[derive(Debug, Clone)]
enum RawAct {
    Cancel {
        target: u8,
        msg: Option<u8>,
    },
    SetResult {
        target: u8,
        v: u8,
    },
    SetException {
        target: u8,
        e: u8,
    },
    CallSoon {
        cb: u8,
        handle: Option<u8>,
    },
    CallLater {
        cb: u8,
        delay: i8,
        handle: Option<u8>,
    },
    CancelHandle(u8),
    Stop,
    Record,
    Check(u8),
    Result(u8),
    Cancelling(u8),
    Uncancel(u8),
    AddDoneCallback {
        target: u8,
        cb: u8,
    },
    RemoveDoneCallback {
        target: u8,
        cb: u8,
    },
    Raise(u8),
}

#[derive(Debug, Clone)]
enum RawStep {
    Sleep(u8, bool),
    Yield,
    Await(u8, bool),
    Act(RawAct),
    Return(u8),
    Raise(u8, Option<u8>),
    /// `shield` of an awaitable target, then (by mode) awaiting the outer,
    /// cancelling it, awaiting the inner.
    Shield(u8, u8),
}

/// A step of a block's body.
#[derive(Debug, Clone)]
enum RawBStep {
    Step(RawStep),
    /// `tg_create_task` of a new child script in the innermost (or the
    /// outermost) enclosing group.
    Spawn {
        child: Vec<RawStep>,
        outer: bool,
        /// The child, after its first step, makes a sibling in its group
        /// (which may be shutting down or finished by then).
        sibling: bool,
    },
    /// Cancels a child this block made (the i-th, wrapping).
    CancelChild(u8),
    /// Several children of the innermost group, each sleeping (delay) then
    /// raising (kind) or returning: children failing in one iteration.
    Fan(Vec<(u8, Option<u8>)>),
    /// The body raises (ValueError, KeyError, CancelledError).
    Raise(u8),
    Nested(RawBlock),
    /// Reschedules the innermost timeout: `Some(d)` now + d, or None.
    Reschedule(Option<i8>),
    /// Reschedules the innermost timeout to a scenario time.
    RescheduleAt(u8),
    Expired,
    CmWhen,
}

/// A block: 0 `task_group`, 1 `timeout`, 2 `timeout_at`.
#[derive(Debug, Clone)]
struct RawBlock {
    kind: u8,
    time: Option<i8>,
    body: Vec<RawBStep>,
    catch: bool,
}

#[derive(Debug, Clone)]
enum RawComb {
    Gather {
        of: Vec<u8>,
        re: bool,
        cancel_at: Option<(u8, Option<u8>)>,
        catch: bool,
    },
    Wait {
        of: Vec<u8>,
        timeout: Option<i8>,
        rw: u8,
    },
    WaitFor {
        target: Option<u8>,
        timeout: Option<i8>,
        catch: bool,
    },
    AsCompleted {
        spawn: Vec<Vec<RawStep>>,
        dups: Vec<u8>,
        timeout: Option<i8>,
    },
    MakeGatherCheck {
        of: Vec<u8>,
        re: bool,
    },
}

#[derive(Debug, Clone)]
enum RawDrive {
    Driver {
        before: Vec<RawStep>,
        comb: RawComb,
        after: Vec<RawStep>,
    },
    Gather {
        of: Vec<u8>,
        re: bool,
    },
    Forever,
    Task(u8),
    /// The driver `m` runs a block, with steps before and after (and
    /// operations on the block's timeout after it); `kill` cancels `m` from
    /// a timer (delay, message).
    Block {
        before: Vec<RawStep>,
        block: RawBlock,
        after: Vec<RawStep>,
        after_cm: Vec<u8>,
        kill: Option<(u8, Option<u8>)>,
    },
}

#[derive(Debug, Clone)]
struct Raw {
    futures: u8,
    /// Per future: a timer that completes it (delay, how).
    fut_timers: Vec<Option<(u8, u8)>>,
    tasks: Vec<Vec<RawStep>>,
    callbacks: Vec<Vec<RawAct>>,
    coro: Vec<RawStep>,
    pre: Vec<RawAct>,
    drive: RawDrive,
    between: Vec<RawAct>,
    then: Option<RawDrive>,
    /// The loop's task factory is `eager_task_factory` (3.12+).
    eager: bool,
}

fn act() -> impl Strategy<Value = RawAct> {
    let u = any::<u8>;
    prop_oneof![
        4 => (u(), prop::option::weighted(0.3, 0u8..3)).prop_map(|(target, msg)| RawAct::Cancel { target, msg }),
        2 => (u(), u()).prop_map(|(target, v)| RawAct::SetResult { target, v }),
        1 => (u(), u()).prop_map(|(target, e)| RawAct::SetException { target, e }),
        3 => (u(), prop::option::of(0u8..3)).prop_map(|(cb, handle)| RawAct::CallSoon { cb, handle }),
        3 => (u(), -1i8..=3, prop::option::of(0u8..3))
            .prop_map(|(cb, delay, handle)| RawAct::CallLater { cb, delay, handle }),
        2 => (0u8..3).prop_map(RawAct::CancelHandle),
        1 => Just(RawAct::Stop),
        1 => Just(RawAct::Record),
        2 => u().prop_map(RawAct::Check),
        1 => u().prop_map(RawAct::Result),
        1 => u().prop_map(RawAct::Cancelling),
        1 => u().prop_map(RawAct::Uncancel),
        2 => (u(), u()).prop_map(|(target, cb)| RawAct::AddDoneCallback { target, cb }),
        1 => (u(), u()).prop_map(|(target, cb)| RawAct::RemoveDoneCallback { target, cb }),
        1 => u().prop_map(RawAct::Raise),
    ]
}

fn step() -> impl Strategy<Value = RawStep> {
    prop_oneof![
        5 => (0u8..=3, prop::bool::weighted(0.2)).prop_map(|(d, c)| RawStep::Sleep(d, c)),
        2 => Just(RawStep::Yield),
        3 => (any::<u8>(), prop::bool::weighted(0.3)).prop_map(|(t, c)| RawStep::Await(t, c)),
        4 => act().prop_map(RawStep::Act),
        2 => any::<u8>().prop_map(RawStep::Return),
        1 => (0u8..3, prop::option::of(0u8..3)).prop_map(|(k, m)| RawStep::Raise(k, m)),
        3 => (any::<u8>(), 0u8..4).prop_map(|(t, m)| RawStep::Shield(t, m)),
    ]
}

/// A child of a task group: mostly sleeps then fails or returns, so that
/// children fail while siblings sleep, or in the same iteration.
fn child() -> impl Strategy<Value = Vec<RawStep>> {
    prop_oneof![
        3 => (0u8..=2, prop::bool::weighted(0.2), 0u8..2)
            .prop_map(|(d, c, k)| vec![RawStep::Sleep(d, c), RawStep::Raise(k, None)]),
        2 => (0u8..=3, prop::bool::weighted(0.2), any::<u8>())
            .prop_map(|(d, c, v)| vec![RawStep::Sleep(d, c), RawStep::Return(v)]),
        2 => steps(3),
    ]
}

fn bstep(nested: bool) -> BoxedStrategy<RawBStep> {
    let leaf = prop_oneof![
        4 => step().prop_map(RawBStep::Step),
        4 => (child(), prop::bool::weighted(0.3), prop::bool::weighted(0.2))
            .prop_map(|(child, outer, sibling)| RawBStep::Spawn { child, outer, sibling }),
        1 => any::<u8>().prop_map(RawBStep::CancelChild),
        2 => prop::collection::vec((0u8..=1, prop::option::weighted(0.7, 0u8..2)), 2..=3).prop_map(RawBStep::Fan),
        1 => (0u8..3).prop_map(RawBStep::Raise),
        1 => prop::option::weighted(0.8, -1i8..=4).prop_map(RawBStep::Reschedule),
        1 => (0u8..=5).prop_map(RawBStep::RescheduleAt),
        1 => Just(RawBStep::Expired),
        1 => Just(RawBStep::CmWhen),
    ];
    if nested {
        prop_oneof![9 => leaf, 3 => block(false).prop_map(RawBStep::Nested)].boxed()
    } else {
        leaf.boxed()
    }
}

/// A block; `nested`: its body may hold blocks (one level more).
fn block(nested: bool) -> BoxedStrategy<RawBlock> {
    (
        prop_oneof![(if TASK_GROUPS { 5 } else { 0 }) => Just(0u8), 4 => Just(1u8), 2 => Just(2u8)],
        prop::option::weighted(
            0.85,
            prop_oneof![1 => Just(-1i8), 4 => 0i8..=2, 2 => 3i8..=4],
        ),
        prop::collection::vec(bstep(nested), 1..=5),
        prop::bool::weighted(0.5),
    )
        .prop_map(|(kind, time, body, catch)| RawBlock {
            kind,
            time,
            body,
            catch,
        })
        .boxed()
}

fn steps(max: usize) -> impl Strategy<Value = Vec<RawStep>> {
    prop::collection::vec(step(), 0..=max)
}

fn timeout() -> impl Strategy<Value = Option<i8>> {
    prop::option::weighted(0.6, -1i8..=4)
}

fn comb() -> impl Strategy<Value = RawComb> {
    let of = || prop::collection::vec(any::<u8>(), 0..=4);
    prop_oneof![
        3 => (of(), any::<bool>(), prop::option::weighted(0.3, (0u8..=3, prop::option::of(0u8..3))), any::<bool>())
            .prop_map(|(of, re, cancel_at, catch)| RawComb::Gather { of, re, cancel_at, catch }),
        3 => (of(), timeout(), 0u8..3).prop_map(|(of, timeout, rw)| RawComb::Wait { of, timeout, rw }),
        2 => (prop::option::weighted(0.7, any::<u8>()), timeout(), any::<bool>())
            .prop_map(|(target, timeout, catch)| RawComb::WaitFor { target, timeout, catch }),
        2 => (prop::collection::vec(steps(3), 1..=3), prop::collection::vec(any::<u8>(), 0..=1), timeout())
            .prop_map(|(spawn, dups, timeout)| RawComb::AsCompleted { spawn, dups, timeout }),
        1 => (of(), any::<bool>()).prop_map(|(of, re)| RawComb::MakeGatherCheck { of, re }),
    ]
}

fn drive() -> impl Strategy<Value = RawDrive> {
    prop_oneof![
        6 => (steps(2), comb(), steps(2)).prop_map(|(before, comb, after)| RawDrive::Driver { before, comb, after }),
        2 => (prop::collection::vec(any::<u8>(), 0..=4), any::<bool>()).prop_map(|(of, re)| RawDrive::Gather { of, re }),
        1 => Just(RawDrive::Forever),
        1 => any::<u8>().prop_map(RawDrive::Task),
        8 => (
            steps(2),
            block(true),
            steps(2),
            prop::collection::vec(0u8..3, 0..=2),
            prop::option::weighted(0.25, (0u8..=3, prop::option::weighted(0.3, 0u8..3))),
        )
            .prop_map(|(before, block, after, after_cm, kill)| RawDrive::Block {
                before,
                block,
                after,
                after_cm,
                kill,
            }),
    ]
}

fn raw() -> impl Strategy<Value = Raw> {
    (
        (
            0u8..=3,
            prop::collection::vec(prop::option::weighted(0.7, (0u8..=4, 0u8..5)), 3),
            prop::bool::weighted(0.25),
        ),
        prop::collection::vec(steps(5), 0..=6),
        prop::collection::vec(prop::collection::vec(act(), 0..=2), 0..=3),
        steps(3),
        prop::collection::vec(act(), 0..=2),
        drive(),
        prop::collection::vec(act(), 0..=2),
        prop::option::weighted(
            0.2,
            prop_oneof![
                Just(RawDrive::Forever),
                any::<u8>().prop_map(RawDrive::Task)
            ],
        ),
    )
        .prop_map(
            |((futures, fut_timers, eager), tasks, callbacks, coro, pre, drive, between, then)| {
                Raw {
                    futures,
                    eager,
                    fut_timers,
                    tasks,
                    callbacks,
                    coro,
                    pre,
                    drive,
                    between,
                    then,
                }
            },
        )
}

/// Resolves a raw scenario into names that exist when they are used.
struct Names {
    tasks: Vec<String>,
    futures: Vec<String>,
    callbacks: Vec<String>,
    /// Tasks and futures an operation may target (the driver included).
    targets: Vec<String>,
    /// Numbers the names made while building (shields, groups, timeouts,
    /// children).
    fresh: std::cell::Cell<u32>,
}

impl Names {
    fn fresh(&self, prefix: &str) -> String {
        let k = self.fresh.get();
        self.fresh.set(k + 1);
        format!("{prefix}{k}")
    }
}

fn pick(list: &[String], i: u8) -> Option<String> {
    (!list.is_empty()).then(|| list[i as usize % list.len()].clone())
}

fn exc(kind: u8, n: u8, msg: Option<u8>) -> Exc {
    match kind % 3 {
        0 => Exc {
            ty: "ValueError".into(),
            msg: Some(format!("e{n}")),
        },
        1 => Exc {
            ty: "KeyError".into(),
            msg: Some(format!("k{n}")),
        },
        _ => Exc {
            ty: "CancelledError".into(),
            msg: msg.map(|m| format!("c{m}")),
        },
    }
}

/// `from`: the index of the callback whose actions these are (it may only
/// schedule later callbacks, so nothing loops forever).
fn build_act(a: &RawAct, n: &Names, from: Option<usize>) -> Option<OpKind> {
    let later_cb = |i: u8| -> Option<String> {
        let start = from.map_or(0, |f| f + 1);
        let list = n.callbacks.get(start..).unwrap_or(&[]);
        pick(list, i)
    };
    let tasks: Vec<String> = n
        .targets
        .iter()
        .filter(|t| !n.futures.contains(t))
        .cloned()
        .collect();
    // Mostly the plain futures; now and then a task (which refuses).
    let completable = |i: u8| -> Option<String> {
        if i % 8 == 7 || n.futures.is_empty() {
            pick(&n.targets, i / 8)
        } else {
            pick(&n.futures, i)
        }
    };
    Some(match a {
        RawAct::Cancel { target, msg } => OpKind::Cancel(match msg {
            None => CancelArgs::Name(pick(&n.targets, *target)?),
            Some(m) => CancelArgs::WithMsg {
                target: pick(&n.targets, *target)?,
                msg: Some(format!("m{m}")),
            },
        }),
        RawAct::SetResult { target, v } => OpKind::SetResult {
            target: completable(*target)?,
            value: json!(*v as u64 % 50),
        },
        RawAct::SetException { target, e } => OpKind::SetException {
            target: completable(*target)?,
            exc: exc(*e % 2, *e, None),
        },
        RawAct::CallSoon { cb, handle } => OpKind::CallSoon(CbArgs::WithHandle {
            cb: later_cb(*cb)?,
            handle: handle.map(|h| format!("h{h}")),
        }),
        RawAct::CallLater { cb, delay, handle } => OpKind::CallLater {
            cb: later_cb(*cb)?,
            delay: Num(*delay as f64),
            handle: handle.map(|h| format!("h{h}")),
        },
        RawAct::CancelHandle(h) => OpKind::CancelHandle(format!("h{h}")),
        RawAct::Stop => OpKind::Stop(()),
        RawAct::Record => OpKind::Record("r".into()),
        RawAct::Check(t) => OpKind::Check(pick(&n.targets, *t)?),
        RawAct::Result(t) => OpKind::Result(pick(&n.targets, *t)?),
        RawAct::Cancelling(t) => OpKind::Cancelling(pick(&tasks, *t)?),
        RawAct::Uncancel(t) => OpKind::Uncancel(pick(&tasks, *t)?),
        RawAct::AddDoneCallback { target, cb } => OpKind::AddDoneCallback {
            target: pick(&n.targets, *target)?,
            cb: later_cb(*cb)?,
        },
        RawAct::RemoveDoneCallback { target, cb } => OpKind::RemoveDoneCallback {
            target: pick(&n.targets, *target)?,
            cb: pick(&n.callbacks, *cb)?,
        },
        RawAct::Raise(e) => {
            from?; // a callback's raise is reported; a task's is its end
            OpKind::Raise(exc(*e % 2, *e, None))
        }
    })
}

/// `awaitable`: what these steps may await. Awaits never form a cycle (a
/// cancellation would go round it: CPython raises RecursionError, loopspec stops
/// at the task already being cancelled — see the corpus's
/// task-6-cancel-await-cycle).
fn build_steps(raw: &[RawStep], n: &Names, awaitable: &[String]) -> Vec<Op> {
    let mut out = Vec::new();
    for s in raw {
        if let RawStep::Shield(t, mode) = s {
            let Some(target) = pick(awaitable, *t) else {
                continue;
            };
            let name = n.fresh("sh");
            out.push(
                OpKind::Shield {
                    target: target.clone(),
                    name: name.clone(),
                }
                .into(),
            );
            let caught = |kind| Op { kind, catch: true };
            match mode {
                0 => out.push(caught(OpKind::Await(name))),
                1 => {
                    out.push(OpKind::Cancel(CancelArgs::Name(name.clone())).into());
                    out.push(caught(OpKind::Await(name)));
                    out.push(caught(OpKind::Await(target)));
                }
                2 => {
                    out.push(OpKind::Yield(()).into());
                    out.push(OpKind::Cancel(CancelArgs::Name(name)).into());
                    out.push(OpKind::Check(target.clone()).into());
                    out.push(caught(OpKind::Await(target)));
                }
                _ => out.push(OpKind::Await(name).into()),
            }
            continue;
        }
        let op = match s {
            RawStep::Sleep(d, catch) => Op {
                kind: OpKind::Sleep(Num(*d as f64)),
                catch: *catch,
            },
            RawStep::Yield => OpKind::Yield(()).into(),
            RawStep::Await(t, catch) => match pick(awaitable, *t) {
                Some(t) => Op {
                    kind: OpKind::Await(t),
                    catch: *catch,
                },
                None => continue,
            },
            RawStep::Act(a) => match build_act(a, n, None) {
                Some(k) => k.into(),
                None => continue,
            },
            RawStep::Return(v) => OpKind::Return(json!(*v as u64 % 50)).into(),
            RawStep::Raise(k, m) => OpKind::Raise(exc(*k, out.len() as u8, *m)).into(),
            RawStep::Shield(..) => unreachable!("handled above"),
        };
        out.push(op);
    }
    out
}

/// The tasks and futures made by main (not the driver).
fn plain_targets(n: &Names) -> Vec<String> {
    n.targets.iter().filter(|t| *t != "m").cloned().collect()
}

fn children(of: &[u8], n: &Names) -> Vec<String> {
    let list = plain_targets(n);
    of.iter().filter_map(|i| pick(&list, *i)).collect()
}

/// The innermost (or outermost) enclosing block of a kind: 0 a group, 1 a
/// timeout.
fn enclosing(stack: &[(u8, String)], group: bool, outer: bool) -> Option<String> {
    let mut it = stack.iter().filter(|(k, _)| (*k == 0) == group);
    let found = if outer { it.next() } else { it.next_back() };
    found.map(|(_, name)| name.clone())
}

fn build_block(b: &RawBlock, n: &Names, stack: &mut Vec<(u8, String)>, sc: &mut Scenario) -> Op {
    let kind = b.kind % 3;
    let name = n.fresh(if kind == 0 { "g" } else { "cm" });
    stack.push((kind.min(1), name.clone()));
    let plain = plain_targets(n);
    let mut body = Vec::new();
    let mut kids: Vec<String> = Vec::new();
    for s in &b.body {
        let timeout = enclosing(stack, false, false);
        match s {
            RawBStep::Step(step) => body.extend(build_steps(std::slice::from_ref(step), n, &plain)),
            RawBStep::Spawn {
                child,
                outer,
                sibling,
            } => {
                let Some(group) = enclosing(stack, true, *outer) else {
                    continue;
                };
                let kid = n.fresh("k");
                kids.push(kid.clone());
                // Each child fails with its own message, so the order of an
                // exception group's members shows.
                let steps = build_steps(child, n, &plain)
                    .into_iter()
                    .map(|mut op| {
                        if let OpKind::Raise(Exc { ty, msg: Some(m) }) = &mut op.kind
                            && ty != "CancelledError"
                        {
                            *m = format!("{m}-{kid}");
                        }
                        op
                    })
                    .collect::<Vec<Op>>();
                let mut steps = steps;
                if *sibling {
                    let sib = n.fresh("k");
                    sc.tasks.insert(
                        sib.clone(),
                        vec![OpKind::Yield(()).into(), OpKind::Return(json!(sib)).into()],
                    );
                    let make = OpKind::TgCreateTask {
                        group: group.clone(),
                        coro: sib,
                        name: None,
                    };
                    steps.insert(steps.len().min(1), make.into());
                }
                sc.tasks.insert(kid.clone(), steps);
                body.push(
                    OpKind::TgCreateTask {
                        group,
                        coro: kid,
                        name: None,
                    }
                    .into(),
                );
            }
            RawBStep::CancelChild(i) => {
                if let Some(kid) = pick(&kids, *i) {
                    body.push(OpKind::Cancel(CancelArgs::Name(kid)).into());
                }
            }
            RawBStep::Fan(kids) => {
                let Some(group) = enclosing(stack, true, false) else {
                    continue;
                };
                for (delay, fail) in kids {
                    let kid = n.fresh("k");
                    let end = match fail {
                        Some(k) => OpKind::Raise(exc(*k, 0, None)),
                        None => OpKind::Return(json!(kid)),
                    };
                    let end = match end {
                        OpKind::Raise(Exc { ty, msg }) => OpKind::Raise(Exc {
                            ty,
                            msg: msg.map(|m| format!("{m}-{kid}")),
                        }),
                        other => other,
                    };
                    sc.tasks.insert(
                        kid.clone(),
                        vec![OpKind::Sleep(Num(*delay as f64)).into(), end.into()],
                    );
                    body.push(
                        OpKind::TgCreateTask {
                            group: group.clone(),
                            coro: kid,
                            name: None,
                        }
                        .into(),
                    );
                }
            }
            RawBStep::Raise(k) => body.push(OpKind::Raise(exc(*k, body.len() as u8, None)).into()),
            RawBStep::Nested(inner) => body.push(build_block(inner, n, stack, sc)),
            RawBStep::Reschedule(d) => {
                if let Some(cm) = timeout {
                    body.push(
                        OpKind::Reschedule {
                            cm,
                            when: None,
                            delay: d.map(|d| Num(d as f64)),
                        }
                        .into(),
                    );
                }
            }
            RawBStep::RescheduleAt(w) => {
                if let Some(cm) = timeout {
                    body.push(
                        OpKind::Reschedule {
                            cm,
                            when: Some(Num(*w as f64)),
                            delay: None,
                        }
                        .into(),
                    );
                }
            }
            RawBStep::Expired => body.extend(timeout.map(|cm| OpKind::Expired(cm).into())),
            RawBStep::CmWhen => body.extend(timeout.map(|cm| OpKind::CmWhen(cm).into())),
        }
    }
    stack.pop();
    let time = b.time.map(|t| Num(t as f64));
    let kind = match kind {
        0 => OpKind::TaskGroup(TaskGroupArgs { name, body }),
        1 => OpKind::Timeout(TimeoutArgs {
            delay: time,
            when: None,
            name: Some(name),
            body,
        }),
        _ => OpKind::TimeoutAt(TimeoutArgs {
            delay: None,
            when: time.map(|t| Num(t.0.max(0.0))),
            name: Some(name),
            body,
        }),
    };
    Op {
        kind,
        catch: b.catch,
    }
}

fn build_drive(d: &RawDrive, n: &Names, sc: &mut Scenario) -> Vec<Op> {
    match d {
        RawDrive::Block {
            before,
            block,
            after,
            after_cm,
            kill,
        } => {
            let plain = plain_targets(n);
            let mut m = Vec::new();
            if let Some((delay, msg)) = kill {
                sc.callbacks.insert(
                    "km".into(),
                    vec![
                        OpKind::Cancel(CancelArgs::WithMsg {
                            target: "m".into(),
                            msg: msg.map(|x| format!("k{x}")),
                        })
                        .into(),
                    ],
                );
                m.push(
                    OpKind::CallLater {
                        cb: "km".into(),
                        delay: Num(*delay as f64),
                        handle: None,
                    }
                    .into(),
                );
            }
            m.extend(build_steps(before, n, &plain));
            let op = build_block(block, n, &mut Vec::new(), sc);
            let cm = match &op.kind {
                OpKind::Timeout(a) | OpKind::TimeoutAt(a) => a.name.clone(),
                _ => None,
            };
            m.push(op);
            // What the blocks left of the task's cancellation requests
            // (TG-8, TG-9, TIMEOUT-3): the count, and whether the next
            // await is cancelled.
            m.push(OpKind::Cancelling("m".into()).into());
            m.push(Op {
                kind: OpKind::Yield(()),
                catch: true,
            });
            m.extend(build_steps(after, n, &plain));
            if let Some(cm) = cm {
                for k in after_cm {
                    m.push(match k {
                        0 => OpKind::Expired(cm.clone()).into(),
                        1 => OpKind::CmWhen(cm.clone()).into(),
                        _ => OpKind::Reschedule {
                            cm: cm.clone(),
                            when: None,
                            delay: Some(Num(1.0)),
                        }
                        .into(),
                    });
                }
            }
            sc.tasks.insert("m".into(), m);
            vec![OpKind::RunUntilComplete(RunTarget::Task("m".into())).into()]
        }
        RawDrive::Driver {
            before,
            comb,
            after,
        } => {
            let plain = plain_targets(n);
            let mut m = build_steps(before, n, &plain);
            match comb {
                RawComb::Gather {
                    of,
                    re,
                    cancel_at,
                    catch,
                } => {
                    let args = GatherArgs {
                        of: children(of, n),
                        return_exceptions: *re,
                        as_: Some("g".into()),
                    };
                    match cancel_at {
                        Some((delay, msg)) => {
                            m.push(OpKind::MakeGather(args).into());
                            sc.callbacks.insert(
                                "kg".into(),
                                vec![
                                    OpKind::Cancel(CancelArgs::WithMsg {
                                        target: "g".into(),
                                        msg: msg.map(|x| format!("g{x}")),
                                    })
                                    .into(),
                                ],
                            );
                            m.push(
                                OpKind::CallLater {
                                    cb: "kg".into(),
                                    delay: Num(*delay as f64),
                                    handle: None,
                                }
                                .into(),
                            );
                            m.push(Op {
                                kind: OpKind::Await("g".into()),
                                catch: *catch,
                            });
                        }
                        None => m.push(Op {
                            kind: OpKind::Gather(args),
                            catch: *catch,
                        }),
                    }
                }
                RawComb::Wait { of, timeout, rw } => m.push(
                    OpKind::Wait(WaitArgs {
                        of: children(of, n),
                        timeout: timeout.map(|t| Num(t as f64)),
                        return_when: Some(
                            ["ALL_COMPLETED", "FIRST_COMPLETED", "FIRST_EXCEPTION"]
                                [*rw as usize % 3]
                                .into(),
                        ),
                    })
                    .into(),
                ),
                RawComb::WaitFor {
                    target,
                    timeout,
                    catch,
                } => {
                    let target = match target.and_then(|t| pick(&children(&[t], n), 0)) {
                        Some(name) => WaitForTarget::Name(name),
                        None => WaitForTarget::Coro { coro: "w".into() },
                    };
                    m.push(Op {
                        kind: OpKind::WaitFor(WaitForArgs {
                            target,
                            timeout: timeout.map(|t| Num(t as f64)),
                        }),
                        catch: *catch,
                    });
                }
                RawComb::AsCompleted {
                    spawn,
                    dups,
                    timeout,
                } => {
                    // The children are made in the same step, so none is done
                    // when as_completed() is called (CPython iterates a set).
                    let mut names = Vec::new();
                    for (i, s) in spawn.iter().enumerate() {
                        let name = format!("s{i}");
                        sc.tasks.insert(name.clone(), build_steps(s, n, &plain));
                        m.push(OpKind::CreateTask(name.clone()).into());
                        names.push(name);
                    }
                    let dups: Vec<String> = dups.iter().filter_map(|i| pick(&names, *i)).collect();
                    names.extend(dups);
                    m.push(
                        OpKind::AsCompleted(AsCompletedArgs {
                            of: names,
                            timeout: timeout.map(|t| Num(t as f64)),
                        })
                        .into(),
                    );
                }
                RawComb::MakeGatherCheck { of, re } => {
                    m.push(
                        OpKind::MakeGather(GatherArgs {
                            of: children(of, n),
                            return_exceptions: *re,
                            as_: Some("g".into()),
                        })
                        .into(),
                    );
                    m.push(OpKind::Check("g".into()).into());
                    m.push(OpKind::Yield(()).into());
                    m.push(OpKind::Check("g".into()).into());
                    m.push(Op {
                        kind: OpKind::Await("g".into()),
                        catch: true,
                    });
                }
            }
            m.extend(build_steps(after, n, &plain));
            sc.tasks.insert("m".into(), m);
            vec![OpKind::RunUntilComplete(RunTarget::Task("m".into())).into()]
        }
        RawDrive::Gather { of, re } => vec![
            OpKind::RunUntilComplete(RunTarget::Gather(GatherArgs {
                of: children(of, n),
                return_exceptions: *re,
                as_: None,
            }))
            .into(),
        ],
        RawDrive::Forever => vec![OpKind::RunForever(None).into()],
        RawDrive::Task(t) => match pick(&n.tasks, *t) {
            Some(t) => vec![OpKind::RunUntilComplete(RunTarget::Task(t)).into()],
            None => vec![OpKind::RunForever(None).into()],
        },
    }
}

fn build(raw: &Raw) -> Scenario {
    let tasks: Vec<String> = (0..raw.tasks.len()).map(|i| format!("t{i}")).collect();
    let futures: Vec<String> = (0..raw.futures).map(|i| format!("f{i}")).collect();
    let callbacks: Vec<String> = (0..raw.callbacks.len()).map(|i| format!("c{i}")).collect();
    let driver = matches!(raw.drive, RawDrive::Driver { .. } | RawDrive::Block { .. });
    let mut targets: Vec<String> = tasks.iter().chain(futures.iter()).cloned().collect();
    let main_names = Names {
        tasks: tasks.clone(),
        futures: futures.clone(),
        callbacks: callbacks.clone(),
        targets: targets.clone(),
        fresh: Default::default(),
    };
    if driver {
        targets.push("m".into());
    }
    let n = Names {
        tasks: tasks.clone(),
        futures: futures.clone(),
        callbacks: callbacks.clone(),
        targets,
        fresh: Default::default(),
    };
    let mut sc = Scenario {
        id: None,
        tasks: Default::default(),
        callbacks: Default::default(),
        futures: futures.clone(),
        main: Vec::new(),
        horizon: Some(30.0),
        eager_tasks: raw.eager,
    };
    for (i, t) in raw.tasks.iter().enumerate() {
        // Task i may await tasks 0..i and the futures. Not itself: a task
        // awaiting itself leaves CPython's C task marked as awaited, and
        // another task awaiting it in the same iteration gets "await wasn't
        // used with future" (corpus: task-7-awaiting-a-task-that-awaits-itself).
        let awaitable: Vec<String> = tasks[..i].iter().chain(futures.iter()).cloned().collect();
        sc.tasks
            .insert(tasks[i].clone(), build_steps(t, &n, &awaitable));
    }
    sc.tasks
        .insert("w".into(), build_steps(&raw.coro, &n, &plain_targets(&n)));
    for (i, c) in raw.callbacks.iter().enumerate() {
        let ops = c
            .iter()
            .filter_map(|a| build_act(a, &n, Some(i)))
            .map(Op::from)
            .collect();
        sc.callbacks.insert(callbacks[i].clone(), ops);
    }
    for t in &tasks {
        sc.main.push(OpKind::CreateTask(t.clone()).into());
    }
    // Timers that complete the futures (set, fail or cancel them).
    for (i, f) in futures.iter().enumerate() {
        let Some(Some((delay, how))) = raw.fut_timers.get(i) else {
            continue;
        };
        let op = match how {
            0..=2 => OpKind::SetResult {
                target: f.clone(),
                value: json!(100 + i),
            },
            3 => OpKind::SetException {
                target: f.clone(),
                exc: exc(0, 100 + i as u8, None),
            },
            _ => OpKind::Cancel(CancelArgs::Name(f.clone())),
        };
        let cb = format!("fs{i}");
        sc.callbacks.insert(cb.clone(), vec![op.into()]);
        sc.main.push(
            OpKind::CallLater {
                cb,
                delay: Num(*delay as f64),
                handle: None,
            }
            .into(),
        );
    }
    // main's synchronous operations (a raise would end main, not test it).
    let main_acts = |acts: &[RawAct], names: &Names| -> Vec<Op> {
        let acts = acts.iter().filter(|a| !matches!(a, RawAct::Raise(_)));
        acts.filter_map(|a| build_act(a, names, None))
            .map(Op::from)
            .collect()
    };
    // Before the driver exists, main's operations cannot name it.
    sc.main.extend(main_acts(&raw.pre, &main_names));
    let first = build_drive(&raw.drive, &n, &mut sc);
    sc.main.extend(first);
    if let Some(then) = &raw.then {
        sc.main.extend(main_acts(&raw.between, &n));
        let second = build_drive(then, &n, &mut sc);
        sc.main.extend(second);
    }
    // `as_completed` keeps its futures in a set: of several that are done
    // when it starts (eager tasks that finished in their first step),
    // CPython yields them in set order, which is by address.
    if all_ops(&sc)
        .iter()
        .any(|op| matches!(op.kind, OpKind::AsCompleted(_)))
    {
        sc.eager_tasks = false;
    }
    sc
}

// ---------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Per CPython version: scenarios compared, in all (`all`) and per feature.
type Counts = BTreeMap<String, BTreeMap<&'static str, u64>>;

/// Compares one scenario on every applicable version; `Err` describes the
/// first mismatch.
fn compare_all(
    sc: &Scenario,
    pythons: &RefCell<Vec<PyRunner>>,
    counts: &RefCell<Counts>,
) -> Result<(), TestCaseError> {
    let versions = holds_for(sc);
    let feats = features(sc);
    let line = serde_json::to_string(sc).expect("serialize the scenario");
    let mut ours: BTreeMap<Profile, Value> = BTreeMap::new();
    for py in pythons.borrow_mut().iter_mut() {
        if !versions.contains(&py.minor.as_str()) {
            continue;
        }
        let theirs = py.run(&line);
        let profile = profile_of(&py.minor);
        let mine = ours
            .entry(profile)
            .or_insert_with(|| loopspec_check::conformance::single::run(sc, profile));
        match (theirs.get("runner_error"), mine.get("runner_error")) {
            (Some(_), Some(_)) => return Err(TestCaseError::reject("invalid scenario")),
            (Some(e), None) => {
                return Err(TestCaseError::fail(format!(
                    "CPython {} could not run the scenario: {e}",
                    py.version
                )));
            }
            _ => {}
        }
        if let Some(diff) = loopspec_check::conformance::single::compare(&theirs, mine) {
            return Err(TestCaseError::fail(format!(
                "loopspec ({profile:?}) differs from CPython {}: {diff}",
                py.version
            )));
        }
        let mut counts = counts.borrow_mut();
        let per = counts.entry(py.version.clone()).or_default();
        for f in std::iter::once("all").chain(feats.iter().copied()) {
            *per.entry(f).or_default() += 1;
        }
    }
    Ok(())
}

/// A corpus file for a scenario: CPython's traces, grouped by the versions
/// that agree.
fn corpus_entry(sc: &Scenario, pythons: &RefCell<Vec<PyRunner>>) -> CorpusEntry {
    let line = serde_json::to_string(sc).expect("serialize the scenario");
    let id = format!("differential-{:016x}", fnv(&line));
    let versions = holds_for(sc);
    let mut expect: Vec<(String, Expectation)> = Vec::new();
    let mut realtime = false;
    for py in pythons.borrow_mut().iter_mut() {
        if !versions.contains(&py.minor.as_str()) {
            continue;
        }
        let t = py.run(&line);
        if t.get("runner_error").is_some() {
            continue;
        }
        let key = normalize(&json!({"e": t["events"], "f": t["final"]})).to_string();
        if py.minor == "3.11" || expect.is_empty() {
            realtime = t["meta"]["realtime_safe"].as_bool().unwrap_or(false);
        }
        match expect.iter_mut().find(|(k, _)| *k == key) {
            Some((_, e)) => {
                e.python.push(py.minor.clone());
                if py.minor == "3.11" {
                    e.recorded_with = py.version.clone();
                }
            }
            None => expect.push((
                key,
                Expectation {
                    python: vec![py.minor.clone()],
                    recorded_with: py.version.clone(),
                    events: t["events"].as_array().cloned().unwrap_or_default(),
                    final_: t["final"].as_object().cloned().unwrap_or_default(),
                },
            )),
        }
    }
    CorpusEntry {
        id: id.clone(),
        rules: Vec::new(),
        title: "found by check/tests/differential.rs: name the rules it checks, then move it to \
                conformance/scenarios/"
            .into(),
        min_python: versions.first().map(|v| v.to_string()),
        scenario: Scenario {
            id: None,
            ..sc.clone()
        },
        expect: expect.into_iter().map(|(_, e)| e).collect(),
        realtime,
    }
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Rules: STOP-1, STOP-2, STOP-7, SCHED-1, SCHED-2, SCHED-3, SCHED-4, SCHED-5, SCHED-7, WAIT-2, WAIT-3, WAIT-4, GATHER-1, GATHER-3, GATHER-4, GATHER-5, GATHER-6, GATHER-8, WAITFOR-1, ASCOMP-1, ASCOMP-2, FUT-3, FUT-6, TASK-1, TASK-4, TASK-5, TIMEOUT-1, TIMEOUT-3, TIMEOUT-4, TIMEOUT-5, TIMEOUT-8, SHIELD-1, SHIELD-2, TG-1, TG-2, TG-3, TG-5, TG-7, TG-8, TG-16, EAGER-2, EAGER-3
#[test]
fn random_scenarios_match_cpython() {
    let pythons = find_pythons();
    let found: Vec<String> = pythons
        .iter()
        .map(|p| format!("{} ({})", p.version, p.exe.display()))
        .collect();
    let missing: Vec<&str> = MINORS
        .into_iter()
        .filter(|m| !pythons.iter().any(|p| p.minor == *m))
        .collect();
    if std::env::var("CI").is_ok_and(|v| v == "true") && !missing.is_empty() {
        panic!(
            "differential: CPython {} not found (found: {}); set LOOPSPEC_PYTHONS to what \
             `.ci/pythons` prints",
            missing.join(", "),
            if found.is_empty() {
                "none".to_string()
            } else {
                found.join(", ")
            }
        );
    }
    if pythons.is_empty() {
        eprintln!(
            "differential: no CPython 3.10-3.15 found (run .ci/pythons, or set \
             LOOPSPEC_PYTHONS): SKIPPED"
        );
        return;
    }
    eprintln!("differential: CPython found: {}", found.join(", "));
    let cases = env_u64("LOOPSPEC_DIFFERENTIAL_CASES", 4000) as u32;
    let seed = env_u64("LOOPSPEC_DIFFERENTIAL_SEED", DEFAULT_SEED);
    let pythons = RefCell::new(pythons);
    let counts: RefCell<Counts> = RefCell::default();
    let mut runner = TestRunner::new(Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        max_global_rejects: cases.max(1024),
        ..Config::default()
    });
    let start = Instant::now();
    let dump = RefCell::new(
        std::env::var_os("LOOPSPEC_DIFFERENTIAL_DUMP")
            .map(|p| std::fs::File::create(p).expect("create the dump file")),
    );
    let result = runner.run(&raw(), |raw| {
        let sc = build(&raw);
        if let Some(f) = dump.borrow_mut().as_mut() {
            writeln!(f, "{}", serde_json::to_string(&sc).unwrap()).expect("write the dump");
        }
        compare_all(&sc, &pythons, &counts)
    });
    let elapsed = start.elapsed();
    let summary: Vec<String> = counts
        .borrow()
        .iter()
        .map(|(v, n)| format!("{v}: {}", n.get("all").copied().unwrap_or(0)))
        .collect();
    eprintln!(
        "differential: {cases} scenarios (seed {seed:#x}) in {:.1} s; traces equal per CPython: {}",
        elapsed.as_secs_f64(),
        summary.join(", ")
    );
    for feature in ["TaskGroup", "timeout", "shield", "eager tasks"] {
        let per: Vec<String> = counts
            .borrow()
            .iter()
            .map(|(v, n)| format!("{v}: {}", n.get(feature).copied().unwrap_or(0)))
            .collect();
        eprintln!("differential:   with {feature}: {}", per.join(", "));
    }
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, raw)) => {
            let sc = build(&raw);
            let entry = corpus_entry(&sc, &pythons);
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("differential");
            std::fs::create_dir_all(&dir).expect("create the output directory");
            let path = dir.join(format!("{}.json", entry.id));
            let text = serde_json::to_string_pretty(&entry).expect("serialize the entry");
            std::fs::write(&path, &text).expect("write the scenario");
            panic!(
                "{reason}\n\nshrunk scenario, ready for the corpus (name its rules), written to \
                 {}:\n{text}",
                path.display()
            );
        }
        Err(e) => panic!("{e}"),
    }
}

/// The generator's scenarios are valid: every one runs on loopspec without a
/// runner error (no Python needed).
#[test]
fn generated_scenarios_are_valid() {
    let mut runner = TestRunner::new(Config {
        cases: env_u64("LOOPSPEC_GEN_CASES", 200) as u32,
        rng_seed: RngSeed::Fixed(env_u64("LOOPSPEC_DIFFERENTIAL_SEED", DEFAULT_SEED) ^ 1),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&raw(), |raw| {
            let sc = build(&raw);
            let back: Scenario =
                serde_json::from_str(&serde_json::to_string(&sc).unwrap()).unwrap();
            prop_assert_eq!(&back, &sc);
            let t = loopspec_check::conformance::single::run(&sc, Profile::Py311);
            prop_assert!(t.get("runner_error").is_none(), "{}", t);
            Ok(())
        })
        .unwrap();
}
