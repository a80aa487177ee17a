//! Subtitle files of text tracks: WebVTT or SRT in, one normalized WebVTT file out (what the store
//! keeps), and that file cut into HLS WebVTT segments for players.
//!
//! Parsing is lenient where real files are sloppy (CRLF, a BOM, SRT with `.` for `,`, missing cue
//! numbers, `<font>` tags) and strict where a wrong guess would show wrong text (no timing line at
//! all, times that do not parse).

use std::fmt::Write;

/// Largest subtitle file taken.
pub const MAX_SUBTITLE_BYTES: u64 = 8 * 1024 * 1024;
/// Most cues in one file.
const MAX_CUES: usize = 200_000;
/// The longest HLS subtitle segment, in seconds.
pub const TEXT_SEGMENT_SECS: u32 = 10;
/// The 90 kHz time of the media's start: ffmpeg's MPEG-TS muxer starts every rendition at 1.4 s,
/// so cue time 0 maps there (`X-TIMESTAMP-MAP`).
const MPEGTS_START: u64 = 126_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubtitleError {
    #[error("the subtitle file is not UTF-8 text")]
    NotText,
    #[error("the subtitle file is neither WebVTT nor SRT: {0}")]
    Format(String),
    #[error("the subtitle file has more than {MAX_CUES} cues")]
    TooManyCues,
}

/// One cue; times in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cue {
    pub id: Option<String>,
    pub start_ms: u64,
    pub end_ms: u64,
    /// WebVTT cue settings (`line:0 align:start`), empty when none.
    pub settings: String,
    /// The payload, one or more non-empty lines.
    pub text: String,
}

/// Parses a WebVTT or SRT file (told apart by the `WEBVTT` signature).
pub fn parse(bytes: &[u8]) -> Result<Vec<Cue>, SubtitleError> {
    let text = std::str::from_utf8(bytes).map_err(|_| SubtitleError::NotText)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    if text.contains('\0') {
        return Err(SubtitleError::NotText);
    }
    let is_vtt = text
        .strip_prefix("WEBVTT")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\n']));
    let mut cues = Vec::new();
    let mut blocks = text.split("\n\n").map(|b| b.trim_matches('\n'));
    if is_vtt {
        blocks.next(); // The header block (signature, metadata).
    }
    for (n, block) in blocks.enumerate() {
        if block.trim().is_empty() {
            continue;
        }
        let lines: Vec<&str> = block.lines().collect();
        let Some(timing_at) = lines.iter().position(|l| l.contains("-->")) else {
            // WebVTT's comment, style and region blocks carry no cue.
            let first = lines[0].trim_start();
            if is_vtt
                && ["NOTE", "STYLE", "REGION"]
                    .iter()
                    .any(|k| first.starts_with(k))
            {
                continue;
            }
            return Err(SubtitleError::Format(format!(
                "block {} has no timing line (`00:00:01.000 --> 00:00:02.000`)",
                n + 1
            )));
        };
        if timing_at > 1 {
            return Err(SubtitleError::Format(format!(
                "block {} has more than one line before its timing line",
                n + 1
            )));
        }
        let id = (timing_at == 1)
            .then(|| lines[0].trim().to_owned())
            .filter(|id| !id.is_empty());
        // An SRT cue number is not kept: it says nothing a WebVTT player uses.
        let id = id.filter(|id| is_vtt || !id.bytes().all(|b| b.is_ascii_digit()));
        let (start_ms, end_ms, settings) = parse_timing(lines[timing_at], is_vtt)
            .map_err(|e| SubtitleError::Format(format!("block {}: {e}", n + 1)))?;
        let payload: Vec<String> = lines[timing_at + 1..]
            .iter()
            .map(|l| clean_payload_line(l, is_vtt))
            .filter(|l| !l.trim().is_empty())
            .collect();
        if payload.is_empty() || end_ms <= start_ms {
            continue; // Shows nothing.
        }
        if cues.len() == MAX_CUES {
            return Err(SubtitleError::TooManyCues);
        }
        cues.push(Cue {
            id,
            start_ms,
            end_ms,
            settings: if is_vtt { settings } else { String::new() },
            text: payload.join("\n"),
        });
    }
    if !is_vtt && cues.is_empty() {
        return Err(SubtitleError::Format(
            "no cue found, and no WEBVTT signature".to_owned(),
        ));
    }
    cues.sort_by_key(|c| (c.start_ms, c.end_ms));
    Ok(cues)
}

fn parse_timing(line: &str, is_vtt: bool) -> Result<(u64, u64, String), String> {
    let (start, rest) = line
        .split_once("-->")
        .ok_or_else(|| "no `-->` in the timing line".to_owned())?;
    let rest = rest.trim_start();
    let (end, settings) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
    let start = parse_time(start.trim(), is_vtt)?;
    let end = parse_time(end.trim(), is_vtt)?;
    Ok((
        start,
        end,
        settings.split_whitespace().collect::<Vec<_>>().join(" "),
    ))
}

