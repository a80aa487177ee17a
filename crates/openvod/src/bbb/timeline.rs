//! Which picture the video shows when: the recording's events reduced to the list of distinct
//! frames, each with the time it starts. Pure; the composer draws what this decides.

use std::collections::HashMap;

use super::recording::{Recording, ViewBox};

/// Event times are snapped to this grid (frames per second): the output never shows two pictures
/// within one frame, and the number of frames stays bounded by what the eye can see.
pub const GRID_FPS: u32 = 25;

/// What one frame shows.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameState {
    /// Index into `board.slides`.
    pub slide: Option<usize>,
    pub view: ViewBox,
    /// Indices into `board.annotations`, in drawing order.
    pub shapes: Vec<usize>,
    /// Cursor position in slide coordinates.
    pub cursor: Option<(f64, f64)>,
    /// How many chat lines have appeared, and how many of those were removed (`out`).
    pub chat: (usize, usize),
    pub deskshare: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct TimelineOptions {
    pub cursor: bool,
    pub chat: bool,
    /// Emit frames at this rate during screenshare even when the slide layer does not change, so
    /// the overlaid screenshare video moves (none when ffmpeg makes the stream constant-rate).
    pub deskshare_fps: Option<f64>,
}

fn to_ms(t: f64) -> u64 {
    let grid = f64::from(GRID_FPS);
    let snapped = (t.max(0.0) * grid).round() / grid;
    (snapped * 1000.0).round() as u64
}

struct Index<'a> {
    rec: &'a Recording,
    /// Annotation indices per slide image id, by start time.
    shapes_by_image: HashMap<&'a str, Vec<usize>>,
    /// Chat removal times, sorted.
    chat_removals: Vec<f64>,
}

impl<'a> Index<'a> {
    fn new(rec: &'a Recording) -> Index<'a> {
        let mut shapes_by_image: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, a) in rec.board.annotations.iter().enumerate() {
            shapes_by_image
                .entry(a.image_id.as_str())
                .or_default()
                .push(i);
        }
        for list in shapes_by_image.values_mut() {
            list.sort_by(|a, b| {
                let (a, b) = (&rec.board.annotations[*a], &rec.board.annotations[*b]);
                a.start.total_cmp(&b.start)
            });
        }
        let mut chat_removals: Vec<f64> = rec.chat.iter().filter_map(|c| c.until).collect();
        chat_removals.sort_by(f64::total_cmp);
        Index {
            rec,
            shapes_by_image,
            chat_removals,
        }
    }

    fn state_at(&self, t: f64, opts: &TimelineOptions) -> FrameState {
        let rec = self.rec;
        let slide = rec
            .board
            .slides
            .iter()
            .rposition(|s| s.intervals.iter().any(|(a, b)| *a <= t && t < *b));
        let last_at = |times: &[f64]| times.partition_point(|x| *x <= t);
        let pz = rec.panzooms.partition_point(|(at, _)| *at <= t);
        let view = if pz > 0 {
            rec.panzooms[pz - 1].1
        } else {
            slide.map_or(rec.board.canvas, |i| rec.board.slides[i].rect)
        };
        let mut shapes = Vec::new();
        if let Some(i) = slide {
            if let Some(list) = self.shapes_by_image.get(rec.board.slides[i].id.as_str()) {
                // Latest version of each shape id that has started; hidden once undone.
                let mut latest: HashMap<&str, usize> = HashMap::new();
                for &a in list {
                    let ann = &rec.board.annotations[a];
                    if ann.start > t {
                        break;
                    }
                    latest.insert(ann.shape.as_str(), a);
                }
                shapes = latest
                    .into_values()
                    .filter(|a| rec.board.annotations[*a].undo.is_none_or(|u| t < u))
                    .collect();
                shapes.sort_unstable();
            }
        }
        let cursor = if opts.cursor {
            let c = rec.cursor.partition_point(|(at, _)| *at <= t);
            (c > 0)
                .then(|| rec.cursor[c - 1].1)
                .flatten()
                .map(|(x, y)| {
                    if rec.cursor_absolute {
                        (x, y)
                    } else {
                        (view.x + x * view.w, view.y + y * view.h)
                    }
                })
        } else {
            None
        };
        let chat = if opts.chat {
            (
                rec.chat.partition_point(|c| c.at <= t),
                last_at(&self.chat_removals),
            )
        } else {
            (0, 0)
        };
        FrameState {
            slide,
            view,
            shapes,
            cursor,
            chat,
            deskshare: rec.deskshare.iter().any(|(a, b)| *a <= t && t < *b),
        }
    }
}

