//! A minimal Matroska writer for one uncompressed RGBA video track: how composed frames reach
//! ffmpeg with their own timestamps. Frames are written only when the picture changes, so a
//! lecture is a few thousand frames, not 25 per second.
//!
//! Layout: EBML header, a Segment of unknown size (a stream), Info (1 ms timestamps), Tracks, then
//! one Cluster per frame holding its timestamp and a BlockGroup (the frame and its duration).

use std::io::Write;

fn size_vint(size: u64) -> [u8; 8] {
    // Always the 8-byte form: simple, and valid for any size below 2^56 - 1.
    let mut bytes = size.to_be_bytes();
    bytes[0] = 0x01;
    bytes
}

fn uint_bytes(value: u64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(7);
    bytes[first..].to_vec()
}

fn element(id: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(id.len() + 8 + body.len());
    out.extend_from_slice(id);
    out.extend_from_slice(&size_vint(body.len() as u64));
    out.extend_from_slice(body);
    out
}

fn uint(id: &[u8], value: u64) -> Vec<u8> {
    element(id, &uint_bytes(value))
}

pub struct MkvWriter<W: Write> {
    out: W,
}

impl<W: Write> MkvWriter<W> {
    /// Writes the headers for a `width`x`height` RGBA track.
    pub fn new(mut out: W, width: u32, height: u32) -> std::io::Result<MkvWriter<W>> {
        let ebml = [
            uint(&[0x42, 0x86], 1),
            uint(&[0x42, 0xF7], 1),
            uint(&[0x42, 0xF2], 4),
            uint(&[0x42, 0xF3], 8),
            element(&[0x42, 0x82], b"matroska"),
            uint(&[0x42, 0x87], 4),
            uint(&[0x42, 0x85], 2),
        ]
        .concat();
        out.write_all(&element(&[0x1A, 0x45, 0xDF, 0xA3], &ebml))?;
        // Segment of unknown size: the stream ends when the pipe closes.
        out.write_all(&[
            0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        ])?;
        let info = [
            uint(&[0x2A, 0xD7, 0xB1], 1_000_000),
            element(&[0x4D, 0x80], b"openvod"),
            element(&[0x57, 0x41], b"openvod"),
        ]
        .concat();
        out.write_all(&element(&[0x15, 0x49, 0xA9, 0x66], &info))?;
        let video = [
            uint(&[0xB0], u64::from(width)),
            uint(&[0xBA], u64::from(height)),
            element(&[0x2E, 0xB5, 0x24], b"RGBA"),
        ]
        .concat();
        let track = [
            uint(&[0xD7], 1),
            uint(&[0x73, 0xC5], 1),
            uint(&[0x83], 1),
            uint(&[0x9C], 0),
            element(&[0x86], b"V_UNCOMPRESSED"),
            element(&[0xE0], &video),
        ]
        .concat();
        let tracks = element(&[0x16, 0x54, 0xAE, 0x6B], &element(&[0xAE], &track));
        out.write_all(&tracks)?;
        Ok(MkvWriter { out })
    }

    /// Writes one frame shown from `timestamp_ms` for `duration_ms` (a BlockGroup with a
    /// BlockDuration, so the last frame of the stream lasts as long as it should).
    pub fn frame(
        &mut self,
        timestamp_ms: u64,
        duration_ms: u64,
        rgba: &[u8],
    ) -> std::io::Result<()> {
        let timestamp = uint(&[0xE7], timestamp_ms);
        let duration = uint(&[0x9B], duration_ms);
        // Block: track 1, relative timestamp 0, no flags.
        let block_header = [0x81, 0x00, 0x00, 0x00];
        let block_size = (block_header.len() + rgba.len()) as u64;
        let group_size = 1 + 8 + block_size + duration.len() as u64;
        let cluster_size = timestamp.len() as u64 + 1 + 8 + group_size;
        let mut head = Vec::with_capacity(48);
        head.extend_from_slice(&[0x1F, 0x43, 0xB6, 0x75]);
        head.extend_from_slice(&size_vint(cluster_size));
        head.extend_from_slice(&timestamp);
        head.push(0xA0);
        head.extend_from_slice(&size_vint(group_size));
        head.extend_from_slice(&duration);
        head.push(0xA1);
        head.extend_from_slice(&size_vint(block_size));
        head.extend_from_slice(&block_header);
        self.out.write_all(&head)?;
        self.out.write_all(rgba)
    }

    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_elements() {
        assert_eq!(uint_bytes(0), vec![0]);
        assert_eq!(uint_bytes(1_000_000), vec![0x0F, 0x42, 0x40]);
        assert_eq!(size_vint(5), [1, 0, 0, 0, 0, 0, 0, 5]);
        let mut w = MkvWriter::new(Vec::new(), 2, 2).unwrap();
        w.frame(40, 1000, &[0u8; 16]).unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(&bytes[..4], &[0x1A, 0x45, 0xDF, 0xA3]);
        assert!(bytes.windows(14).any(|w| w == b"V_UNCOMPRESSED"));
        // The cluster ends with the 16 frame bytes.
        assert_eq!(&bytes[bytes.len() - 16..], &[0u8; 16]);
    }
}
