//! gzip files assembled from separately compressed chunks, without losing the
//! redundancy between neighbouring chunks (the technique of pigz).
//!
//! Each chunk is raw deflate data compressed with the text that precedes it in
//! the file as the preset dictionary, and ended by a sync flush (byte-aligned,
//! not final). Because a decompressor's window holds exactly that preceding
//! text, the chunks concatenate into one valid deflate stream: a gzip header,
//! the chunks, an empty final block and a trailer whose CRC-32 is combined
//! from the chunks' own. One gzip member, so every reader (zlib's gzread,
//! Python's `gzip.decompress`, libsolv, apt) reads it as one file, and it
//! compresses nearly as well as one stream over the whole text, where
//! independent gzip members per package are 3-10x larger.
//!
//! A chunk depends only on its own text and its predecessor's, so publication
//! recompresses only the chunks whose neighbour changed.

use flate2::{Compress, Compression, FlushCompress, Status};

/// deflate's window: back-references reach at most this far.
const WINDOW: usize = 32 * 1024;

/// zlib's default level: on metadata, level 9 is ~2% smaller and 2x slower.
const LEVEL: u32 = 6;

/// gzip header: deflate, no flags, mtime 0 (output is a pure function of the
/// input), no extra flags, OS "unknown".
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// An empty final block with fixed Huffman codes (BFINAL=1, BTYPE=01, EOB).
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

/// One chunk of a file: raw deflate data ending on a byte boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub deflate: Vec<u8>,
    /// CRC-32 and length of the uncompressed text.
    pub crc: u32,
    pub len: u64,
}

/// Compresses `text` as the chunk that follows `preceding` (the uncompressed
/// text right before it in the file; only its last 32 KiB matter).
pub fn chunk(text: &[u8], preceding: &[u8]) -> Chunk {
    let mut c = Compress::new(Compression::new(LEVEL), false);
    if !preceding.is_empty() {
        let tail = &preceding[preceding.len().saturating_sub(WINDOW)..];
        // Only fails on a stream in the wrong state; this one is fresh.
        let _ = c.set_dictionary(tail);
    }
    let mut out = Vec::with_capacity(text.len() / 3 + 64);
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(4096));
        }
        let done = c.total_in() as usize;
        let status = c.compress_vec(&text[done..], &mut out, FlushCompress::Sync);
        // The flush is complete once all input is in and output space is left.
        let finished = c.total_in() as usize == text.len() && out.len() < out.capacity();
        match status {
            Ok(Status::Ok) | Ok(Status::BufError) if !finished => continue,
            _ => break,
        }
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(text);
    Chunk {
        deflate: out,
        crc: crc.finalize(),
        len: text.len() as u64,
    }
}

/// The gzip file made of `chunks`, in order.
pub fn assemble<'a>(chunks: impl IntoIterator<Item = &'a Chunk> + Clone) -> Vec<u8> {
    let size: usize = chunks.clone().into_iter().map(|c| c.deflate.len()).sum();
    let mut out = Vec::with_capacity(HEADER.len() + size + FINAL_BLOCK.len() + 8);
    out.extend_from_slice(&HEADER);
    let mut crc = crc32fast::Hasher::new();
    let mut len: u64 = 0;
    for c in chunks {
        out.extend_from_slice(&c.deflate);
        crc.combine(&crc32fast::Hasher::new_with_initial_len(c.crc, c.len));
        len += c.len;
    }
    out.extend_from_slice(&FINAL_BLOCK);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    // ISIZE is the length modulo 2^32 (RFC 1952).
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out
}

/// A whole file from its texts, each chunk compressed against the one before.
pub fn gzip_texts(texts: &[&[u8]]) -> Vec<u8> {
    let chunks: Vec<Chunk> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| chunk(t, if i == 0 { b"" } else { texts[i - 1] }))
        .collect();
    assemble(chunks.iter())
}

