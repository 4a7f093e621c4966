//! The inbox: work handed to a loop from any thread, and the wake protocol
//! that decides when the loop must be woken (SPEC.md XTHREAD-1…4,
//! XTHREAD-11, THREAD-4).
//!
//! A loop has one inbox. Producers — `call_soon_threadsafe` from any
//! thread, a task's waker called off the loop's thread — `send` `Send`
//! submissions into it; at each iteration the loop drains them into its
//! ready queue (`drain_into`), and it `park`s on the inbox when it has nothing to do. The
//! inbox owns everything about waking: its state (`state.rs`: one atomic
//! word and a few fields under the inbox lock) is read and written here
//! only, through these operations:
//!
//! | operation | called by | lock | what it does |
//! |---|---|---|---|
//! | `send` | any thread | none; the inbox lock only to wake a parked loop | announce (count `+1`), then send; refused once closed |
//! | `pending` | the loop | none | a hint: is anything announced? |
//! | `drain_into` | the thread that runs or borrows the loop's work | none | at most what was announced when it began |
//! | `park` | the loop | held until it waits | sets `PARKED` and waits, unless work is pending or the caller must not wait |
//! | `wake` | `stop()`, a send that saw `PARKED` | held | one condvar signal per park |
//! | `close` | `close()` | held, then none | refuses from now on; returns everything accepted |
//!
//! The channel is std's lock-free multi-producer `mpsc` (loom's modelled
//! one under `--cfg loom`): a producer never takes a lock on the way in,
//! and a burst to a loop that is not parked costs no lock at all.
//!
//! # Invariants
//!
//! 1. **No lost wake-up.** A producer announces with one read-modify-write
//!    of the word, then sends; the loop decides to park with one
//!    read-modify-write that sets `PARKED`. Read-modify-writes of one word
//!    are totally ordered: either the loop sees the count and does not park
//!    (it polls again until the send lands), or the producer sees `PARKED`
//!    and, once it has sent, takes the lock to wake it. The loop holds the
//!    lock from setting `PARKED` until it waits, so that wake-up finds it
//!    waiting. A `stop()` sets its flag before it calls `wake`, and
//!    `park` reads the flag under the lock: the same argument.
//! 2. **Coalescing.** A waker signals the condvar only on the transition
//!    `PARKED && !notified` → `notified`, under the lock: one signal per
//!    park, however many submissions arrive. A busy loop is never
//!    `PARKED`, so a burst to it costs no lock and no signal.
//! 3. **Accepted or refused, decided at the announce.** A producer whose
//!    announce finds `CLOSED` takes it back and never sends: refused
//!    (`Event loop is closed`), so its callback cannot run. One announced
//!    before `CLOSED` is accepted: the loop runs it, or `close` returns
//!    it to be dropped — `close` sets `CLOSED` with a read-modify-write,
//!    then receives until the count is zero, waiting out sends still in
//!    flight. Nothing is left in the channel of a closed inbox.
//! 4. **Order.** The channel is FIFO per producer, and a drain takes in
//!    channel order.
//! 5. **Progress.** A drain reads the count before it receives and takes at
//!    most that many (XTHREAD-11): sends that land while it runs wait for
//!    the next drain, so producers that never pause cannot hold the loop
//!    in one drain. A submission sent before the read is within the bound
//!    (its announce preceded its send), which keeps XTHREAD-2's order with
//!    `call_soon`. Only `close` takes everything.
//!
//! The loom models in `loom_models.rs` check 1, 2, 3 and 5 on the inbox
//! alone; `tests/loom_*.rs` check them again through the whole loop.
//!
//! The inbox counts submissions, signals and parks ([`InboxStats`]), so
//! tests and benchmarks can show the coalescing.

#[cfg(all(test, loom))]
mod loom_models;
mod state;

use self::state::{CLOSED, CachePadded, Locked, ONE_SUBMISSION, PARKED};
use crate::sync::{AtomicU64, AtomicUsize, Condvar, Mutex, Ordering, mpsc, thread};
use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

/// A [`send`](Inbox::send) was refused: the inbox is closed. The item was
/// dropped inside `send`, never sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused;

