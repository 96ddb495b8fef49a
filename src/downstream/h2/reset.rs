//! A stream the client resets (or whose connection ends) before its answer
//! is ready. hyper then drops the future that makes the answer; nginx still
//! ends such a request: the backend is let go (never back to the keep-alive
//! pool) and the access log has its line with status 499. [`Answer`] wraps
//! the answer's future: dropped unfinished, it marks the stream's client
//! gone and leaves the future in the stream's [`Orphan`] slot, which the
//! stream's task (`Watched`, mod.rs) then runs to its end, the proxy seeing
//! `ConnState::client_gone` as an HTTP/1 client's close.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};

use crate::downstream::state::ConnState;

/// An answer cut off by a reset, still to be run to its end.
pub type Left = Pin<Box<dyn Future<Output = ()>>>;

/// Where a stream's cut-off answer waits for its task.
pub type Orphan = Rc<Cell<Option<Left>>>;

/// The future of one stream's answer, as hyper holds it.
pub struct Answer<F: Future + 'static> {
    fut: Option<Pin<Box<F>>>,
    state: Rc<ConnState>,
    orphan: Orphan,
}

impl<F: Future + 'static> Answer<F> {
    pub fn new(fut: F, state: Rc<ConnState>, orphan: Orphan) -> Answer<F> {
        Answer {
            fut: Some(Box::pin(fut)),
            state,
            orphan,
        }
    }
}

impl<F: Future + 'static> Future for Answer<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let Some(fut) = self.fut.as_mut() else {
            return Poll::Pending;
        };
        let out = ready!(fut.as_mut().poll(cx));
        self.fut = None;
        Poll::Ready(out)
    }
}

impl<F: Future + 'static> Drop for Answer<F> {
    fn drop(&mut self) {
        if let Some(fut) = self.fut.take() {
            self.state.client_closed();
            self.orphan.set(Some(Box::pin(async move {
                drop(fut.await);
            })));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::time::Duration;

    fn state() -> Rc<ConnState> {
        let a = SocketAddr::from(([127, 0, 0, 1], 1));
        let d = Duration::from_secs(1);
        Rc::new(ConnState::new(a, a, a, 1, 1, d, d, d))
    }

    fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
        let waker = std::task::Waker::noop();
        Pin::new(f).poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn a_finished_answer_leaves_nothing_behind() {
        let (s, orphan) = (state(), Orphan::default());
        let mut a = Answer::new(async { 7 }, Rc::clone(&s), Rc::clone(&orphan));
        assert_eq!(poll_once(&mut a), Poll::Ready(7));
        drop(a);
        assert!(!s.client_gone());
        assert!(orphan.take().is_none());
    }

    #[test]
    fn an_answer_dropped_unfinished_is_left_to_run_with_its_client_gone() {
        let (s, orphan) = (state(), Orphan::default());
        let ran = Rc::new(Cell::new(false));
        let fut = {
            let (s, ran) = (Rc::clone(&s), Rc::clone(&ran));
            std::future::poll_fn(move |_| {
                if s.client_gone() {
                    ran.set(true);
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
        };
        let mut a = Answer::new(fut, Rc::clone(&s), Rc::clone(&orphan));
        assert_eq!(poll_once(&mut a), Poll::Pending);
        drop(a);
        assert!(s.client_gone());
        let mut left = orphan.take().unwrap();
        assert_eq!(poll_once(&mut left), Poll::Ready(()));
        assert!(ran.get());
    }
}
