//! The chunked transfer-coding (RFC 9112 section 7.1) in both directions:
//! a decoder fed with bytes as they arrive (request bodies from clients,
//! response bodies from backends), and the framing the encoder writes.

use bytes::Bytes;

use crate::http1::response::MAX_RESPONSE_HEAD;
use crate::numfmt::write_hex;

/// The size line of one chunk of `len` bytes (`len` in hex, CRLF).
pub fn chunk_size_line(len: usize) -> Bytes {
    let mut line = Vec::with_capacity(18);
    write_chunk_size(&mut line, len);
    Bytes::from(line)
}

/// Writes the size line of one chunk of `len` bytes.
pub fn write_chunk_size(out: &mut Vec<u8>, len: usize) {
    write_hex(out, len as u64);
    out.extend_from_slice(b"\r\n");
}

/// The end of a chunked body: the last chunk and an empty trailer section.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// The chunked transfer-coding of a response body, decoded as bytes arrive.
/// Chunk extensions are read and dropped; the trailer section is kept as
/// received, for whoever passes it on ([`ChunkedDecoder::take_trailer_section`]),
/// else dropped with the decoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkedDecoder {
    state: ChunkState,
    /// Bytes of the current chunk not yet handed out.
    remaining: u64,
    /// Digits read in the current size line (a bound against absurd lines).
    digits: u8,
    /// Bytes of trailer section read (bounded by [`MAX_RESPONSE_HEAD`]).
    trailer: usize,
    /// The trailer section's lines as received (empty: none).
    section: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Hex digits of a chunk size.
    Size,
    /// Whitespace after the size: only a `;` extension may follow (RFC 9112
    /// 7.1.1: `BWS ";"`), so `5 5` is not read as 5.
    SizeWs,
    /// A `;extension` up to the line end.
    Extension,
    /// The `\n` after a `\r` in a size line.
    SizeLf,
    /// Chunk data.
    Data,
    /// The `\r` after chunk data.
    DataCr,
    /// The `\n` after chunk data.
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// Inside a trailer line.
    TrailerLine,
    /// The `\n` ending the empty line that ends the body.
    EndLf,
    Done,
}

/// What [`ChunkedDecoder::next`] found in a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// Chunk data at `buf[start..start + len]`; everything up to its end is
    /// consumed.
    Data { start: usize, len: usize },
    /// All of the buffer was framing; more bytes are needed.
    Need,
    /// The body ended after `consumed` bytes of the buffer (what follows is not
    /// part of this response).
    End { consumed: usize },
}

/// A malformed chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkError;

impl std::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "upstream sent invalid chunked response")
    }
}

