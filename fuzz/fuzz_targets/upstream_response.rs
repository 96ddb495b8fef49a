//! Arbitrary bytes as a backend's response: the head parser and the chunked
//! decoder never panic, a head that parses has a length within the input and a
//! framing consistent with its status, the proxy's filter keeps every
//! hop-by-hop header out of a response that does not switch protocols, and the
//! decoder never hands out data beyond the buffer it was given.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sticky_proxy::proxy::headers::{self, HOP_BY_HOP};
use sticky_proxy::upstream::h1::{self, Chunk, ChunkedDecoder, Framing};

fuzz_target!(|data: &[u8]| {
    let (head_request, data) = match data.split_first() {
        Some((flag, rest)) => (flag & 1 == 1, rest),
        None => return,
    };
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(Some(layout)) = h1::locate_response_head(&bytes) {
        assert!(layout.len <= bytes.len());
        let head = bytes.slice(..layout.len);
        let all = h1::build_response_head(&head, &layout, head_request, |_, _| false);
        if let Ok(parsed) = &all {
            if head_request || parsed.status.as_u16() < 200 {
                assert_eq!(parsed.framing, Framing::Empty);
            }
            if parsed.framing == Framing::Close {
                assert!(!parsed.keep_alive);
            }
        }
        let filtered = h1::build_response_head(&head, &layout, head_request, |n, kind| {
            headers::left_out_of_response(n, kind, &[], &[])
        });
        match (&all, &filtered) {
            (Ok(all), Ok(filtered)) => {
                // Leaving lines out changes no framing fact.
                assert_eq!(
                    (all.framing, all.keep_alive),
                    (filtered.framing, filtered.keep_alive)
                );
                if all.status.as_u16() != 101 {
                    for name in &HOP_BY_HOP {
                        assert!(!filtered.headers.contains_key(name));
                    }
                }
            }
            (Err(a), Err(b)) => assert_eq!(a, b),
            _ => panic!("filtering changed whether the head parses"),
        }
    }
    // The same bytes as a chunked body, fed in pieces of varying size.
    let mut dec = ChunkedDecoder::new();
    let mut rest = data;
    let mut step = 1;
    while !rest.is_empty() {
        let piece = &rest[..step.min(rest.len())];
        match dec.next(piece) {
            Ok(Chunk::Data { start, len }) => {
                assert!(len > 0 && start + len <= piece.len());
                rest = &rest[start + len..];
            }
            Ok(Chunk::Need) => rest = &rest[piece.len()..],
            Ok(Chunk::End { consumed }) => {
                assert!(consumed <= piece.len() && dec.is_done());
                break;
            }
            Err(_) => break,
        }
        step = step % 7 + 1;
    }
});
