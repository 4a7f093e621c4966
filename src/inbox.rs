//! The inbox: work handed to a loop from any thread, and the wake state that
//! decides when the loop must be woken.
//!
//! The inbox holds `Send` submissions: callbacks from `call_soon_threadsafe`
//! and task wake-ups from wakers called off the loop's thread. They travel
//! through a multi-producer channel (std's lock-free `mpsc`; loom's modelled
//! one under `--cfg loom`), so a producer never takes the loop's lock on the
//! way. One atomic word beside the channel carries everything a producer and
//! the loop must agree on, and the rarer parts of the protocol — parking,
//! wake-ups, a home thread's hand-back — stay under the loop's state lock.
//!
//! # The word
//!
//! | bits | name | set by | cleared by |
//! |---|---|---|---|
//! | 0 | `CLOSED` | `close()` | never |
//! | 1 | `PARKED` | the loop, under the lock, before its last look | the loop, when it stops waiting |
//! | 2 | `FRONT` | a home thread's exit, under the lock | the drain that takes the front queue, under the lock |
//! | 3.. | count | `+1` by a producer before its send; `+n` by a hand-back | `-n` by the drain that took `n`; `-1` by a refused producer |
//!
//! The count is the number of submissions announced (or handed back) and not
//! yet taken: never below what the channel and the front queue hold (a send
//! may still be in flight after its announce). "Pending" means a count above
//! zero or `FRONT`.
//!
//! Invariants:
//!
//! 1. **No lost wake-up.** A producer announces with one read-modify-write,
//!    then sends; the loop decides to park with one read-modify-write that
//!    sets `PARKED`. Read-modify-writes of one word are totally ordered:
//!    either the loop sees the count and does not park (it polls again until
//!    the send lands), or the producer sees `PARKED` and, once it has sent,
//!    takes the lock to wake it. The loop holds the lock from setting
//!    `PARKED` until it waits, so that wake-up finds it waiting.
//! 2. **Coalescing.** A producer signals the condvar only on the transition
//!    `parked && !notified` → `notified` (under the lock): one signal per
//!    park, however many items arrive. A busy loop is never `PARKED`, so a
//!    burst to it costs no lock and no condvar call at all.
//! 3. **Accepted or refused, decided at the announce.** A producer whose
//!    announce finds `CLOSED` takes it back and never sends: refused
//!    (`Event loop is closed`), so its callback cannot run. One announced
//!    before `CLOSED` is accepted: the loop runs it, or `close()` drops it —
//!    `close()` sets `CLOSED` with a read-modify-write, then receives until
//!    the count is zero, waiting out sends still in flight. Nothing is left
//!    in the channel of a closed loop.
//! 4. **Order.** The channel is FIFO per producer and the front queue (what
//!    an exiting home thread had taken, THREAD-4) is older than anything in
//!    the channel, so a drain takes the front queue first.
//! 5. **Progress.** A drain reads the count before it receives and takes at
//!    most that many (XTHREAD-11): sends that land while it runs wait for
//!    the next drain, so producers that never pause cannot hold the loop in
//!    one drain. A submission sent before the read is within the bound (its
//!    announce preceded its send), which keeps XTHREAD-2's order with
//!    `call_soon`. Only `close()` drains until the count is zero.
//!
//! The loop's other reads of the word are hints (a drain now or at the
//! next look); see `Channel::read` for how loom is made to explore them.
//!
//! The inbox counts submissions, signals and parks ([`InboxStats`]), so tests
//! and benchmarks can show the coalescing.

use crate::handle::QueuedCall;
use crate::sync::{AtomicU64, AtomicUsize, Mutex, Ordering, mpsc, thread};
use std::collections::VecDeque;
use std::fmt;

/// One piece of work handed to the loop from any thread: a
/// `call_soon_threadsafe` callback, or a task waker's wake-up (16 bytes).
pub(crate) type Submission = QueuedCall;

impl fmt::Debug for QueuedCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.task_wake() {
            Some(id) => write!(f, "Wake({id})"),
            None => write!(f, "Call({})", self.name()),
        }
    }
}

