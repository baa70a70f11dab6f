//! The loop as a piano roll a producer reads: a keyboard strip with note names, bar and beat
//! numbers over the grid, the loop's length, the playing bar marked, notes coloured as their
//! part is in the track list, and a note's name, velocity and part on hover.

use super::TRACK_COLOURS;
use crate::playhead::Playhead;
use crate::schedule::{Pattern, PatternNote};
use egui::{self, Align2, Color32, FontId, Pos2, Rect, Stroke, StrokeKind};

const GROUND: Color32 = Color32::from_rgb(16, 17, 21);
const BAR_LINE: Color32 = Color32::from_rgb(80, 84, 96);
const BEAT_LINE: Color32 = Color32::from_rgb(40, 43, 50);
const CLIP_OUTLINE: Color32 = Color32::from_rgb(235, 235, 235);
const WHITE_KEY: Color32 = Color32::from_rgb(58, 61, 70);
const BLACK_KEY: Color32 = Color32::from_rgb(30, 32, 38);
const LABEL: Color32 = Color32::from_rgb(170, 174, 186);
const PLAYING_BAR: Color32 = Color32::from_rgb(60, 66, 84);
/// The keyboard strip's width and the bar ruler's height, in points.
const KEYBOARD: f32 = 38.0;
const RULER: f32 = 16.0;

/// The producer's clip beside the pattern: drawn as white outlines, over the pattern's notes
/// (vary, harmonise) or before them (continue, whose pattern is what follows the clip).
pub struct ClipView<'a> {
    pub pattern: &'a Pattern,
    pub before: bool,
}

/// One of the model's parts as the track list shows it: its name and the MIDI channels its
/// notes go out on. The n-th part takes the n-th track colour, here as there.
pub struct RollPart<'a> {
    pub name: &'a str,
    pub channels: Vec<u8>,
}

const NOTE_NAMES: [&str; 12] = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"];

/// A pitch as a DAW names it: middle C (60) is C4.
pub fn note_name(pitch: u8) -> String {
    format!("{}{}", NOTE_NAMES[usize::from(pitch % 12)], i32::from(pitch / 12) - 1)
}

/// General MIDI's percussion names (channel 10), from 35 to 81.
const GM_DRUMS: [&str; 47] = [
    "Acoustic kick",
    "Kick",
    "Side stick",
    "Snare",
    "Hand clap",
    "Electric snare",
    "Low floor tom",
    "Closed hi-hat",
    "High floor tom",
    "Pedal hi-hat",
    "Low tom",
    "Open hi-hat",
    "Low-mid tom",
    "High-mid tom",
    "Crash 1",
    "High tom",
    "Ride 1",
    "Chinese cymbal",
    "Ride bell",
    "Tambourine",
    "Splash",
    "Cowbell",
    "Crash 2",
    "Vibraslap",
    "Ride 2",
    "High bongo",
    "Low bongo",
    "Mute high conga",
    "Open high conga",
    "Low conga",
    "High timbale",
    "Low timbale",
    "High agogo",
    "Low agogo",
    "Cabasa",
    "Maracas",
    "Short whistle",
    "Long whistle",
    "Short guiro",
    "Long guiro",
    "Claves",
    "High wood block",
    "Low wood block",
    "Mute cuica",
    "Open cuica",
    "Mute triangle",
    "Open triangle",
];

/// What a note is called where it sounds: a drum sound by its General MIDI name on channel 10
/// (index 9), any other note by its pitch.
pub fn sound_name(channel: u8, pitch: u8) -> String {
    match (channel, pitch.checked_sub(35).and_then(|i| GM_DRUMS.get(usize::from(i)))) {
        (9, Some(drum)) => format!("{drum} ({pitch})"),
        _ => note_name(pitch),
    }
}

/// The index of the part whose notes go out on `channel` (the first, where parts share one).
fn part_of(parts: &[RollPart], channel: u8) -> Option<usize> {
    parts.iter().position(|part| part.channels.contains(&channel))
}

/// The grid's geometry: steps across, pitches up, inside `grid` (the rect right of the
/// keyboard, under the ruler).
struct Grid {
    rect: Rect,
    steps: f32,
    low: u8,
    rows: f32,
}

