//! Charts of reports (bar, line, funnel) drawn with plotters, as SVG or PNG. The text is
//! set in Noto Sans, compiled in, so a chart looks the same on every machine and needs
//! no system fonts.

use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use polars::prelude::{DataFrame, DataType};

use crate::error::{Error, Errors, Result};
use crate::model::report::{ChartKind, ChartSpec};

/// The font family charts are set in.
pub(crate) const FAMILY: &str = "crm-sans";

/// Colours of the series, in order.
const PALETTE: [RGBColor; 6] = [
    RGBColor(0x1f, 0x6f, 0xb4),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0x3a, 0xa3, 0x5a),
    RGBColor(0xd6, 0x3f, 0x3f),
    RGBColor(0x8a, 0x63, 0xc4),
    RGBColor(0x7f, 0x7f, 0x7f),
];

/// The most categories a chart shows (the first ones, in the report's order).
pub const MAX_CATEGORIES: usize = 60;

/// A chart's image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// Scalable vector graphics (text left as text).
    Svg,
    /// A PNG bitmap.
    Png,
}

impl ImageFormat {
    /// Its media type.
    pub fn media_type(&self) -> &'static str {
        match self {
            ImageFormat::Svg => "image/svg+xml",
            ImageFormat::Png => "image/png",
        }
    }
}

/// What a chart draws: one label per category and one series per plotted column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChartData {
    pub title: String,
    pub kind: ChartKind,
    pub labels: Vec<String>,
    /// (column, values); a NULL is `None`.
    pub series: Vec<(String, Vec<Option<f64>>)>,
}

/// Registers the compiled-in font with plotters, once.
pub(crate) fn font() -> Result<()> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, ttf_noto_sans::REGULAR).is_ok()
            && plotters::style::register_font(FAMILY, FontStyle::Bold, ttf_noto_sans::REGULAR).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(Error::internal_msg("the chart font does not load"))
    }
}

/// Reads what `spec` plots out of a report: the `x` column as labels (any type), the `y`
/// columns as numbers. A column the report lacks, or a `y` that is not numeric, is a
/// validation error on `chart.x` / `chart.y.N`.
pub(crate) fn data(df: &DataFrame, spec: &ChartSpec, title: &str) -> Result<ChartData> {
    let mut errs = Errors::new();
    let names: Vec<&str> = df.get_column_names().into_iter().map(|n| n.as_str()).collect();
    let rows = df.height().min(MAX_CATEGORIES);
    let mut labels = Vec::new();
    match df.column(&spec.x) {
        Ok(c) => {
            for i in 0..rows {
                let v = c.get(i).map_err(super::from_polars)?;
                labels.push(if v.is_null() { "(none)".to_string() } else { v.str_value().to_string() });
            }
        }
        Err(_) => errs.add(
            "chart.x",
            "unknown_field",
            format!("the report has no column '{}'; its columns: {}", spec.x, names.join(", ")),
        ),
    }
    let mut series = Vec::new();
    for (i, y) in spec.y.iter().enumerate() {
        let field = format!("chart.y.{i}");
        match df.column(y) {
            Ok(c) if c.dtype().is_primitive_numeric() => {
                let c = c.cast(&DataType::Float64).map_err(super::from_polars)?;
                let f = c.f64().map_err(super::from_polars)?;
                series.push((y.clone(), f.iter().take(rows).collect()));
            }
            Ok(c) => errs.add(field, "invalid_value", format!("'{y}' holds {} values, not numbers", c.dtype())),
            Err(_) => errs.add(
                field,
                "unknown_field",
                format!("the report has no column '{y}'; its columns: {}", names.join(", ")),
            ),
        }
    }
    errs.finish()?;
    let title = spec.title.clone().unwrap_or_else(|| title.to_string());
    Ok(ChartData { title, kind: spec.kind, labels, series })
}

/// The chart a standard report is drawn with by default.
pub fn standard(report: &str) -> Option<ChartSpec> {
    report.parse::<crate::model::report::StandardReport>().ok().map(|r| r.chart())
}