/// What a [`drain`](Inbox::drain_into) took from the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(all(test, loom)), allow(dead_code))]
pub(crate) struct Drained {
    /// The count it read when it began: its bound.
    pub(crate) announced: usize,
    /// Submissions it took from the channel (never more than `announced`).
    pub(crate) taken: usize,
}

/// Counters of a loop's inbox, from [`EventLoop::inbox_stats`](crate::EventLoop::inbox_stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InboxStats {
    /// Submissions accepted from other threads.
    pub submissions: u64,
    /// Condvar signals issued to wake the parked loop.
    pub wakeups: u64,
    /// Times the loop parked waiting for submissions or a timeout.
    pub parks: u64,
    /// Submissions waiting in the inbox now.
    pub queued: usize,
}

/// A loop's inbox of `T`s (the loop's are [`Submission`](crate::handle::Submission)s);
/// see the [module docs](self).
pub(crate) struct Inbox<T> {
    /// The producers' end of the channel; [`send`](Inbox::send) clones
    /// nothing, `mpsc::Sender` is shared.
    tx: mpsc::Sender<T>,
    /// The loop's end. The lock makes drains take turns (the loop's, and
    /// `close`'s from another thread); producers never take it.
    rx: Mutex<mpsc::Receiver<T>>,
    /// Count and flags: see `state.rs`.
    word: Word,
    /// What the inbox lock guards: see `state.rs`.
    locked: Mutex<Locked>,
    /// The loop parks here, under `locked`.
    wakeup: Condvar,
    /// Submissions taken out (run or dropped) since the inbox was made, for
    /// [`stats`](Inbox::stats); written by drains and `close`.
    taken: AtomicU64,
}

impl<T> Inbox<T> {
    pub(crate) fn new() -> Inbox<T> {
        let (tx, rx) = mpsc::channel();
        Inbox {
            tx,
            rx: Mutex::new(rx),
            word: Word::new(),
            locked: Mutex::new(Locked::default()),
            wakeup: Condvar::new(),
            taken: AtomicU64::new(0),
        }
    }

    /// Hands `item` to the loop, from any thread: announce, then send, then
    /// wake the loop if the announce found it parked. An announce that finds
    /// the inbox closed is taken back and `item` is dropped here, never sent
    /// (invariant 3).
    pub(crate) fn send(&self, item: T) -> Result<(), Refused> {
        // Seeded bug (`refuse-after-send`): send before the announce, as this
        // inbox first did — the loop can take the item before an announce
        // that then finds CLOSED reports it refused.
        #[cfg(loopspec_mutant = "refuse-after-send")]
        let item = self.tx.send(item).err().map(|e| e.0);
        #[cfg(not(loopspec_mutant = "refuse-after-send"))]
        let item = Some(item);
        let before = self.word.announce();
        // Seeded bug (`schedule-on-closed`): a closed inbox accepts work.
        #[cfg(not(loopspec_mutant = "schedule-on-closed"))]
        if is_closed(before) {
            self.word.retract();
            drop(item);
            return Err(Refused);
        }
        if let Some(item) = item
            && self.tx.send(item).is_err()
        {
            // The receiver lives as long as the inbox: cannot happen.
            self.word.retract();
            return Err(Refused);
        }
        if is_parked(before) {
            self.wake();
        }
        Ok(())
    }

    /// Whether work is waiting, from the word alone (no lock). A submission
    /// announced but still being sent counts: the loop polls again, rather
    /// than park, until it lands.
    pub(crate) fn pending(&self) -> bool {
        pending(self.word.hint())
    }

    /// Takes into `out`, in order, at most the submissions announced when
    /// the drain began (invariants 4 and 5): what producers send meanwhile
    /// waits for the next drain. It takes fewer when an announced send is
    /// still in flight (the channel looks empty). Called by the thread that
    /// runs or borrows the loop's work.
    pub(crate) fn drain_into(&self, out: &mut VecDeque<T>) -> Drained {
        let rx = self.rx.lock();
        let announced = count(self.word.hint()).max(0) as usize;
        // Seeded bug (`unbounded-drain`): drain until the channel is empty,
        // as this inbox first did: a flood holds the loop in one drain.
        #[cfg(loopspec_mutant = "unbounded-drain")]
        let limit = usize::MAX;
        #[cfg(not(loopspec_mutant = "unbounded-drain"))]
        let limit = announced;
        let taken = self.receive(&rx, out, limit);
        Drained { announced, taken }
    }

