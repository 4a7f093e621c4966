//! The per-thread rules at work: which loop each thread sees.
//!
//! Run with `cargo run --example per_thread`. Each line names the SPEC.md rule
//! it shows.

use loopspec::{ClockKind, EventLoop, Policy, Profile, Result};

fn main() {
    // POLICY-3: in the main thread, get_event_loop() makes a loop (3.11 rules).
    let main_loop = loopspec::get_event_loop().expect("main thread gets a loop");
    let again = loopspec::get_event_loop().unwrap();
    println!(
        "[POLICY-3] main thread: get_event_loop() created a loop; same loop on the second call: {}",
        main_loop == again
    );

    // POLICY-4 / POLICY-9: another thread gets no loop implicitly.
    let worker = std::thread::Builder::new()
        .name("worker".into())
        .spawn(|| {
            match loopspec::get_event_loop() {
                Ok(_) => println!("[POLICY-4] worker: unexpectedly got a loop"),
                Err(e) => println!("[POLICY-4] worker: {}: {e}", e.python_type()),
            }
            // POLICY-8 / POLICY-1: make one, set it, and it is this thread's loop.
            let lp = EventLoop::with_clock(ClockKind::Virtual);
            loopspec::set_event_loop(Some(&lp));
            let mine = loopspec::get_event_loop().unwrap();
            println!(
                "[POLICY-1] worker: after set_event_loop, get_event_loop() is the worker's loop: {}",
                mine == lp
            );
            let out = lp.run_until_complete(work("worker", 2.0)).unwrap();
            println!(
                "[TASK-12] worker: {out}; loop time {:.1}s (virtual clock, nothing slept)",
                lp.time()
            );
            lp.close().unwrap();
            lp
        })
        .unwrap();
    let worker_loop = worker.join().unwrap();
    println!(
        "[POLICY-1] main thread still sees its own loop: {}",
        loopspec::get_event_loop().unwrap() == main_loop && main_loop != worker_loop
    );

    // POLICY-2: inside a running loop, the running loop wins.
    let other = EventLoop::with_clock(ClockKind::Virtual);
    let seen = other
        .run_until_complete(async { loopspec::get_event_loop() })
        .unwrap();
    println!(
        "[POLICY-2] inside a running loop get_event_loop() is the running loop: {}",
        seen == other
    );

    // POLICY-5: set_event_loop(None) turns implicit creation off, even here.
    loopspec::set_event_loop(None);
    match loopspec::get_event_loop() {
        Ok(_) => println!("[POLICY-5] unexpectedly got a loop"),
        Err(e) => println!(
            "[POLICY-5] after set_event_loop(None): {}: {e}",
            e.python_type()
        ),
    }

    // POLICY-3 by version, in a fresh thread treated as the main thread.
    for profile in Profile::ALL {
        let line = std::thread::spawn(move || {
            let policy = Policy::new(profile).with_main_thread(std::thread::current().id());
            let (got, warnings) = loopspec::catch_warnings(|| policy.get_event_loop());
            let got = match got {
                Ok(_) => "creates a loop".to_string(),
                Err(e) => format!("{}: {e}", e.python_type()),
            };
            let warnings: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
            format!("[POLICY-3] {profile:?}: {got}; warnings: {warnings:?}")
        })
        .join()
        .unwrap();
        println!("{line}");
    }

    // LIFE-5: a loop cannot run inside another running loop.
    let outer = EventLoop::with_clock(ClockKind::Virtual);
    let inner = EventLoop::with_clock(ClockKind::Virtual);
    let err = outer
        .run_until_complete(async move { inner.run_until_complete(async { Ok(()) }) })
        .unwrap_err();
    println!("[LIFE-5] nested run: {}: {err}", err.python_type());
    main_loop.close().unwrap();
}

/// A coroutine: sleeps on the loop's clock and reports.
async fn work(who: &'static str, delay: f64) -> Result<String> {
    loopspec::sleep(delay).await?;
    Ok(format!("{who} slept {delay}s"))
}
