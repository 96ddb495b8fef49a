//! One access-log destination and the thread that writes it: [`LogFile`] is a
//! bounded queue fed with a non-blocking `try_send` (a full queue drops and counts
//! the line), drained by a dedicated writer thread that batches lines into one
//! `write` of up to [`BATCH_BYTES`]. Busy, the writer polls the queue every
//! [`POLL_INTERVAL`] so queueing never wakes it; after [`IDLE_POLLS`] empty polls
//! it blocks until the next line. [`LogFile::reopen`] (SIGUSR1) and
//! [`LogFile::flush`] are messages in the same queue, so they see every line
//! queued before them.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::open_append;
use crate::config::include::os_error;

/// Lines a file's queue holds before new ones are dropped.
pub const QUEUE_LINES: usize = 16_384;

/// The writer thread writes once it has gathered this many bytes, or when the
/// queue is empty, whichever comes first.
const BATCH_BYTES: usize = 64 * 1024;

/// How often a busy writer takes what is queued.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Empty polls after which the writer blocks until the next line (so an idle
/// proxy has no thread waking up).
const IDLE_POLLS: u32 = 20;

/// How long [`LogFile::flush`] and [`LogFile::reopen`] wait for the writer.
const CONTROL_WAIT: Duration = Duration::from_secs(5);

/// Opens (or reopens) the destination of a [`LogFile`].
pub type Opener = Box<dyn Fn() -> Result<Box<dyn Write + Send>, String> + Send>;

enum Msg {
    Line(Vec<u8>),
    Flush(SyncSender<()>),
    Reopen(SyncSender<Result<(), String>>),
}

/// One access log destination: a bounded queue and the thread that writes it.
/// Shared (`Arc`) by every worker and by successive configurations that log to
/// the same path. Dropping the last handle writes out what is queued and joins
/// the thread.
pub struct LogFile {
    name: String,
    tx: Option<SyncSender<Msg>>,
    dropped: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for LogFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogFile")
            .field("name", &self.name)
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl LogFile {
    /// Opens `path` for appending (error: `open() "PATH" failed (2: ...)`) and
    /// starts its writer thread.
    pub fn open(path: &Path) -> Result<LogFile, String> {
        let owned = path.to_path_buf();
        let opener: Opener =
            Box::new(move || open_append(&owned).map(|f| Box::new(f) as Box<dyn Write + Send>));
        LogFile::with_opener(&path.display().to_string(), opener, QUEUE_LINES)
    }

    /// A log writing wherever `opener` says (tests use in-memory writers), with a
    /// queue of `capacity` lines. `opener` runs now and on every reopen.
    pub fn with_opener(name: &str, opener: Opener, capacity: usize) -> Result<LogFile, String> {
        let out = opener()?;
        let (tx, rx) = mpsc::sync_channel(capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let writer = WriterThread {
            name: name.to_string(),
            opener,
            out,
            rx,
            dropped: Arc::clone(&dropped),
            reported: 0,
            failing: false,
        };
        let thread = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || writer.run())
            .map_err(|e| format!("cannot start the log writer for \"{name}\": {e}"))?;
        Ok(LogFile {
            name: name.to_string(),
            tx: Some(tx),
            dropped,
            thread: Some(thread),
        })
    }

    /// The path (or name) written to.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Queues one line (which should end in `\n`). Never blocks: when the queue
    /// is full the line is dropped and counted.
    pub fn write_line(&self, line: Vec<u8>) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(Msg::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Lines dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits (up to a few seconds) until every line queued before this call is
    /// written and flushed. Not for the request path.
    pub fn flush(&self) {
        let Some(tx) = &self.tx else { return };
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        if tx.send(Msg::Flush(ack_tx)).is_ok() {
            let _ = ack_rx.recv_timeout(CONTROL_WAIT);
        }
    }

    /// Writes out what is queued, closes the file and opens the path again (a
    /// renamed file is left alone and a new one created). On failure the old file
    /// stays in use and the error is returned.
    pub fn reopen(&self) -> Result<(), String> {
        let Some(tx) = &self.tx else {
            return Ok(());
        };
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        tx.send(Msg::Reopen(ack_tx))
            .map_err(|_| format!("the writer of \"{}\" has stopped", self.name))?;
        ack_rx
            .recv_timeout(CONTROL_WAIT)
            .map_err(|_| format!("the writer of \"{}\" did not answer", self.name))?
    }
}

impl Drop for LogFile {
    fn drop(&mut self) {
        // Closing the queue lets the writer drain it and stop.
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the access log writer of \"{}\" panicked", self.name);
            }
        }
    }
}

/// The writer thread's state.
struct WriterThread {
    name: String,
    opener: Opener,
    out: Box<dyn Write + Send>,
    rx: Receiver<Msg>,
    dropped: Arc<AtomicU64>,
    /// The `dropped` count already reported.
    reported: u64,
    /// The last write failed (so the next failure is not logged again).
    failing: bool,
}

