//! The pieces of a split encode copy their audio from one encode of the whole input, kept as AAC
//! in ADTS frames (each with its length in a 7-byte header). A piece takes exactly the frames
//! that start within its time span, so every frame lands in one piece and the pieces' segments
//! hold the same audio packets, at the same times, as a one-pass encode's.

use std::ops::Range;

use super::plan::SEGMENT_SECS;

/// Samples per AAC frame, and the rate `encode::audio_args` encodes at.
const FRAME_SAMPLES: i64 = 1024;
const RATE: i64 = 48_000;

/// The byte ranges of the ADTS frames in `data`; `None` if it is not a clean run of them.
pub fn frames(data: &[u8]) -> Option<Vec<Range<usize>>> {
    let mut frames = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let header = data.get(at..at + 7)?;
        if header[0] != 0xFF || header[1] & 0xF0 != 0xF0 {
            return None;
        }
        let length = (usize::from(header[3] & 0x03) << 11)
            | (usize::from(header[4]) << 3)
            | (usize::from(header[5]) >> 5);
        if length < 7 || at + length > data.len() {
            return None;
        }
        frames.push(at..at + length);
        at += length;
    }
    Some(frames)
}

/// The audio of the piece made of segments `first..first + count` (`last`: the final piece,
/// which also takes whatever audio outlasts the picture), and when its first frame starts,
/// in seconds from the piece's start. Frame `k` starts at sample `(k - 1) × 1024`: frame 0
/// is the encoder's priming, which goes with the first piece.
pub fn piece(data: &[u8], (first, count): (usize, usize), last: bool) -> Option<(Vec<u8>, f64)> {
    let frames = frames(data)?;
    let per_segment = i64::from(SEGMENT_SECS) * RATE;
    let (start, end) = (
        first as i64 * per_segment,
        (first + count) as i64 * per_segment,
    );
    let starts = |k: usize| (k as i64 - 1) * FRAME_SAMPLES;
    let chosen: Vec<usize> = (0..frames.len())
        .filter(|&k| {
            let t = starts(k);
            (first == 0 && k == 0) || (t >= start && (last || t < end))
        })
        .collect();
    let first_frame = *chosen.first()?;
    let mut audio = Vec::new();
    for k in chosen {
        audio.extend_from_slice(&data[frames[k].clone()]);
    }
    let offset = (starts(first_frame) - start) as f64 / RATE as f64;
    Some((audio, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` fake ADTS frames of `len` bytes, each filled with its index after the header.
    fn stream(n: usize, len: usize) -> Vec<u8> {
        let mut data = Vec::new();
        for i in 0..n {
            let mut frame = vec![0xFF, 0xF1, 0x50, 0x80, 0, 0, 0xFC];
            frame[3] |= ((len >> 11) & 0x03) as u8;
            frame[4] = ((len >> 3) & 0xFF) as u8;
            frame[5] = (((len & 0x07) << 5) as u8) | 0x1F;
            frame.resize(len, i as u8);
            data.extend_from_slice(&frame);
        }
        data
    }

    #[test]
    fn every_frame_goes_to_exactly_one_piece_in_order() {
        // 10 s at 48 kHz: 469 frames plus the priming one; pieces of one 4-second segment.
        let data = stream(470, 9);
        assert_eq!(frames(&data).unwrap().len(), 470);
        let pieces = [(0, 1), (1, 1), (2, 1)];
        let mut joined = Vec::new();
        for (i, &piece_span) in pieces.iter().enumerate() {
            let (audio, offset) = piece(&data, piece_span, i == pieces.len() - 1).unwrap();
            assert!(
                offset < 1024.0 / 48_000.0 + 1e-9,
                "starts within a frame: {offset}"
            );
            if i == 0 {
                assert_eq!(offset, -1024.0 / 48_000.0, "the priming frame comes first");
            } else {
                assert!(offset >= 0.0);
            }
            joined.extend(audio);
        }
        assert_eq!(joined, data, "nothing lost, nothing twice");
    }

    #[test]
    fn anything_else_is_refused() {
        assert!(frames(b"not adts at all").is_none());
        let mut data = stream(3, 9);
        data.truncate(20);
        assert!(frames(&data).is_none(), "a cut frame");
        assert!(piece(&[], (0, 1), true).is_none());
    }
}
