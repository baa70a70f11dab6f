//! The loop as a piano roll: bars and beats, notes coloured by track, and the playhead.

use super::TRACK_COLOURS;
use crate::playhead::Playhead;
use crate::schedule::Pattern;
use egui::{self, Color32, Pos2, Rect, Stroke, StrokeKind};

const GROUND: Color32 = Color32::from_rgb(16, 17, 21);
const BAR_LINE: Color32 = Color32::from_rgb(80, 84, 96);
const BEAT_LINE: Color32 = Color32::from_rgb(40, 43, 50);
const CLIP_OUTLINE: Color32 = Color32::from_rgb(235, 235, 235);

/// The producer's clip beside the pattern: drawn as white outlines, over the pattern's notes
/// (vary, harmonise) or before them (continue, whose pattern is what follows the clip).
pub struct ClipView<'a> {
    pub pattern: &'a Pattern,
    pub before: bool,
}

/// `channels[track]` is each model track's MIDI channel, to colour notes by track.
pub fn show(
    ui: &mut egui::Ui,
    pattern: Option<&Pattern>,
    clip: Option<ClipView>,
    channels: &[u8],
    playhead: &Playhead,
    height: f32,
) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(ui.available_width(), height), egui::Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 4.0, GROUND);
    let Some(pattern) = pattern.filter(|p| !p.notes.is_empty()) else {
        painter.text(
            rect.center(),
            egui::Align2::CENTER_CENTER,
            "no notes yet",
            egui::FontId::proportional(14.0),
            Color32::GRAY,
        );
        return;
    };
    let length = |p: &Pattern| p.bars * p.steps_per_bar();
    // Where the pattern starts, and the grid's bars, in the pattern's steps.
    let (offset, bars) = match &clip {
        Some(clip) if clip.before => (length(clip.pattern), clip.pattern.bars + pattern.bars),
        Some(clip) => (0, clip.pattern.bars.max(pattern.bars)),
        None => (0, pattern.bars),
    };
    let steps = (bars * pattern.steps_per_bar()).max(1) as f32;
    let every_note = || pattern.notes.iter().chain(clip.iter().flat_map(|c| &c.pattern.notes));
    let low = every_note().map(|n| n.pitch).min().unwrap_or(60).saturating_sub(2);
    let high = every_note().map(|n| n.pitch).max().unwrap_or(72).saturating_add(2).min(127);
    let rows = f32::from(high - low + 1);
    let x_of = |step: f32| rect.left() + rect.width() * step / steps;
    let y_of = |pitch: u8| rect.bottom() - rect.height() * f32::from(pitch - low + 1) / rows;
    for beat in 0..(bars * u32::from(pattern.meter.numerator)) {
        let x = x_of((beat * pattern.steps_per_beat) as f32);
        let colour = if beat % u32::from(pattern.meter.numerator) == 0 { BAR_LINE } else { BEAT_LINE };
        painter.line_segment([Pos2::new(x, rect.top()), Pos2::new(x, rect.bottom())], Stroke::new(1.0, colour));
    }
    let row_height = (rect.height() / rows).max(2.0);
    let cell = |start: f32, length: f32, pitch: u8| {
        Rect::from_min_max(
            Pos2::new(x_of(start), y_of(pitch)),
            Pos2::new(x_of(start + length) - 1.0, y_of(pitch) + row_height - 1.0),
        )
    };
    let colour_of =
        |channel: u8| TRACK_COLOURS[channels.iter().position(|&c| c == channel).unwrap_or(0) % TRACK_COLOURS.len()];
    for note in &pattern.notes {
        let start = (offset + note.start) as f32 + f32::from(note.delay) / 256.0;
        let colour = colour_of(note.channel).gamma_multiply(0.45 + 0.55 * f32::from(note.velocity) / 127.0);
        painter.rect_filled(cell(start, note.length as f32, note.pitch), 1.5, colour);
    }
    // Over the pattern, in white, so that a clip note is seen where the pattern keeps it too.
    if let Some(clip) = &clip {
        for note in &clip.pattern.notes {
            painter.rect_stroke(
                cell(note.start as f32, note.length as f32, note.pitch),
                1.5,
                Stroke::new(1.5, CLIP_OUTLINE),
                StrokeKind::Outside,
            );
        }
    }
    let x = x_of(offset as f32 + (playhead.position() / pattern.quarters_per_step()) as f32);
    painter.line_segment([Pos2::new(x, rect.top()), Pos2::new(x, rect.bottom())], Stroke::new(2.0, Color32::WHITE));
    painter.rect_stroke(rect, 4.0, Stroke::new(1.0, BAR_LINE), StrokeKind::Inside);
}
