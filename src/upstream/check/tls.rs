//! TLS under an http check: a rustls [`ClientConnection`] driven over the
//! check's non-blocking socket, inside the checker's `poll(2)` loop (no task,
//! no thread). [`Wire`] is what a [`super::conn::Probe`] reads and writes
//! through: the socket itself, or rustls in front of it. Its `read` and
//! `write` behave as a non-blocking socket's (`WouldBlock` when the socket
//! must become ready first), and [`Wire::interest`] says what the TLS layer
//! waits for (the handshake may want to read while the check wants to write,
//! or have records left to send while the check waits for the reply).
//!
//! Which upstreams' checks use TLS, and with which settings, is decided by
//! [`super::scheme`]; a handshake or verification failure is a failed check
//! ([`CheckError::Tls`]).

use std::io::{self, Read, Write};
use std::sync::Arc;

use rustix::event::PollFlags;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};
use socket2::Socket;

use crate::upstream::check::probe::CheckError;

/// The TLS an upstream's http checks speak: one location's `proxy_ssl_*`
/// settings (their session cache too) and the name verified and, with
/// `proxy_ssl_server_name on`, sent as SNI.
#[derive(Debug, Clone)]
pub struct CheckTls {
    pub config: Arc<ClientConfig>,
    pub name: ServerName<'static>,
}

/// What a check's bytes go through.
pub(super) enum Wire {
    Plain,
    /// Boxed: a plain check stays small.
    Tls(Box<ClientConnection>),
}

/// A TLS failure, with the words the check's log line gives.
#[derive(Debug)]
struct TlsFailure(String);

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsFailure {}

fn tls_error(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        TlsFailure(format!("{what}: {e}")),
    )
}

/// The check's error for an I/O error of a [`Wire`]: a TLS failure keeps its
/// words, anything else its kind.
pub(super) fn failure(e: &io::Error) -> CheckError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<TlsFailure>())
    {
        Some(TlsFailure(words)) => CheckError::Tls(words.clone()),
        None => CheckError::Io(e.kind()),
    }
}

impl Wire {
    /// A new connection's wire: plain, or a TLS client about to say hello.
    pub(super) fn new(tls: Option<&CheckTls>) -> Result<Wire, CheckError> {
        match tls {
            None => Ok(Wire::Plain),
            Some(t) => ClientConnection::new(Arc::clone(&t.config), t.name.clone())
                .map(|c| Wire::Tls(Box::new(c)))
                .map_err(|e| CheckError::Tls(format!("SSL error: {e}"))),
        }
    }

    /// What to wait for, given what the check wants (`step`): records rustls
    /// still has to send come first, then the handshake's reads.
    pub(super) fn interest(&self, step: PollFlags) -> PollFlags {
        match self {
            Wire::Plain => step,
            Wire::Tls(c) if c.wants_write() => PollFlags::OUT,
            Wire::Tls(c) if c.is_handshaking() => PollFlags::IN,
            Wire::Tls(_) => step,
        }
    }

    /// Writes some of `data`, as `write(2)` on a non-blocking socket does: on
    /// TLS, once the handshake is done (`WouldBlock` until then), the bytes
    /// are taken by rustls and sent as far as the socket takes them (the
    /// rest goes out before the next read).
    pub(super) fn write(&mut self, sock: &Socket, data: &[u8]) -> io::Result<usize> {
        let Wire::Tls(c) = self else {
            return (&*sock).write(data);
        };
        handshake(c, sock)?;
        flush(c, sock)?;
        let n = c.writer().write(data)?;
        match flush(c, sock) {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
            _ => Ok(n),
        }
    }

    /// Reads some bytes, as `read(2)` on a non-blocking socket does (`Ok(0)`:
    /// the peer closed the connection, with or without a TLS close_notify).
    pub(super) fn read(&mut self, sock: &Socket, buf: &mut [u8]) -> io::Result<usize> {
        let Wire::Tls(c) = self else {
            return (&*sock).read(buf);
        };
        handshake(c, sock)?;
        let mut eof = false;
        loop {
            match flush(c, sock) {
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
                _ => {}
            }
            match c.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && eof => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            eof = receive(c, sock, "SSL error")? == 0;
        }
    }
}

/// Sends what rustls has to send, as far as the socket takes it.
fn flush(c: &mut ClientConnection, sock: &Socket) -> io::Result<()> {
    while c.wants_write() {
        c.write_tls(&mut &*sock)?;
    }
    Ok(())
}