impl Grid {
    fn x(&self, step: f32) -> f32 {
        self.rect.left() + self.rect.width() * step / self.steps
    }

    /// The top of `pitch`'s row.
    fn y(&self, pitch: u8) -> f32 {
        self.rect.bottom() - self.rect.height() * f32::from(pitch - self.low + 1) / self.rows
    }

    fn row_height(&self) -> f32 {
        self.rect.height() / self.rows
    }

    fn cell(&self, start: f32, length: f32, pitch: u8) -> Rect {
        Rect::from_min_max(
            Pos2::new(self.x(start), self.y(pitch)),
            Pos2::new(self.x(start + length) - 1.0, self.y(pitch) + self.row_height().max(2.0) - 1.0),
        )
    }
}

/// The pattern's note under `pointer`, if any (the last drawn, which is on top). A note drawn
/// thinner than a pointer can aim at (a wide range squeezes rows to a few points) is found
/// within `AIM` of its middle row.
fn note_under<'a>(grid: &Grid, pattern: &'a Pattern, offset: u32, pointer: Pos2) -> Option<&'a PatternNote> {
    const AIM: f32 = 6.0;
    let grow = ((AIM - grid.row_height()) / 2.0).max(0.0);
    pattern.notes.iter().rev().find(|note| {
        let start = (offset + note.start) as f32 + f32::from(note.delay) / 256.0;
        grid.cell(start, note.length as f32, note.pitch).expand2(egui::vec2(0.0, grow)).contains(pointer)
    })
}

