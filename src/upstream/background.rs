//! A background thread of the proxy's own (the health checker, the resolver)
//! that ends when its stop handle is dropped: [`Background`] drops the handle
//! and joins the thread, on [`Background::stop`] or when it is dropped.

use std::thread::JoinHandle;

/// A running background thread and the handle whose drop tells it to end.
pub struct Background<S> {
    stop: Option<S>,
    thread: Option<JoinHandle<()>>,
    /// For the message if the thread panicked.
    name: &'static str,
}

impl<S> Background<S> {
    pub fn new(name: &'static str, stop: S, thread: JoinHandle<()>) -> Background<S> {
        Background {
            stop: Some(stop),
            thread: Some(thread),
            name,
        }
    }

    /// Tells the thread to end and waits for it.
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the {} thread panicked", self.name);
            }
        }
    }
}

impl<S> Drop for Background<S> {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
