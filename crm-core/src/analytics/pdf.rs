//! A report as a PDF (pdf-writer): its title and parameters, its chart (drawn by
//! [`super::chart`] and embedded as an image) and its table, paged, in A4 landscape. The
//! text is set in Noto Sans, embedded in the file, so any Unicode text it covers prints.

use std::collections::BTreeMap;

use ab_glyph::{Font, FontRef};
use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use polars::prelude::{AnyValue, DataFrame};

use super::chart::{self, ChartData};
use super::export::About;
use crate::error::{Error, Result};

/// The most rows a PDF prints; the rest are counted in a closing line.
pub const MAX_PDF_ROWS: usize = 5_000;

const PAGE_W: f32 = 842.0;
const PAGE_H: f32 = 595.0;
const MARGIN: f32 = 36.0;
const ROW_H: f32 = 13.0;
const CELL_SIZE: f32 = 8.0;
const CELL_PAD: f32 = 4.0;
const MAX_COL_W: f32 = 200.0;
/// The chart's bitmap, in pixels, and its size on the page, in points.
const CHART_PX: (u32, u32) = (1600, 760);
const CHART_PT: (f32, f32) = (620.0, 294.5);

/// The text of one cell as the PDF prints it.
fn cell(v: &AnyValue) -> String {
    match v {
        AnyValue::Null => String::new(),
        AnyValue::Float64(f) => float(*f),
        AnyValue::Float32(f) => float(f64::from(*f)),
        AnyValue::Datetime(..) | AnyValue::DatetimeOwned(..) => {
            let s = v.str_value().to_string();
            // `2026-01-07 09:30:00` (drop fractions).
            s.split('.').next().unwrap_or(&s).to_string()
        }
        other => other.str_value().to_string(),
    }
}

