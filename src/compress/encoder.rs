//! A streaming encoder (gzip through flate2, brotli through the brotli
//! crate): data in, compressed pieces out, in memory bounded by the
//! encoder's own window, never by the body's length. `flush` ends a piece
//! without ending the stream (used when the source waits, so that a slow
//! backend's output is not held back).

use std::io::Write;

use bytes::Bytes;

use super::decide::Coding;

/// An encoder writing into its own output buffer, drained after each call.
pub struct Encoder {
    inner: Inner,
    /// Data was fed since the last flush.
    dirty: bool,
}

// The whole encoder is boxed by its owner (ProxyBody), so the gzip
// variant's size costs nothing per request without compression.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
    /// After `finish`.
    Done,
}

/// brotli's internal buffer; ngx_brotli's window default (lgwin 22).
const BROTLI_BUFFER: usize = 4096;
const BROTLI_LGWIN: u32 = 22;

impl Encoder {
    /// A new encoder of `coding` at `level` (gzip 1..=9, brotli 0..=11).
    pub fn new(coding: Coding, level: u32) -> Encoder {
        let inner = match coding {
            Coding::Gzip => Inner::Gzip(flate2::write::GzEncoder::new(
                Vec::with_capacity(8192),
                flate2::Compression::new(level.min(9)),
            )),
            Coding::Brotli => Inner::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::with_capacity(8192),
                BROTLI_BUFFER,
                level.min(11),
                BROTLI_LGWIN,
            ))),
        };
        Encoder {
            inner,
            dirty: false,
        }
    }

    /// The stream has ended (`finish` was called).
    pub fn is_done(&self) -> bool {
        matches!(self.inner, Inner::Done)
    }

    fn out(&mut self) -> Option<&mut Vec<u8>> {
        match &mut self.inner {
            Inner::Gzip(e) => Some(e.get_mut()),
            Inner::Brotli(e) => Some(e.get_mut()),
            Inner::Done => None,
        }
    }

    /// What is ready so far (may be empty).
    fn take(&mut self) -> Bytes {
        match self.out() {
            Some(v) if !v.is_empty() => Bytes::from(std::mem::take(v)),
            _ => Bytes::new(),
        }
    }

    /// Feeds `data`; returns the compressed bytes ready (may be empty).
    pub fn write(&mut self, data: &[u8]) -> std::io::Result<Bytes> {
        match &mut self.inner {
            Inner::Gzip(e) => e.write_all(data)?,
            Inner::Brotli(e) => e.write_all(data)?,
            Inner::Done => return Ok(Bytes::new()),
        }
        self.dirty |= !data.is_empty();
        Ok(self.take())
    }

    /// Everything fed so far, compressed and flushed (the stream goes on).
    /// Nothing when nothing was fed since the last flush (a flush of
    /// nothing would still write an empty block).
    pub fn flush(&mut self) -> std::io::Result<Bytes> {
        if !self.dirty {
            return Ok(self.take());
        }
        match &mut self.inner {
            Inner::Gzip(e) => e.flush()?,
            Inner::Brotli(e) => e.flush()?,
            Inner::Done => return Ok(Bytes::new()),
        }
        self.dirty = false;
        Ok(self.take())
    }

    /// The end of the stream (gzip trailer, brotli's last block).
    pub fn finish(&mut self) -> std::io::Result<Bytes> {
        let out = match std::mem::replace(&mut self.inner, Inner::Done) {
            Inner::Gzip(e) => e.finish()?,
            Inner::Brotli(e) => e.into_inner(),
            Inner::Done => Vec::new(),
        };
        Ok(Bytes::from(out))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Read;

    fn run(coding: Coding, level: u32, input: &[u8], flush_every: usize) -> Vec<u8> {
        let mut e = Encoder::new(coding, level);
        let mut out = Vec::new();
        for (i, chunk) in input.chunks(1000).enumerate() {
            out.extend_from_slice(&e.write(chunk).unwrap());
            if flush_every > 0 && i % flush_every == 0 {
                out.extend_from_slice(&e.flush().unwrap());
            }
        }
        out.extend_from_slice(&e.finish().unwrap());
        assert!(e.write(b"late").unwrap().is_empty());
        assert!(e.is_done());
        out
    }

    #[test]
    fn round_trips_whole_and_flushed() {
        let input: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("line {i} of a text response\n").into_bytes())
            .take(300_000)
            .collect();
        for flush_every in [0, 7] {
            for level in [1, 6, 9] {
                let gz = run(Coding::Gzip, level, &input, flush_every);
                let mut back = Vec::new();
                flate2::read::GzDecoder::new(&gz[..])
                    .read_to_end(&mut back)
                    .unwrap();
                assert_eq!(back, input);
                assert!(gz.len() < input.len() / 3);
            }
            for level in [1, 6, 11] {
                let br = run(Coding::Brotli, level, &input, flush_every);
                let mut back = Vec::new();
                brotli::Decompressor::new(&br[..], 4096)
                    .read_to_end(&mut back)
                    .unwrap();
                assert_eq!(back, input);
            }
        }
        // A flush with nothing new fed writes nothing.
        let mut e = Encoder::new(Coding::Gzip, 1);
        let _ = e.write(b"abc").unwrap();
        assert!(!e.flush().unwrap().is_empty());
        assert!(e.flush().unwrap().is_empty());
        // An empty body is still a valid stream.
        let gz = run(Coding::Gzip, 1, b"", 0);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back.is_empty());
    }
}
