//! Draws the frames: the slide area (slide bitmap through the panzoom viewBox, whiteboard shapes,
//! cursor), the chat panel and placeholders for what ffmpeg overlays (webcams, screenshare).
//!
//! Layers are cached and redrawn only when what they show changes: the decoded slide, the slide
//! area with its shapes, the chat panel. A frame is then one copy of the cached base plus the
//! cursor, so its cost does not grow with the number of shapes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use resvg::tiny_skia::{
    Color, FillRule, FilterQuality, Paint, PathBuilder, Pixmap, PixmapPaint, Rect, Transform,
};
use resvg::usvg;

use super::recording::{escape, wrap_text, Recording, ViewBox};
use super::timeline::FrameState;
use super::BbbError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Area {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

/// Where things go in the output picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub width: u32,
    pub height: u32,
    pub slides: Area,
    pub webcams: Option<Area>,
    pub chat: Option<Area>,
}

fn even(v: f64) -> u32 {
    ((v / 2.0).round() as u32 * 2).max(2)
}

impl Layout {
    /// Slides on the left; webcams (4:3) above the chat in a right-hand column a quarter of the
    /// width wide, when either is shown. The slide picture keeps its aspect ratio inside its area.
    pub fn new(width: u32, height: u32, webcams: bool, chat: bool) -> Layout {
        if !webcams && !chat {
            return Layout {
                width,
                height,
                slides: Area {
                    x: 0,
                    y: 0,
                    w: width,
                    h: height,
                },
                webcams: None,
                chat: None,
            };
        }
        let column = even(f64::from(width) * 0.25);
        let left = width - column;
        let cam_h = if webcams {
            even(f64::from(column) * 0.75).min(height)
        } else {
            0
        };
        Layout {
            width,
            height,
            slides: Area {
                x: 0,
                y: 0,
                w: left,
                h: height,
            },
            webcams: webcams.then_some(Area {
                x: left,
                y: 0,
                w: column,
                h: cam_h,
            }),
            chat: (chat && cam_h < height).then_some(Area {
                x: left,
                y: cam_h,
                w: column,
                h: height - cam_h,
            }),
        }
    }

    /// Where the viewBox lands in the slide area (centered, aspect ratio kept).
    pub fn view_transform(&self, view: &ViewBox) -> Transform {
        let (aw, ah) = (f64::from(self.slides.w), f64::from(self.slides.h));
        let scale = (aw / view.w).min(ah / view.h);
        let ox = (aw - view.w * scale) / 2.0 - view.x * scale;
        let oy = (ah - view.h * scale) / 2.0 - view.y * scale;
        Transform::from_row(scale as f32, 0.0, 0.0, scale as f32, ox as f32, oy as f32)
    }
}

fn background() -> Color {
    Color::from_rgba8(0x20, 0x22, 0x25, 0xff)
}
const CHAT_BACKGROUND: &str = "#f4f5f7";
pub const CURSOR_COLOR: [u8; 3] = [0xff, 0x00, 0x00];

fn fonts() -> Arc<usvg::fontdb::Database> {
    static FONTS: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            let mut db = usvg::fontdb::Database::new();
            db.load_system_fonts();
            db.set_sans_serif_family("DejaVu Sans");
            Arc::new(db)
        })
        .clone()
}

fn render_error(what: &str, e: impl std::fmt::Display) -> BbbError {
    BbbError::Render(format!("{what}: {e}"))
}

fn new_pixmap(w: u32, h: u32) -> Result<Pixmap, BbbError> {
    Pixmap::new(w, h).ok_or_else(|| BbbError::Render(format!("cannot allocate a {w}x{h} picture")))
}

type SlideKey = (Option<usize>, [u64; 4], Vec<usize>, bool);

pub struct Composer<'r> {
    rec: &'r Recording,
    dir: PathBuf,
    layout: Layout,
    options: usvg::Options<'static>,
    decoded: Option<(String, Pixmap)>,
    slide_layer: Option<(SlideKey, Pixmap)>,
    chat_layer: Option<((usize, usize), Pixmap)>,
    base: Pixmap,
    base_dirty: bool,
    frame: Pixmap,
    /// What `frame` shows; a repeat (screenshare ticks) is returned without drawing.
    shown: Option<FrameState>,
}

