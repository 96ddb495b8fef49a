//! `open_file_cache`: a worker's open files and their metadata (and, with
//! `open_file_cache_errors on`, failed lookups) by path, so that a file asked
//! for again is served without `open`, `fstat` and `close`. nginx's rules:
//!
//! - an entry is used until `valid` has passed since it was opened, then the
//!   path is opened anew: a change to the file shows after that time;
//! - a file's descriptor stays in the cache once the file was asked for
//!   `min_uses` times with no gap of `inactive` between two uses;
//! - a failed lookup leaves the cache, unless `errors` (then the error is
//!   kept from its first lookup, for `valid`);
//! - an entry unused for `inactive` leaves the cache (a lookup removes up to
//!   two such entries, oldest first), and when the cache holds `max` entries
//!   the least recently used one leaves it for a new one.
//!
//! Pure logic: the clock and the function that opens a file are passed in.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::files::OpenFileLimits as Limits;
use crate::files::open::Meta;

/// What a lookup found: the open file and its metadata, or the OS error.
type Found = Result<(Arc<File>, Meta), i32>;

struct Entry {
    /// `None` until the file was asked for `min_uses` times (an error is
    /// kept at once).
    found: Option<Found>,
    /// Opened with `disable_symlinks on`.
    no_symlinks: bool,
    opened: Instant,
    uses: u32,
    /// The entry's place in [`FileCache::order`].
    stamp: u64,
}

/// A path as the cache keys it: its bytes (the paths `serve` makes have no
/// `//` or `/./`, and hashing bytes is several times cheaper than hashing a
/// `Path` component by component).
type Key = Box<[u8]>;

/// The entries from the least to the most recently used: each one's key and
/// when it was last used, by stamp.
type Order = BTreeMap<u64, (Key, Instant)>;

impl Entry {
    /// Marks the entry used at `now`, the most recently used one (`stamp`:
    /// its new place in `order`).
    fn used_again(&mut self, now: Instant, stamp: u64, order: &mut Order) {
        let old = std::mem::replace(&mut self.stamp, stamp);
        if let Some((key, _)) = order.remove(&old) {
            order.insert(stamp, (key, now));
        }
    }
}

/// One cache of a worker.
#[derive(Default)]
pub struct FileCache {
    entries: HashMap<Key, Entry>,
    order: Order,
    next: u64,
}

