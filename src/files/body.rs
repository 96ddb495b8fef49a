//! The body of a file response, read as it is sent: the file (or its
//! ranges) in pieces of at most [`CHUNK`] bytes, with the text between the
//! parts of a `multipart/byteranges` answer. Constant memory whatever the
//! file's size. Reads are plain positioned reads (`pread`), as nginx without
//! `aio`: the pages of a served file are nearly always in the page cache.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;

/// The most read at once.
pub const CHUNK: usize = 64 * 1024;

/// One piece of a file body.
#[derive(Debug)]
pub enum Piece {
    /// Text made by us (multipart boundaries).
    Text(Bytes),
    /// Bytes `start..end` (end exclusive) of the file.
    File { start: u64, end: u64 },
}

/// A file body: its pieces, sent in order (`first`, then `rest`).
#[derive(Debug)]
pub struct FileBody {
    file: Arc<File>,
    /// The common body, one stretch `start..end` of the file, needs no list.
    first: Option<(u64, u64)>,
    rest: std::collections::VecDeque<Piece>,
    remaining: u64,
}

impl FileBody {
    pub fn new(file: Arc<File>, pieces: Vec<Piece>) -> FileBody {
        let remaining = pieces
            .iter()
            .map(|p| match p {
                Piece::Text(b) => b.len() as u64,
                Piece::File { start, end } => end.saturating_sub(*start),
            })
            .sum();
        FileBody {
            file,
            first: None,
            rest: pieces.into(),
            remaining,
        }
    }

    /// Bytes `start..end` of `file`: a whole file or a single range.
    pub fn range(file: Arc<File>, start: u64, end: u64) -> FileBody {
        FileBody {
            file,
            first: Some((start, end)),
            rest: std::collections::VecDeque::new(),
            remaining: end.saturating_sub(start),
        }
    }

    fn pop_front(&mut self) {
        if self.first.take().is_none() {
            self.rest.pop_front();
        }
    }

    /// Bytes still to send.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// The file and the stretch `(offset, len)` of a body that is one piece
    /// of the file (a whole file or a single range), for a connection that
    /// sends it itself (sendfile(2)). Taken once: the body is then empty.
    /// `None` for a body with text pieces (`multipart/byteranges`).
    pub fn take_single(&mut self) -> Option<(Arc<File>, u64, u64)> {
        let (start, end) = match (&self.first, &*self.rest.make_contiguous()) {
            (Some((start, end)), []) | (None, [Piece::File { start, end }]) => (*start, *end),
            _ => return None,
        };
        self.first = None;
        self.rest.clear();
        self.remaining = 0;
        Some((Arc::clone(&self.file), start, end.saturating_sub(start)))
    }

