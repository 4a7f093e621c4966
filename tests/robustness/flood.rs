//! Progress under a flood of cross-thread submissions (SPEC.md XTHREAD-11).
//!
//! Three producer threads call `call_soon_threadsafe` without pause while the
//! loop runs, and the loop starts behind them. Each iteration takes from the
//! inbox only what was announced when its drain began, so the loop keeps
//! alternating between taking and running: callbacks run, a stop sent from
//! another thread ends the run, a timer fires in the next iteration.
//!
//! The tests count, they do not time. An iteration counter is a zero-delay
//! timer that re-arms itself: due timers join the ready queue after
//! everything the drain took (SCHED-1), so it runs last in every iteration.
//! The producers stop once the run has ended, or after a budget of
//! submissions: running out of it before the loop ran [`WARM`] callbacks is
//! the failure "the flood held the loop". The budget bounds a failure, like
//! the hang guard; it is not a figure the rule promises.
//!
//! Which thread wins a race is the machine's choice, so a drain that takes
//! everything (the planted bug `unbounded-drain`) fails here in most
//! runs, not in all: it holds the loop until a producer happens to fall
//! behind. The deterministic check of the bound is the inbox's loom model
//! (`src/inbox/loom_models.rs`), which explores a send landing in the middle of a drain.

use common::{HANG_GUARD, recv_or_hang, vloop};
use loopspec::EventLoop;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

/// Submissions waiting in the inbox before the loop starts: it starts behind.
const PREFILL: usize = 100_000;
/// Callbacks that must have run before the other thread acts: the loop is
/// into the flood.
const WARM: usize = 20_000;
/// Submissions a producer makes between two looks at the flags.
const BURST: usize = 64;
/// Producer threads.
const PRODUCERS: usize = 3;
/// Submissions per producer after which it gives up: the flood held the
/// loop. A loop that takes only what was announced has run [`WARM`]
/// callbacks after at most about two and a half million submissions in all
/// on a 2-core machine (it runs one callback for every 2 to 20 submitted
/// while three threads flood it, and starts [`PREFILL`] behind); one that
/// drains until the inbox is empty runs none while the producers keep pace.
const BUDGET: usize = 4_000_000;

/// What the flood's threads tell the thread that acts on the loop.
#[derive(Debug, PartialEq)]
enum Event {
    /// [`WARM`] flood callbacks ran.
    Warm,
    /// A producer used up its budget first: the flood held the loop.
    Exhausted,
}

/// What the flood callbacks share, a `'static` per test so that a callback
/// captures one reference and nothing else.
struct Ran {
    /// Flood callbacks that ran.
    count: AtomicUsize,
    /// Told [`Event::Warm`] by the callback that makes the count [`WARM`].
    warm: OnceLock<Sender<Event>>,
}

impl Ran {
    const fn new() -> Ran {
        Ran {
            count: AtomicUsize::new(0),
            warm: OnceLock::new(),
        }
    }

    /// The flood callback's body.
    fn one(&self) {
        if self.count.fetch_add(1, Relaxed) + 1 == WARM
            && let Some(events) = self.warm.get()
        {
            let _ = events.send(Event::Warm);
        }
    }

    fn get(&self) -> usize {
        self.count.load(Relaxed)
    }
}

/// What the producers and the loop share. The producers' hot path touches
/// nothing shared but the loop itself: they count their own submissions, and
/// a flood callback captures only `&'static Ran`.
struct Flood {
    ran: &'static Ran,
    /// Set once the run has returned: the producers stop.
    over: AtomicBool,
}

/// What one producer did: (submissions accepted, refused).
type Made = (usize, usize);

/// The flood tests run one at a time: two floods side by side would only
/// measure how the machine shares its cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

impl Flood {
    fn new(ran: &'static Ran) -> Arc<Flood> {
        Arc::new(Flood {
            ran,
            over: AtomicBool::new(false),
        })
    }

    /// Starts `n` producers flooding `lp` until the run is over or their
    /// budget is used up (then they say so on `events`).
    fn producers(
        self: &Arc<Flood>,
        lp: &EventLoop,
        n: usize,
        events: &Sender<Event>,
    ) -> Vec<JoinHandle<Made>> {
        (0..n)
            .map(|_| {
                let (fl, lp, events) = (self.clone(), lp.clone(), events.clone());
                std::thread::spawn(move || {
                    let ran = fl.ran;
                    let (mut accepted, mut refused) = (0, 0);
                    while accepted + refused < BUDGET {
                        if fl.over.load(SeqCst) {
                            return (accepted, refused);
                        }
                        for _ in 0..BURST {
                            match lp.call_soon_threadsafe(move || ran.one()) {
                                Ok(_) => accepted += 1,
                                Err(_) => refused += 1,
                            }
                        }
                    }
                    let _ = events.send(Event::Exhausted);
                    (accepted, refused)
                })
            })
            .collect()
    }
}

/// Counts iterations: a zero-delay timer that re-arms itself runs last in
/// every iteration (SCHED-1: due timers join the ready queue after the
/// drained submissions) and bumps `ticks`.
fn start_ticker(lp: &EventLoop, ticks: Arc<AtomicUsize>) {
    let l = lp.clone();
    lp.call_later(0.0, move || {
        ticks.fetch_add(1, SeqCst);
        start_ticker(&l, ticks);
    })
    .unwrap();
}