/// Bit 0 of the word: the loop is closed.
const CLOSED: usize = 1;
/// Bit 1: the loop is parked, or about to park.
const PARKED: usize = 2;
/// Bit 2: the front queue (a hand-back) is not empty.
const FRONT: usize = 4;
/// One submission in the count (bits 3 and up).
const ONE: usize = 8;

/// The signed count of a word.
fn count(word: usize) -> isize {
    (word as isize) >> 3
}

/// Whether a word says work is waiting: a positive count or a front queue.
fn pending(word: usize) -> bool {
    count(word) > 0 || word & FRONT != 0
}

/// A value on a cache line of its own (false sharing with the channel's
/// indices would make every send invalidate what a spinning loop reads).
#[derive(Debug)]
#[repr(align(128))]
struct CachePadded<T>(T);

/// The lock-free part of the inbox, beside the loop's state lock.
pub(crate) struct Channel {
    tx: mpsc::Sender<Submission>,
    rx: Mutex<mpsc::Receiver<Submission>>,
    word: CachePadded<AtomicUsize>,
    /// Submissions taken out (run or dropped) since the loop was made.
    taken: AtomicU64,
}

/// What a [`Channel::receive_into`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Drained {
    /// The count it read when it started: its bound.
    pub(crate) announced: usize,
    /// Submissions it took (never more than `announced`).
    pub(crate) taken: usize,
}

/// What became of a [`Channel::send`].
pub(crate) enum Sent {
    /// Queued; `wake` says the loop was parked and must be woken.
    Queued { wake: bool },
    /// Refused, never sent: the loop is closed. The submission comes back
    /// to be dropped by the caller.
    Refused(Option<Submission>),
}

impl Channel {
    pub(crate) fn new() -> Channel {
        let (tx, rx) = mpsc::channel();
        Channel {
            tx,
            rx: Mutex::new(rx),
            word: CachePadded(AtomicUsize::new(0)),
            taken: AtomicU64::new(0),
        }
    }

    /// Queues `s` from any thread: announce, then send. An announce that
    /// finds `CLOSED` is taken back and `s` is refused, never sent.
    pub(crate) fn send(&self, s: Submission) -> Sent {
        // Seeded bug (loom mutant check): send before the announce, as this
        // inbox first did — the loop can receive and run the submission
        // before an announce that then finds CLOSED reports it refused.
        #[cfg(loopspec_mutant = "refuse-after-send")]
        let s = self.tx.send(s).err().map(|e| e.0);
        #[cfg(not(loopspec_mutant = "refuse-after-send"))]
        let s = Some(s);
        let before = self.word.0.fetch_add(ONE, Ordering::AcqRel);
        // Seeded bug (loom mutant check): a closed loop accepts work.
        #[cfg(not(loopspec_mutant = "schedule-on-closed"))]
        if before & CLOSED != 0 {
            self.word.0.fetch_sub(ONE, Ordering::AcqRel);
            return Sent::Refused(s);
        }
        if let Some(s) = s {
            if let Err(refused) = self.tx.send(s) {
                // The receiver lives as long as the loop: cannot happen.
                self.word.0.fetch_sub(ONE, Ordering::AcqRel);
                return Sent::Refused(Some(refused.0));
            }
        }
        Sent::Queued {
            wake: before & PARKED != 0,
        }
    }

    /// The word, read by the loop: a load. Under loom, a read-modify-write
    /// that changes nothing: loom's scheduler explores a producer's announce
    /// on either side of a read-modify-write but not of a load, and the
    /// models must see an announce land just before a drain. (What a load
    /// can return beyond that — an older value — only delays a drain to the
    /// next look: every decision that must not miss an announce is a
    /// read-modify-write in both builds (parking; closing, whose later
    /// loads come after its own `fetch_or` and so, by coherence, see every
    /// announce before it); and a hand-back's `FRONT` is set under the
    /// state lock the next home claims the loop under, so the next home
    /// cannot read it stale.)
    fn read(&self) -> usize {
        #[cfg(loom)]
        return self.word.0.fetch_add(0, Ordering::AcqRel);
        #[cfg(not(loom))]
        self.word.0.load(Ordering::Acquire)
    }

    /// Whether work is waiting, from the word alone (no lock). A submission
    /// announced but still being sent counts: the loop polls again, rather
    /// than park, until it lands.
    pub(crate) fn pending(&self) -> bool {
        pending(self.read())
    }

