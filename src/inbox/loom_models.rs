//! Loom models of the inbox alone: a producer thread against the loop's
//! side of the protocol (drain, park), with no loop around them. `.ci/loom`
//! runs them with the whole-loop models of `tests/loom_*.rs`, and each
//! against the seeded bug it names (`--cfg loopspec_mutant="NAME"`).

use super::*;
use crate::sync::{Arc, AtomicUsize};
use loom::thread;

/// A submission that counts its drops, standing for a callback's captures.
struct Item(Arc<AtomicUsize>);

impl Drop for Item {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// The loop's side: drains and, while fewer than `n` items came, parks with
/// no timeout. A lost wake-up leaves it parked for ever: loom reports the
/// deadlock.
fn receive_parking<T>(inbox: &Inbox<T>, n: usize) -> VecDeque<T> {
    let mut got = VecDeque::new();
    loop {
        inbox.drain_into(&mut got);
        if got.len() >= n {
            return got;
        }
        inbox.park(None, || false);
    }
}

/// A send racing with the loop's decision to park is never lost: either the
/// park sees it announced and does not wait, or the send sees `PARKED` and
/// wakes the loop.
/// Catches: `lost-wakeup`.
/// Rules: XTHREAD-1, XTHREAD-4
#[test]
fn loom_send_racing_park_is_never_lost() {
    loom::model(|| {
        let inbox = Arc::new(Inbox::new());
        let producer = {
            let inbox = inbox.clone();
            thread::spawn(move || inbox.send(7).unwrap())
        };
        let got = receive_parking(&inbox, 1);
        producer.join().unwrap();
        assert_eq!(got, [7]);
    });
}

/// A burst of sends to a parked loop wakes it once: never more condvar
/// signals than parks, however the sends interleave with the wake-up.
/// Catches: `wake-every-push`.
/// Rules: XTHREAD-4
#[test]
fn loom_burst_to_a_parked_loop_wakes_it_once() {
    loom::model(|| {
        let inbox = Arc::new(Inbox::new());
        let producer = {
            let inbox = inbox.clone();
            thread::spawn(move || {
                inbox.send(1).unwrap();
                inbox.send(2).unwrap();
            })
        };
        let got = receive_parking(&inbox, 2);
        producer.join().unwrap();
        assert_eq!(got, [1, 2]);
        let stats = inbox.stats();
        assert!(
            stats.wakeups <= stats.parks,
            "{} wake-ups for {} parks",
            stats.wakeups,
            stats.parks
        );
    });
}

/// A send racing with `close` is accepted and then returned by `close` (to
/// be dropped), or refused and dropped by `send`: dropped exactly once by
/// the time both returned, never left in the closed inbox; and a send after
/// the close is refused.
/// Catches: `close-skips-drain`, `schedule-on-closed`.
/// Rules: XTHREAD-3
#[test]
fn loom_send_racing_close_is_refused_or_returned_never_left_behind() {
    loom::model(|| {
        let inbox = Arc::new(Inbox::new());
        let drops = Arc::new(AtomicUsize::new(0));
        let producer = {
            let (inbox, drops) = (inbox.clone(), drops.clone());
            thread::spawn(move || inbox.send(Item(drops)).is_ok())
        };
        let returned = inbox.close().len();
        let accepted = producer.join().unwrap();
        assert_eq!(
            returned,
            usize::from(accepted),
            "accepted, yet not returned"
        );
        assert_eq!(drops.load(Ordering::Relaxed), 1, "not dropped exactly once");
        assert_eq!(count(inbox.word.load()), 0, "left in a closed inbox");
        let late = Item(drops.clone());
        assert_eq!(inbox.send(late), Err(Refused));
        assert_eq!(
            drops.load(Ordering::Relaxed),
            2,
            "a refused item is dropped"
        );
    });
}

/// The same race with a drain before the close (an iteration of the loop,
/// then `close()`): an accepted send is taken exactly once, by the drain or
/// by `close`; a refused one by neither.
/// Catches: `refuse-after-send`, `close-skips-drain`.
/// Rules: XTHREAD-3
#[test]
fn loom_send_racing_a_drain_then_close_is_taken_once_if_accepted() {
    loom::model(|| {
        let inbox = Arc::new(Inbox::new());
        let producer = {
            let inbox = inbox.clone();
            thread::spawn(move || inbox.send(7).is_ok())
        };
        let mut drained = VecDeque::new();
        inbox.drain_into(&mut drained);
        let returned = inbox.close();
        let accepted = producer.join().unwrap();
        assert!(drained.is_empty() || accepted, "refused, yet drained");
        assert_eq!(
            drained.len() + returned.len(),
            usize::from(accepted),
            "an accepted send is taken exactly once; a refused one never"
        );
        assert_eq!(count(inbox.word.load()), 0, "left in a closed inbox");
        assert_eq!(inbox.stats().submissions, u64::from(accepted));
    });
}

/// A producer that keeps sending while the loop drains cannot extend the
/// drain beyond the count it read when it began; what was queued before the
/// drain is within that count; and a later drain takes the rest.
/// Catches: `unbounded-drain`.
/// Rules: XTHREAD-11, XTHREAD-2
#[test]
fn loom_drain_takes_at_most_what_was_announced() {
    loom::model(|| {
        let inbox = Arc::new(Inbox::new());
        inbox.send(0).unwrap();
        let producer = {
            let inbox = inbox.clone();
            thread::spawn(move || {
                for i in 1..3 {
                    inbox.send(i).unwrap();
                }
            })
        };
        let mut out = VecDeque::new();
        let first = inbox.drain_into(&mut out);
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
        let second = inbox.drain_into(&mut out);
        assert_eq!(first.taken + second.taken, 3);
        assert_eq!(out, [0, 1, 2]);
        assert_eq!(inbox.stats().queued, 0);
    });
}
