//! Fuzz the Host check (`sticky_proxy::proxy::route::normalize_host`), the
//! parser of a client's `Host` header and request-line authority. Properties:
//! never panics, and agrees with the reference below, written from the rules
//! (RFC 9112 section 3.2 and RFC 3986 section 3.2.2, as nginx applies them)
//! in the plainest way, with none of the fast paths of the real one.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sticky_proxy::proxy::route::normalize_host;

/// The host a server is chosen by, or `None` for a 400.
fn reference(raw: &[u8]) -> Option<String> {
    // The name (or `[literal]`) and the port after it, if any.
    let (name, port, checked): (&[u8], Option<&[u8]>, &[u8]) = if raw.first() == Some(&b'[') {
        let close = raw.iter().position(|&b| b == b']')?;
        let port = match &raw[close + 1..] {
            [] => None,
            [b':', p @ ..] => Some(p),
            _ => return None,
        };
        (&raw[..=close], port, &raw[1..close])
    } else {
        match raw.iter().position(|&b| b == b':') {
            Some(i) => (&raw[..i], Some(&raw[i + 1..]), &raw[..i]),
            None => (raw, None, raw),
        }
    };
    if let Some(p) = port {
        // Digits only (none is allowed), at most 65535, leading zeros too.
        if !p.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let digits: Vec<u8> = p.iter().copied().skip_while(|&b| b == b'0').collect();
        if digits.len() > 5 || (digits.len() == 5 && digits.as_slice() > b"65535".as_slice()) {
            return None;
        }
    }
    let literal = raw.first() == Some(&b'[');
    for &b in checked {
        let bad = b <= 0x20 || b == 0x7f || b == b'/' || b == b'\\' || (b == b':' && !literal);
        if bad {
            return None;
        }
    }
    if checked.windows(2).any(|w| w == b"..") {
        return None;
    }
    let text = std::str::from_utf8(name).ok()?;
    let text = text.strip_suffix('.').unwrap_or(text);
    if text.is_empty() {
        return None;
    }
    Some(text.to_ascii_lowercase())
}

fuzz_target!(|data: &[u8]| {
    let got = normalize_host(data).ok().map(|h| h.into_owned());
    assert_eq!(got, reference(data), "{:?}", String::from_utf8_lossy(data));
});