/// A bar chart of any report: its first non-numeric column along the axis and up to
/// three numeric columns; `None` when it has no numeric column.
pub fn guess(df: &DataFrame) -> Option<ChartSpec> {
    let columns = df.columns();
    let numeric = |c: &&polars::prelude::Column| c.dtype().is_primitive_numeric();
    let x = columns.iter().find(|c| !numeric(c)).or(columns.first())?.name().to_string();
    let y: Vec<String> =
        columns.iter().filter(numeric).map(|c| c.name().to_string()).filter(|n| *n != x).take(3).collect();
    if y.is_empty() {
        return None;
    }
    Some(ChartSpec { kind: ChartKind::Bar, x, y, title: None })
}

/// Draws a report's chart.
pub fn render(df: &DataFrame, spec: &ChartSpec, title: &str, format: ImageFormat, size: (u32, u32)) -> Result<Vec<u8>> {
    let data = data(df, spec, title)?;
    draw_as(&data, format, size)
}

/// Draws chart data as an image.
pub(crate) fn draw_as(data: &ChartData, format: ImageFormat, size: (u32, u32)) -> Result<Vec<u8>> {
    font()?;
    match format {
        ImageFormat::Svg => {
            let mut out = String::new();
            {
                let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
                draw(&root, data)?;
                root.present().map_err(draw_error)?;
            }
            Ok(out.into_bytes())
        }
        ImageFormat::Png => {
            let rgb = pixels(data, size)?;
            let mut out = Vec::new();
            image::RgbImage::from_raw(size.0, size.1, rgb)
                .ok_or_else(|| Error::internal_msg("chart buffer size"))?
                .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
                .map_err(|e| Error::internal("encoding a chart as PNG", e))?;
            Ok(out)
        }
    }
}

/// Draws chart data into an RGB buffer (8 bits per channel, rows top to bottom).
pub(crate) fn pixels(data: &ChartData, size: (u32, u32)) -> Result<Vec<u8>> {
    font()?;
    let mut rgb = vec![255u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        draw(&root, data)?;
        root.present().map_err(draw_error)?;
    }
    Ok(rgb)
}

fn draw_error<E: std::error::Error + Send + Sync + 'static>(e: DrawingAreaErrorKind<E>) -> Error {
    Error::internal_msg(format!("drawing a chart: {e}"))
}

/// Shortens a label to `max` characters.
fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, data: &ChartData) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(draw_error)?;
    let (w, h) = root.dim_in_pixel();
    let scale = (h as f64 / 450.0).max(0.5);
    let px = |v: f64| (v * scale).round() as u32;
    let caption = (FAMILY, px(22.0) as f64).into_font().color(&BLACK);
    if data.labels.is_empty() || data.series.is_empty() {
        root.draw(&Text::new(format!("{} — no rows", data.title), (px(20.0) as i32, px(20.0) as i32), caption))
            .map_err(draw_error)?;
        return Ok(());
    }
    match data.kind {
        ChartKind::Funnel => funnel(root, data, px, caption, w),
        ChartKind::Bar | ChartKind::Line => axes(root, data, px, caption),
    }
}

