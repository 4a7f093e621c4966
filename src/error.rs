//! The crate's one error type.
//!
//! Every misuse of the public API and every exception a future can carry is an
//! [`Error`]. Its `Display` is asyncio's exact message (see SPEC.md), and
//! [`Error::python_type`] names the Python exception class the message belongs
//! to, so a test can compare both with what CPython raises.
//!
//! An `Error` is cheap to clone and `Send + Sync`: a future's exception is
//! handed to every awaiter, as in Python, and crosses threads in the bridges.
//!
//! An error the loop cannot raise to anyone (a panicking callback, an
//! exception never retrieved) is reported with an [`ExceptionContext`], asyncio's
//! context dict, to the loop's exception handler.

use std::fmt;
use std::sync::Arc;

/// An error raised by loopspec, or an exception carried by a future.
///
/// ```
/// use loopspec::{ClockKind, Error, EventLoop};
///
/// let lp = EventLoop::with_clock(ClockKind::Virtual);
/// lp.close().unwrap();
/// let err = lp.call_soon(|| ()).unwrap_err();
/// assert_eq!(err, Error::Closed);
/// assert_eq!(err.to_string(), "Event loop is closed");
/// assert_eq!(err.python_type(), "RuntimeError");
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// `RuntimeError: This event loop is already running`
    AlreadyRunning,
    /// `RuntimeError: Cannot run the event loop while another loop is running`
    AnotherLoopRunning,
    /// `RuntimeError: Cannot close a running event loop`
    CloseRunning,
    /// `RuntimeError: Event loop is closed`
    Closed,
    /// `RuntimeError: no running event loop`
    NoRunningLoop,
    /// `RuntimeError: There is no current event loop in thread 'NAME'.`
    NoCurrentLoop {
        /// The thread's name as SPEC.md rule POLICY-9 maps it.
        thread: String,
    },
    /// `RuntimeError: Event loop stopped before Future completed.`
    StoppedBeforeComplete,
    /// `RuntimeError: Non-thread-safe operation invoked on an event loop other
    /// than the current one` — a loop-bound call from a thread that is not the
    /// loop's (CPython checks this only in debug mode; loopspec always does).
    NonThreadSafeCall,
    /// `RuntimeError: Event loop is bound to thread 'NAME', which holds its
    /// local callbacks, timers or tasks` — loopspec only (SPEC.md THREAD-2).
    BoundToThread {
        /// The name of the thread that holds the loop's work.
        thread: String,
    },
    /// `RuntimeError: Future in unexpected state` —
    /// `ConcurrentFuture::set_running_or_notify_cancel` on a running or
    /// finished future.
    UnexpectedState,
    /// `InvalidStateError: STATE: <Future at 0x... state=...>` — completing a
    /// done `ConcurrentFuture`.
    ConcurrentInvalidState {
        /// The whole message, state and repr.
        message: String,
    },
    /// `RuntimeError: ConcurrentFuture.result() called from the thread of the
    /// loop that completes it would deadlock` — loopspec only (XTHREAD-9).
    ResultFromLoopThread,
    /// `RuntimeError: cannot schedule new futures after shutdown`
    PoolShutdown,
    /// `RuntimeError: Executor shutdown has been called` — the default
    /// executor after `shutdown_default_executor` (EXEC-6).
    ExecutorShutdownCalled,
    /// `RuntimeError: asyncio.run() cannot be called from a running event loop`
    RunInRunningLoop,
    /// `RuntimeError: Runner.run() cannot be called from a running event loop`
    RunnerInRunningLoop,
    /// `RuntimeError: Runner is closed`
    RunnerClosed,
    /// `RuntimeError: Task does not support set_result operation`
    TaskSetResult,
    /// `RuntimeError: Task does not support set_exception operation`
    TaskSetException,
    /// `RuntimeError: Task cannot await on itself: <Task ...>`
    TaskAwaitsItself {
        /// The task's repr.
        task: String,
    },
    /// `RuntimeError: Task <Task ...> got Future <Future ...> attached to a
    /// different loop`
    FutureOfOtherLoop {
        /// The awaiting task's repr.
        task: String,
        /// The awaited future's repr.
        future: String,
    },
    /// `ValueError: The future belongs to a different loop than the one
    /// specified as the loop argument`
    DifferentLoop,
    /// `ValueError: delay must not be NaN` — loopspec only (SPEC.md SCHED-6).
    NanTime,
    /// `ValueError: Set of Tasks/Futures is empty.` — `wait` of nothing.
    EmptyWait,
    /// `RuntimeError: Timeout should be used inside a task`
    TimeoutOutsideTask,
    /// `RuntimeError: Timeout has not been entered` — `reschedule` on a
    /// `Timeout` not yet entered (SPEC.md TIMEOUT-6).
    TimeoutNotEntered,
    /// `RuntimeError: Timeout has already been entered` (TIMEOUT-6).
    TimeoutEntered,
    /// `RuntimeError: Cannot change state of STATE Timeout` — `reschedule`
    /// once the timeout expired or was left (TIMEOUT-5).
    TimeoutState {
        /// `expiring`, `expired` or `finished`.
        state: String,
    },
    /// `TypeError: a coroutine was expected, got <Future ...>`
    CoroutineExpected {
        /// The repr of what was passed.
        got: String,
    },
    /// `InvalidStateError: Result is not set.`
    ResultNotSet,
    /// `InvalidStateError: Exception is not set.`
    ExceptionNotSet,
    /// `InvalidStateError: invalid state` — completing a future that is done.
    InvalidState,
    /// `CancelledError`, with the message given to `cancel(msg)`, if any.
    Cancelled(Option<String>),
    /// `TimeoutError` (the builtin, which `asyncio.TimeoutError` is since 3.11).
    Timeout,
    /// A panic, caught where Python would have caught an exception. Carries the
    /// panic message.
    Panic(String),
    /// An exception raised by user code: a Python class name and a message.
    Exception(Exception),
    /// `RuntimeError: TaskGroup <TaskGroup ...> has already been entered`
    /// (SPEC.md TG-6).
    TaskGroupEntered {
        /// The group's repr.
        group: String,
    },
    /// `RuntimeError: TaskGroup <TaskGroup> has not been entered` (TG-6).
    TaskGroupNotEntered {
        /// The group's repr.
        group: String,
    },
    /// `RuntimeError: TaskGroup <TaskGroup ...> is finished` (TG-6).
    TaskGroupFinished {
        /// The group's repr.
        group: String,
    },
    /// `RuntimeError: TaskGroup <TaskGroup ...> is shutting down` (TG-6).
    TaskGroupShuttingDown {
        /// The group's repr.
        group: String,
    },
    /// `RuntimeError: TaskGroup <TaskGroup> cannot determine the parent
    /// task` — entered outside a task (TG-6).
    TaskGroupNoParent {
        /// The group's repr.
        group: String,
    },
    /// `ExceptionGroup` (or `BaseExceptionGroup`): the exceptions a
    /// [`TaskGroup`](crate::TaskGroup) collected (TG-2).
    ExceptionGroup(ExceptionGroup),
}