    /// Receives up to `limit` submissions with the receiver held, and takes
    /// them off the count.
    fn receive(&self, rx: &mpsc::Receiver<T>, out: &mut VecDeque<T>, limit: usize) -> usize {
        let mut n = 0;
        while n < limit {
            // Under loom, a point where a send may land: loom's channel takes
            // no scheduling decision at `try_recv`'s emptiness check, so
            // without it the models never see a send arrive mid-drain.
            #[cfg(loom)]
            if n > 0 {
                thread::yield_now();
            }
            let Ok(item) = rx.try_recv() else { break };
            out.push_back(item);
            n += 1;
        }
        if n > 0 {
            // Counted before the receiver is released, so a later drain
            // (which takes the receiver after this one) sees the count.
            self.taken.fetch_add(n as u64, Ordering::Relaxed);
            self.word.took(n);
        }
        n
    }

    /// The loop waits here until a send or a [`wake`](Inbox::wake) wakes it
    /// or `timeout` ends (`None`: no end) — unless work is pending, or
    /// `must_not_wait()` says so (a requested stop: read under the lock, so
    /// a `stop()`, which sets its flag and then calls `wake`, is never slept
    /// through). Invariant 1.
    pub(crate) fn park(&self, timeout: Option<Duration>, must_not_wait: impl Fn() -> bool) {
        let mut locked = self.locked.lock();
        if must_not_wait() || pending(self.word.hint()) {
            return;
        }
        // The last look at the word sets PARKED in the same step: a send
        // announced before it cancels the park.
        if !self.word.try_park() {
            return;
        }
        locked.parks += 1;
        let deadline = timeout.map(|t| Instant::now() + t);
        while !locked.notified {
            match deadline {
                None => locked = self.wakeup.wait(locked),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break;
                    }
                    locked = self.wakeup.wait_timeout(locked, d - now);
                }
            }
        }
        locked.notified = false;
        self.word.unpark();
    }

    /// Wakes the loop if it is parked and no wake-up is pending for this
    /// park (invariant 2). Callable from any thread.
    pub(crate) fn wake(&self) {
        let signal = {
            let mut locked = self.locked.lock();
            self.wake_locked(&mut locked)
        };
        if signal {
            self.wakeup.notify_one();
        }
    }

    /// [`wake`](Inbox::wake)'s decision, under the lock: whether the caller
    /// must signal the condvar.
    fn wake_locked(&self, locked: &mut Locked) -> bool {
        // Seeded bug (`wake-every-push`): signal on every push to a parked
        // loop, not once per park.
        #[cfg(loopspec_mutant = "wake-every-push")]
        let already = false;
        #[cfg(not(loopspec_mutant = "wake-every-push"))]
        let already = locked.notified;
        if is_parked(self.word.load()) && !already {
            locked.notified = true;
            locked.wakeups += 1;
            true
        } else {
            false
        }
    }

    /// Closes the inbox: every later [`send`](Inbox::send) is refused.
    /// Returns, in order, everything accepted and not taken, for the caller
    /// to drop; waits
    /// out sends announced before the close and still in flight
    /// (invariant 3). Closing twice returns nothing the second time.
    pub(crate) fn close(&self) -> VecDeque<T> {
        let mut out = VecDeque::new();
        {
            let _locked = self.locked.lock();
            self.word.close();
        }
        // Seeded bug (`close-skips-drain`): what was accepted stays in the
        // channel of the closed inbox.
        #[cfg(not(loopspec_mutant = "close-skips-drain"))]
        loop {
            self.receive(&self.rx.lock(), &mut out, usize::MAX);
            // A refused producer's announce is taken back as quickly as an
            // accepted one's send lands.
            if count(self.word.hint()) <= 0 {
                break;
            }
            thread::yield_now();
        }
        out
    }

    /// The counters. A closed inbox holds nothing that can still run:
    /// `close` returned what it had accepted, and a count above zero there
    /// is a refused producer between its announce and its retract, not a
    /// submission.
    pub(crate) fn stats(&self) -> InboxStats {
        let locked = self.locked.lock();
        let word = self.word.load();
        let queued = if is_closed(word) {
            0
        } else {
            count(word).max(0) as usize
        };
        InboxStats {
            submissions: self.taken.load(Ordering::Relaxed) + queued as u64,
            wakeups: locked.wakeups,
            parks: locked.parks,
            queued,
        }
    }
}

