//! The byte tunnel a connection becomes after `101 Switching Protocols`
//! (WebSocket and other upgrades), over a protocol-neutral upgraded stream.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// A byte stream that can be read and written: the far end of a tunnel.
pub trait UpgradedIo: AsyncRead + AsyncWrite + Unpin {}

impl<T: AsyncRead + AsyncWrite + Unpin> UpgradedIo for T {}

/// The far end of a tunnel (a backend connection, plain or TLS), and the
/// bytes it already sent past the `101` head.
pub struct Upgraded {
    pub io: Box<dyn UpgradedIo>,
    pub early: Bytes,
}

/// Copies bytes both ways between the client and the far end until either
/// side closes. Bytes either side sent right after the switch go first.
pub async fn tunnel<C: AsyncRead + AsyncWrite + Unpin>(
    mut client: C,
    client_early: BytesMut,
    far: Upgraded,
) {
    let Upgraded { mut io, early } = far;
    let started = async {
        if !early.is_empty() {
            client.write_all(&early).await?;
        }
        if !client_early.is_empty() {
            io.write_all(&client_early).await?;
        }
        tokio::io::copy_bidirectional(&mut client, &mut *io).await
    };
    if let Err(e) = started.await {
        tracing::debug!("tunnel closed: {e}");
    }
}