impl Error {
    /// The name of the Python exception class this error stands for.
    ///
    /// ```
    /// use loopspec::Error;
    /// assert_eq!(Error::DifferentLoop.python_type(), "ValueError");
    /// assert_eq!(Error::Cancelled(None).python_type(), "CancelledError");
    /// ```
    pub fn python_type(&self) -> &str {
        use Error::*;
        match self {
            AlreadyRunning
            | AnotherLoopRunning
            | CloseRunning
            | Closed
            | NoRunningLoop
            | NoCurrentLoop { .. }
            | StoppedBeforeComplete
            | NonThreadSafeCall
            | BoundToThread { .. }
            | RunInRunningLoop
            | RunnerInRunningLoop
            | RunnerClosed
            | UnexpectedState
            | TimeoutOutsideTask
            | TimeoutNotEntered
            | TimeoutEntered
            | TimeoutState { .. }
            | ResultFromLoopThread
            | PoolShutdown
            | ExecutorShutdownCalled
            | TaskSetResult
            | TaskSetException
            | TaskAwaitsItself { .. }
            | FutureOfOtherLoop { .. }
            | TaskGroupEntered { .. }
            | TaskGroupNotEntered { .. }
            | TaskGroupFinished { .. }
            | TaskGroupShuttingDown { .. }
            | TaskGroupNoParent { .. } => "RuntimeError",
            DifferentLoop | NanTime | EmptyWait => "ValueError",
            CoroutineExpected { .. } => "TypeError",
            ResultNotSet | ExceptionNotSet | InvalidState | ConcurrentInvalidState { .. } => {
                "InvalidStateError"
            }
            Cancelled(_) => "CancelledError",
            Timeout => "TimeoutError",
            Panic(_) => "Panic",
            Exception(e) => &e.type_name,
            ExceptionGroup(g) => g.python_type(),
        }
    }

