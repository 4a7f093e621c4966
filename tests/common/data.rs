//! User data that records what happens to it, and panics raised on purpose.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts its drops.
pub struct DropCount(pub Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A counter of drops and a [`DropCount`] that counts its own drop in it.
pub fn drop_counter() -> (Arc<AtomicUsize>, DropCount) {
    let dropped = counter();
    (dropped.clone(), DropCount(dropped))
}

/// Records the name of the thread it is dropped on.
pub struct DropWhere(pub Arc<Mutex<Vec<String>>>);

impl Drop for DropWhere {
    fn drop(&mut self) {
        let name = std::thread::current().name().unwrap_or("?").to_string();
        self.0.lock().unwrap().push(name);
    }
}

/// A shared counter.
pub fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

/// Its value.
pub fn count(c: &Arc<AtomicUsize>) -> usize {
    c.load(Ordering::SeqCst)
}

/// The start of every panic message a test raises on purpose: the hook of
/// [`quiet_panics`] drops those, so a passing run prints nothing for them.
pub const INTENTIONAL: &str = "intentional panic";

/// Installs (once per process) a panic hook that is silent for panics whose
/// message starts with [`INTENTIONAL`] and hands every other panic to the
/// hook that was installed before (the default one, which prints it).
pub fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let p = info.payload();
            let msg = p
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| p.downcast_ref::<String>().map(String::as_str));
            if !msg.is_some_and(|m| m.starts_with(INTENTIONAL)) {
                previous(info);
            }
        }));
    });
}

/// User data whose `Drop` panics (unless a panic is already unwinding).
pub struct PanicOnDrop(pub &'static str);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("{}", self.0);
        }
    }
}

/// A future with user data beside it: the data is dropped with the future,
/// not when the future completes.
pub struct Holding<F, D> {
    pub fut: std::pin::Pin<Box<F>>,
    pub _data: D,
}

impl<F: std::future::Future, D> Unpin for Holding<F, D> {}

impl<F: std::future::Future, D> std::future::Future for Holding<F, D> {
    type Output = F::Output;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        self.fut.as_mut().poll(cx)
    }
}