pub fn show(
    ui: &mut egui::Ui,
    pattern: Option<&Pattern>,
    clip: Option<ClipView>,
    parts: &[RollPart],
    playhead: &Playhead,
    height: f32,
) {
    let (rect, response) = ui.allocate_exact_size(egui::vec2(ui.available_width(), height), egui::Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 4.0, GROUND);
    let Some(pattern) = pattern.filter(|p| !p.notes.is_empty()) else {
        painter.text(rect.center(), Align2::CENTER_CENTER, "no notes yet", FontId::proportional(14.0), Color32::GRAY);
        return;
    };
    let length = |p: &Pattern| p.bars * p.steps_per_bar();
    // Where the pattern starts, and the grid's bars, in the pattern's steps.
    let (offset, bars) = match &clip {
        Some(clip) if clip.before => (length(clip.pattern), clip.pattern.bars + pattern.bars),
        Some(clip) => (0, clip.pattern.bars.max(pattern.bars)),
        None => (0, pattern.bars),
    };
    // The view fits the pitches in use, a step of room above and below.
    let every_note = || pattern.notes.iter().chain(clip.iter().flat_map(|c| &c.pattern.notes));
    let low = every_note().map(|n| n.pitch).min().unwrap_or(60).saturating_sub(2);
    let high = every_note().map(|n| n.pitch).max().unwrap_or(72).saturating_add(2).min(127);
    let grid = Grid {
        rect: Rect::from_min_max(Pos2::new(rect.left() + KEYBOARD, rect.top() + RULER), rect.max),
        steps: (bars * pattern.steps_per_bar()).max(1) as f32,
        low,
        rows: f32::from(high - low + 1),
    };
    let (beats_per_bar, steps_per_beat, bar_steps) =
        (u32::from(pattern.meter.numerator), pattern.steps_per_beat, pattern.steps_per_bar());
    let playhead_step = offset as f32 + (playhead.position() / pattern.quarters_per_step()) as f32;
    let playing = playhead.playing.load(std::sync::atomic::Ordering::Relaxed);
    let small = FontId::proportional(10.0);

    // Keyboard strip: black and white keys, every C named, every row once there is room.
    let name_every_row = grid.row_height() >= 11.0;
    for pitch in low..=high {
        let key = Rect::from_min_max(
            Pos2::new(rect.left(), grid.y(pitch)),
            Pos2::new(grid.rect.left() - 1.0, grid.y(pitch) + grid.row_height()),
        );
        let black = matches!(pitch % 12, 1 | 3 | 6 | 8 | 10);
        painter.rect_filled(key.shrink2(egui::vec2(0.0, 0.25)), 0.0, if black { BLACK_KEY } else { WHITE_KEY });
        if pitch % 12 == 0 || name_every_row {
            let font = FontId::proportional(grid.row_height().clamp(8.0, 10.0));
            painter.text(key.left_center() + egui::vec2(2.0, 0.0), Align2::LEFT_CENTER, note_name(pitch), font, LABEL);
        }
    }

    // Ruler: the playing bar marked, bar numbers, and beat numbers where a beat has room.
    let beat_width = grid.rect.width() / (bars * beats_per_bar).max(1) as f32;
    for bar in 0..bars {
        let (first, next) = ((bar * bar_steps) as f32, ((bar + 1) * bar_steps) as f32);
        let (left, right) = (grid.x(first), grid.x(next));
        let cell = Rect::from_min_max(Pos2::new(left, rect.top()), Pos2::new(right, grid.rect.top()));
        if playing && (first..next).contains(&playhead_step) {
            painter.rect_filled(cell, 0.0, PLAYING_BAR);
            painter.rect_filled(
                Rect::from_min_max(Pos2::new(left, grid.rect.top()), Pos2::new(right, grid.rect.bottom())),
                0.0,
                PLAYING_BAR.gamma_multiply(0.25),
            );
        }
        painter.text(
            cell.left_center() + egui::vec2(3.0, 0.0),
            Align2::LEFT_CENTER,
            format!("{}", bar + 1),
            small.clone(),
            Color32::WHITE,
        );
        if beat_width >= 22.0 {
            for beat in 1..beats_per_bar {
                let x = grid.x((bar * bar_steps + beat * steps_per_beat) as f32);
                if x + 2.0 * beat_width > rect.right() + 8.0 {
                    // The ruler's end shows the meter.
                    continue;
                }
                painter.text(
                    Pos2::new(x + 2.0, cell.center().y),
                    Align2::LEFT_CENTER,
                    format!("{}.{}", bar + 1, beat + 1),
                    small.clone(),
                    LABEL,
                );
            }
        }
    }
    // The loop's length in the corner over the keyboard, its meter at the ruler's end.
    let bars_text = format!("{} bar{}", pattern.bars, if pattern.bars == 1 { "" } else { "s" });
    painter.text(
        Pos2::new(rect.left() + 2.0, rect.top() + RULER / 2.0),
        Align2::LEFT_CENTER,
        bars_text,
        small.clone(),
        LABEL,
    );
    let meter_text = format!("{}/{}", pattern.meter.numerator, pattern.meter.denominator);
    painter.text(
        Pos2::new(rect.right() - 4.0, rect.top() + RULER / 2.0),
        Align2::RIGHT_CENTER,
        meter_text,
        small.clone(),
        LABEL,
    );

    // Grid lines.
    for beat in 0..=(bars * beats_per_bar) {
        let x = grid.x((beat * steps_per_beat) as f32);
        let colour = if beat % beats_per_bar == 0 { BAR_LINE } else { BEAT_LINE };
        painter.line_segment([Pos2::new(x, rect.top()), Pos2::new(x, rect.bottom())], Stroke::new(1.0, colour));
    }

    // Notes, coloured by part, brighter the louder.
    let colour_of = |channel: u8| TRACK_COLOURS[part_of(parts, channel).unwrap_or(0) % TRACK_COLOURS.len()];
    for note in &pattern.notes {
        let start = (offset + note.start) as f32 + f32::from(note.delay) / 256.0;
        let colour = colour_of(note.channel).gamma_multiply(0.45 + 0.55 * f32::from(note.velocity) / 127.0);
        painter.rect_filled(grid.cell(start, note.length as f32, note.pitch), 1.5, colour);
    }
    // Over the pattern, in white, so that a clip note is seen where the pattern keeps it too.
    if let Some(clip) = &clip {
        for note in &clip.pattern.notes {
            painter.rect_stroke(
                grid.cell(note.start as f32, note.length as f32, note.pitch),
                1.5,
                Stroke::new(1.5, CLIP_OUTLINE),
                StrokeKind::Outside,
            );
        }
    }
    let x = grid.x(playhead_step);
    painter
        .line_segment([Pos2::new(x, grid.rect.top()), Pos2::new(x, rect.bottom())], Stroke::new(2.0, Color32::WHITE));
    painter.rect_stroke(rect, 4.0, Stroke::new(1.0, BAR_LINE), StrokeKind::Inside);

    if let Some(note) = response.hover_pos().and_then(|pointer| note_under(&grid, pattern, offset, pointer)) {
        let part = part_of(parts, note.channel).map_or("", |p| parts[p].name);
        let (bar, beat) = (note.start / bar_steps + 1, note.start % bar_steps / steps_per_beat + 1);
        response.on_hover_text(format!(
            "{} · velocity {} · {part} · bar {bar}, beat {beat}",
            sound_name(note.channel, note.pitch),
            note.velocity
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roll::Meter;

    #[test]
    fn notes_are_named_as_a_daw_names_them_and_drums_by_their_general_midi_sound() {
        assert_eq!(note_name(60), "C4");
        assert_eq!(note_name(61), "C#4");
        assert_eq!(note_name(21), "A0");
        assert_eq!(note_name(0), "C-1");
        assert_eq!(sound_name(9, 36), "Kick (36)");
        assert_eq!(sound_name(9, 42), "Closed hi-hat (42)");
        assert_eq!(sound_name(9, 81), "Open triangle (81)");
        assert_eq!(sound_name(9, 20), "Ab0", "outside General MIDI's kit: a pitch");
        assert_eq!(sound_name(0, 36), "C2", "channel 1 is no drum channel");
    }

    #[test]
    fn a_note_takes_the_colour_of_the_part_that_plays_its_channel() {
        let parts = [
            RollPart { name: "Comp", channels: vec![1] },
            RollPart { name: "Bass", channels: vec![0] },
            RollPart { name: "Drums", channels: vec![9] },
        ];
        assert_eq!(part_of(&parts, 9), Some(2));
        assert_eq!(part_of(&parts, 0), Some(1));
        assert_eq!(part_of(&parts, 5), None);
    }

    #[test]
    fn the_pointer_finds_the_note_it_is_over() {
        let note = |start, pitch| PatternNote { start, length: 2, channel: 0, pitch, velocity: 90, delay: 0 };
        let pattern = Pattern {
            steps_per_beat: 4,
            meter: Meter::COMMON,
            bars: 1,
            notes: vec![note(0, 60), note(4, 64)],
            swing: Default::default(),
        };
        // 16 steps over 160 points, pitches 58..=66 over 90 points: 10 points a step and a row.
        let grid =
            Grid { rect: Rect::from_min_size(Pos2::ZERO, egui::vec2(160.0, 90.0)), steps: 16.0, low: 58, rows: 9.0 };
        let centre = |step: f32, pitch: u8| Pos2::new(grid.x(step) + 5.0, grid.y(pitch) + 5.0);
        assert_eq!(note_under(&grid, &pattern, 0, centre(4.0, 64)).map(|n| n.pitch), Some(64));
        assert_eq!(note_under(&grid, &pattern, 0, centre(0.0, 60)).map(|n| n.start), Some(0));
        assert!(note_under(&grid, &pattern, 0, centre(8.0, 64)).is_none(), "past the note's end");
        assert!(note_under(&grid, &pattern, 0, centre(0.0, 61)).is_none(), "a row above it");
        assert_eq!(
            note_under(&grid, &pattern, 8, centre(12.0, 64)).map(|n| n.pitch),
            Some(64),
            "after a clip of 8 steps"
        );
        // Rows of 1 point: a note is found 2 points off its row, not 4.
        let squeezed = Grid { rect: Rect::from_min_size(Pos2::ZERO, egui::vec2(160.0, 9.0)), ..grid };
        let row_middle = squeezed.y(64) + 0.5;
        let at = |dy: f32| note_under(&squeezed, &pattern, 0, Pos2::new(squeezed.x(4.0) + 5.0, row_middle + dy));
        assert_eq!(at(2.0).map(|n| n.pitch), Some(64));
        assert!(at(-4.0).is_none());
    }
}