/// Reads TLS records from the socket into rustls and processes them; the
/// bytes read (0: end of file). A bad record or a failed verification is an
/// error with `what` and rustls' words (the alert rustls wants to send is
/// sent if the socket takes it).
fn receive(c: &mut ClientConnection, sock: &Socket, what: &str) -> io::Result<usize> {
    let n = c.read_tls(&mut &*sock)?;
    if let Err(e) = c.process_new_packets() {
        let _ = flush(c, sock);
        return Err(tls_error(what, e));
    }
    Ok(n)
}

/// Moves the handshake on as far as it goes without waiting (`WouldBlock`:
/// wait for [`Wire::interest`]); `Ok` once it is done.
fn handshake(c: &mut ClientConnection, sock: &Socket) -> io::Result<()> {
    const WHAT: &str = "SSL handshake failed";
    while c.is_handshaking() {
        flush(c, sock)?;
        if !c.is_handshaking() {
            break;
        }
        if receive(c, sock, WHAT)? == 0 {
            return Err(tls_error(WHAT, "the peer closed the connection"));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::{CheckConf, CheckType};
    use crate::tls::client::{BackendTls, ClientSettings};
    use crate::upstream::check::conn::check_on;
    use crate::upstream::check::testing::{self_signed, tls_backend};
    use std::net::SocketAddr;
    use std::sync::atomic::Ordering::SeqCst;
    use std::time::Duration;

    /// The check TLS of a location verifying `name` against `roots`.
    fn check_tls(roots: rustls::RootCertStore, name: &str) -> CheckTls {
        let tls = BackendTls::build(ClientSettings {
            verify: true,
            trusted: Some(roots),
            verify_depth: 1,
            versions: vec![&rustls::version::TLS12, &rustls::version::TLS13],
            suites: crate::tls::ciphers::select("HIGH", &mut Vec::new()).unwrap(),
            certificate: None,
            session_reuse: true,
            server_name: true,
            name: None,
        })
        .unwrap();
        CheckTls {
            config: Arc::clone(&tls.config),
            name: ServerName::try_from(name.to_string()).unwrap(),
        }
    }

    fn conf(keepalive_requests: u32) -> CheckConf {
        CheckConf {
            kind: CheckType::Http,
            timeout: Duration::from_millis(1000),
            http_send: b"GET /health HTTP/1.1\r\nHost: backend.test\r\n\r\n".to_vec(),
            keepalive_requests,
            ..CheckConf::default()
        }
    }

    /// `rounds` checks of `target` over `tls`, each on the connection the
    /// one before left, off the test's runtime.
    async fn checks(
        target: SocketAddr,
        conf: CheckConf,
        tls: CheckTls,
        rounds: usize,
    ) -> Vec<Result<(), CheckError>> {
        tokio::task::spawn_blocking(move || {
            let mut kept = None;
            (0..rounds)
                .map(|_| check_on(target, &conf, Some(&tls), &mut kept))
                .collect()
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn http_checks_over_tls_pass_fail_on_status_and_on_verification() {
        let (server, roots) = self_signed("backend.test");
        let (ok, _) = tls_backend(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            Arc::clone(&server),
        )
        .await;
        let (err, _) = tls_backend(
            b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n",
            Arc::clone(&server),
        )
        .await;
        let tls = check_tls(roots.clone(), "backend.test");
        assert_eq!(checks(ok, conf(1), tls.clone(), 2).await, [Ok(()), Ok(())]);
        assert_eq!(
            checks(err, conf(1), tls.clone(), 1).await,
            [Err(CheckError::Status(500))]
        );
        // The certificate names another host; another CA signed it.
        let wrong_name = check_tls(roots, "other.test");
        let (_, other_roots) = self_signed("backend.test");
        let stranger = check_tls(other_roots, "backend.test");
        for tls in [wrong_name, stranger] {
            let got = checks(ok, conf(1), tls, 1).await;
            match &got[..] {
                [Err(CheckError::Tls(words))] => assert!(
                    words.starts_with("SSL handshake failed: invalid peer certificate"),
                    "{words}"
                ),
                other => panic!("{other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn kept_alive_tls_checks_share_one_connection() {
        let (server, roots) = self_signed("backend.test");
        let (addr, accepted) = tls_backend(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            server,
        )
        .await;
        let tls = check_tls(roots, "backend.test");
        let results = checks(addr, conf(5), tls, 7).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        // Five checks on the first connection, two on the second.
        assert_eq!(accepted.load(SeqCst), 2);
    }

    #[test]
    fn tls_failures_keep_their_words_and_others_their_kind() {
        let tls = tls_error("SSL handshake failed", "bad certificate");
        assert_eq!(
            failure(&tls),
            CheckError::Tls("SSL handshake failed: bad certificate".to_string())
        );
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(
            failure(&reset),
            CheckError::Io(io::ErrorKind::ConnectionReset)
        );
    }
}