/// Bars or lines over the categories, with a legend when there are several series.
fn axes<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &ChartData,
    px: impl Fn(f64) -> u32,
    caption: TextStyle,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let n = data.labels.len();
    let values = data.series.iter().flat_map(|(_, v)| v.iter().flatten().copied());
    let (lo, hi) = values.fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let pad = ((hi - lo) * 0.08).max(1.0);
    let (lo, hi) = (if lo < 0.0 { lo - pad } else { 0.0 }, hi + pad);
    let labels = data.labels.clone();
    let bar = data.kind == ChartKind::Bar;
    let x_range = if bar { 0.0..n as f64 } else { -0.5..(n as f64 - 0.5) };
    let mut chart = ChartBuilder::on(root)
        .caption(&data.title, caption)
        .margin(px(14.0))
        .x_label_area_size(px(60.0))
        .y_label_area_size(px(80.0))
        .build_cartesian_2d(x_range, lo..hi)
        .map_err(draw_error)?;
    let label_font = (FAMILY, px(12.0) as f64).into_font();
    let per_label = if n > 12 { n.div_ceil(12) } else { 1 };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n.min(12) * 2 + 1)
        .x_label_formatter(&|x: &f64| {
            // Labels sit at the middle of each category (bar) or on its point (line).
            let i = if bar { x - 0.5 } else { *x };
            let r = i.round();
            if (i - r).abs() > 1e-6 || r < 0.0 || r as usize >= labels.len() || !(r as usize).is_multiple_of(per_label)
            {
                return String::new();
            }
            short(&labels[r as usize], 14)
        })
        .y_label_formatter(&|y: &f64| compact(*y))
        .label_style(label_font.clone())
        .axis_desc_style(label_font.clone())
        .draw()
        .map_err(draw_error)?;
    let k = data.series.len();
    for (j, (name, values)) in data.series.iter().enumerate() {
        let color = PALETTE[j % PALETTE.len()];
        let legend = move |(x, y): (i32, i32)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled());
        if bar {
            let width = 0.8 / k as f64;
            chart
                .draw_series(values.iter().enumerate().filter_map(|(i, v)| {
                    let v = (*v)?;
                    let x0 = i as f64 + 0.1 + j as f64 * width;
                    Some(Rectangle::new([(x0, 0.0), (x0 + width * 0.92, v)], color.filled()))
                }))
                .map_err(draw_error)?
                .label(name.clone())
                .legend(legend);
            continue;
        }
        // A NULL breaks the line.
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (i, v) in values.iter().enumerate() {
            match (v, runs.last_mut()) {
                (Some(v), Some(run)) => run.push((i as f64, *v)),
                _ => runs.push(Vec::new()),
            }
        }
        runs.retain(|r| !r.is_empty());
        chart
            .draw_series(runs.iter().flatten().map(|p| Circle::new(*p, px(3.0), color.filled())))
            .map_err(draw_error)?
            .label(name.clone())
            .legend(legend);
        for run in runs {
            chart.draw_series(LineSeries::new(run, color.stroke_width(px(2.0)))).map_err(draw_error)?;
        }
    }
    if k > 1 {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font(label_font)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(draw_error)?;
    }
    Ok(())
}

/// A funnel: one centred bar per stage, as wide as its value, labelled with it.
fn funnel<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &ChartData,
    px: impl Fn(f64) -> u32,
    caption: TextStyle,
    w: u32,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let (_, values) = &data.series[0];
    let max = values.iter().flatten().fold(0.0f64, |m, v| m.max(*v));
    let area = root.titled(&data.title, caption).map_err(draw_error)?;
    let (_, h) = area.dim_in_pixel();
    let n = data.labels.len() as u32;
    let row = (h.saturating_sub(px(20.0)) / n.max(1)).max(1);
    let label_w = px(170.0) as i32;
    let bar_space = (w as i32 - label_w - px(40.0) as i32).max(10);
    let font = (FAMILY, (row as f64 * 0.45).clamp(9.0, px(16.0) as f64)).into_font();
    for (i, (label, v)) in data.labels.iter().zip(values).enumerate() {
        let v = v.unwrap_or(0.0).max(0.0);
        let bw = if max > 0.0 { (v / max * bar_space as f64).round() as i32 } else { 0 }.max(2);
        let top = px(10.0) as i32 + i as i32 * row as i32;
        let cx = label_w + bar_space / 2;
        let color = PALETTE[i % PALETTE.len()];
        area.draw(&Rectangle::new([(cx - bw / 2, top), (cx + bw / 2, top + row as i32 * 85 / 100)], color.filled()))
            .map_err(draw_error)?;
        let text_y = top + row as i32 * 30 / 100;
        area.draw(&Text::new(short(label, 22), (px(8.0) as i32, text_y), font.clone())).map_err(draw_error)?;
        area.draw(&Text::new(compact(v), (cx + bw / 2 + px(6.0) as i32, text_y), font.clone())).map_err(draw_error)?;
    }
    Ok(())
}

/// A number as axis labels show it: 1.2k, 3.4M, 12.
pub(crate) fn compact(v: f64) -> String {
    let a = v.abs();
    let (x, unit) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let s = if x.fract().abs() < 1e-9 { format!("{x:.0}") } else { format!("{x:.1}") };
    format!("{s}{unit}")
}
