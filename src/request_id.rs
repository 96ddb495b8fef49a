//! `$request_id`: nginx's unique request identifier, 16 random bytes written
//! as 32 lower-case hex digits. As in nginx, the bytes are drawn only when a
//! request first reads the variable (a request that never does costs a store
//! of `None` when it starts); every later read of the same request gives the
//! same value, so a `proxy_set_header X-Request-ID $request_id` and the access
//! log line agree. The random bytes come from aws-lc's generator (already the
//! TLS provider).

use std::cell::Cell;

/// The identifier slot of one request: empty until first read.
#[derive(Debug, Default)]
pub struct RequestId(Cell<Option<[u8; 16]>>);

impl RequestId {
    /// An empty slot.
    pub const fn new() -> RequestId {
        RequestId(Cell::new(None))
    }

    /// A slot holding `id` already (an access-log record's copy).
    pub fn holding(id: Option<[u8; 16]>) -> RequestId {
        RequestId(Cell::new(id))
    }

    /// A new request starts: the slot is empty again.
    pub fn reset(&self) {
        self.0.set(None);
    }

    /// The identifier if it was drawn already (never draws).
    pub fn peek(&self) -> Option<[u8; 16]> {
        self.0.get()
    }

    /// The identifier, drawn now if this is the first read. `None` only if
    /// the system's random generator fails (the variable is then empty).
    pub fn get(&self) -> Option<[u8; 16]> {
        if let Some(id) = self.0.get() {
            return Some(id);
        }
        let mut id = [0u8; 16];
        match aws_lc_rs::rand::fill(&mut id) {
            Ok(()) => {
                self.0.set(Some(id));
                Some(id)
            }
            Err(_) => {
                tracing::error!("$request_id: the random generator failed");
                None
            }
        }
    }

    /// Appends the identifier as 32 hex digits (nothing if it cannot be drawn).
    pub fn write(&self, out: &mut Vec<u8>) {
        if let Some(id) = self.get() {
            let mut text = [0u8; 32];
            if hex::encode_to_slice(id, &mut text).is_ok() {
                out.extend_from_slice(&text);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn drawn_on_first_read_then_stable_until_reset() {
        let slot = RequestId::new();
        assert_eq!(slot.peek(), None);
        let mut first = Vec::new();
        slot.write(&mut first);
        assert_eq!(first.len(), 32);
        assert!(first
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)));
        let mut again = Vec::new();
        slot.write(&mut again);
        assert_eq!(first, again);
        assert!(slot.peek().is_some());
        slot.reset();
        assert_eq!(slot.peek(), None);
        let mut next = Vec::new();
        slot.write(&mut next);
        assert_ne!(first, next, "a new request draws a new id");
    }

    #[test]
    fn a_held_id_is_written_as_hex() {
        let mut id = [0u8; 16];
        id[0] = 0xab;
        id[15] = 0x01;
        let slot = RequestId::holding(Some(id));
        let mut out = Vec::new();
        slot.write(&mut out);
        assert_eq!(out, b"ab000000000000000000000000000001");
    }
}
