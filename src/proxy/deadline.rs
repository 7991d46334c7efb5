//! The response-head deadline's timer, kept with the caller's connection between requests.
//!
//! Every forwarded request waits for its answer head within `responseHeadTimeout`. A new
//! timer per request is an allocation, an insertion into the runtime's timer wheel and a
//! removal from it. Instead each client connection keeps one spare timer
//! ([`install`], from the server's connect hook): a request takes it, moves its deadline
//! (a later deadline only moves the wheel entry's expiry) and gives it back when it is done.
//! A request that finds no spare (another request of the same HTTP/2 connection holds it,
//! or the connection has none) makes its own.
//!
//! A spare may fire at its old deadline while no request waits on it: that wakes the
//! connection's task once, which then finds nothing to do.

use crate::proxy::incoming::Incoming;
use actix_web::dev::Extensions;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::time::{Instant, Sleep};

/// A connection's spare timer (in its connection data).
#[derive(Default)]
struct Spare(RefCell<Option<Pin<Box<Sleep>>>>);

/// Gives a new client connection its spare timer (the server's `on_connect` hook).
pub(crate) fn install(ext: &mut Extensions) {
    ext.insert(Spare::default());
}

/// A timer that ends at a deadline; its connection's spare when there is one.
pub(crate) struct Deadline<'a> {
    sleep: Option<Pin<Box<Sleep>>>,
    home: Option<&'a Spare>,
}

impl<'a> Deadline<'a> {
    /// A timer for `req` that ends at `at`.
    pub(crate) fn at(req: &'a Incoming, at: Instant) -> Self {
        Deadline::with(req.conn_data::<Spare>(), at)
    }

    /// A timer that ends at `at`: `home`'s spare when it has one, given back when dropped.
    fn with(home: Option<&'a Spare>, at: Instant) -> Self {
        let sleep = match home.and_then(|s| s.0.borrow_mut().take()) {
            Some(mut sleep) => {
                sleep.as_mut().reset(at);
                sleep
            }
            None => Box::pin(tokio::time::sleep_until(at)),
        };
        Deadline {
            sleep: Some(sleep),
            home,
        }
    }

    /// Moves the deadline to `at`.
    pub(crate) fn reset(&mut self, at: Instant) {
        if let Some(s) = &mut self.sleep {
            s.as_mut().reset(at);
        }
    }
}

impl Future for Deadline<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.sleep {
            Some(s) => s.as_mut().poll(cx),
            None => Poll::Ready(()),
        }
    }
}

impl Drop for Deadline<'_> {
    fn drop(&mut self) {
        if let (Some(home), Some(sleep)) = (self.home, self.sleep.take()) {
            if let Ok(mut spare) = home.0.try_borrow_mut() {
                *spare = Some(sleep);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[actix_web::test]
    async fn a_spare_that_fired_is_moved_to_the_next_deadline_and_given_back() {
        let home = Spare::default();
        // A deadline already past: it fires, and its timer goes back to the connection.
        Deadline::with(Some(&home), Instant::now()).await;
        assert!(home.0.borrow().is_some(), "given back");
        // The next request's deadline is a minute away: the spare (fired) must wait again.
        let mut next = Deadline::with(Some(&home), Instant::now() + Duration::from_secs(60));
        assert!(home.0.borrow().is_none(), "taken");
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(Pin::new(&mut next).poll(&mut cx).is_pending());
        // Moved again to a past deadline, it fires.
        next.reset(Instant::now());
        (&mut next).await;
        drop(next);
        assert!(home.0.borrow().is_some(), "given back");
    }
}
