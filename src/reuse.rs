//! Reusing per-request memory on a worker thread: header maps and head
//! buffers go back to a small per-thread free list when a request is done with
//! them, and an emptied read buffer goes back to the start of its allocation.
//!
//! Every request parses two header maps (the client's request, the backend's
//! response) and encodes one head for the backend; taking them from the free
//! list saves five allocations and frees per request, and rewinding the read
//! buffers keeps reads landing in the same, cached, memory instead of walking
//! through a fresh part of the buffer with every request. Each list is
//! bounded and keeps only small items, so a burst of large heads does not
//! stay resident.

use std::cell::RefCell;
use std::thread::LocalKey;

use bytes::BytesMut;
use http::HeaderMap;

/// Items kept per list and thread.
const KEEP: usize = 256;
/// Larger maps and buffers are dropped instead of kept.
const MAX_MAP: usize = 64;
const MAX_VEC: usize = 16 * 1024;

thread_local! {
    static MAPS: RefCell<Vec<HeaderMap>> = const { RefCell::new(Vec::new()) };
    static VECS: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    static READS: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

type FreeList<T> = LocalKey<RefCell<Vec<T>>>;

fn take<T>(list: &'static FreeList<T>) -> Option<T> {
    list.with(|l| l.borrow_mut().pop())
}

fn keep<T>(list: &'static FreeList<T>, item: T) {
    list.with(|l| {
        let mut l = l.borrow_mut();
        if l.len() < KEEP {
            l.push(item);
        }
    });
}

/// An empty header map with room for `capacity` entries.
pub fn header_map(capacity: usize) -> HeaderMap {
    match take(&MAPS) {
        Some(mut map) => {
            map.reserve(capacity);
            map
        }
        None => HeaderMap::with_capacity(capacity),
    }
}

/// Gives `map` back for a later [`header_map`].
pub fn give_map(mut map: HeaderMap) {
    if map.capacity() != 0 && map.capacity() <= MAX_MAP {
        map.clear();
        keep(&MAPS, map);
    }
}

/// An empty byte buffer with room for `capacity` bytes.
pub fn vec(capacity: usize) -> Vec<u8> {
    match take(&VECS) {
        Some(mut v) => {
            v.reserve(capacity);
            v
        }
        None => Vec::with_capacity(capacity),
    }
}

/// Gives `v` back for a later [`vec()`].
pub fn give_vec(mut v: Vec<u8>) {
    if v.capacity() != 0 && v.capacity() <= MAX_VEC {
        v.clear();
        keep(&VECS, v);
    }
}

/// A client connection's read buffer, taken when bytes arrive on an idle
/// connection (which holds none).
pub fn read_buf(capacity: usize) -> BytesMut {
    match take(&READS) {
        Some(mut buf) => {
            make_room(&mut buf, capacity);
            buf
        }
        None => BytesMut::with_capacity(capacity),
    }
}

/// Gives an emptied read buffer back when its connection goes idle.
pub fn give_read_buf(buf: BytesMut) {
    if buf.is_empty() && buf.capacity() != 0 && buf.capacity() <= MAX_VEC {
        keep(&READS, buf);
    }
}

/// Makes room in `buf` for a read of up to `want` bytes. An empty buffer
/// whose earlier bytes nobody holds any more is rewound to the start of its
/// allocation (no copy, no allocation); one still shared is replaced.
pub fn make_room(buf: &mut BytesMut, want: usize) {
    let room = buf.capacity() - buf.len();
    if buf.is_empty() {
        if room < want && !buf.try_reclaim(want) {
            *buf = BytesMut::with_capacity(want);
        }
    } else if room < want / 2 {
        buf.reserve(want);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn read_buffers_come_back_only_empty_and_small() {
        let mut buf = read_buf(4096);
        let cap = buf.capacity();
        buf.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        let head = buf.split_to(buf.len()).freeze();
        give_read_buf(buf);
        let again = read_buf(4096);
        assert!(again.is_empty());
        assert!(again.capacity() >= 4096 && again.capacity() <= cap.max(4096) * 2);
        drop(head);
        let mut held = read_buf(16);
        held.extend_from_slice(b"x");
        give_read_buf(held);
        give_read_buf(BytesMut::with_capacity(MAX_VEC + 1));
        READS.with(|l| {
            assert!(l
                .borrow()
                .iter()
                .all(|b| b.is_empty() && b.capacity() <= MAX_VEC))
        });
    }

    #[test]
    fn maps_and_vecs_come_back_empty_with_their_room() {
        let mut map = header_map(4);
        map.insert("x-a", "1".parse().unwrap());
        let cap = map.capacity();
        give_map(map);
        let again = header_map(2);
        assert!(again.is_empty());
        assert_eq!(again.capacity(), cap);
        let mut v = vec(100);
        v.extend_from_slice(b"abc");
        give_vec(v);
        let v = vec(10);
        assert!(v.is_empty() && v.capacity() >= 100);
        // Large ones are not kept.
        give_vec(Vec::with_capacity(MAX_VEC * 2));
        assert!(vec(1).capacity() < MAX_VEC * 2);
    }

    #[test]
    fn an_emptied_unshared_buffer_is_rewound() {
        let mut buf = BytesMut::with_capacity(4096);
        let start = buf.as_ptr();
        buf.extend_from_slice(&[b'x'; 300]);
        let head = buf.split_to(300).freeze();
        // Still shared: a fresh buffer.
        make_room(&mut buf, 4096);
        assert_ne!(buf.as_ptr(), start);
        drop(head);
        let mut buf = BytesMut::with_capacity(4096);
        let start = buf.as_ptr();
        buf.extend_from_slice(&[b'x'; 300]);
        drop(buf.split_to(300).freeze());
        make_room(&mut buf, 4096);
        assert_eq!(buf.as_ptr(), start);
        assert!(buf.capacity() >= 4096);
        // Bytes waiting (a pipelined request) stay where they are.
        buf.extend_from_slice(b"GET");
        make_room(&mut buf, 4096);
        assert_eq!(&buf[..], b"GET");
    }
}