impl<'r> Composer<'r> {
    pub fn new(rec: &'r Recording, dir: &Path, layout: Layout) -> Result<Composer<'r>, BbbError> {
        let options = usvg::Options {
            // Only hrefs validated by `recording_path` reach the SVG we build.
            resources_dir: Some(dir.to_path_buf()),
            fontdb: fonts(),
            font_family: "DejaVu Sans".to_owned(),
            ..usvg::Options::default()
        };
        Ok(Composer {
            rec,
            dir: dir.to_path_buf(),
            layout,
            options,
            decoded: None,
            slide_layer: None,
            chat_layer: None,
            base: new_pixmap(layout.width, layout.height)?,
            base_dirty: true,
            frame: new_pixmap(layout.width, layout.height)?,
            shown: None,
        })
    }

    /// The RGBA bytes of the frame showing `state`.
    pub fn frame(&mut self, state: &FrameState) -> Result<&[u8], BbbError> {
        if self.shown.as_ref() == Some(state) {
            return Ok(self.frame.data());
        }
        self.shown = Some(state.clone());
        self.update_slide_layer(state)?;
        self.update_chat_layer(state)?;
        if self.base_dirty {
            self.base.fill(background());
            let paint = PixmapPaint::default();
            if let Some((_, layer)) = &self.slide_layer {
                let a = self.layout.slides;
                self.base.draw_pixmap(
                    a.x as i32,
                    a.y as i32,
                    layer.as_ref(),
                    &paint,
                    Transform::identity(),
                    None,
                );
            }
            if let Some(cams) = self.layout.webcams {
                fill_rect(&mut self.base, cams, Color::BLACK);
            }
            if let (Some(area), Some((_, layer))) = (self.layout.chat, &self.chat_layer) {
                self.base.draw_pixmap(
                    area.x as i32,
                    area.y as i32,
                    layer.as_ref(),
                    &paint,
                    Transform::identity(),
                    None,
                );
            }
            self.base_dirty = false;
        }
        self.frame.data_mut().copy_from_slice(self.base.data());
        if let (Some((x, y)), false) = (state.cursor, state.deskshare) {
            let t = self.layout.view_transform(&state.view);
            let mut p = resvg::tiny_skia::Point::from_xy(x as f32, y as f32);
            t.map_point(&mut p);
            let area = self.layout.slides;
            let radius = (area.h as f32 / 100.0).max(3.0);
            if p.x >= 0.0 && p.y >= 0.0 && p.x <= area.w as f32 && p.y <= area.h as f32 {
                if let Some(circle) =
                    PathBuilder::from_circle(area.x as f32 + p.x, area.y as f32 + p.y, radius)
                {
                    let mut paint = Paint::default();
                    let [r, g, b] = CURSOR_COLOR;
                    paint.set_color_rgba8(r, g, b, 0xff);
                    paint.anti_alias = true;
                    self.frame.fill_path(
                        &circle,
                        &paint,
                        FillRule::Winding,
                        Transform::identity(),
                        None,
                    );
                }
            }
        }
        Ok(self.frame.data())
    }

    fn update_slide_layer(&mut self, state: &FrameState) -> Result<(), BbbError> {
        let v = state.view;
        let key: SlideKey = (
            state.slide,
            [v.x.to_bits(), v.y.to_bits(), v.w.to_bits(), v.h.to_bits()],
            state.shapes.clone(),
            state.deskshare,
        );
        if self.slide_layer.as_ref().is_some_and(|(k, _)| *k == key) {
            return Ok(());
        }
        let area = self.layout.slides;
        let mut layer = match self.slide_layer.take() {
            Some((_, p)) => p,
            None => new_pixmap(area.w, area.h)?,
        };
        if state.deskshare {
            // The screenshare video is overlaid here by ffmpeg.
            layer.fill(Color::BLACK);
        } else {
            layer.fill(background());
            let view = self.layout.view_transform(&state.view);
            if let Some(index) = state.slide {
                let slide = &self.rec.board.slides[index];
                let bitmap = self.decoded_slide(&slide.href, slide.rect)?;
                let (pw, ph) = (bitmap.width() as f32, bitmap.height() as f32);
                let to_slide = Transform::from_row(
                    slide.rect.w as f32 / pw,
                    0.0,
                    0.0,
                    slide.rect.h as f32 / ph,
                    slide.rect.x as f32,
                    slide.rect.y as f32,
                );
                let paint = PixmapPaint {
                    quality: FilterQuality::Bicubic,
                    ..PixmapPaint::default()
                };
                layer.draw_pixmap(
                    0,
                    0,
                    bitmap.as_ref(),
                    &paint,
                    view.pre_concat(to_slide),
                    None,
                );
            }
            if !state.shapes.is_empty() {
                let canvas = self.rec.board.canvas;
                let mut svg = format!(
                    "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" width=\"{}\" height=\"{}\">",
                    (canvas.x + canvas.w).max(1.0),
                    (canvas.y + canvas.h).max(1.0)
                );
                for &i in &state.shapes {
                    svg.push_str(&self.rec.board.annotations[i].svg);
                }
                svg.push_str("</svg>");
                let tree = usvg::Tree::from_str(&svg, &self.options)
                    .map_err(|e| render_error("whiteboard shapes", e))?;
                resvg::render(&tree, view, &mut layer.as_mut());
            }
        }
        self.slide_layer = Some((key, layer));
        self.base_dirty = true;
        Ok(())
    }

    /// The slide bitmap, decoded once while it stays on screen.
    fn decoded_slide(&mut self, href: &str, rect: ViewBox) -> Result<&Pixmap, BbbError> {
        if self.decoded.as_ref().is_none_or(|(h, _)| h != href) {
            let path = self.dir.join(href);
            let bytes = std::fs::read(&path).map_err(|e| BbbError::io(&path, e))?;
            let pixmap = match Pixmap::decode_png(&bytes) {
                Ok(p) => p,
                // Not a PNG (JPEG, GIF, WebP, SVG): let usvg decode it at its display size.
                Err(_) => {
                    let (w, h) = (rect.w.ceil().max(1.0) as u32, rect.h.ceil().max(1.0) as u32);
                    let svg = format!(
                        "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" width=\"{w}\" height=\"{h}\"><image width=\"{w}\" height=\"{h}\" preserveAspectRatio=\"none\" xlink:href=\"{}\"/></svg>",
                        escape(href)
                    );
                    let tree = usvg::Tree::from_str(&svg, &self.options)
                        .map_err(|e| render_error(href, e))?;
                    let mut p = new_pixmap(w, h)?;
                    resvg::render(&tree, Transform::identity(), &mut p.as_mut());
                    p
                }
            };
            self.decoded = Some((href.to_owned(), pixmap));
        }
        Ok(&self.decoded.as_ref().expect("decoded above").1)
    }

    fn update_chat_layer(&mut self, state: &FrameState) -> Result<(), BbbError> {
        let Some(area) = self.layout.chat else {
            return Ok(());
        };
        if self
            .chat_layer
            .as_ref()
            .is_some_and(|(k, _)| *k == state.chat)
        {
            return Ok(());
        }
        let (appeared, _) = state.chat;
        let now = self
            .rec
            .chat
            .get(appeared.saturating_sub(1))
            .map_or(0.0, |c| c.at);
        let font = (f64::from(area.h) / 32.0).clamp(10.0, 28.0);
        let line_h = font * 1.3;
        let pad = font * 0.6;
        let width = f64::from(area.w) - 2.0 * pad;
        // Newest at the bottom; older lines scroll off the top.
        let mut blocks: Vec<(String, Vec<String>)> = Vec::new();
        let mut used = pad;
        for line in self.rec.chat[..appeared].iter().rev() {
            if line.until.is_some_and(|u| u <= now) {
                continue;
            }
            let wrapped = wrap_text(&line.message, width, font);
            let need = line_h * (1 + wrapped.len()) as f64 + pad * 0.5;
            if used + need > f64::from(area.h) && !blocks.is_empty() {
                break;
            }
            used += need;
            blocks.push((line.name.clone(), wrapped));
        }
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\"><rect width=\"100%\" height=\"100%\" fill=\"{CHAT_BACKGROUND}\"/>",
            area.w, area.h
        );
        let mut y = f64::from(area.h) - used + pad;
        for (name, lines) in blocks.iter().rev() {
            y += line_h;
            svg.push_str(&format!(
                "<text x=\"{pad}\" y=\"{y:.1}\" font-family=\"DejaVu Sans\" font-size=\"{font:.1}\" font-weight=\"bold\" fill=\"#1a5fb4\">{}</text>",
                escape(name)
            ));
            for l in lines {
                y += line_h;
                svg.push_str(&format!(
                    "<text x=\"{pad}\" y=\"{y:.1}\" font-family=\"DejaVu Sans\" font-size=\"{font:.1}\" fill=\"#202124\">{}</text>",
                    escape(l)
                ));
            }
            y += pad * 0.5;
        }
        svg.push_str("</svg>");
        let tree =
            usvg::Tree::from_str(&svg, &self.options).map_err(|e| render_error("chat", e))?;
        let mut layer = match self.chat_layer.take() {
            Some((_, p)) => p,
            None => new_pixmap(area.w, area.h)?,
        };
        layer.fill(Color::WHITE);
        resvg::render(&tree, Transform::identity(), &mut layer.as_mut());
        self.chat_layer = Some((state.chat, layer));
        self.base_dirty = true;
        Ok(())
    }
}

fn fill_rect(pixmap: &mut Pixmap, area: Area, color: Color) {
    if let Some(rect) = Rect::from_xywh(area.x as f32, area.y as f32, area.w as f32, area.h as f32)
    {
        let mut paint = Paint::default();
        paint.set_color(color);
        pixmap.fill_rect(rect, &paint, Transform::identity(), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        let full = Layout::new(1280, 720, false, false);
        assert_eq!(full.slides.w, 1280);
        let side = Layout::new(1280, 720, true, true);
        assert_eq!(side.slides.w + side.webcams.unwrap().w, 1280);
        assert_eq!(side.webcams.unwrap().h, 240);
        assert_eq!(side.chat.unwrap().y, 240);
        assert_eq!(side.chat.unwrap().h, 480);
        let t = full.view_transform(&ViewBox {
            x: 800.0,
            y: 450.0,
            w: 800.0,
            h: 450.0,
        });
        // The zoomed quadrant's top-left corner lands at the area's origin.
        let mut p = resvg::tiny_skia::Point::from_xy(800.0, 450.0);
        t.map_point(&mut p);
        assert!(p.x.abs() < 0.01 && p.y.abs() < 0.01);
    }
}
