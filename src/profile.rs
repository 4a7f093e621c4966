//! [`Profile`]: which Python version's rules a loop or a policy follows where
//! CPython 3.10 to 3.15 differ (SPEC.md's version matrix). The rules that
//! depend on it name the profile where they branch (`profile >= Py313`, ...).

/// The Python version whose rules a [`Policy`](crate::Policy) or an
/// [`EventLoop`](crate::EventLoop) follows where versions differ. See
/// SPEC.md's version matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Profile {
    /// 3.11 (and 3.10.10+): the main thread creates a loop implicitly, silently.
    #[default]
    Py311,
    /// 3.12: implicit creation also reports a `DeprecationWarning`.
    Py312,
    /// 3.13: as 3.12; `uncancel()` reaching zero withdraws a pending cancel.
    Py313,
    /// 3.14: no implicit creation in any thread; the policy API warns that
    /// it goes in 3.16 (POLICY-14).
    Py314,
    /// 3.15: as 3.14 in every rule.
    Py315,
}

impl Profile {
    /// Every profile, oldest first.
    pub const ALL: [Profile; 5] = [
        Profile::Py311,
        Profile::Py312,
        Profile::Py313,
        Profile::Py314,
        Profile::Py315,
    ];

    /// The profile that models CPython `major.minor`: 3.10 and 3.11 →
    /// `Py311` (3.10.9 and later follow 3.11's rules where loopspec models
    /// them), 3.12 → `Py312`, ..., 3.15 → `Py315`; `None` for other
    /// versions.
    ///
    /// ```
    /// use loopspec::Profile;
    /// assert_eq!(Profile::for_python(3, 15), Some(Profile::Py315));
    /// assert_eq!(Profile::for_python(3, 9), None);
    /// ```
    pub fn for_python(major: u32, minor: u32) -> Option<Profile> {
        match (major, minor) {
            (3, 10 | 11) => Some(Profile::Py311),
            (3, 12) => Some(Profile::Py312),
            (3, 13) => Some(Profile::Py313),
            (3, 14) => Some(Profile::Py314),
            (3, 15) => Some(Profile::Py315),
            _ => None,
        }
    }
}
