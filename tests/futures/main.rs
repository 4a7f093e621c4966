//! Futures and tasks: SPEC.md's FUT rules (`Future<T>`: states, reading,
//! completing, cancelling, done callbacks) and TASK rules (steps,
//! cancellation, names, `sleep`, `current_task`/`all_tasks`, panics).

mod eager;
mod future;
mod task;
mod task_apis;