/// `[hh:]mm:ss.mmm` (WebVTT) or `hh:mm:ss,mmm` (SRT, also with `.`), in milliseconds.
fn parse_time(s: &str, is_vtt: bool) -> Result<u64, String> {
    let bad = || format!("{s:?} is not a time like 00:01:02.500");
    let (clock, frac) = s.rsplit_once(['.', ',']).ok_or_else(bad)?;
    if is_vtt && s.contains(',') {
        return Err(bad());
    }
    if frac.is_empty() || frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let ms: u64 = format!("{frac:0<3}").parse().map_err(|_| bad())?;
    let parts: Vec<&str> = clock.split(':').collect();
    let number = |p: &str, max: u64| -> Result<u64, String> {
        if p.is_empty() || p.len() > 9 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let n: u64 = p.parse().map_err(|_| bad())?;
        if n > max {
            return Err(bad());
        }
        Ok(n)
    };
    let (h, m, sec) = match parts.as_slice() {
        [m, sec] => (0, number(m, 59)?, number(sec, 59)?),
        [h, m, sec] => (number(h, 99_999)?, number(m, 59)?, number(sec, 59)?),
        _ => return Err(bad()),
    };
    Ok(((h * 60 + m) * 60 + sec) * 1000 + ms)
}

/// A payload line as WebVTT wants it: SRT's `<font>` tags (which WebVTT lacks) dropped, and no
/// `-->`, which would end the cue early.
fn clean_payload_line(line: &str, is_vtt: bool) -> String {
    let mut line = line.to_owned();
    if !is_vtt {
        for tag in ["<font", "</font"] {
            while let Some(at) = line.to_ascii_lowercase().find(tag) {
                match line[at..].find('>') {
                    Some(end) => line.replace_range(at..at + end + 1, ""),
                    None => break,
                }
            }
        }
        // `{\an8}`-style SSA overrides some SRT files carry.
        while let (Some(a), Some(b)) = (line.find("{\\"), line.find('}')) {
            if b < a {
                break;
            }
            line.replace_range(a..=b, "");
        }
    }
    // Last: dropping a tag can join a `-->` (`-<font>->`).
    while line.contains("-->") {
        line = line.replace("-->", "->");
    }
    line
}

fn write_time(out: &mut String, ms: u64) {
    let (h, rem) = (ms / 3_600_000, ms % 3_600_000);
    let _ = write!(
        out,
        "{h:02}:{:02}:{:02}.{:03}",
        rem / 60_000,
        rem % 60_000 / 1000,
        rem % 1000
    );
}

fn write_cue(out: &mut String, cue: &Cue) {
    if let Some(id) = &cue.id {
        out.push_str(id);
        out.push('\n');
    }
    write_time(out, cue.start_ms);
    out.push_str(" --> ");
    write_time(out, cue.end_ms);
    if !cue.settings.is_empty() {
        out.push(' ');
        out.push_str(&cue.settings);
    }
    out.push('\n');
    out.push_str(&cue.text);
    out.push_str("\n\n");
}

/// The cues as one WebVTT file.
pub fn to_vtt(cues: &[Cue]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for cue in cues {
        write_cue(&mut out, cue);
    }
    out
}

/// How many HLS segments a text track of a `duration_ms` asset has.
pub fn segment_count(duration_ms: u64) -> u64 {
    duration_ms
        .div_ceil(u64::from(TEXT_SEGMENT_SECS) * 1000)
        .max(1)
}