impl WriterThread {
    /// Busy: every [`POLL_INTERVAL`] take whatever is queued and write it, so
    /// queueing a line never has to wake this thread (no system call on the
    /// request path). Idle for [`IDLE_POLLS`] rounds: block until the next
    /// message instead of polling.
    fn run(mut self) {
        let mut batch: Vec<u8> = Vec::with_capacity(BATCH_BYTES);
        let mut idle = IDLE_POLLS;
        'serve: loop {
            let mut received = 0usize;
            if idle >= IDLE_POLLS {
                // Fails once every sender is gone and the queue is empty.
                let Ok(msg) = self.rx.recv() else { break };
                self.handle(msg, &mut batch);
                received += 1;
            }
            let mut gone = false;
            loop {
                match self.rx.try_recv() {
                    Ok(msg) => {
                        self.handle(msg, &mut batch);
                        received += 1;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        gone = true;
                        break;
                    }
                }
            }
            self.write(&mut batch);
            self.report_dropped();
            if gone {
                break 'serve;
            }
            idle = if received == 0 { idle + 1 } else { 0 };
            if idle < IDLE_POLLS {
                std::thread::sleep(POLL_INTERVAL);
            }
        }
        self.write(&mut batch);
        let _ = self.out.flush();
        self.report_dropped();
    }

    fn handle(&mut self, msg: Msg, batch: &mut Vec<u8>) {
        match msg {
            Msg::Line(line) => {
                batch.extend_from_slice(&line);
                if batch.len() >= BATCH_BYTES {
                    self.write(batch);
                }
            }
            Msg::Flush(ack) => {
                self.write(batch);
                let _ = self.out.flush();
                let _ = ack.send(());
            }
            Msg::Reopen(ack) => {
                self.write(batch);
                let _ = self.out.flush();
                let result = (self.opener)().map(|out| self.out = out);
                if let Err(e) = &result {
                    tracing::error!("{e}: still writing to the old file");
                }
                let _ = ack.send(result);
            }
        }
    }

    fn write(&mut self, batch: &mut Vec<u8>) {
        if batch.is_empty() {
            return;
        }
        match self.out.write_all(batch) {
            Ok(()) => self.failing = false,
            Err(e) => {
                if !self.failing {
                    tracing::error!("write() to \"{}\" failed {}", self.name, os_error(&e));
                }
                self.failing = true;
            }
        }
        batch.clear();
    }

    fn report_dropped(&mut self) {
        let total = self.dropped.load(Ordering::Relaxed);
        if total > self.reported {
            tracing::warn!(
                "access log \"{}\": {} lines dropped because writing could not keep up",
                self.name,
                total - self.reported
            );
            self.reported = total;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::log::tests::scratch;
    use std::io;
    use std::sync::atomic::AtomicBool;
    use std::sync::Mutex;

    #[test]
    fn reopen_after_rename_writes_a_new_file() {
        let dir = scratch("reopen");
        let path = dir.join("access.log");
        let file = LogFile::open(&path).unwrap();
        file.write_line(b"one\n".to_vec());
        file.flush();
        std::fs::rename(&path, dir.join("access.log.1")).unwrap();
        file.write_line(b"two\n".to_vec());
        file.reopen().unwrap();
        file.write_line(b"three\n".to_vec());
        drop(file);
        assert_eq!(
            std::fs::read_to_string(dir.join("access.log.1")).unwrap(),
            "one\ntwo\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_reopen_keeps_the_old_file() {
        let dir = scratch("reopen-fail");
        let path = dir.join("sub").join("access.log");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let file = LogFile::open(&path).unwrap();
        std::fs::rename(dir.join("sub"), dir.join("moved")).unwrap();
        let err = file.reopen().unwrap_err();
        assert!(err.starts_with("open() \""), "{err}");
        assert!(err.contains("(2: "), "{err}");
        file.write_line(b"kept\n".to_vec());
        drop(file);
        assert_eq!(
            std::fs::read_to_string(dir.join("moved").join("access.log")).unwrap(),
            "kept\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A writer that blocks until `gate` is set, collecting what it gets.
    struct Gated {
        gate: Arc<AtomicBool>,
        entered: Arc<AtomicBool>,
        got: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gated {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.entered.store(true, Ordering::SeqCst);
            while !self.gate.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            self.got.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_lines_instead_of_blocking() {
        let gate = Arc::new(AtomicBool::new(false));
        let entered = Arc::new(AtomicBool::new(false));
        let got = Arc::new(Mutex::new(Vec::new()));
        let (g, e, o) = (Arc::clone(&gate), Arc::clone(&entered), Arc::clone(&got));
        let opener: Opener = Box::new(move || {
            Ok(Box::new(Gated {
                gate: Arc::clone(&g),
                entered: Arc::clone(&e),
                got: Arc::clone(&o),
            }) as Box<dyn Write + Send>)
        });
        let file = LogFile::with_opener("gated", opener, 4).unwrap();
        // The writer takes the first line and gets stuck writing it.
        file.write_line(b"0\n".to_vec());
        while !entered.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let started = std::time::Instant::now();
        for i in 1..100 {
            file.write_line(format!("{i}\n").into_bytes());
        }
        // Never blocked on the stuck writer: four lines queued, the rest dropped.
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(file.dropped(), 95);
        gate.store(true, Ordering::SeqCst);
        drop(file);
        let text = String::from_utf8(got.lock().unwrap().clone()).unwrap();
        assert_eq!(text, "0\n1\n2\n3\n4\n");
    }
}