    /// Whether Python's class for this error derives from `BaseException`
    /// but not from `Exception`: `CancelledError`, `KeyboardInterrupt`,
    /// `SystemExit` and `GeneratorExit` raised with [`Error::raise`], and
    /// a `BaseExceptionGroup`. Everything else, a panic included, is an
    /// `Exception`.
    ///
    /// ```
    /// use loopspec::Error;
    /// assert!(Error::Cancelled(None).is_base_exception());
    /// assert!(Error::raise("KeyboardInterrupt", "").is_base_exception());
    /// assert!(!Error::raise("ValueError", "x").is_base_exception());
    /// ```
    pub fn is_base_exception(&self) -> bool {
        match self {
            Error::Cancelled(_) => true,
            Error::Exception(e) => matches!(
                e.type_name.as_str(),
                "KeyboardInterrupt" | "SystemExit" | "GeneratorExit" | "BaseException"
            ),
            Error::ExceptionGroup(g) => g.is_base(),
            _ => false,
        }
    }

    /// A user exception with a Python class name and message, e.g.
    /// `Error::raise("ValueError", "bad")`.
    ///
    /// ```
    /// use loopspec::Error;
    /// let e = Error::raise("ValueError", "bad input");
    /// assert_eq!(e.python_type(), "ValueError");
    /// assert_eq!(e.to_string(), "bad input");
    /// ```
    pub fn raise(type_name: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Exception(Exception {
            type_name: type_name.into(),
            message: message.into(),
            source: None,
        })
    }