/// The HLS media playlist of a text track whose segments are `{stem}-{n}.vtt`.
pub fn media_playlist(stem: &str, duration_ms: u64) -> String {
    let step = u64::from(TEXT_SEGMENT_SECS) * 1000;
    let mut out = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{TEXT_SEGMENT_SECS}\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n"
    );
    for n in 0..segment_count(duration_ms) {
        let len = (duration_ms.saturating_sub(n * step)).clamp(1, step);
        let _ = write!(out, "#EXTINF:{:.3},\n{stem}-{n}.vtt\n", len as f64 / 1000.0);
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

/// Segment `n`: the cues showing during it (a cue spanning two segments is in both; players
/// drop the repeat), timed on the media's MPEG-TS clock.
pub fn segment(cues: &[Cue], n: u64) -> String {
    let step = u64::from(TEXT_SEGMENT_SECS) * 1000;
    let (from, to) = (n * step, (n + 1) * step);
    let mut out = format!("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{MPEGTS_START},LOCAL:00:00:00.000\n\n");
    for cue in cues.iter().filter(|c| c.start_ms < to && c.end_ms > from) {
        write_cue(&mut out, cue);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srt_becomes_webvtt() {
        let srt = "\u{feff}1\r\n00:00:01,000 --> 00:00:02,500\r\n<font color=\"red\">Hello</font> <i>world</i>\r\n\r\n2\r\n00:00:03,000 --> 00:00:04,000 X1:0 X2:10\r\n{\\an8}Line one\r\nLine two\r\n";
        let cues = parse(srt.as_bytes()).unwrap();
        assert_eq!(
            to_vtt(&cues),
            "WEBVTT\n\n00:00:01.000 --> 00:00:02.500\nHello <i>world</i>\n\n00:00:03.000 --> 00:00:04.000\nLine one\nLine two\n\n"
        );
    }

    #[test]
    fn webvtt_keeps_ids_and_settings_and_skips_notes() {
        let vtt = "WEBVTT - a title\nKind: captions\n\nNOTE a comment\nspanning lines\n\nSTYLE\n::cue { color: red }\n\nintro\n00:01.000 --> 00:02.000 align:start   line:0\nHi\n\n01:00:00.000 --> 01:00:01.5\nLater\n";
        let cues = parse(vtt.as_bytes()).unwrap();
        assert_eq!(cues.len(), 2);
        assert_eq!(cues[0].id.as_deref(), Some("intro"));
        assert_eq!(cues[0].settings, "align:start line:0");
        assert_eq!((cues[1].start_ms, cues[1].end_ms), (3_600_000, 3_601_500));
        assert_eq!(parse(to_vtt(&cues).as_bytes()).unwrap(), cues);
    }

    /// Found by fuzzing (fuzz/regressions/subtitles/): a `-->` left by a dropped tag ended the
    /// stored cue early, so the stored file read back to other cues.
    #[test]
    fn dropped_tags_leave_no_timing_arrow() {
        for srt in ["0:1,0-->0:2,5\n-<font>->", "0:1,0-->0:2,5\n-{\\an8}->"] {
            let cues = parse(srt.as_bytes()).unwrap();
            assert_eq!(cues[0].text, "->", "{srt:?}");
            assert_eq!(parse(to_vtt(&cues).as_bytes()).unwrap(), cues);
        }
    }

    #[test]
    fn refuses_what_is_not_subtitles() {
        assert!(matches!(
            parse(b"just some text\nwithout times"),
            Err(SubtitleError::Format(_))
        ));
        assert_eq!(parse(&[0xff, 0xfe, 0x00]), Err(SubtitleError::NotText));
        assert!(matches!(
            parse(b"WEBVTT\n\n00:00:01,000 --> 00:00:02,000\nSRT comma in VTT"),
            Err(SubtitleError::Format(_))
        ));
        assert!(matches!(
            parse(b"1\n00:00:61,000 --> 00:00:62,000\nbad seconds"),
            Err(SubtitleError::Format(_))
        ));
        // An empty WebVTT file is valid: a track with nothing to show yet.
        assert_eq!(parse(b"WEBVTT\n").unwrap(), vec![]);
    }

    #[test]
    fn segments_hold_the_cues_they_overlap() {
        let cues = parse(
            b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nA\n\n00:00:09.000 --> 00:00:11.000\nB\n\n00:00:25.000 --> 00:00:26.000\nC\n",
        )
        .unwrap();
        let playlist = media_playlist("t", 25_500);
        assert!(playlist.contains("#EXTINF:10.000,\nt-0.vtt\n#EXTINF:10.000,\nt-1.vtt\n#EXTINF:5.500,\nt-2.vtt\n#EXT-X-ENDLIST"), "{playlist}");
        let texts = |n| {
            parse(segment(&cues, n).as_bytes())
                .unwrap()
                .into_iter()
                .map(|c| c.text)
                .collect::<Vec<_>>()
        };
        assert_eq!(texts(0), ["A", "B"]);
        assert_eq!(texts(1), ["B"]);
        assert_eq!(texts(2), ["C"]);
        assert!(segment(&cues, 0).contains("X-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000"));
    }

    /// Random input never panics, and what parses round-trips through `to_vtt`.
    #[test]
    fn random_input_parses_or_is_refused_and_round_trips() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let pieces = [
            "WEBVTT",
            "\n",
            "\n\n",
            "\r\n",
            "1",
            "00:00:01,000",
            "00:00:02.500",
            "01:02.003",
            " --> ",
            "-->",
            "NOTE",
            "text",
            "<font x>",
            "</font>",
            "{\\an8}",
            " align:start",
            ",",
            ".",
            ":",
            "é",
            "\u{feff}",
        ];
        for _ in 0..50_000 {
            let n = rng.gen_range(0..14);
            let s: String = (0..n)
                .map(|_| pieces[rng.gen_range(0..pieces.len())])
                .collect();
            if let Ok(cues) = parse(s.as_bytes()) {
                let again =
                    parse(to_vtt(&cues).as_bytes()).unwrap_or_else(|e| panic!("{s:?}: {e}"));
                assert_eq!(again.len(), cues.len(), "{s:?}");
                for (a, b) in again.iter().zip(&cues) {
                    assert_eq!(
                        (a.start_ms, a.end_ms, &a.text),
                        (b.start_ms, b.end_ms, &b.text),
                        "{s:?}"
                    );
                }
            }
        }
    }
}
