//! ERR rules of SPEC.md: one error type with asyncio's messages.

use loopspec::Error;

/// Every `Error` variant: `Display` is the exact message SPEC.md quotes and
/// `python_type()` the Python class. A `CancelledError` without a message and
/// a `TimeoutError` display as the empty string.
/// Rules: ERR-1
#[test]
fn error_variants_display_asyncio_messages() {
    let task = "<Task pending name='Task-1'>".to_string();
    let cases: Vec<(Error, &str, &str)> = vec![
        (
            Error::AlreadyRunning,
            "RuntimeError",
            "This event loop is already running",
        ),
        (
            Error::AnotherLoopRunning,
            "RuntimeError",
            "Cannot run the event loop while another loop is running",
        ),
        (
            Error::CloseRunning,
            "RuntimeError",
            "Cannot close a running event loop",
        ),
        (Error::Closed, "RuntimeError", "Event loop is closed"),
        (
            Error::NoRunningLoop,
            "RuntimeError",
            "no running event loop",
        ),
        (
            Error::NoCurrentLoop {
                thread: "MainThread".into(),
            },
            "RuntimeError",
            "There is no current event loop in thread 'MainThread'.",
        ),
        (
            Error::NoCurrentLoop {
                thread: "worker".into(),
            },
            "RuntimeError",
            "There is no current event loop in thread 'worker'.",
        ),
        (
            Error::StoppedBeforeComplete,
            "RuntimeError",
            "Event loop stopped before Future completed.",
        ),
        (
            Error::NonThreadSafeCall,
            "RuntimeError",
            "Non-thread-safe operation invoked on an event loop other than the current one",
        ),
        (
            Error::BoundToThread {
                thread: "NAME".into(),
            },
            "RuntimeError",
            "Event loop is bound to thread 'NAME', which holds its local callbacks, \
             timers or tasks",
        ),
        (
            Error::RunInRunningLoop,
            "RuntimeError",
            "asyncio.run() cannot be called from a running event loop",
        ),
        (
            Error::TaskSetResult,
            "RuntimeError",
            "Task does not support set_result operation",
        ),
        (
            Error::TaskSetException,
            "RuntimeError",
            "Task does not support set_exception operation",
        ),
        (
            Error::TaskAwaitsItself { task: task.clone() },
            "RuntimeError",
            "Task cannot await on itself: <Task pending name='Task-1'>",
        ),
        (
            Error::FutureOfOtherLoop {
                task: task.clone(),
                future: "<Future pending>".into(),
            },
            "RuntimeError",
            "Task <Task pending name='Task-1'> got Future <Future pending> attached to a \
             different loop",
        ),
        (
            Error::DifferentLoop,
            "ValueError",
            "The future belongs to a different loop than the one specified as the loop argument",
        ),
        (Error::NanTime, "ValueError", "delay must not be NaN"),
        (
            Error::EmptyWait,
            "ValueError",
            "Set of Tasks/Futures is empty.",
        ),
        (
            Error::UnexpectedState,
            "RuntimeError",
            "Future in unexpected state",
        ),
        (
            Error::ConcurrentInvalidState {
                message: "FINISHED: <Future at 0x7f state=finished returned int>".into(),
            },
            "InvalidStateError",
            "FINISHED: <Future at 0x7f state=finished returned int>",
        ),
        (
            Error::ResultFromLoopThread,
            "RuntimeError",
            "ConcurrentFuture.result() called from the thread of the loop that completes it \
             would deadlock",
        ),
        (
            Error::PoolShutdown,
            "RuntimeError",
            "cannot schedule new futures after shutdown",
        ),
        (
            Error::ExecutorShutdownCalled,
            "RuntimeError",
            "Executor shutdown has been called",
        ),
        (
            Error::TimeoutOutsideTask,
            "RuntimeError",
            "Timeout should be used inside a task",
        ),
        (
            Error::CoroutineExpected {
                got: "<Future pending>".into(),
            },
            "TypeError",
            "a coroutine was expected, got <Future pending>",
        ),
        (
            Error::ResultNotSet,
            "InvalidStateError",
            "Result is not set.",
        ),
        (
            Error::ExceptionNotSet,
            "InvalidStateError",
            "Exception is not set.",
        ),
        (Error::InvalidState, "InvalidStateError", "invalid state"),
        (Error::Cancelled(None), "CancelledError", ""),
        (
            Error::Cancelled(Some("msg".into())),
            "CancelledError",
            "msg",
        ),
        (Error::Timeout, "TimeoutError", ""),
        (Error::Panic("boom".into()), "Panic", "boom"),
        (
            Error::raise("ValueError", "bad input"),
            "ValueError",
            "bad input",
        ),
        (Error::raise("KeyError", "'k'"), "KeyError", "'k'"),
    ];
    for (err, ty, msg) in &cases {
        assert_eq!(err.to_string(), *msg, "Display of {err:?}");
        assert_eq!(err.python_type(), *ty, "python_type of {err:?}");
    }
    // Cancellation is recognised as such, and only it.
    for (err, ty, _) in &cases {
        assert_eq!(err.is_cancelled(), *ty == "CancelledError", "{err:?}");
    }
}

/// A Rust error wrapped with `from_error` is an `Exception` carrying the
/// error's message and keeping it as its source; errors are `Send + Sync`
/// and cheap to clone.
/// Rules: ERR-1
#[test]
fn error_from_rust_error_is_exception() {
    let io = std::io::Error::other("disk on fire");
    let err = Error::from_error(io);
    assert_eq!(err.python_type(), "Exception");
    assert_eq!(err.to_string(), "disk on fire");
    let source = std::error::Error::source(&err).expect("source kept");
    assert_eq!(source.to_string(), "disk on fire");
    let clone = err.clone();
    assert_eq!(clone, err);
    fn send_sync<T: Send + Sync + 'static>(_: &T) {}
    send_sync(&err);
    // Every failure of the API is this one type.
    let lp = common::vloop();
    lp.close().unwrap();
    let e: Error = lp.call_soon(|| ()).unwrap_err();
    assert_eq!(e.to_string(), "Event loop is closed");
    assert_eq!(e.python_type(), "RuntimeError");
}