    /// Wraps any Rust error as an exception of class `Exception`.
    pub fn from_error<E: std::error::Error + Send + Sync + 'static>(err: E) -> Error {
        Error::Exception(Exception {
            type_name: "Exception".into(),
            message: err.to_string(),
            source: Some(Arc::new(err)),
        })
    }

    /// Whether this is a `CancelledError`.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Error::Cancelled(_))
    }

    /// Turns a caught panic payload into [`Error::Panic`].
    pub(crate) fn from_panic(payload: Box<dyn std::any::Any + Send>) -> Error {
        let msg = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "Box<dyn Any>".to_string()
        };
        Error::Panic(msg)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Error::*;
        match self {
            AlreadyRunning => f.write_str("This event loop is already running"),
            AnotherLoopRunning => {
                f.write_str("Cannot run the event loop while another loop is running")
            }
            CloseRunning => f.write_str("Cannot close a running event loop"),
            Closed => f.write_str("Event loop is closed"),
            NoRunningLoop => f.write_str("no running event loop"),
            NoCurrentLoop { thread } => {
                write!(f, "There is no current event loop in thread '{thread}'.")
            }
            StoppedBeforeComplete => f.write_str("Event loop stopped before Future completed."),
            NonThreadSafeCall => f.write_str(
                "Non-thread-safe operation invoked on an event loop other than the current one",
            ),
            BoundToThread { thread } => write!(
                f,
                "Event loop is bound to thread '{thread}', which holds its local \
                 callbacks, timers or tasks"
            ),
            UnexpectedState => f.write_str("Future in unexpected state"),
            ConcurrentInvalidState { message } => f.write_str(message),
            ResultFromLoopThread => f.write_str(
                "ConcurrentFuture.result() called from the thread of the loop that completes it \
                 would deadlock",
            ),
            PoolShutdown => f.write_str("cannot schedule new futures after shutdown"),
            ExecutorShutdownCalled => f.write_str("Executor shutdown has been called"),
            RunInRunningLoop => {
                f.write_str("asyncio.run() cannot be called from a running event loop")
            }
            RunnerInRunningLoop => {
                f.write_str("Runner.run() cannot be called from a running event loop")
            }
            RunnerClosed => f.write_str("Runner is closed"),
            TaskSetResult => f.write_str("Task does not support set_result operation"),
            TaskSetException => f.write_str("Task does not support set_exception operation"),
            TaskAwaitsItself { task } => write!(f, "Task cannot await on itself: {task}"),
            FutureOfOtherLoop { task, future } => {
                write!(f, "Task {task} got Future {future} attached to a different loop")
            }
            DifferentLoop => f.write_str(
                "The future belongs to a different loop than the one specified as the loop argument",
            ),
            NanTime => f.write_str("delay must not be NaN"),
            EmptyWait => f.write_str("Set of Tasks/Futures is empty."),
            TimeoutOutsideTask => f.write_str("Timeout should be used inside a task"),
            TimeoutNotEntered => f.write_str("Timeout has not been entered"),
            TimeoutEntered => f.write_str("Timeout has already been entered"),
            TimeoutState { state } => write!(f, "Cannot change state of {state} Timeout"),
            CoroutineExpected { got } => write!(f, "a coroutine was expected, got {got}"),
            ResultNotSet => f.write_str("Result is not set."),
            ExceptionNotSet => f.write_str("Exception is not set."),
            InvalidState => f.write_str("invalid state"),
            Cancelled(msg) => f.write_str(msg.as_deref().unwrap_or("")),
            Timeout => Ok(()),
            Panic(msg) => f.write_str(msg),
            Exception(e) => f.write_str(&e.message),
            TaskGroupEntered { group } => write!(f, "TaskGroup {group} has already been entered"),
            TaskGroupNotEntered { group } => write!(f, "TaskGroup {group} has not been entered"),
            TaskGroupFinished { group } => write!(f, "TaskGroup {group} is finished"),
            TaskGroupShuttingDown { group } => write!(f, "TaskGroup {group} is shutting down"),
            TaskGroupNoParent { group } => {
                write!(f, "TaskGroup {group} cannot determine the parent task")
            }
            ExceptionGroup(g) => fmt::Display::fmt(g, f),
        }
    }
}

/// `Debug` is Python's `repr()` of the exception: `ValueError('x')`,
/// `CancelledError()`, `TimeoutError()`.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Cancelled(None) => f.write_str("CancelledError()"),
            Error::Timeout => f.write_str("TimeoutError()"),
            Error::ExceptionGroup(g) => fmt::Debug::fmt(g, f),
            other => write!(
                f,
                "{}({})",
                other.python_type(),
                py_str_repr(&other.to_string())
            ),
        }
    }
}

/// Python's `repr()` of a `str`: single quotes unless the text has a single
/// quote and no double quote; backslash escapes for the quote, backslashes
/// and control characters.
pub(crate) fn py_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Exception(Exception {
                source: Some(s), ..
            }) => Some(&**s as &(dyn std::error::Error + 'static)),
            _ => None,
        }
    }
}

/// An exception raised by user code: the Python class name, the message and,
/// when it came from a Rust error, that error.
#[derive(Clone)]
pub struct Exception {
    /// The Python class name, e.g. `"ValueError"`.
    pub type_name: String,
    /// The message, `str(exc)` in Python.
    pub message: String,
    /// The Rust error this exception wraps, if any.
    pub source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl PartialEq for Exception {
    fn eq(&self, other: &Self) -> bool {
        self.type_name == other.type_name && self.message == other.message
    }
}

impl Eq for Exception {}

impl fmt::Debug for Exception {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({:?})", self.type_name, self.message)
    }
}

