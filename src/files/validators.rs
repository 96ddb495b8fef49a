//! The `Last-Modified` and `ETag` values of the files a worker served last,
//! by modification time and size. A file asked again (the common case: a
//! site's pages and assets) reuses its values, shared, instead of formatting
//! and allocating both per response; nginx likewise formats its `Date` once
//! per second rather than per response. A few entries, replaced in turn: a
//! miss costs a short scan, never a lookup structure.

use std::cell::RefCell;

use http::HeaderValue;

use crate::files::cond;

/// Files remembered per worker thread.
const SLOTS: usize = 8;

/// The values of one file version.
#[derive(Debug, Clone)]
pub struct Values {
    pub last_modified: HeaderValue,
    /// nginx's strong `ETag` (used unless `etag off`).
    pub etag: HeaderValue,
}

/// The last [`SLOTS`] file versions' values, replaced oldest first.
#[derive(Debug, Default)]
pub struct Memo {
    slots: [Option<(i64, u64, Values)>; SLOTS],
    next: usize,
}

impl Memo {
    /// The values of a file modified at `mtime_unix` (seconds) of `size`
    /// bytes: remembered, or made and remembered.
    pub fn values(&mut self, mtime_unix: i64, size: u64) -> Values {
        let found = self
            .slots
            .iter()
            .flatten()
            .find(|(m, s, _)| *m == mtime_unix && *s == size);
        if let Some((_, _, v)) = found {
            return v.clone();
        }
        let v = Values {
            last_modified: last_modified(mtime_unix),
            etag: cond::etag(mtime_unix, size),
        };
        if let Some(slot) = self.slots.get_mut(self.next) {
            *slot = Some((mtime_unix, size, v.clone()));
        }
        self.next = (self.next + 1) % SLOTS;
        v
    }
}

/// The `Last-Modified` value of `mtime_unix`.
fn last_modified(mtime_unix: i64) -> HeaderValue {
    let stamp = crate::timefmt::http_date_unix(mtime_unix);
    HeaderValue::from_bytes(stamp.as_bytes())
        .unwrap_or_else(|_| HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"))
}

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::new(Memo::default());
}

/// [`Memo::values`] of this thread's memo.
pub fn values(mtime_unix: i64, size: u64) -> Values {
    MEMO.with(|m| m.borrow_mut().values(mtime_unix, size))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn values_are_nginx_s_and_shared_until_replaced() {
        let mut memo = Memo::default();
        // (mtime, size, Last-Modified, ETag)
        let cases = [
            (0, 0, "Thu, 01 Jan 1970 00:00:00 GMT", "\"0-0\""),
            (
                1_700_000_000,
                1024,
                "Tue, 14 Nov 2023 22:13:20 GMT",
                "\"6553f100-400\"",
            ),
            (
                1_700_000_000,
                1025,
                "Tue, 14 Nov 2023 22:13:20 GMT",
                "\"6553f100-401\"",
            ),
            (
                1_700_000_001,
                1024,
                "Tue, 14 Nov 2023 22:13:21 GMT",
                "\"6553f101-400\"",
            ),
            // Before the epoch: the date is clamped, the tag is nginx's.
            (
                -1,
                5,
                "Thu, 01 Jan 1970 00:00:00 GMT",
                "\"ffffffffffffffff-5\"",
            ),
        ];
        for (mtime, size, lm, tag) in cases {
            let first = memo.values(mtime, size);
            assert_eq!(first.last_modified, lm, "{mtime}");
            assert_eq!(first.etag, tag, "{mtime} {size}");
            // Asked again: the same values, the same bytes (shared).
            let again = memo.values(mtime, size);
            assert_eq!(
                again.etag.as_bytes().as_ptr(),
                first.etag.as_bytes().as_ptr()
            );
            assert_eq!(
                again.last_modified.as_bytes().as_ptr(),
                first.last_modified.as_bytes().as_ptr()
            );
        }
        // Eight more versions replace the oldest entries: the first version
        // is made again (equal, not shared).
        let old = memo.values(0, 0);
        for i in 0..SLOTS as u64 {
            memo.values(42, i);
        }
        let made = memo.values(0, 0);
        assert_eq!(made.etag, old.etag);
        assert_ne!(made.etag.as_bytes().as_ptr(), old.etag.as_bytes().as_ptr());
    }
}
