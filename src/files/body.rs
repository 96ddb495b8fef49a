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

/// A file body: its pieces, sent in order.
#[derive(Debug)]
pub struct FileBody {
    file: Arc<File>,
    pieces: std::collections::VecDeque<Piece>,
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
            pieces: pieces.into(),
            remaining,
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
        let [Piece::File { start, end }] = self.pieces.make_contiguous() else {
            return None;
        };
        let range = (Arc::clone(&self.file), *start, end.saturating_sub(*start));
        self.pieces.clear();
        self.remaining = 0;
        Some(range)
    }

    /// The next chunk, `None` at the end. A file that shrank while it was
    /// sent is an error (the response was promised whole).
    pub fn next_chunk(&mut self) -> Option<std::io::Result<Bytes>> {
        loop {
            let piece = self.pieces.front_mut()?;
            match piece {
                Piece::Text(b) => {
                    let b = std::mem::take(b);
                    self.pieces.pop_front();
                    if b.is_empty() {
                        continue;
                    }
                    self.remaining = self.remaining.saturating_sub(b.len() as u64);
                    return Some(Ok(b));
                }
                Piece::File { start, end } => {
                    if *start >= *end {
                        self.pieces.pop_front();
                        continue;
                    }
                    let want = usize::try_from(*end - *start).map_or(CHUNK, |n| n.min(CHUNK));
                    let mut buf = vec![0u8; want];
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

    #[test]
    fn one_file_piece_is_taken_whole_and_leaves_the_body_empty() {
        let dir = std::env::temp_dir().join(format!("sp-filebody-take-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let file = Arc::new(File::open(&path).unwrap());
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
}