/// The inbox's atomic word: count and flags, documented bit by bit in
/// `state.rs`. Each method is one atomic step of the protocol.
#[derive(Debug)]
struct Word(CachePadded<AtomicUsize>);

impl Word {
    fn new() -> Word {
        Word(CachePadded(AtomicUsize::new(0)))
    }

    fn atomic(&self) -> &AtomicUsize {
        &self.0.0
    }

    /// A producer announces one submission before it sends it: count `+1`.
    /// Returns the word before, whose `CLOSED` decides acceptance and
    /// whose `PARKED` says whether the loop must be woken.
    fn announce(&self) -> usize {
        self.atomic().fetch_add(ONE_SUBMISSION, Ordering::AcqRel)
    }

    /// A refused producer takes its announce back: count `-1`.
    fn retract(&self) {
        self.atomic().fetch_sub(ONE_SUBMISSION, Ordering::AcqRel);
    }

    /// A drain took `n` submissions off the channel: count `-n`.
    fn took(&self, n: usize) {
        self.atomic()
            .fetch_sub(n * ONE_SUBMISSION, Ordering::AcqRel);
    }

    /// The word, read by the loop as a hint: a drain now, or at the next
    /// look. A load; under loom, a read-modify-write that changes nothing:
    /// loom's scheduler explores a producer's announce on either side of a
    /// read-modify-write but not of a load, and the models must see an
    /// announce land just before a drain. (What a load can return beyond
    /// that — an older value — only delays a drain to the next look: every
    /// decision that must not miss an announce is a read-modify-write in
    /// both builds (parking; closing, whose later reads come after its own
    /// `fetch_or` and so, by coherence, see every announce before it).)
    fn hint(&self) -> usize {
        #[cfg(loom)]
        return self.atomic().fetch_add(0, Ordering::AcqRel);
        #[cfg(not(loom))]
        self.atomic().load(Ordering::Acquire)
    }

    /// The word, read under the inbox lock, where its flags are exact (W2),
    /// or for the counters.
    fn load(&self) -> usize {
        self.atomic().load(Ordering::Acquire)
    }

    /// The loop's decision to park, under the lock: sets `PARKED` and
    /// returns whether it may wait — false if work is pending, and then
    /// `PARKED` is cleared again. One read-modify-write, so a producer's
    /// announce is either seen here or sees `PARKED` (invariant 1).
    fn try_park(&self) -> bool {
        // Seeded bug (`lost-wakeup`): decide from a plain read before
        // setting the flag, as rloop does — a submission announced between
        // the read and the set is never noticed.
        #[cfg(loopspec_mutant = "lost-wakeup")]
        let before = {
            let seen = self.atomic().load(Ordering::Acquire);
            self.atomic().fetch_or(PARKED, Ordering::AcqRel);
            seen
        };
        #[cfg(not(loopspec_mutant = "lost-wakeup"))]
        let before = self.atomic().fetch_or(PARKED, Ordering::AcqRel);
        if pending(before) {
            self.unpark();
            return false;
        }
        true
    }

    /// Clears `PARKED` (the loop stopped waiting, or chose not to). Under
    /// the lock.
    fn unpark(&self) {
        self.atomic().fetch_and(!PARKED, Ordering::AcqRel);
    }

    /// Sets `CLOSED`. Under the lock.
    fn close(&self) {
        self.atomic().fetch_or(CLOSED, Ordering::AcqRel);
    }
}

/// The signed count of a word value.
fn count(word: usize) -> isize {
    (word as isize) >> 3
}

/// Whether a word value says work is waiting: a positive count.
fn pending(word: usize) -> bool {
    count(word) > 0
}

/// Whether a word value has `CLOSED`.
fn is_closed(word: usize) -> bool {
    word & CLOSED != 0
}

/// Whether a word value has `PARKED`.
fn is_parked(word: usize) -> bool {
    word & PARKED != 0
}

impl<T> fmt::Debug for Inbox<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbox")
            .field("word", &self.word.load())
            .finish_non_exhaustive()
    }
}