/// Python's `ExceptionGroup`: a message and the exceptions it groups, in
/// order. A [`TaskGroup`](crate::TaskGroup) raises one with the message
/// `unhandled errors in a TaskGroup` (SPEC.md TG-2).
///
/// Its class is `ExceptionGroup`, or `BaseExceptionGroup` when a member is
/// not an `Exception` ([`Error::is_base_exception`]), as Python's
/// `BaseExceptionGroup(...)` picks. `Display` is `str(eg)`, `Debug` is
/// `repr(eg)`:
///
/// ```
/// use loopspec::{Error, ExceptionGroup};
///
/// let eg = ExceptionGroup::new("unhandled errors in a TaskGroup", vec![Error::raise("ValueError", "x")]);
/// assert_eq!(eg.to_string(), "unhandled errors in a TaskGroup (1 sub-exception)");
/// assert_eq!(
///     format!("{eg:?}"),
///     "ExceptionGroup('unhandled errors in a TaskGroup', [ValueError('x')])"
/// );
/// let base = ExceptionGroup::new("m", vec![Error::raise("KeyboardInterrupt", "k"), Error::Cancelled(None)]);
/// assert_eq!(base.python_type(), "BaseExceptionGroup");
/// assert_eq!(base.to_string(), "m (2 sub-exceptions)");
/// assert_eq!(format!("{base:?}"), "BaseExceptionGroup('m', [KeyboardInterrupt('k'), CancelledError()])");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ExceptionGroup {
    /// The message, the group's first argument (`eg.message`).
    pub message: String,
    /// The exceptions, in order (`eg.exceptions`).
    pub exceptions: Vec<Error>,
}

impl ExceptionGroup {
    /// A group of `exceptions` with `message`.
    pub fn new(message: impl Into<String>, exceptions: Vec<Error>) -> ExceptionGroup {
        ExceptionGroup {
            message: message.into(),
            exceptions,
        }
    }

    /// The exceptions, in order.
    pub fn exceptions(&self) -> &[Error] {
        &self.exceptions
    }

    /// Whether a member is not an `Exception`, which makes this a
    /// `BaseExceptionGroup`.
    pub fn is_base(&self) -> bool {
        self.exceptions.iter().any(Error::is_base_exception)
    }

    /// `"ExceptionGroup"`, or `"BaseExceptionGroup"` when [`is_base`](Self::is_base).
    pub fn python_type(&self) -> &'static str {
        if self.is_base() {
            "BaseExceptionGroup"
        } else {
            "ExceptionGroup"
        }
    }
}

/// `str(eg)`: `MESSAGE (N sub-exceptions)`, singular for one.
impl fmt::Display for ExceptionGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.exceptions.len();
        let s = if n == 1 { "" } else { "s" };
        write!(f, "{} ({n} sub-exception{s})", self.message)
    }
}

/// `repr(eg)`: `ExceptionGroup('MESSAGE', [ValueError('x'), ...])`.
impl fmt::Debug for ExceptionGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}({}, [",
            self.python_type(),
            py_str_repr(&self.message)
        )?;
        for (i, e) in self.exceptions.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{e:?}")?;
        }
        f.write_str("])")
    }
}

/// What [`EventLoop::call_exception_handler`](crate::EventLoop::call_exception_handler)
/// reports: asyncio's context dict.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExceptionContext {
    /// asyncio's `message`, e.g. `"Exception in callback <Handle f>"`.
    pub message: String,
    /// The exception, if any.
    pub exception: Option<Error>,
    /// The repr of the handle whose callback failed, if any.
    pub handle: Option<String>,
    /// The repr of the future concerned, if any.
    pub future: Option<String>,
    /// The repr of the task concerned, if any.
    pub task: Option<String>,
}

impl ExceptionContext {
    /// A context with only a message.
    pub fn new(message: impl Into<String>) -> ExceptionContext {
        ExceptionContext {
            message: message.into(),
            ..ExceptionContext::default()
        }
    }

    /// This context with an exception.
    pub fn with_exception(mut self, e: Error) -> ExceptionContext {
        self.exception = Some(e);
        self
    }
}

impl fmt::Display for ExceptionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(e) = &self.exception {
            write!(f, ": {e:?}")?;
        }
        Ok(())
    }
}

/// Drops each item in its own `catch_unwind`, collecting the panics as
/// exceptions: user destructors run here (the loop dropping callbacks,
/// timers, coroutines it will not run), and one that panics must not stop
/// the others.
pub(crate) fn drop_each<T>(items: impl IntoIterator<Item = T>, panics: &mut Vec<Error>) {
    for item in items {
        if let Err(panic) =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(item)))
        {
            panics.push(Error::from_panic(panic));
        }
    }
}

/// `Result<T, loopspec::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