impl std::error::Error for ChunkError {}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder::new()
    }
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder {
            state: ChunkState::Size,
            remaining: 0,
            digits: 0,
            trailer: 0,
            section: Vec::new(),
        }
    }

    /// The trailer section's lines, `name: value` each with its line end,
    /// as received, once the body has ended (empty when it had none).
    pub fn take_trailer_section(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.section)
    }

    /// True once the last chunk and the trailer section have been read.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Reads framing from `buf` up to the next chunk data, the end of the body,
    /// or the end of `buf`. Data returned is taken as consumed.
    pub fn next(&mut self, buf: &[u8]) -> Result<Chunk, ChunkError> {
        let mut i = 0;
        while i < buf.len() {
            let b = buf[i];
            match self.state {
                ChunkState::Size => match char::from(b).to_digit(16) {
                    Some(d) => {
                        self.digits += 1;
                        if self.digits > 15 {
                            return Err(ChunkError);
                        }
                        self.remaining = self.remaining * 16 + u64::from(d);
                    }
                    None if self.digits == 0 => return Err(ChunkError),
                    None => match b {
                        b'\r' => self.state = ChunkState::SizeLf,
                        b'\n' => self.end_size_line(),
                        b';' => self.state = ChunkState::Extension,
                        b' ' | b'\t' => self.state = ChunkState::SizeWs,
                        _ => return Err(ChunkError),
                    },
                },
                ChunkState::SizeWs => match b {
                    b' ' | b'\t' => {}
                    b';' => self.state = ChunkState::Extension,
                    _ => return Err(ChunkError),
                },
                ChunkState::Extension => match b {
                    b'\r' => self.state = ChunkState::SizeLf,
                    b'\n' => self.end_size_line(),
                    0..=8 | 11..=31 | 127 => return Err(ChunkError),
                    _ => {}
                },
                ChunkState::SizeLf => {
                    if b != b'\n' {
                        return Err(ChunkError);
                    }
                    self.end_size_line();
                }
                ChunkState::Data => {
                    let left = (buf.len() - i) as u64;
                    let len = self.remaining.min(left) as usize;
                    self.remaining -= len as u64;
                    if self.remaining == 0 {
                        self.state = ChunkState::DataCr;
                    }
                    return Ok(Chunk::Data { start: i, len });
                }
                ChunkState::DataCr => match b {
                    b'\r' => self.state = ChunkState::DataLf,
                    b'\n' => self.state = ChunkState::Size,
                    _ => return Err(ChunkError),
                },
                ChunkState::DataLf => {
                    if b != b'\n' {
                        return Err(ChunkError);
                    }
                    self.state = ChunkState::Size;
                }
                ChunkState::TrailerStart => match b {
                    b'\r' => self.state = ChunkState::EndLf,
                    b'\n' => {
                        self.state = ChunkState::Done;
                        return Ok(Chunk::End { consumed: i + 1 });
                    }
                    _ => {
                        self.section.push(b);
                        self.state = ChunkState::TrailerLine;
                    }
                },
                ChunkState::TrailerLine => {
                    self.trailer += 1;
                    if self.trailer > MAX_RESPONSE_HEAD {
                        return Err(ChunkError);
                    }
                    self.section.push(b);
                    if b == b'\n' {
                        self.state = ChunkState::TrailerStart;
                    }
                }
                ChunkState::EndLf => {
                    if b != b'\n' {
                        return Err(ChunkError);
                    }
                    self.state = ChunkState::Done;
                    return Ok(Chunk::End { consumed: i + 1 });
                }
                ChunkState::Done => return Ok(Chunk::End { consumed: i }),
            }
            i += 1;
        }
        if self.state == ChunkState::Done {
            return Ok(Chunk::End { consumed: i });
        }
        Ok(Chunk::Need)
    }

    fn end_size_line(&mut self) {
        self.digits = 0;
        self.state = if self.remaining == 0 {
            ChunkState::TrailerStart
        } else {
            ChunkState::Data
        };
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_trailer_section_is_kept_as_received_whatever_the_reads() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"5\r\nhello\r\n0\r\n\r\n", b""),
            (b"0\r\nX-Sum: 1\r\n\r\n", b"X-Sum: 1\r\n"),
            (
                b"5\r\nhello\r\n0\r\nA: x\r\nB: y\nC: z\r\n\r\n",
                b"A: x\r\nB: y\nC: z\r\n",
            ),
            (b"0\nA: x\n\n", b"A: x\n"),
        ];
        for (input, want) in cases {
            for step in [1, 2, 5, input.len()] {
                let mut dec = ChunkedDecoder::new();
                let mut fed = 0;
                while !dec.is_done() {
                    let end = (fed + step).min(input.len());
                    let mut at = fed;
                    while at < end {
                        match dec.next(&input[at..end]).unwrap() {
                            Chunk::Data { start, len } => at += start + len,
                            Chunk::End { consumed } => at += consumed,
                            Chunk::Need => at = end,
                        }
                        if dec.is_done() {
                            break;
                        }
                    }
                    fed = end;
                }
                assert_eq!(dec.take_trailer_section(), *want, "step {step}");
                assert!(dec.take_trailer_section().is_empty());
            }
        }
    }

    fn decode(input: &[u8], step: usize) -> Result<(Vec<u8>, Vec<u8>), ChunkError> {
        let mut dec = ChunkedDecoder::new();
        let mut data = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        let mut fed = 0;
        loop {
            if pending.is_empty() {
                if fed >= input.len() {
                    return Err(ChunkError);
                }
                let end = (fed + step).min(input.len());
                pending.extend_from_slice(&input[fed..end]);
                fed = end;
            }
            match dec.next(&pending)? {
                Chunk::Data { start, len } => {
                    data.extend_from_slice(&pending[start..start + len]);
                    pending.drain(..start + len);
                }
                Chunk::Need => pending.clear(),
                Chunk::End { consumed } => {
                    pending.drain(..consumed);
                    pending.extend_from_slice(&input[fed..]);
                    return Ok((data, pending));
                }
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_read_boundaries() {
        let cases: &[(&[u8], &[u8], &[u8])] = &[
            (b"5\r\nhello\r\n0\r\n\r\n", b"hello", b""),
            (
                b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nNEXT",
                b"hello world",
                b"NEXT",
            ),
            (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789", b""),
            (b"5;name=value\r\nhello\r\n0\r\n\r\n", b"hello", b""),
            (b"5 ; ext\r\nhello\r\n0\r\n\r\n", b"hello", b""),
            (b"5\t;ext\r\nhello\r\n0\r\n\r\n", b"hello", b""),
            (b"5\nhello\n0\n\n", b"hello", b""),
            (
                b"5\r\nhello\r\n0\r\nTrailer: x\r\nOther: y\r\n\r\n",
                b"hello",
                b"",
            ),
            (b"0\r\n\r\n", b"", b""),
            (b"000\r\n\r\n", b"", b""),
        ];
        for (input, want, rest) in cases {
            for step in [1, 2, 3, 7, input.len()] {
                let (data, after) = decode(input, step).unwrap();
                assert_eq!(
                    data,
                    *want,
                    "{:?} step {step}",
                    String::from_utf8_lossy(input)
                );
                assert_eq!(
                    after,
                    *rest,
                    "{:?} step {step}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    #[test]
    fn malformed_chunked_bodies_are_errors() {
        let cases: &[&[u8]] = &[
            b"\r\n",
            b"x\r\n",
            b"5\r\nhelloX\r\n0\r\n\r\n",
            b"5\rX",
            b"1000000000000000\r\n",
            b"5;\x01\r\n",
            b"0\r\n\rX",
            // Whitespace after the size only before a `;` extension.
            b"5 5\r\nhello\r\n0\r\n\r\n",
            b"5 \r\nhello\r\n0\r\n\r\n",
            b"5\tx\r\n",
        ];
        for input in cases {
            assert_eq!(
                decode(input, 1).err(),
                Some(ChunkError),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn chunk_size_lines_are_hex() {
        assert_eq!(&chunk_size_line(10)[..], b"a\r\n");
        assert_eq!(&chunk_size_line(65536)[..], b"10000\r\n");
    }
}