    /// The next chunk, `None` at the end. A file that shrank while it was
    /// sent is an error (the response was promised whole).
    pub fn next_chunk(&mut self) -> Option<std::io::Result<Bytes>> {
        loop {
            // The fields, not a method: `self.file` is read below.
            let (start, end) = match &mut self.first {
                Some((start, end)) => (start, end),
                None => match self.rest.front_mut()? {
                    Piece::File { start, end } => (start, end),
                    Piece::Text(b) => {
                        let b = std::mem::take(b);
                        self.pop_front();
                        if b.is_empty() {
                            continue;
                        }
                        self.remaining = self.remaining.saturating_sub(b.len() as u64);
                        return Some(Ok(b));
                    }
                },
            };
            if *start >= *end {
                self.pop_front();
                continue;
            }
            let want = usize::try_from(*end - *start).map_or(CHUNK, |n| n.min(CHUNK));
            // Zeroed by `resize`, not `vec![0; want]`: that is `calloc`,
            // which glibc (2.36) serves past its per-thread cache, ~300
            // instructions more per piece (measured with 1 KB files).
            #[allow(clippy::slow_vector_initialization)]
            let mut buf = {
                let mut buf = Vec::new();
                buf.resize(want, 0u8);
                buf
            };
            let n = match self.file.read_at(&mut buf, *start) {
                Ok(0) => {
                    return Some(Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "file was truncated while it was sent",
                    )))
                }
                Ok(n) => n,
                Err(e) => return Some(Err(e)),
            };
            buf.truncate(n);
            *start += n as u64;
            self.remaining = self.remaining.saturating_sub(n as u64);
            return Some(Ok(Bytes::from(buf)));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn pieces_are_read_in_order_in_bounded_chunks() {
        let dir = std::env::temp_dir().join(format!("sp-filebody-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&data)
            .unwrap();
        let file = Arc::new(File::open(&path).unwrap());
        let mut body = FileBody::new(
            file,
            vec![
                Piece::Text(Bytes::from_static(b"--a\r\n")),
                Piece::File {
                    start: 10,
                    end: 150_000,
                },
                Piece::Text(Bytes::new()),
                Piece::File { start: 0, end: 1 },
            ],
        );
        assert_eq!(body.remaining(), 5 + 149_990 + 1);
        let mut got = Vec::new();
        while let Some(chunk) = body.next_chunk() {
            let chunk = chunk.unwrap();
            assert!(chunk.len() <= CHUNK);
            got.extend_from_slice(&chunk);
        }
        assert_eq!(body.remaining(), 0);
        let mut want = b"--a\r\n".to_vec();
        want.extend_from_slice(&data[10..150_000]);
        want.push(data[0]);
        assert_eq!(got, want);
        // Past the end of the file: an error, never a short body.
        let file = Arc::new(File::open(&path).unwrap());
        let mut short = FileBody::new(
            file,
            vec![Piece::File {
                start: 199_999,
                end: 200_005,
            }],
        );
        assert!(short.next_chunk().unwrap().is_ok());
        assert!(short.next_chunk().unwrap().is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A directory of its own holding a file of `0123456789`, open.
    fn digits(name: &str) -> (std::path::PathBuf, Arc<File>) {
        let dir = std::env::temp_dir().join(format!("sp-filebody-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        (dir, Arc::new(File::open(&path).unwrap()))
    }

    #[test]
    fn one_file_piece_is_taken_whole_and_leaves_the_body_empty() {
        let (dir, file) = digits("take");
        let mut one = FileBody::new(Arc::clone(&file), vec![Piece::File { start: 2, end: 7 }]);
        let (taken, offset, len) = one.take_single().unwrap();
        assert!(Arc::ptr_eq(&taken, &file));
        assert_eq!((offset, len), (2, 5));
        assert_eq!(one.remaining(), 0);
        assert!(one.next_chunk().is_none());
        assert!(one.take_single().is_none());
        // Multipart (text between the pieces): read through user space.
        let mut multi = FileBody::new(
            Arc::clone(&file),
            vec![
                Piece::Text(Bytes::from_static(b"--b\r\n")),
                Piece::File { start: 0, end: 1 },
            ],
        );
        assert!(multi.take_single().is_none());
        assert_eq!(multi.remaining(), 6);
        let mut two = FileBody::new(
            file,
            vec![
                Piece::File { start: 0, end: 1 },
                Piece::File { start: 3, end: 4 },
            ],
        );
        assert!(two.take_single().is_none());
        assert_eq!(two.remaining(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_range_body_reads_and_is_taken_as_a_list_of_one() {
        let (dir, file) = digits("range");
        let mut read = FileBody::range(Arc::clone(&file), 3, 8);
        assert_eq!(read.remaining(), 5);
        assert_eq!(&read.next_chunk().unwrap().unwrap()[..], b"34567");
        assert!(read.next_chunk().is_none());
        assert_eq!(read.remaining(), 0);
        let mut taken = FileBody::range(Arc::clone(&file), 0, 10);
        assert_eq!(taken.take_single().map(|(_, o, l)| (o, l)), Some((0, 10)));
        assert!(taken.next_chunk().is_none() && taken.take_single().is_none());
        // An empty range ends at once.
        let mut empty = FileBody::range(file, 4, 4);
        assert_eq!(empty.remaining(), 0);
        assert!(empty.next_chunk().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
