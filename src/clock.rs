//! The loop's clock: real monotonic time, or virtual time for deterministic tests.
//!
//! The clock is chosen when a loop is made ([`EventLoop::with_clock`]) and never
//! changes. Times are `f64` seconds, like asyncio's `loop.time()`, so that the
//! arithmetic of deadlines (`time() + delay`) is the same floating-point
//! arithmetic CPython does.
//!
//! * [`ClockKind::Real`]: seconds since the loop was made, from
//!   [`std::time::Instant`]. Monotonic; comparable only within one loop.
//! * [`ClockKind::Virtual`]: starts at `0.0` and moves only when the loop would
//!   otherwise block. When an iteration computes a poll timeout `t > 0` and no
//!   cross-thread submission is pending, the clock advances by exactly `t`
//!   instead of sleeping (the idea of CPython's test `TestLoop` and of tokio's
//!   paused time). With no timer at all, a virtual loop blocks like a real one,
//!   waiting for a cross-thread submission (rule CLOCK-2).
//!
//! [`EventLoop::with_clock`]: crate::EventLoop::with_clock

use crate::sync::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Which clock a loop uses; see the [module docs](self).
///
/// ```
/// use loopspec::{ClockKind, EventLoop};
///
/// let lp = EventLoop::with_clock(ClockKind::Virtual);
/// assert_eq!(lp.time(), 0.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClockKind {
    /// Real monotonic time.
    #[default]
    Real,
    /// Virtual time that jumps to the next timer instead of sleeping.
    Virtual,
}

/// The resolution asyncio adds when deciding whether a timer is due
/// (`time.get_clock_info('monotonic').resolution` on Linux).
pub(crate) const CLOCK_RESOLUTION: f64 = 1e-9;

/// asyncio clamps every poll timeout to one day (`MAXIMUM_SELECT_TIMEOUT`).
pub(crate) const MAXIMUM_SELECT_TIMEOUT: f64 = 24.0 * 3600.0;

/// A loop's clock.
#[derive(Debug)]
pub(crate) enum Clock {
    /// The monotonic clock; loop time is the time since `origin`, when the
    /// loop was made.
    Real {
        /// When the loop was made.
        origin: Instant,
    },
    /// `f64` bits of the current virtual time. Written only by the thread
    /// running the loop; read from any thread through `EventLoop::time`.
    Virtual {
        /// The time's bits.
        now: AtomicU64,
    },
}

impl Clock {
    pub(crate) fn new(kind: ClockKind) -> Clock {
        match kind {
            ClockKind::Real => Clock::Real {
                origin: Instant::now(),
            },
            ClockKind::Virtual => Clock::Virtual {
                now: AtomicU64::new(0f64.to_bits()),
            },
        }
    }

    pub(crate) fn kind(&self) -> ClockKind {
        match self {
            Clock::Real { .. } => ClockKind::Real,
            Clock::Virtual { .. } => ClockKind::Virtual,
        }
    }

    /// The current time in seconds.
    pub(crate) fn now(&self) -> f64 {
        match self {
            Clock::Real { origin } => origin.elapsed().as_secs_f64(),
            Clock::Virtual { now } => f64::from_bits(now.load(Ordering::Acquire)),
        }
    }

    /// Virtual clocks: move time forward by `by` seconds (the poll timeout the
    /// loop would have slept). Real clocks ignore it.
    pub(crate) fn advance(&self, by: f64) {
        if let Clock::Virtual { now } = self {
            let t = f64::from_bits(now.load(Ordering::Acquire)) + by;
            now.store(t.to_bits(), Ordering::Release);
        }
    }
}

/// Turns a poll timeout in seconds into a `Duration` for a real wait.
pub(crate) fn timeout_duration(seconds: f64) -> Duration {
    Duration::from_secs_f64(seconds.clamp(0.0, MAXIMUM_SELECT_TIMEOUT))
}

/// Whether a timer with deadline `when` is due at `now`, by asyncio's rule
/// (`when < now + resolution`). The `when <= now` half keeps very large times,
/// where the resolution is below one ulp, from never becoming due.
pub(crate) fn is_due(when: f64, now: f64) -> bool {
    when <= now || when < now + CLOCK_RESOLUTION
}