/// The distinct frames of the recording, as `(start in ms, state)`, first at 0; a last frame one
/// grid step before the end repeats the final picture, so the stream lasts the whole duration
/// (within one frame) even where a muxer ignores the last frame's duration.
pub fn frames(rec: &Recording, opts: &TimelineOptions) -> Vec<(u64, FrameState)> {
    let duration_ms = (rec.meta.duration * 1000.0).round() as u64;
    let mut times: Vec<u64> = vec![0];
    let board = &rec.board;
    for s in &board.slides {
        for (a, b) in &s.intervals {
            times.push(to_ms(*a));
            if b.is_finite() {
                times.push(to_ms(*b));
            }
        }
    }
    for a in &board.annotations {
        times.push(to_ms(a.start));
        if let Some(u) = a.undo {
            times.push(to_ms(u));
        }
    }
    times.extend(rec.panzooms.iter().map(|(t, _)| to_ms(*t)));
    if opts.cursor {
        times.extend(rec.cursor.iter().map(|(t, _)| to_ms(*t)));
    }
    if opts.chat {
        for c in &rec.chat {
            times.push(to_ms(c.at));
            if let Some(u) = c.until {
                times.push(to_ms(u));
            }
        }
    }
    let mut forced: Vec<u64> = Vec::new();
    for (a, b) in &rec.deskshare {
        times.push(to_ms(*a));
        times.push(to_ms(*b));
        if let Some(fps) = opts.deskshare_fps.filter(|f| *f > 0.0) {
            let step = 1.0 / fps.min(f64::from(GRID_FPS));
            let mut t = *a;
            while t < b.min(rec.meta.duration) {
                forced.push(to_ms(t));
                t += step;
            }
        }
    }
    times.retain(|t| *t < duration_ms);
    forced.retain(|t| *t < duration_ms);
    times.extend(forced.iter().copied());
    times.sort_unstable();
    times.dedup();
    forced.sort_unstable();
    forced.dedup();

    let index = Index::new(rec);
    // Evaluate just after the snapped instant so an event at exactly t is in effect.
    let mut out: Vec<(u64, FrameState)> = Vec::new();
    for t in times {
        let state = index.state_at(t as f64 / 1000.0 + 1e-6, opts);
        let changed = out.last().is_none_or(|(_, prev)| *prev != state);
        if changed || forced.binary_search(&t).is_ok() {
            out.push((t, state));
        }
    }
    let last_step = duration_ms.saturating_sub(1000 / u64::from(GRID_FPS));
    if let Some((t, state)) = out.last().cloned() {
        if t < last_step {
            out.push((last_step, state));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bbb::recording::{parse_shapes, ChatLine, Metadata};

    fn recording() -> Recording {
        let board = parse_shapes(
            r##"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 1600 900">
<image id="image1" class="slide" in="0" out="10" xlink:href="s1.png" width="1600" height="900"/>
<image id="image2" class="slide" in="10" out="20" xlink:href="s2.png" width="1600" height="900"/>
<g class="canvas" image="image1">
 <g class="shape" shape="p1" timestamp="2" undo="5"><path d="M0 0L1 1"/></g>
 <g class="shape" shape="p2" timestamp="3" undo="-1"><path d="M0 0L2 2"/></g>
 <g class="shape" shape="p2" timestamp="4" undo="-1"><path d="M0 0L3 3"/></g>
</g></svg>"##,
        )
        .unwrap();
        Recording {
            meta: Metadata {
                id: "r".to_owned(),
                name: None,
                duration: 20.0,
            },
            board,
            panzooms: vec![],
            cursor: vec![(1.0, Some((0.5, 0.5))), (6.0, None)],
            cursor_absolute: false,
            deskshare: vec![(12.0, 14.0)],
            chat: vec![ChatLine {
                at: 7.0,
                until: None,
                name: "a".to_owned(),
                message: "b".to_owned(),
            }],
            captions: vec![],
            media: None,
            deskshare_video: None,
            warnings: vec![],
        }
    }

    #[test]
    fn frames_follow_the_events() {
        let rec = recording();
        let opts = TimelineOptions {
            cursor: true,
            chat: true,
            deskshare_fps: None,
        };
        let frames = frames(&rec, &opts);
        let at = |ms: u64| {
            &frames
                .iter()
                .rev()
                .find(|(t, _)| *t <= ms)
                .expect("a frame")
                .1
        };
        assert_eq!(frames[0].0, 0);
        assert_eq!(at(1500).cursor, Some((800.0, 450.0)));
        assert_eq!(at(2500).shapes, vec![0]);
        assert_eq!(at(3500).shapes, vec![0, 1]);
        // A newer version replaces the older one; undo hides it.
        assert_eq!(at(4500).shapes, vec![0, 2]);
        assert_eq!(at(5500).shapes, vec![2]);
        assert_eq!(at(6500).cursor, None);
        assert_eq!(at(7500).chat, (1, 0));
        assert_eq!(at(10500).slide, Some(1));
        assert!(at(10500).shapes.is_empty());
        assert!(at(12500).deskshare && !at(14500).deskshare);
        assert_eq!(frames.last().unwrap().0, 19_960);
        // Only changes are frames.
        assert!(frames.len() < 15, "{}", frames.len());

        let repeated = super::frames(
            &rec,
            &TimelineOptions {
                deskshare_fps: Some(5.0),
                ..opts
            },
        );
        let during = repeated
            .iter()
            .filter(|(t, _)| (12_000..14_000).contains(t))
            .count();
        assert_eq!(during, 10);
    }
}