/// `items` cut into consecutive non-empty blocks, their lengths taken from
/// `cuts` (wrapped to what is left; 1 once `cuts` runs out): the property
/// tests' stand-in for publication's id-chosen boundaries.
#[cfg(test)]
pub(crate) fn cut_blocks<'a, T>(items: &'a [T], cuts: &[usize]) -> Vec<&'a [T]> {
    let mut blocks = Vec::new();
    let mut rest = items;
    let mut cuts = cuts.iter();
    while !rest.is_empty() {
        let n = (cuts.next().copied().unwrap_or(1) % rest.len()) + 1;
        blocks.push(&rest[..n]);
        rest = &rest[n..];
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(b)
            .read_to_end(&mut out)
            .expect("valid gzip");
        out
    }

    /// Decompresses with a reader that stops after the first member: the
    /// chunks must form one member, not several.
    fn gunzip_one_member(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut d = flate2::bufread::GzDecoder::new(b);
        d.read_to_end(&mut out).expect("valid gzip");
        out
    }

    #[test]
    fn chunks_form_one_member_with_the_whole_text() {
        let texts: Vec<Vec<u8>> = (0..200)
            .map(|i| {
                format!("<package><name>pkg-{i}</name><arch>x86_64</arch></package>\n").into_bytes()
            })
            .collect();
        let refs: Vec<&[u8]> = texts.iter().map(|t| t.as_slice()).collect();
        let gz = gzip_texts(&refs);
        let whole = texts.concat();
        assert_eq!(gunzip(&gz), whole);
        assert_eq!(gunzip_one_member(&gz), whole);
    }

    #[test]
    fn empty_and_single_inputs() {
        assert_eq!(gunzip(&assemble([].iter())), b"");
        let e: &[u8] = b"";
        assert_eq!(gunzip(&gzip_texts(&[e])), b"");
        assert_eq!(gunzip(&gzip_texts(&[e, b"abc".as_slice(), e])), b"abc");
        assert_eq!(gunzip(&gzip_texts(&[b"hello".as_slice()])), b"hello");
    }

    #[test]
    fn long_texts_and_long_predecessors() {
        // Longer than the window, and incompressible enough to need many
        // output reservations.
        let mut state = 1u64;
        let mut noise = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (state >> 33) as u8
                })
                .collect()
        };
        let a = noise(100_000);
        let b = [a[60_000..].to_vec(), noise(50_000)].concat();
        let c = b"tail".to_vec();
        let gz = gzip_texts(&[&a, &b, &c]);
        assert_eq!(gunzip(&gz), [a, b, c].concat());
    }

    #[test]
    fn neighbours_compress_like_one_stream() {
        // Similar records, as in primary.xml: chained chunks must come close
        // to one stream, far below independent members.
        let texts: Vec<Vec<u8>> = (0..500)
            .map(|i| {
                format!(
                    "<package type=\"rpm\"><name>app-{i}</name><arch>x86_64</arch>\
                     <version epoch=\"0\" ver=\"1.{i}\" rel=\"1\"/><summary>A generated package \
                     for tests</summary><description>Long description shared by all</description>\
                     <format><rpm:license>MIT</rpm:license><rpm:requires><rpm:entry name=\"libc.so.6\"/>\
                     </rpm:requires></format></package>\n"
                )
                .into_bytes()
            })
            .collect();
        // Blocks of 16 records, as publication cuts them.
        let blocks: Vec<Vec<u8>> = texts.chunks(16).map(|b| b.concat()).collect();
        let refs: Vec<&[u8]> = blocks.iter().map(|t| t.as_slice()).collect();
        let chained = gzip_texts(&refs);
        assert_eq!(gunzip(&chained), texts.concat());
        let independent: usize = texts.iter().map(|t| gzip_texts(&[t]).len()).sum();
        let mut one = flate2::write::GzEncoder::new(Vec::new(), Compression::new(LEVEL));
        std::io::Write::write_all(&mut one, &texts.concat()).expect("write");
        let one = one.finish().expect("gzip").len();
        let chained = chained.len();
        assert!(chained * 5 < independent, "{chained} vs {independent}");
        assert!(chained * 10 < one * 13, "{chained} vs one stream {one}");
    }

    #[test]
    fn a_chunk_depends_only_on_its_text_and_predecessor() {
        let a = chunk(b"second record", b"first record");
        let b = chunk(b"second record", b"first record");
        assert_eq!(a, b);
        assert_ne!(a, chunk(b"second record", b""));
    }
}
