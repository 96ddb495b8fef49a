//! An echo backend on a Unix stream socket (`server unix:/path`): the same
//! answers as [`super::Backend`], served until dropped.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

pub struct UnixBackend {
    pub name: String,
    pub path: PathBuf,
    pub hits: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl UnixBackend {
    /// Listens at a fresh path under the temp directory.
    pub fn start(name: &str) -> UnixBackend {
        let path = std::env::temp_dir().join(format!(
            "sticky-proxy-{name}-{}-{:?}.sock",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind unix");
        listener.set_nonblocking(true).expect("nonblocking");
        let hits = Arc::new(AtomicUsize::new(0));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let (served, label) = (Arc::clone(&hits), name.to_string());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::UnixListener::from_std(listener).expect("listener");
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let (hits, name) = (Arc::clone(&served), label.clone());
                            tokio::spawn(async move {
                                let svc = service_fn(move |req| {
                                    hits.fetch_add(1, Ordering::SeqCst);
                                    super::echo(name.clone(), req)
                                });
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), svc)
                                    .await;
                            });
                        }
                    }
                }
            });
        });
        UnixBackend {
            name: name.to_string(),
            path,
            hits,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `unix:/path`, the peer's name (and what its sid is made from).
    pub fn peer(&self) -> String {
        format!("unix:{}", self.path.display())
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for UnixBackend {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}
