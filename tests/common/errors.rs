//! The exceptions tests raise and the checks of those they expect.

use loopspec::Error;

/// `ValueError(msg)`.
pub fn value_error(msg: &str) -> Error {
    Error::raise("ValueError", msg)
}

/// `KeyError(msg)`.
pub fn key_error(msg: &str) -> Error {
    Error::raise("KeyError", msg)
}

/// Asserts that `err` is, in Python, `class(message)`: its class name and
/// `str(exc)`.
#[track_caller]
pub fn assert_py_error(err: &Error, class: &str, message: &str) {
    assert_eq!(
        (err.python_type(), err.to_string().as_str()),
        (class, message),
        "{err:?}"
    );
}

/// Asserts that `err` is `RuntimeError('Event loop is closed')`.
#[track_caller]
pub fn assert_closed(err: &Error) {
    assert_eq!(*err, Error::Closed);
    assert_py_error(err, "RuntimeError", "Event loop is closed");
}

/// Asserts that `err` is a `CancelledError` (with any message).
#[track_caller]
pub fn assert_cancelled(err: &Error) {
    assert!(err.is_cancelled(), "expected CancelledError, got {err:?}");
    assert_eq!(err.python_type(), "CancelledError");
}