impl FileCache {
    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The file at `path`, from the cache or from `open` (`no_symlinks`:
    /// `disable_symlinks on`, passed to it).
    pub fn open(
        &mut self,
        limits: &Limits,
        path: &Path,
        no_symlinks: bool,
        now: Instant,
        open: impl FnOnce(&Path, bool) -> io::Result<(File, Meta)>,
    ) -> io::Result<(Arc<File>, Meta)> {
        self.expire(limits.inactive, now);
        let key = path.as_os_str().as_bytes();
        if let Some(e) = self.entries.get_mut(key) {
            let fresh = now.saturating_duration_since(e.opened) < limits.valid;
            if let (true, true, Some(found)) = (fresh, e.no_symlinks == no_symlinks, &e.found) {
                let found = found.clone();
                e.uses = e.uses.saturating_add(1);
                self.next += 1;
                e.used_again(now, self.next, &mut self.order);
                return found.map_err(io::Error::from_raw_os_error);
            }
        }
        let opened = open(path, no_symlinks).map(|(f, m)| (Arc::new(f), m));
        // Only failures with an OS error code are kept (as nginx keeps
        // `ENOENT`, `EACCES`, ...), and only with `open_file_cache_errors on`;
        // otherwise a failed lookup leaves the cache, as in nginx.
        let keep: Found = match &opened {
            Ok(found) => Ok(found.clone()),
            Err(e) => match e.raw_os_error() {
                Some(code) if limits.errors => Err(code),
                _ => {
                    self.remove(key);
                    return opened;
                }
            },
        };
        // An error is kept from the first lookup; a descriptor once the file
        // was asked for `min_uses` times.
        let keeps = |uses: u32| keep.is_err() || uses >= limits.min_uses;
        match self.entries.get_mut(key) {
            Some(e) => {
                e.uses = e.uses.saturating_add(1);
                e.opened = now;
                e.no_symlinks = no_symlinks;
                e.found = keeps(e.uses).then_some(keep);
                self.next += 1;
                e.used_again(now, self.next, &mut self.order);
            }
            None if limits.max > 0 => {
                // Every entry has its place in `order` (the guard only makes
                // sure this loop ends).
                while self.entries.len() >= limits.max && !self.order.is_empty() {
                    self.evict_oldest();
                }
                self.next += 1;
                let stamp = self.next;
                let entry = Entry {
                    found: keeps(1).then_some(keep),
                    no_symlinks,
                    opened: now,
                    uses: 1,
                    stamp,
                };
                self.entries.insert(key.into(), entry);
                self.order.insert(stamp, (key.into(), now));
            }
            None => {}
        }
        opened
    }

    fn remove(&mut self, key: &[u8]) {
        if let Some(e) = self.entries.remove(key) {
            self.order.remove(&e.stamp);
        }
    }

    /// Removes up to two entries unused for `inactive`, oldest first.
    fn expire(&mut self, inactive: Duration, now: Instant) {
        for _ in 0..2 {
            let Some((_, (_, used))) = self.order.first_key_value() else {
                return;
            };
            if now.saturating_duration_since(*used) < inactive {
                return;
            }
            self.evict_oldest();
        }
    }

    fn evict_oldest(&mut self) {
        if let Some((_, (key, _))) = self.order.pop_first() {
            self.entries.remove(&key);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::path::PathBuf;

    const S: Duration = Duration::from_secs(1);

    fn limits(max: usize, min_uses: u32, errors: bool) -> Limits {
        Limits {
            max,
            inactive: 20 * S,
            valid: 60 * S,
            min_uses,
            errors,
        }
    }

    /// A file that exists, and one that does not.
    struct Fixture {
        dir: PathBuf,
        opens: Cell<usize>,
    }

    impl Fixture {
        fn new(name: &str) -> Fixture {
            let dir = std::env::temp_dir().join(format!("sp-ofc-{}-{name}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("a"), b"aaa").unwrap();
            std::fs::write(dir.join("b"), b"bb").unwrap();
            std::fs::write(dir.join("c"), b"c").unwrap();
            Fixture {
                dir,
                opens: Cell::new(0),
            }
        }

        fn get(
            &self,
            cache: &mut FileCache,
            l: &Limits,
            name: &str,
            at: Duration,
            t0: Instant,
        ) -> io::Result<u64> {
            self.get_with(cache, l, name, false, t0 + at)
        }

        /// `name` looked up at `now` (`no_symlinks` as given), counting opens.
        fn get_with(
            &self,
            cache: &mut FileCache,
            l: &Limits,
            name: &str,
            no_symlinks: bool,
            now: Instant,
        ) -> io::Result<u64> {
            let opens = &self.opens;
            cache
                .open(l, &self.dir.join(name), no_symlinks, now, |p, _| {
                    opens.set(opens.get() + 1);
                    let f = File::open(p)?;
                    let m = Meta::of(&f)?;
                    Ok((f, m))
                })
                .map(|(_, m)| m.size)
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// (file, seconds after the start, opens counted after this lookup).
    fn run(name: &str, l: Limits, steps: &[(&str, u64, usize)]) -> FileCache {
        let fx = Fixture::new(name);
        let mut cache = FileCache::default();
        let t0 = Instant::now();
        for (i, &(file, at, opens)) in steps.iter().enumerate() {
            let _ = fx.get(&mut cache, &l, file, Duration::from_secs(at), t0);
            assert_eq!(fx.opens.get(), opens, "{name}: step {i} ({file} at {at}s)");
        }
        cache
    }

    #[test]
    fn a_cached_file_is_opened_once_within_valid() {
        run(
            "hit",
            limits(10, 1, false),
            &[
                ("a", 0, 1),
                ("a", 1, 1),
                ("a", 19, 1),
                ("b", 19, 2),
                ("b", 30, 2),
            ],
        );
    }

    #[test]
    fn an_entry_is_opened_anew_once_valid_has_passed() {
        let l = Limits {
            valid: 5 * S,
            ..limits(10, 1, false)
        };
        run(
            "valid",
            l,
            &[
                ("a", 0, 1),
                ("a", 4, 1),
                ("a", 5, 2),
                ("a", 9, 2),
                ("a", 10, 3),
            ],
        );
    }

    #[test]
    fn the_descriptor_is_kept_after_min_uses() {
        run(
            "uses",
            limits(10, 3, false),
            &[
                ("a", 0, 1),
                ("a", 1, 2),
                ("a", 2, 3),
                ("a", 3, 3),
                ("a", 4, 3),
            ],
        );
    }

    #[test]
    fn an_entry_unused_for_inactive_leaves_and_counts_its_uses_again() {
        let cache = run(
            "inactive",
            limits(10, 2, false),
            // Uses 1 at 0 s; at 25 s the entry is gone (inactive 20 s): the
            // count starts again, so the descriptor is kept from 26 s.
            &[("a", 0, 1), ("a", 25, 2), ("a", 26, 3), ("a", 27, 3)],
        );
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_least_recently_used_entry_leaves_a_full_cache() {
        let cache = run(
            "max",
            limits(2, 1, false),
            // a, b cached; a used again; c pushes out b (the least recent).
            &[
                ("a", 0, 1),
                ("b", 1, 2),
                ("a", 2, 2),
                ("c", 3, 3),
                ("a", 4, 3),
                ("b", 5, 4),
            ],
        );
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn errors_are_cached_only_when_asked() {
        let cache = run(
            "noerr",
            limits(10, 1, false),
            &[("missing", 0, 1), ("missing", 1, 2)],
        );
        // A failed lookup takes no place in the cache.
        assert!(cache.is_empty());
        run(
            "err",
            limits(10, 1, true),
            &[("missing", 0, 1), ("missing", 1, 1), ("missing", 61, 2)],
        );
        // An error is kept from its first lookup, whatever `min_uses` says.
        run(
            "erruses",
            limits(10, 3, true),
            &[("missing", 0, 1), ("missing", 1, 1)],
        );
    }

    #[test]
    fn a_file_gone_when_checked_again_leaves_the_cache() {
        let fx = Fixture::new("gone");
        let mut cache = FileCache::default();
        let l = limits(10, 1, false);
        let t0 = Instant::now();
        assert_eq!(fx.get(&mut cache, &l, "a", Duration::ZERO, t0).unwrap(), 3);
        std::fs::remove_file(fx.dir.join("a")).unwrap();
        // Within `valid`: the open descriptor still serves it.
        assert_eq!(fx.get(&mut cache, &l, "a", S, t0).unwrap(), 3);
        assert_eq!(cache.len(), 1);
        let e = fx.get(&mut cache, &l, "a", 61 * S, t0).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(cache.is_empty());
    }

    #[test]
    fn a_cached_error_is_the_same_error() {
        let fx = Fixture::new("errkind");
        let mut cache = FileCache::default();
        let l = limits(10, 1, true);
        let t0 = Instant::now();
        for at in [0, 1] {
            let e = fx
                .get(&mut cache, &l, "missing", Duration::from_secs(at), t0)
                .unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::NotFound);
        }
    }

    #[test]
    fn a_lookup_with_other_symlink_rules_is_not_served_from_the_cache() {
        let fx = Fixture::new("symlinks");
        let mut cache = FileCache::default();
        let l = limits(10, 1, false);
        let now = Instant::now();
        for no_symlinks in [false, true, true, false] {
            let got = fx.get_with(&mut cache, &l, "a", no_symlinks, now);
            assert_eq!(got.unwrap(), 3);
        }
        assert_eq!(fx.opens.get(), 3);
    }

    #[test]
    fn idle_entries_leave_two_per_lookup() {
        let fx = Fixture::new("sweep");
        let mut cache = FileCache::default();
        let l = limits(10, 1, false);
        let t0 = Instant::now();
        for f in ["a", "b", "c"] {
            fx.get(&mut cache, &l, f, Duration::ZERO, t0).unwrap();
        }
        assert_eq!(cache.len(), 3);
        // At 30 s all three are idle: the lookup of "a" removes the two
        // oldest ("a", "b") and opens "a" anew; "c" leaves at the next one.
        fx.get(&mut cache, &l, "a", 30 * S, t0).unwrap();
        assert_eq!(cache.len(), 2);
        fx.get(&mut cache, &l, "a", 31 * S, t0).unwrap();
        assert_eq!(cache.len(), 1);
    }
}
