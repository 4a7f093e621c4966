//! Making a loop: [`EventLoop::new`], [`EventLoop::with_clock`] and the
//! [`Builder`] (a clock and a profile).

use crate::clock::ClockKind;
use crate::loop_core::EventLoop;
use crate::profile::Profile;

/// Builds an [`EventLoop`] with a chosen clock and profile.
///
/// ```
/// use loopspec::{ClockKind, EventLoop, Profile};
///
/// let lp = EventLoop::builder().clock(ClockKind::Virtual).profile(Profile::Py313).build();
/// assert_eq!(lp.profile(), Profile::Py313);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Builder {
    /// The clock the loop gets (default: real).
    clock: ClockKind,
    /// The profile the loop gets (default: `Py311`).
    profile: Profile,
}

impl Builder {
    /// The clock the loop uses.
    pub fn clock(mut self, clock: ClockKind) -> Builder {
        self.clock = clock;
        self
    }

    /// The Python version whose behaviour the loop follows where versions
    /// differ.
    pub fn profile(mut self, profile: Profile) -> Builder {
        self.profile = profile;
        self
    }

    /// Makes the loop.
    pub fn build(self) -> EventLoop {
        EventLoop::from_parts(self.clock, self.profile)
    }
}

impl EventLoop {
    /// A new loop on the real clock, following the default profile
    /// ([`Profile::Py311`]). Like asyncio's `new_event_loop()`, it does not
    /// become any thread's current loop.
    pub fn new() -> EventLoop {
        Builder::default().build()
    }

    /// A new loop on the given clock.
    pub fn with_clock(clock: ClockKind) -> EventLoop {
        Builder::default().clock(clock).build()
    }

    /// A builder for a loop with a chosen clock and profile.
    pub fn builder() -> Builder {
        Builder::default()
    }
}

impl Default for EventLoop {
    fn default() -> Self {
        EventLoop::new()
    }
}