    /// Whether a hand-back is waiting in the front queue (take it under the
    /// lock with [`Inbox::take_front`]).
    pub(crate) fn has_front(&self) -> bool {
        self.read() & FRONT != 0
    }

    /// Receives into `out`, in order, at most the submissions announced when
    /// it starts: it reads the count first and takes no more than that, so
    /// producers that keep sending while it runs cannot extend it
    /// (XTHREAD-11); what they send waits for the next drain. It takes fewer
    /// when an announced send is still in flight (the channel looks empty).
    pub(crate) fn receive_into(&self, out: &mut VecDeque<Submission>) -> Drained {
        let rx = self.rx.lock();
        let announced = count(self.read()).max(0) as usize;
        // Seeded bug (loom mutant check): drain until the channel is empty,
        // as this inbox first did: a flood holds the loop in one drain.
        #[cfg(loopspec_mutant = "unbounded-drain")]
        let limit = usize::MAX;
        #[cfg(not(loopspec_mutant = "unbounded-drain"))]
        let limit = announced;
        let taken = self.receive_locked(&rx, out, limit);
        Drained { announced, taken }
    }

    /// Receives up to `limit` submissions with the receiver held, and takes
    /// them off the count.
    fn receive_locked(
        &self,
        rx: &mpsc::Receiver<Submission>,
        out: &mut VecDeque<Submission>,
        limit: usize,
    ) -> usize {
        let mut n = 0;
        while n < limit {
            // Under loom, a point where a send may land: loom's channel takes
            // no scheduling decision at `try_recv`'s emptiness check, so
            // without it the models never see a send arrive mid-drain.
            #[cfg(loom)]
            if n > 0 {
                thread::yield_now();
            }
            let Ok(s) = rx.try_recv() else { break };
            out.push_back(s);
            n += 1;
        }
        if n > 0 {
            // Counted before the receiver is released, so a later drain
            // (which takes the receiver after this one) sees the count.
            self.taken.fetch_add(n as u64, Ordering::Relaxed);
            self.word.0.fetch_sub(n * ONE, Ordering::AcqRel);
        }
        n
    }

    /// For `close()`, once `CLOSED` is set and the front queue taken:
    /// receives every accepted submission, to be dropped by the caller. A
    /// producer announced before `CLOSED` may still be sending; this waits,
    /// yielding, until the count is zero (a refused producer's announce is
    /// taken back just as quickly).
    pub(crate) fn drain_closed(&self) -> VecDeque<Submission> {
        let mut out = VecDeque::new();
        loop {
            self.receive_locked(&self.rx.lock(), &mut out, usize::MAX);
            if count(self.read()) <= 0 {
                return out;
            }
            thread::yield_now();
        }
    }

    /// Under the state lock, with the loop about to wait: sets `PARKED` and
    /// returns whether it may wait — false if work is pending (then `PARKED`
    /// is cleared again).
    pub(crate) fn try_park(&self) -> bool {
        // Seeded bug (loom mutant check): decide from a plain read before
        // setting the flag, as rloop does — a submission announced between
        // the read and the set is never noticed.
        #[cfg(loopspec_mutant = "lost-wakeup")]
        let before = {
            let seen = self.word.0.load(Ordering::Acquire);
            self.word.0.fetch_or(PARKED, Ordering::AcqRel);
            seen
        };
        #[cfg(not(loopspec_mutant = "lost-wakeup"))]
        let before = self.word.0.fetch_or(PARKED, Ordering::AcqRel);
        if pending(before) {
            self.unpark();
            return false;
        }
        true
    }

    /// Clears `PARKED` (the loop stopped waiting, or chose not to).
    pub(crate) fn unpark(&self) {
        self.word.0.fetch_and(!PARKED, Ordering::AcqRel);
    }

    /// Marks the loop closed (under the state lock); later sends are refused.
    pub(crate) fn close(&self) {
        self.word.0.fetch_or(CLOSED, Ordering::AcqRel);
    }