/// A float with at most four decimals, trailing zeros dropped.
fn float(f: f64) -> String {
    let s = format!("{f:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// Lays text out in the embedded font: glyph ids, and the ones used for the font's
/// widths and its ToUnicode map.
struct Typesetter {
    font: FontRef<'static>,
    upem: f32,
    used: BTreeMap<u16, char>,
}

impl Typesetter {
    fn new() -> Result<Self> {
        let font =
            FontRef::try_from_slice(ttf_noto_sans::REGULAR).map_err(|e| Error::internal("loading the PDF font", e))?;
        let upem = font.units_per_em().unwrap_or(1000.0);
        Ok(Self { font, upem, used: BTreeMap::new() })
    }

    fn advance(&self, c: char) -> f32 {
        let g = self.font.glyph_id(c);
        self.font.h_advance_unscaled(g) / self.upem
    }

    /// The width of `text` at `size` points.
    fn width(&self, text: &str, size: f32) -> f32 {
        text.chars().map(|c| self.advance(c)).sum::<f32>() * size
    }

    /// `text` cut (with an ellipsis) to fit `max` points at `size`.
    fn fit(&self, text: &str, size: f32, max: f32) -> String {
        if self.width(text, size) <= max {
            return text.to_string();
        }
        let room = max - self.advance('…') * size;
        let mut out = String::new();
        let mut w = 0.0;
        for c in text.chars() {
            w += self.advance(c) * size;
            if w > room {
                break;
            }
            out.push(c);
        }
        out.push('…');
        out
    }

    /// The string operand showing `text` (two-byte glyph ids, Identity-H).
    fn encode(&mut self, text: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len() * 2);
        for c in text.chars().filter(|c| !c.is_control()) {
            let g = self.font.glyph_id(c).0;
            // Glyph 0 (a character the font lacks) maps to no one character.
            if g != 0 {
                self.used.entry(g).or_insert(c);
            }
            out.extend_from_slice(&g.to_be_bytes());
        }
        out
    }
}

/// One page being written.
struct Page {
    content: Content,
    y: f32,
}

struct Writer {
    ts: Typesetter,
    pages: Vec<Page>,
}

impl Writer {
    fn page(&mut self) -> &mut Page {
        if self.pages.is_empty() {
            self.new_page();
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    fn new_page(&mut self) {
        self.pages.push(Page { content: Content::new(), y: PAGE_H - MARGIN });
    }

    fn text(&mut self, x: f32, y: f32, size: f32, gray: f32, text: &str) {
        let bytes = self.ts.encode(text);
        let page = self.page();
        page.content
            .set_fill_rgb(gray, gray, gray)
            .begin_text()
            .set_font(Name(b"F1"), size)
            .next_line(x, y)
            .show(Str(&bytes))
            .end_text();
    }
}

/// The PDF of a report.
pub(crate) fn pdf(df: &DataFrame, about: &About, chart: Option<&ChartData>) -> Result<Vec<u8>> {
    let mut w = Writer { ts: Typesetter::new()?, pages: Vec::new() };
    w.new_page();
    let title = about.title.clone().unwrap_or_else(|| "Report".to_string());
    let width = PAGE_W - 2.0 * MARGIN;
    let line = w.ts.fit(&title, 18.0, width);
    w.text(MARGIN, PAGE_H - MARGIN - 18.0, 18.0, 0.0, &line);
    let mut y = PAGE_H - MARGIN - 36.0;
    let mut facts: Vec<String> = about.parameters.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    facts.push(format!("{} row{}", df.height(), if df.height() == 1 { "" } else { "s" }));
    let facts = w.ts.fit(&facts.join("   ·   "), 9.0, width);
    w.text(MARGIN, y, 9.0, 0.35, &facts);
    y -= 14.0;

    // The chart, centred, as an image.
    let mut image = None;
    if let Some(data) = chart {
        let rgb = chart::pixels(data, CHART_PX)?;
        image = Some(miniz_oxide::deflate::compress_to_vec_zlib(&rgb, 6));
        let x = (PAGE_W - CHART_PT.0) / 2.0;
        let top = y - CHART_PT.1;
        w.page()
            .content
            .save_state()
            .transform([CHART_PT.0, 0.0, 0.0, CHART_PT.1, x, top])
            .x_object(Name(b"Im1"))
            .restore_state();
        y = top - 16.0;
    }
    w.page().y = y;
    table(&mut w, df)?;

    // Page numbers, then the document.
    let total = w.pages.len();
    for i in 0..total {
        let label = format!("{} — page {} of {total}", title, i + 1);
        let label = w.ts.fit(&label, 7.5, width);
        let bytes = w.ts.encode(&label);
        w.pages[i]
            .content
            .set_fill_rgb(0.5, 0.5, 0.5)
            .begin_text()
            .set_font(Name(b"F1"), 7.5)
            .next_line(MARGIN, MARGIN / 2.0)
            .show(Str(&bytes))
            .end_text();
    }
    assemble(w, &title, image)
}

/// The table, paged: a shaded header on every page, numbers right-aligned.
fn table(w: &mut Writer, df: &DataFrame) -> Result<()> {
    let columns = df.columns();
    if columns.is_empty() {
        return Ok(());
    }
    let shown = df.height().min(MAX_PDF_ROWS);
    let numeric: Vec<bool> = columns.iter().map(|c| c.dtype().is_primitive_numeric()).collect();
    let mut cells: Vec<Vec<String>> = Vec::with_capacity(shown);
    for i in 0..shown {
        let mut row = Vec::with_capacity(columns.len());
        for c in columns {
            row.push(cell(&c.get(i).map_err(super::from_polars)?));
        }
        cells.push(row);
    }
    let headers: Vec<String> = columns.iter().map(|c| c.name().to_string()).collect();
    // Column widths: the widest of the header and the first 500 cells, within limits,
    // shrunk together when the page is too narrow.
    let mut widths: Vec<f32> = headers.iter().map(|h| w.ts.width(h, CELL_SIZE)).collect();
    for row in cells.iter().take(500) {
        for (j, v) in row.iter().enumerate() {
            widths[j] = widths[j].max(w.ts.width(v, CELL_SIZE));
        }
    }
    let mut widths: Vec<f32> = widths.into_iter().map(|x| (x + 2.0 * CELL_PAD).clamp(28.0, MAX_COL_W)).collect();
    let room = PAGE_W - 2.0 * MARGIN;
    let sum: f32 = widths.iter().sum();
    if sum > room {
        widths.iter_mut().for_each(|x| *x *= room / sum);
    }
    let header = |w: &mut Writer| {
        let y = w.page().y;
        let total: f32 = widths.iter().sum();
        w.page().content.set_fill_rgb(0.9, 0.92, 0.95).rect(MARGIN, y - ROW_H + 3.0, total, ROW_H).fill_nonzero();
        let mut x = MARGIN;
        for (j, h) in headers.iter().enumerate() {
            let text = w.ts.fit(h, CELL_SIZE, widths[j] - 2.0 * CELL_PAD);
            w.text(x + CELL_PAD, y - ROW_H + 6.5, CELL_SIZE, 0.1, &text);
            x += widths[j];
        }
        w.page().y = y - ROW_H;
    };
    if w.page().y < MARGIN + 3.0 * ROW_H {
        w.new_page();
    }
    header(w);
    for (i, row) in cells.iter().enumerate() {
        if w.page().y < MARGIN + ROW_H {
            w.new_page();
            header(w);
        }
        let y = w.page().y;
        if i % 2 == 1 {
            let total: f32 = widths.iter().sum();
            w.page().content.set_fill_rgb(0.97, 0.97, 0.97).rect(MARGIN, y - ROW_H + 3.0, total, ROW_H).fill_nonzero();
        }
        let mut x = MARGIN;
        for (j, v) in row.iter().enumerate() {
            let inner = widths[j] - 2.0 * CELL_PAD;
            let text = w.ts.fit(v, CELL_SIZE, inner);
            let dx = if numeric[j] { inner - w.ts.width(&text, CELL_SIZE) } else { 0.0 };
            w.text(x + CELL_PAD + dx, y - ROW_H + 6.5, CELL_SIZE, 0.0, &text);
            x += widths[j];
        }
        w.page().y = y - ROW_H;
    }
    if df.height() > shown {
        if w.page().y < MARGIN + ROW_H {
            w.new_page();
        }
        let y = w.page().y - 6.0;
        let note = format!(
            "The first {shown} of {} rows are shown; CSV, Parquet and XLSX exports hold them all.",
            df.height()
        );
        w.text(MARGIN, y, CELL_SIZE, 0.35, &note);
    }
    Ok(())
}

/// Writes the document: catalog, pages, the embedded font (Type 0, Identity-H, with
/// the widths and the ToUnicode map of the glyphs used) and the chart image.
fn assemble(w: Writer, title: &str, image: Option<Vec<u8>>) -> Result<Vec<u8>> {
    let mut next = 1;
    let mut alloc = || {
        let r = Ref::new(next);
        next += 1;
        r
    };
    let (catalog, tree, type0, cid, descriptor, file, cmap, image_id, info) =
        (alloc(), alloc(), alloc(), alloc(), alloc(), alloc(), alloc(), alloc(), alloc());
    let page_ids: Vec<(Ref, Ref)> = w.pages.iter().map(|_| (alloc(), alloc())).collect();
    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids(page_ids.iter().map(|(p, _)| *p)).count(page_ids.len() as i32);
    for ((page_id, content_id), page) in page_ids.iter().zip(w.pages) {
        let mut p = pdf.page(*page_id);
        p.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H)).parent(tree).contents(*content_id);
        {
            let mut resources = p.resources();
            resources.fonts().pair(Name(b"F1"), type0);
            if image.is_some() {
                resources.x_objects().pair(Name(b"Im1"), image_id);
            }
        }
        p.finish();
        let raw = page.content.finish();
        let packed = miniz_oxide::deflate::compress_to_vec_zlib(&raw, 6);
        pdf.stream(*content_id, &packed).filter(Filter::FlateDecode);
    }
    if let Some(samples) = &image {
        let mut im = pdf.image_xobject(image_id, samples);
        im.filter(Filter::FlateDecode);
        im.width(CHART_PX.0 as i32);
        im.height(CHART_PX.1 as i32);
        im.color_space().device_rgb();
        im.bits_per_component(8);
        im.finish();
    }
    // The font.
    let ts = &w.ts;
    let base = Name(b"NotoSans-Regular");
    let system = || SystemInfo { registry: Str(b"Adobe"), ordering: Str(b"Identity"), supplement: 0 };
    pdf.type0_font(type0)
        .base_font(base)
        .encoding_predefined(Name(b"Identity-H"))
        .descendant_font(cid)
        .to_unicode(cmap);
    {
        let mut font = pdf.cid_font(cid);
        font.subtype(CidFontType::Type2)
            .base_font(base)
            .system_info(system())
            .font_descriptor(descriptor)
            .default_width(ts.advance(' ') * 1000.0)
            .cid_to_gid_map_predefined(Name(b"Identity"));
        let mut widths = font.widths();
        for &g in ts.used.keys() {
            let adv = ts.font.h_advance_unscaled(ab_glyph::GlyphId(g)) / ts.upem * 1000.0;
            widths.consecutive(g, [adv]);
        }
        widths.finish();
        font.finish();
    }
    let scale = 1000.0 / ts.upem;
    pdf.font_descriptor(descriptor)
        .name(base)
        .flags(FontFlags::NON_SYMBOLIC)
        .bbox(Rect::new(-300.0, ts.font.descent_unscaled() * scale, 1300.0, ts.font.ascent_unscaled() * scale))
        .italic_angle(0.0)
        .ascent(ts.font.ascent_unscaled() * scale)
        .descent(ts.font.descent_unscaled() * scale)
        .cap_height(714.0)
        .stem_v(80.0)
        .font_file2(file);
    let packed_font = miniz_oxide::deflate::compress_to_vec_zlib(ttf_noto_sans::REGULAR, 6);
    pdf.stream(file, &packed_font)
        .filter(Filter::FlateDecode)
        .pair(Name(b"Length1"), ttf_noto_sans::REGULAR.len() as i32);
    let mut map = UnicodeCmap::new(Name(b"Custom"), system());
    for (&g, &c) in &ts.used {
        map.pair(g, c);
    }
    let map = map.finish();
    pdf.cmap(cmap, &map).system_info(system());
    pdf.document_info(info).title(TextStr(title)).producer(TextStr("crm-rs"));
    Ok(pdf.finish())
}
