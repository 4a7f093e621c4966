//! A loop built in one thread and run in others, as CPython programs do
//! (SPEC.md THREAD-3, THREAD-8, THREAD-9).
//!
//! `cargo run --example build_here_run_there`
//!
//! 1. The main thread schedules a callback and a task on a new loop and asks
//!    it to stop; a worker runs it: both run there.
//! 2. The same loop is run in turn by two workers. The first exits with a task
//!    and a timer pending; the main thread completes the future the task
//!    awaits while no thread runs the loop; the second worker finishes both.
//! 3. Another thread cancels a task of the loop while it is idle; the next run
//!    delivers the cancellation.
//!
//! Virtual time: the timer's delay passes without waiting. The output is the
//! one `build_here_run_there.py`, the same program in Python, prints with
//! CPython 3.10 to 3.15:
//!
//! `diff <(cargo run -q --example build_here_run_there) <(python3 examples/build_here_run_there.py)`

use loopspec::{ClockKind, Error, EventLoop};
use std::sync::{Arc, Mutex};
use std::thread;

/// Runs `f` in a new thread called `name` and joins it.
fn in_thread<R: Send + 'static>(name: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("the thread panicked")
}

/// The calling thread's name, as Python's `threading.current_thread().name`.
fn me() -> String {
    thread::current().name().unwrap_or("?").to_string()
}

/// One iteration on this thread: `call_soon(stop)`, then `run_forever()`.
fn one_iteration(lp: &EventLoop) -> loopspec::Result<()> {
    let stopper = lp.clone();
    lp.call_soon(move || stopper.stop())?;
    lp.run_forever()
}

fn main() -> loopspec::Result<()> {
    // 1. Built here, run there.
    let lp = EventLoop::with_clock(ClockKind::Virtual);
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    lp.call_soon(move || l.lock().unwrap().push(format!("cb in {}", me())))?;
    let l = log.clone();
    let task = lp.create_task(async move {
        l.lock().unwrap().push(format!("task in {}", me()));
        Ok(42)
    })?;
    let stopper = lp.clone();
    lp.call_soon(move || stopper.stop())?;
    let worker = lp.clone();
    in_thread("worker", move || worker.run_forever())?;
    for line in log.lock().unwrap().drain(..) {
        println!("1: {line}");
    }
    println!("1: task result {}", task.result()?);

    // 2. Run in turn by two threads; the first exits with work pending.
    let fut = lp.create_future::<i32>();
    let (f, l) = (fut.clone(), log.clone());
    let waiter = lp.create_task(async move {
        let v = f.await?;
        l.lock().unwrap().push(format!("task got {v} in {}", me()));
        Ok(v)
    })?;
    let l = log.clone();
    lp.call_later(5.0, move || {
        l.lock().unwrap().push(format!("timer in {}", me()))
    })?;
    let runner = lp.clone();
    in_thread("first", move || one_iteration(&runner))?;
    println!("2: first exited; task done: {}", waiter.done());
    fut.set_result(7)?; // no thread runs the loop: this thread may complete it
    let runner = lp.clone();
    let w = waiter.clone();
    let got = in_thread("second", move || {
        let v = runner.run_until_complete(w)?;
        runner.run_until_complete(loopspec::sleep(5.0))?;
        Ok::<_, Error>(v)
    })?;
    for line in log.lock().unwrap().drain(..) {
        println!("2: {line}");
    }
    println!("2: run_until_complete returned {got}");

    // 3. Another thread cancels a task while the loop is idle.
    let blocked = lp.create_task(async {
        loopspec::sleep(3600.0).await?;
        Ok("woke")
    })?;
    one_iteration(&lp)?;
    let t = blocked.clone();
    let cancelled = in_thread("canceller", move || t.cancel());
    println!("3: cancel() from another thread returned {cancelled}");
    let outcome = lp.run_until_complete(blocked.clone());
    println!(
        "3: the task is cancelled: {}; awaiting it raises {}",
        blocked.cancelled(),
        outcome.unwrap_err().python_type()
    );

    lp.close()?;
    println!("closed: {}", lp.is_closed());
    Ok(())
}
