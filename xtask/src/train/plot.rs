//! Pictures a person checks a run by: the loss curves and piano rolls of sample phrases.

use dreamroll::roll::Roll;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

/// plotters draws text only with a registered font; egui's bundled Ubuntu font keeps the
/// trainer free of system font libraries.
fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, epaint_default_fonts::UBUNTU_LIGHT);
    });
}

/// Named series of (step, loss) on one chart.
pub fn loss_chart(path: &Path, title: &str, series: &[(&str, Vec<(f64, f64)>)]) -> anyhow::Result<()> {
    line_chart(path, title, "step", "loss", series)
}

/// Named series of (x, y) on one chart; y as log10 when it spans over a decade, so that the
/// slow part of training is not a flat line under the first steps' fall.
pub fn line_chart(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[(&str, Vec<(f64, f64)>)],
) -> anyhow::Result<()> {
    register_font();
    let finite = |y: f64| y.is_finite();
    let values: Vec<f64> = series.iter().flat_map(|(_, s)| s.iter().map(|p| p.1)).filter(|&y| finite(y)).collect();
    if values.is_empty() {
        return Ok(());
    }
    let (low, high) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &y| (lo.min(y), hi.max(y)));
    let logarithmic = low > 0.0 && high / low > 10.0;
    let scale = |y: f64| if logarithmic { y.log10() } else { y };
    let series: Vec<(&str, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(name, s)| (*name, s.iter().filter(|p| finite(p.1)).map(|&(x, y)| (x, scale(y))).collect()))
        .collect();
    let x_max = series.iter().flat_map(|(_, s)| s.iter().map(|p| p.0)).fold(1.0, f64::max);
    let (y_min, y_max) = (scale(low), scale(high));
    let pad = ((y_max - y_min) * 0.05).max(1e-6);
    let root = BitMapBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max, (y_min - pad)..(y_max + pad))?;
    let y_desc = if logarithmic { format!("log10({y_desc})") } else { y_desc.to_string() };
    chart.configure_mesh().x_desc(x_desc).y_desc(y_desc).label_style(("sans-serif", 14)).draw()?;
    let colours = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    for ((name, values), colour) in series.iter().zip(colours.iter().cycle()) {
        let colour = *colour;
        chart
            .draw_series(LineSeries::new(values.iter().copied(), colour.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(())
}

/// Phrases stacked top to bottom, each a piano roll with bar lines, tracks in their colours.
pub fn piano_rolls(path: &Path, phrases: &[Roll]) -> anyhow::Result<()> {
    register_font();
    let Some(first) = phrases.first() else { return Ok(()) };
    let (steps, pitches) = (first.steps(), first.pitch_count());
    let (cell_w, cell_h) = (6u32, 3u32);
    let (width, height) = (steps as u32 * cell_w, pitches as u32 * cell_h);
    let gap = 8u32;
    let total = (height + gap) * phrases.len() as u32;
    let root = BitMapBackend::new(path, (width, total)).into_drawing_area();
    root.fill(&WHITE)?;
    let colours = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
        RGBColor(255, 127, 14),
    ];
    let bar = first.representation().steps_per_bar();
    for (index, phrase) in phrases.iter().enumerate() {
        let top = index as u32 * (height + gap);
        let area = root.clone().shrink((0, top), (width, height));
        area.fill(&RGBColor(245, 245, 245))?;
        for step in (0..=steps).step_by(bar) {
            let x = (step as u32 * cell_w) as i32;
            area.draw(&PathElement::new(vec![(x, 0), (x, height as i32)], RGBColor(170, 170, 170)))?;
        }
        for note in phrase.notes() {
            let row = phrase.representation().pitch_row(note.pitch).unwrap_or(0);
            let y = (height - (row as u32 + 1) * cell_h) as i32;
            let x0 = (note.start as u32 * cell_w) as i32;
            let x1 = ((note.start + note.length) as u32 * cell_w) as i32 - 1;
            let colour = colours[note.track % colours.len()];
            area.draw(&Rectangle::new([(x0, y), (x1, y + cell_h as i32 - 1)], colour.filled()))?;
        }
    }
    root.present()?;
    Ok(())
}