    /// Submissions waiting now (exact when no send is in flight).
    fn queued(&self) -> usize {
        count(self.word.0.load(Ordering::Acquire)).max(0) as usize
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("word", &self.word.0.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// The part of the inbox under the loop's state lock: the wake state and
/// the front queue; see the [module docs](self).
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    /// Submissions a home thread had taken in and handed back at its exit
    /// (THREAD-4): older than anything in the channel.
    front: VecDeque<Submission>,
    /// The loop thread is waiting, or about to wait, on the condvar.
    pub(crate) parked: bool,
    /// A wake-up was issued for the current park and not consumed yet.
    pub(crate) notified: bool,
    /// Condvar signals issued since the loop was made.
    wakeups: u64,
    /// Times the loop parked (waited on the condvar) since it was made.
    pub(crate) parks: u64,
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

impl Inbox {
    /// Puts `earlier` — submissions accepted before everything queued now —
    /// at the front, in their order (a home thread that exits hands back the
    /// ones its half had taken in, THREAD-4). They are not counted as new
    /// submissions. Returns whether the caller must signal the condvar.
    pub(crate) fn push_front_all(
        &mut self,
        ch: &Channel,
        mut earlier: VecDeque<Submission>,
    ) -> bool {
        let n = earlier.len();
        if n == 0 {
            return false;
        }
        let flag = if self.front.is_empty() { FRONT } else { 0 };
        earlier.append(&mut self.front);
        self.front = earlier;
        ch.word.0.fetch_add(n * ONE + flag, Ordering::AcqRel);
        ch.taken.fetch_sub(n as u64, Ordering::Relaxed);
        self.wake()
    }

    /// Moves the front queue to `out` and takes it off the word.
    pub(crate) fn take_front(&mut self, ch: &Channel, out: &mut VecDeque<Submission>) {
        let n = self.front.len();
        if n == 0 {
            return;
        }
        out.append(&mut self.front);
        ch.word.0.fetch_sub(n * ONE + FRONT, Ordering::AcqRel);
        ch.taken.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Requests a wake-up of a parked loop (a send or a stop). Returns whether
    /// the caller must signal the condvar.
    pub(crate) fn wake(&mut self) -> bool {
        // Seeded bug (loom mutant check): signal on every push to a parked
        // loop, not once per park.
        #[cfg(loopspec_mutant = "wake-every-push")]
        let already = false;
        #[cfg(not(loopspec_mutant = "wake-every-push"))]
        let already = self.notified;
        if self.parked && !already {
            self.notified = true;
            self.wakeups += 1;
            true
        } else {
            false
        }
    }

    /// The counters, with the channel's.
    pub(crate) fn stats(&self, ch: &Channel) -> InboxStats {
        let queued = ch.queued();
        InboxStats {
            submissions: ch.taken.load(Ordering::Relaxed) + queued as u64,
            wakeups: self.wakeups,
            parks: self.parks,
            queued,
        }
    }
}

/// Loom models of the channel alone (`.ci/loom` runs them with the
/// whole-loop models in `tests/loom_*.rs`).
#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use crate::handle::sent_call;
    use crate::sync::Arc;

    fn submission() -> Submission {
        sent_call(|| ()).0
    }

    /// A producer that keeps sending while the loop drains cannot extend the
    /// drain beyond the count it read when it started; what was queued
    /// before the drain is within that count; and a later drain takes the
    /// rest.
    /// Catches: `unbounded-drain`.
    /// Rules: XTHREAD-11, XTHREAD-2
    #[test]
    fn loom_drain_takes_at_most_what_was_announced() {
        loom::model(|| {
            let ch = Arc::new(Channel::new());
            assert!(matches!(ch.send(submission()), Sent::Queued { .. }));
            let producer = {
                let ch = ch.clone();
                loom::thread::spawn(move || {
                    for _ in 0..2 {
                        assert!(matches!(ch.send(submission()), Sent::Queued { .. }));
                    }
                })
            };
            let mut out = VecDeque::new();
            let first = ch.receive_into(&mut out);
            assert!(
                first.taken <= first.announced,
                "the drain took {} of {} announced",
                first.taken,
                first.announced
            );
            assert!(
                first.taken >= 1,
                "what was queued before the drain is taken"
            );
            producer.join().unwrap();
            let second = ch.receive_into(&mut out);
            assert_eq!(first.taken + second.taken, 3);
            assert_eq!(out.len(), 3);
            assert_eq!(ch.queued(), 0);
        });
    }
}
