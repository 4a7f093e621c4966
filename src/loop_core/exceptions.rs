//! The loop's exception handler: where what no caller can receive goes — a
//! panicking callback (SCHED-7), a handler that panics itself (SCHED-8), an
//! exception never retrieved (FUT-7), a task destroyed while pending
//! (TASK-8), a destructor that panics while the loop drops user data.

use super::shared::{EventLoop, ExceptionHandler};
use crate::error::{Error, ExceptionContext};
use crate::home::Cleared;
use std::panic::{AssertUnwindSafe, catch_unwind};

impl EventLoop {
    /// Installs `handler` as the loop's exception handler; `None` restores
    /// the default one, which writes one line to stderr (SCHED-8).
    pub fn set_exception_handler(&self, handler: Option<ExceptionHandler>) {
        *self.shared.handler.lock() = handler;
    }

    /// The installed exception handler, if any.
    pub fn get_exception_handler(&self) -> Option<ExceptionHandler> {
        self.shared.handler.lock().clone()
    }

    /// Reports `context` to the exception handler. If a custom handler
    /// panics, the default handler reports `Unhandled error in exception
    /// handler` and the loop goes on (SCHED-8).
    pub fn call_exception_handler(&self, context: &ExceptionContext) {
        let handler = self.shared.handler.lock().clone();
        match handler {
            None => default_exception_handler(context),
            Some(h) => {
                if let Err(panic) = catch_unwind(AssertUnwindSafe(|| h(self, context))) {
                    default_exception_handler(
                        &ExceptionContext::new(format!(
                            "Unhandled error in exception handler; context: {context}"
                        ))
                        .with_exception(Error::from_panic(panic)),
                    );
                }
            }
        }
    }

    /// Reports what emptying a home found: each destructor panic, then each
    /// task destroyed while pending (TASK-8).
    pub(crate) fn report_cleared(&self, cleared: Cleared) {
        self.report_drop_panics("queued work", cleared.panics);
        for task in cleared.pending {
            self.call_exception_handler(&ExceptionContext {
                message: "Task was destroyed but it is pending!".into(),
                task: Some(task),
                ..ExceptionContext::default()
            });
        }
    }

    /// Reports panics raised by destructors of user values the loop dropped.
    pub(crate) fn report_drop_panics(&self, what: &str, panics: Vec<Error>) {
        for panic in panics {
            self.call_exception_handler(
                &ExceptionContext::new(format!("Exception while dropping {what}"))
                    .with_exception(panic),
            );
        }
    }
}

/// The default exception handler: one line on stderr.
pub fn default_exception_handler(context: &ExceptionContext) {
    eprintln!("{context}");
}