/// Waits for the first event: true if the loop warmed up, false if a
/// producer used up its budget first (then the loop is stopped, so the run
/// ends and the test can report it).
fn wait_warm(lp: &EventLoop, events: &Receiver<Event>) -> bool {
    match recv_or_hang(events, "the flood's first event") {
        Event::Warm => true,
        Event::Exhausted => {
            lp.stop();
            false
        }
    }
}

/// One flood: two producers flood a new loop on the virtual clock, with the
/// ticker armed, while this thread runs it; once [`WARM`] flood callbacks
/// ran, `act` runs on another thread, which must end the run. Then the
/// producers stop, and every accepted submission must run exactly once.
/// Returns what `act` returned and the iteration count at the run's end.
fn flood<R: Send + 'static>(
    ran: &'static Ran,
    act: impl FnOnce(&EventLoop, &Arc<AtomicUsize>) -> R + Send + 'static,
) -> (R, usize) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let lp = vloop();
    let fl = Flood::new(ran);
    let ticks = Arc::new(AtomicUsize::new(0));
    let (events, warm) = channel();
    ran.warm.set(events.clone()).unwrap();
    start_ticker(&lp, ticks.clone());
    let producers = fl.producers(&lp, PRODUCERS, &events);
    let deadline = Instant::now() + HANG_GUARD;
    while lp.inbox_stats().queued < PREFILL {
        assert!(
            Instant::now() < deadline,
            "hang guard: the producers do not start"
        );
        std::thread::yield_now();
    }
    let actor = {
        let (lp, ticks) = (lp.clone(), ticks.clone());
        std::thread::spawn(move || wait_warm(&lp, &warm).then(|| act(&lp, &ticks)))
    };
    let run = lp.run_forever();
    let ended_at = ticks.load(SeqCst);
    fl.over.store(true, SeqCst);
    let mut accepted = 0;
    for p in producers {
        let (a, refused) = p.join().unwrap();
        assert_eq!(refused, 0, "the loop is open: nothing is refused");
        accepted += a;
    }
    run.unwrap();
    let Some(acted) = actor.join().unwrap() else {
        panic!(
            "the flood held the loop: {BUDGET} submissions from one producer before {WARM} \
             callbacks ran ({} ran)",
            ran.get()
        );
    };
    // Nothing is submitted any more: one more iteration (a pre-stopped run,
    // STOP-2) takes everything still queued.
    lp.stop();
    lp.run_forever().unwrap();
    assert_eq!(ran.get(), accepted, "every accepted submission ran once");
    assert_eq!(lp.inbox_stats().queued, 0);
    (acted, ended_at)
}

/// A stop sent with `call_soon_threadsafe` while two threads flood the loop
/// ends the run at the end of the first iteration whose drain began after
/// it was sent.
/// Rules: XTHREAD-11, STOP-5
#[test]
fn call_soon_threadsafe_flood_lets_a_stop_end_the_run() {
    static RAN: Ran = Ran::new();
    let stopped_at = Arc::new(AtomicUsize::new(usize::MAX));
    let s = stopped_at.clone();
    // The iteration count just after the stop was submitted.
    let (seen, ended_at) = flood(&RAN, move |lp, ticks| {
        let (l, t) = (lp.clone(), ticks.clone());
        lp.call_soon_threadsafe(move || {
            s.store(t.load(SeqCst), SeqCst);
            l.stop();
        })
        .unwrap();
        ticks.load(SeqCst)
    });
    let stopped_at = stopped_at.load(SeqCst);
    // The ticker runs last in its iteration, so iteration i's callbacks see
    // the count i - 1 and the run's end sees i. When the sender read `seen`,
    // the loop was in iteration `seen` + 1, or between its end and the next
    // drain: the stop runs in that iteration or the next ...
    assert!(
        stopped_at <= seen + 1,
        "the stop ran in iteration {}, sent in iteration {}",
        stopped_at + 1,
        seen + 1
    );
    // ... and the run ends with the iteration the stop ran in.
    assert_eq!(ended_at, stopped_at + 1);
}

/// A timer armed while two threads flood the loop fires in the next
/// iteration.
/// Rules: XTHREAD-11, SCHED-1
#[test]
fn call_soon_threadsafe_flood_lets_a_due_timer_run() {
    static RAN: Ran = Ran::new();
    // Another thread has the loop arm a zero-delay timer, which stops the
    // loop when it fires: (count when armed, count when fired).
    let fired = Arc::new(Mutex::new(None));
    let f = fired.clone();
    flood(&RAN, move |lp, ticks| {
        let (l, ticks) = (lp.clone(), ticks.clone());
        lp.call_soon_threadsafe(move || {
            let armed = ticks.load(SeqCst);
            let stopper = l.clone();
            l.call_later(0.0, move || {
                *f.lock().unwrap() = Some((armed, ticks.load(SeqCst)));
                stopper.stop();
            })
            .unwrap();
        })
        .unwrap();
    });
    let (armed, fired_at) = fired.lock().unwrap().expect("the timer fired");
    assert_eq!(
        fired_at,
        armed + 1,
        "armed in one iteration, fired in the next"
    );
}
