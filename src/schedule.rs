//! From a looping pattern and the host's transport to sample-accurate note events.
//!
//! Everything here is plain data and arithmetic, with no plugin framework in sight, so that
//! every promise the audio thread makes (notes on the host's grid, no stuck notes, offline
//! bounce equal to real-time play) is tested without a host. Nothing allocates after
//! construction: [`Scheduler::process`] writes into a fixed buffer.
//!
//! How a pattern meets the host's bars: pattern bar `b mod bars` plays in host bar `b`. When
//! the host's meter differs from the pattern's, each pattern bar is cut short (steps past the
//! host bar's end are dropped) or followed by silence (a longer host bar), and every note is
//! clipped at the end of its host bar; with equal meters, notes sound as written, across bar
//! lines too.

use crate::roll::swing::Swing;
use crate::roll::Meter;

/// One note of a pattern, in grid steps from the start of the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PatternNote {
    pub start: u32,
    pub length: u32,
    pub channel: u8,
    pub pitch: u8,
    pub velocity: u8,
    /// How late the note plays, in 1/256ths of a step (timing humanise); whole numbers keep
    /// the pattern exactly comparable and serialisable.
    #[serde(default)]
    pub delay: u8,
}

/// Most a note may be delayed: a quarter of a step keeps every note inside its own step.
pub const MAX_DELAY: u8 = 64;

/// A loop of notes, built off the audio thread.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Pattern {
    pub steps_per_beat: u32,
    pub meter: Meter,
    pub bars: u32,
    /// Sorted by start.
    pub notes: Vec<PatternNote>,
    /// How the notes' grid positions are played (patterns from before swing play straight).
    #[serde(default)]
    pub swing: Swing,
}

impl Pattern {
    pub fn steps_per_bar(&self) -> u32 {
        self.steps_per_beat * u32::from(self.meter.numerator)
    }

    /// A step's length in quarter notes.
    pub fn quarters_per_step(&self) -> f64 {
        4.0 / (f64::from(self.meter.denominator) * f64::from(self.steps_per_beat))
    }
}

/// The host's timeline over one block of samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub playing: bool,
    pub sample_rate: f64,
    /// Quarter notes per minute.
    pub tempo: f64,
    /// Position of the block's first sample, in quarter notes from the song's start.
    pub start: f64,
    /// Start of the bar that holds `start`, in quarter notes.
    pub bar_start: f64,
    /// Index of that bar (0 is the song's first bar).
    pub bar_number: i64,
    pub meter: Meter,
    pub samples: u32,
}

impl Window {
    fn samples_per_quarter(&self) -> f64 {
        self.sample_rate * 60.0 / self.tempo
    }

    /// Where the block ends, in quarter notes.
    pub fn end(&self) -> f64 {
        self.start + f64::from(self.samples) / self.samples_per_quarter()
    }

    fn bar_quarters(&self) -> f64 {
        self.meter.quarters_per_bar()
    }

    /// The block-relative sample of a position: one rule for every block, so that an event
    /// belongs to exactly one of two adjacent blocks.
    fn offset_of(&self, quarters: f64) -> i64 {
        ((quarters - self.start) * self.samples_per_quarter()).round() as i64
    }
}

/// A note event at a sample offset inside the block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoteEvent {
    pub offset: u32,
    pub channel: u8,
    pub pitch: u8,
    /// 0 for a note-off.
    pub velocity: u8,
}

impl NoteEvent {
    pub fn is_on(&self) -> bool {
        self.velocity > 0
    }
}

/// Sorts events by offset, note-offs before note-ons at one offset, keeping the order of
/// equal events (one key's note-off and its next note-on). An insertion sort: it never
/// allocates, which the standard stable sort may on the audio thread, and a block's events
/// arrive nearly sorted, so it is close to linear.
pub fn sort_events(events: &mut [NoteEvent]) {
    let key = |e: &NoteEvent| (e.offset, e.is_on());
    for i in 1..events.len() {
        let mut j = i;
        while j > 0 && key(&events[j - 1]) > key(&events[j]) {
            events.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// A pattern note placed on the host's timeline, in quarter notes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimedNote {
    pub start: f64,
    pub end: f64,
    pub channel: u8,
    pub pitch: u8,
    pub velocity: u8,
}

/// Every pattern note whose onset lies in `[from, to)` quarter notes, for the window's bar
/// grid. Allocation-free: an iterator over the host bars the range touches, which looks at no
/// more than [`MOST_NOTES_LOOKED_AT`] notes however the pattern piles them up.
pub fn notes_starting<'a>(
    pattern: &'a Pattern,
    window: &Window,
    from: f64,
    to: f64,
) -> impl Iterator<Item = TimedNote> + 'a {
    let bar_quarters = window.bar_quarters();
    let step = pattern.quarters_per_step();
    let pattern_bar_quarters = f64::from(pattern.steps_per_bar()) * step;
    let same_meter = (pattern_bar_quarters - bar_quarters).abs() < 1e-9;
    let steps_per_bar = pattern.steps_per_bar();
    let (bar_start, bar_number) = (window.bar_start, window.bar_number);
    let first_bar = bar_number + ((from - bar_start) / bar_quarters).floor() as i64;
    let last_bar = bar_number + ((to - bar_start) / bar_quarters).ceil() as i64;
    let loop_bars = i64::from(pattern.bars.max(1));
    let swing = pattern.swing;
    let reach_back = match swing == Swing::STRAIGHT {
        true => 1,
        false => 1 + (Swing::MOST_DELAY_QUARTERS / step).ceil() as u32,
    };
    (first_bar..=last_bar)
        .flat_map(move |host_bar| {
            let host_bar_start = bar_start + (host_bar - bar_number) as f64 * bar_quarters;
            let pattern_bar = host_bar.rem_euclid(loop_bars) as u32;
            let (first_step, last_step) = (pattern_bar * steps_per_bar, (pattern_bar + 1) * steps_per_bar);
            // Only the steps the window can reach (a step either side for rounding, and before
            // it as many as swing delays a note by), found by bisection in the sorted notes: a
            // one-sample block looks at a note or two, not all.
            let step_at = |quarters: f64| ((quarters - host_bar_start) / step).floor();
            let low = first_step + step_at(from).clamp(0.0, f64::from(steps_per_bar)) as u32;
            let high = first_step + (step_at(to) + 2.0).clamp(0.0, f64::from(steps_per_bar)) as u32;
            let (low, high) = (low.saturating_sub(reach_back).max(first_step), high.min(last_step));
            let begin = pattern.notes.partition_point(|n| n.start < low);
            let end = pattern.notes.partition_point(|n| n.start < high).max(begin);
            pattern.notes[begin..end].iter().map(move |note| (host_bar_start, first_step, note))
        })
        .take(MOST_NOTES_LOOKED_AT)
        .filter_map(move |(host_bar_start, first_step, note)| {
            let within = f64::from(note.start - first_step) * step;
            if !same_meter && within >= bar_quarters - 1e-9 {
                return None;
            }
            let delay = f64::from(note.delay.min(MAX_DELAY)) / 256.0 * step;
            let start = host_bar_start + swing.place(within, pattern_bar_quarters) + delay;
            let release = within + f64::from(note.length) * step;
            let mut end = host_bar_start + swing.place(release, pattern_bar_quarters) + delay;
            if !same_meter {
                end = end.min(host_bar_start + bar_quarters);
            }
            (start >= from && start < to).then_some(TimedNote {
                start,
                end,
                channel: note.channel,
                pitch: note.pitch,
                velocity: note.velocity,
            })
        })
}

/// Most pattern notes one block looks at: twice the onsets a block can carry, so that notes
/// piled on the step before a block (looked at for rounding) never crowd out its own.
pub const MOST_NOTES_LOOKED_AT: usize = 2 * MAX_EVENTS;

/// Most host bars one block may span, and the farthest position (in quarter notes either side
/// of the song's start) a block may start at, for it to be played. A block beyond either is
/// played as if the transport were stopped, so that the work of a block (bars walked, onsets
/// placed) is bounded whatever tempo, sample rate or position a host sends; music lives far
/// inside both (1 024 bars in a block is 8 192 samples at 1 Hz and 240 BPM, or 2^40 quarters
/// 17 000 years at 120 BPM, where an `f64` still resolves a sample).
pub const MOST_BARS_PER_BLOCK: f64 = 1024.0;
pub const FARTHEST_QUARTER: f64 = (1u64 << 40) as f64;

impl Window {
    /// Whether the block can be played with bounded work: see [`MOST_BARS_PER_BLOCK`]. Its
    /// bar must also hold its start (as [`crate::plugin::window_from`] makes sure): a bar line
    /// far behind the position would have the capture walk every bar in between.
    pub fn is_playable(&self) -> bool {
        let span = f64::from(self.samples) * self.tempo / (60.0 * self.sample_rate);
        let within = |quarters: f64| quarters.abs() <= FARTHEST_QUARTER;
        let into_bar = self.start - self.bar_start;
        self.sample_rate >= 1.0
            && self.tempo > 0.0
            && within(self.start)
            && within(self.bar_start)
            && (-1e-6..self.bar_quarters() + 1e-6).contains(&into_bar)
            && self.bar_number.unsigned_abs() <= FARTHEST_QUARTER as u64
            && span <= MOST_BARS_PER_BLOCK * self.bar_quarters()
    }
}

/// Most notes a scheduler keeps sounding at once; more would be a broken pattern.
pub const MAX_ACTIVE: usize = 512;
/// Most events one block can carry.
pub const MAX_EVENTS: usize = 2048;

#[derive(Clone, Copy, Debug, PartialEq)]
struct Active {
    channel: u8,
    pitch: u8,
    /// Quarter notes.
    start: f64,
    end: f64,
}

/// The audio thread's side: which notes it owes a note-off, and where the last block ended.
pub struct Scheduler {
    active: [Option<Active>; MAX_ACTIVE],
    events: [NoteEvent; MAX_EVENTS],
    event_count: usize,
    /// Where the previous block ended, while playing.
    expected_start: Option<f64>,
    /// Events that did not fit in a block (note-ons only; note-offs always fit).
    pub dropped: u64,
}

impl Default for Scheduler {
    fn default() -> Self {
        Scheduler::new()
    }
}

/// How far a block may start from where the last one ended before it counts as a jump
/// (a seek or a loop wrap): well under one sample at any tempo and rate a host uses.
const JUMP_TOLERANCE_QUARTERS: f64 = 1e-6;

impl Scheduler {
    pub fn new() -> Scheduler {
        Scheduler {
            active: [None; MAX_ACTIVE],
            events: [NoteEvent { offset: 0, channel: 0, pitch: 0, velocity: 0 }; MAX_EVENTS],
            event_count: 0,
            expected_start: None,
            dropped: 0,
        }
    }

    /// Notes sounding now.
    pub fn active_count(&self) -> usize {
        self.active.iter().flatten().count()
    }

    fn push(&mut self, event: NoteEvent) -> bool {
        if self.event_count == MAX_EVENTS {
            return false;
        }
        self.events[self.event_count] = event;
        self.event_count += 1;
        true
    }

    /// Ends every sounding note at `offset`: for stop, seek, pattern swap, bypass, deactivate.
    fn release_all(&mut self, offset: u32) {
        for slot in 0..MAX_ACTIVE {
            if let Some(note) = self.active[slot].take() {
                // Offs were reserved room for when their note started.
                let _ = self.push(NoteEvent { offset, channel: note.channel, pitch: note.pitch, velocity: 0 });
            }
        }
    }

    /// Note-offs for the sounding notes that end at or before `offset` in this block.
    fn release_due(&mut self, window: &Window, offset: i64) {
        for slot in 0..MAX_ACTIVE {
            if let Some(note) = self.active[slot] {
                let end = window.offset_of(note.end);
                if end <= offset {
                    self.active[slot] = None;
                    let _ = self.push(NoteEvent {
                        offset: end.max(0) as u32,
                        channel: note.channel,
                        pitch: note.pitch,
                        velocity: 0,
                    });
                }
            }
        }
    }

    /// The note-offs owed, all at the first sample (for when there is no timeline at all:
    /// bypass, deactivate, a sample-rate change).
    pub fn panic(&mut self) -> &[NoteEvent] {
        self.event_count = 0;
        self.release_all(0);
        self.expected_start = None;
        &self.events[..self.event_count]
    }

    /// The events of one block, sorted by offset, note-offs before note-ons at one offset.
    /// `pattern_changed` says the pattern is not the one the last block played: notes still
    /// sounding from it are ended at the block's start.
    pub fn process(&mut self, pattern: &Pattern, window: &Window, pattern_changed: bool) -> &[NoteEvent] {
        self.event_count = 0;
        let valid = window.playing && window.samples > 0 && window.is_playable();
        if !valid {
            self.release_all(0);
            self.expected_start = None;
            return &self.events[..self.event_count];
        }
        let jumped =
            self.expected_start.is_none_or(|expected| (expected - window.start).abs() > JUMP_TOLERANCE_QUARTERS);
        if jumped || pattern_changed {
            self.release_all(0);
        }
        let (from, to) = (window.start, window.end());
        // Onsets in time order; before each, the note-offs due by then, and the key's own
        // sounding note if the pattern strikes it again.
        for note in notes_starting(pattern, window, from - 1.0 / window.samples_per_quarter(), to) {
            let offset = window.offset_of(note.start);
            if offset < 0 || offset >= i64::from(window.samples) {
                continue;
            }
            self.release_due(window, offset);
            let same_key =
                self.active.iter().position(|a| a.is_some_and(|a| a.channel == note.channel && a.pitch == note.pitch));
            if let Some(slot) = same_key {
                let mut sounding = self.active[slot].expect("found above");
                if window.offset_of(sounding.start) == offset {
                    // Struck twice on one sample: one note, as long as the longer.
                    sounding.end = sounding.end.max(note.end);
                    self.active[slot] = Some(sounding);
                    continue;
                }
                self.active[slot] = None;
                let _ = self.push(NoteEvent {
                    offset: offset as u32,
                    channel: note.channel,
                    pitch: note.pitch,
                    velocity: 0,
                });
            }
            let offset = offset as u32;
            let Some(slot) = self.active.iter().position(Option::is_none) else {
                self.dropped += 1;
                continue;
            };
            // Room for the on and its off, so that an off is never the event that does not fit.
            if self.event_count + 2 + self.active_count() > MAX_EVENTS {
                self.dropped += 1;
                continue;
            }
            self.push(NoteEvent { offset, channel: note.channel, pitch: note.pitch, velocity: note.velocity });
            // Every note sounds for at least one sample.
            let end = note.end.max(note.start + 1.0 / window.samples_per_quarter());
            self.active[slot] = Some(Active { channel: note.channel, pitch: note.pitch, start: note.start, end });
        }
        self.release_due(window, i64::from(window.samples) - 1);
        self.expected_start = Some(to);
        sort_events(&mut self.events[..self.event_count]);
        &self.events[..self.event_count]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn four_four(notes: Vec<PatternNote>, bars: u32) -> Pattern {
        Pattern { steps_per_beat: 4, meter: Meter::COMMON, bars, notes, swing: Swing::STRAIGHT }
    }

    fn note(start: u32, length: u32, pitch: u8) -> PatternNote {
        PatternNote { start, length, channel: 0, pitch, velocity: 100, delay: 0 }
    }

    fn window(start: f64, samples: u32) -> Window {
        Window {
            playing: true,
            sample_rate: 48_000.0,
            tempo: 120.0,
            start,
            bar_start: (start / 4.0).floor() * 4.0,
            bar_number: (start / 4.0).floor() as i64,
            meter: Meter::COMMON,
            samples,
        }
    }

    /// Plays `blocks` consecutive blocks of `size` samples from the song's start; returns
    /// (absolute sample, event).
    fn play(scheduler: &mut Scheduler, pattern: &Pattern, mut window: Window, sizes: &[u32]) -> Vec<(u64, NoteEvent)> {
        let mut out = Vec::new();
        let mut position = 0u64;
        let samples_per_quarter = window.sample_rate * 60.0 / window.tempo;
        for &size in sizes {
            window.samples = size;
            window.start = position as f64 / samples_per_quarter;
            let bar_quarters = window.bar_quarters();
            window.bar_number = (window.start / bar_quarters).floor() as i64;
            window.bar_start = window.bar_number as f64 * bar_quarters;
            for event in scheduler.process(pattern, &window, false) {
                out.push((position + u64::from(event.offset), *event));
            }
            position += u64::from(size);
        }
        out
    }

    #[test]
    fn a_humanised_note_plays_its_delay_late_and_keeps_its_length() {
        // A 16th is 6 000 samples at 120 BPM and 48 kHz; a delay of 64/256 step is 1 500.
        let mut late = note(4, 2, 60);
        late.delay = 64;
        let pattern = four_four(vec![late], 1);
        let events = play(&mut Scheduler::new(), &pattern, window(0.0, 0), &[700; 60]);
        let first: Vec<(u64, bool)> = events.iter().take(2).map(|e| (e.0, e.1.is_on())).collect();
        assert_eq!(first, vec![(24_000 + 1_500, true), (24_000 + 1_500 + 12_000, false)]);
    }

    #[test]
    fn grid_steps_land_on_exact_samples() {
        // At 120 BPM and 48 kHz a quarter is 24 000 samples, a 16th 6 000.
        let pattern = four_four(vec![note(0, 4, 60), note(5, 1, 62)], 1);
        let events = play(&mut Scheduler::new(), &pattern, window(0.0, 0), &[512; 300]);
        let ons: Vec<(u64, u8)> = events.iter().filter(|e| e.1.is_on()).map(|e| (e.0, e.1.pitch)).collect();
        assert_eq!(&ons[..4], &[(0, 60), (30_000, 62), (96_000, 60), (126_000, 62)]);
        let offs: Vec<(u64, u8)> = events.iter().filter(|e| !e.1.is_on()).map(|e| (e.0, e.1.pitch)).collect();
        assert_eq!(&offs[..2], &[(24_000, 60), (36_000, 62)]);
    }

    #[test]
    fn block_size_changes_nothing() {
        let pattern = four_four(vec![note(0, 3, 60), note(3, 5, 64), note(8, 8, 67), note(14, 4, 71)], 2);
        let absolute = |events: Vec<(u64, NoteEvent)>, total: u64| -> Vec<(u64, u8, u8)> {
            events.into_iter().filter(|e| e.0 < total).map(|(at, e)| (at, e.pitch, e.velocity)).collect()
        };
        let reference = play(&mut Scheduler::new(), &pattern, window(0.0, 0), &[48_000; 10]);
        for sizes in [vec![1u32; 20_000], vec![7; 3000], vec![8192; 58]] {
            let total: u64 = sizes.iter().map(|&s| u64::from(s)).sum::<u64>().min(480_000);
            let got = play(&mut Scheduler::new(), &pattern, window(0.0, 0), &sizes);
            assert_eq!(absolute(got, total), absolute(reference.clone(), total), "blocks of {}", sizes[0]);
        }
    }

    #[test]
    fn stop_releases_every_sounding_note() {
        let pattern = four_four(vec![note(0, 16, 60), note(0, 16, 64)], 1);
        let mut scheduler = Scheduler::new();
        let ons = scheduler.process(&pattern, &window(0.0, 512), false).to_vec();
        assert_eq!(ons.iter().filter(|e| e.is_on()).count(), 2);
        let mut stopped = window(512.0 / 24_000.0, 512);
        stopped.playing = false;
        let offs = scheduler.process(&pattern, &stopped, false).to_vec();
        assert_eq!(offs.len(), 2);
        assert!(offs.iter().all(|e| !e.is_on() && e.offset == 0));
        assert_eq!(scheduler.active_count(), 0);
    }

    #[test]
    fn a_seek_releases_then_plays_from_the_new_place() {
        let pattern = four_four(vec![note(0, 16, 60), note(8, 8, 67)], 1);
        let mut scheduler = Scheduler::new();
        scheduler.process(&pattern, &window(0.0, 512), false);
        // Jump to beat 2 of bar 5: the held C ends, nothing new starts until the G at beat 2... exactly here.
        let events = scheduler.process(&pattern, &window(22.0, 512), false).to_vec();
        assert_eq!(events[0], NoteEvent { offset: 0, channel: 0, pitch: 60, velocity: 0 });
        assert_eq!(events[1], NoteEvent { offset: 0, channel: 0, pitch: 67, velocity: 100 });
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn a_pattern_swap_ends_the_old_notes() {
        let old = four_four(vec![note(0, 16, 60)], 1);
        let new = four_four(vec![note(4, 4, 72)], 1);
        let mut scheduler = Scheduler::new();
        scheduler.process(&old, &window(0.0, 512), false);
        let events = scheduler.process(&new, &window(512.0 / 24_000.0, 512), true).to_vec();
        assert_eq!(events, vec![NoteEvent { offset: 0, channel: 0, pitch: 60, velocity: 0 }]);
        assert_eq!(scheduler.active_count(), 0);
    }

    #[test]
    fn a_shorter_host_bar_cuts_the_pattern_bar() {
        // A 4/4 pattern in 3/4: the fourth beat's note is dropped, the held note cut at the bar line.
        let pattern = four_four(vec![note(0, 16, 48), note(12, 4, 72)], 1);
        let mut window = window(0.0, 0);
        window.meter = Meter::new(3, 4).unwrap();
        let notes: Vec<TimedNote> = notes_starting(&pattern, &window, 0.0, 6.0).collect();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert_eq!((notes[0].start, notes[0].end), (0.0, 3.0));
        assert_eq!((notes[1].start, notes[1].end), (3.0, 6.0));
    }

    #[test]
    fn a_longer_host_bar_adds_silence() {
        let pattern = four_four(vec![note(0, 4, 48)], 1);
        let mut window = window(0.0, 0);
        window.meter = Meter::new(7, 8).unwrap();
        let starts: Vec<f64> = notes_starting(&pattern, &window, 0.0, 7.0).map(|n| n.start).collect();
        assert_eq!(starts, vec![0.0, 3.5]);
    }

    #[test]
    fn loops_repeat_by_host_bar_number() {
        let pattern = four_four(vec![note(0, 4, 60), note(16, 4, 62)], 2);
        let w = window(0.0, 0);
        let pitches: Vec<u8> = notes_starting(&pattern, &w, 0.0, 16.0).map(|n| n.pitch).collect();
        assert_eq!(pitches, vec![60, 62, 60, 62]);
        let mut pre_roll = w;
        pre_roll.bar_number = -1;
        pre_roll.bar_start = -4.0;
        let before: Vec<u8> = notes_starting(&pattern, &pre_roll, -4.0, 0.0).map(|n| n.pitch).collect();
        assert_eq!(before, vec![62], "bar -1 plays the loop's last bar");
    }

    #[test]
    fn a_repeated_key_is_released_before_it_is_struck_again() {
        let pattern = four_four(vec![note(0, 4, 60), note(4, 4, 60)], 1);
        let events = play(&mut Scheduler::new(), &pattern, window(0.0, 0), &[24_000, 24_000]);
        let at_beat_two: Vec<bool> = events.iter().filter(|e| e.0 == 24_000).map(|e| e.1.is_on()).collect();
        assert_eq!(at_beat_two, vec![false, true]);
    }

    #[test]
    fn panic_releases_everything_once() {
        let pattern = four_four(vec![note(0, 16, 60)], 1);
        let mut scheduler = Scheduler::new();
        scheduler.process(&pattern, &window(0.0, 64), false);
        assert_eq!(scheduler.panic().len(), 1);
        assert!(scheduler.panic().is_empty());
    }

    #[test]
    fn a_block_no_music_has_plays_as_stopped_and_releases_what_sounds() {
        let pattern = four_four((0..16).map(|s| note(s, 1, 60 + s as u8)).collect(), 1);
        let mut scheduler = Scheduler::new();
        assert_eq!(scheduler.process(&pattern, &window(0.0, 512), false).len(), 1, "the first note starts");
        let hostile = [
            // 4 096 samples at 1 Hz and a million BPM: 17 million bars in one block.
            Window { sample_rate: 1.0, tempo: 1e6, ..window(512.0 / 24_000.0, 4096) },
            Window { tempo: 1e300, ..window(0.0, 512) },
            Window { sample_rate: 0.5, ..window(0.0, 512) },
            Window { sample_rate: f64::NAN, ..window(0.0, 512) },
            Window { start: 1e300, bar_start: 1e300, bar_number: i64::MAX, ..window(0.0, 512) },
            Window { bar_number: i64::MIN, ..window(0.0, 512) },
            // A bar line 2^39 quarters behind the position.
            Window { bar_start: -(FARTHEST_QUARTER / 2.0), ..window(0.0, 512) },
            Window { start: f64::NAN, ..window(0.0, 512) },
        ];
        for (index, block) in hostile.iter().enumerate() {
            assert!(!block.is_playable(), "{block:?}");
            let events = scheduler.process(&pattern, block, false).to_vec();
            assert!(events.iter().all(|e| !e.is_on()), "{index}: nothing starts in {block:?}: {events:?}");
            assert_eq!(scheduler.active_count(), 0, "{index}: what sounded is released");
        }
        assert!(Window { sample_rate: 1.0, ..window(0.0, 512) }.is_playable(), "a slow sample rate is still music");
    }

    #[test]
    fn notes_piled_on_one_step_cost_no_more_than_a_full_block() {
        let piled: Vec<PatternNote> = (0..200_000u32)
            .map(|i| PatternNote { channel: (i % 16) as u8, ..note(4, 1, (i / 16 % 128) as u8) })
            .collect();
        let pattern = four_four(piled, 1);
        let block = window(1.0, 512);
        assert_eq!(notes_starting(&pattern, &block, 0.0, 4.0).count(), MOST_NOTES_LOOKED_AT);
        let ons = Scheduler::new().process(&pattern, &block, false).iter().filter(|e| e.is_on()).count();
        assert_eq!(ons, MAX_ACTIVE, "as many as can sound");
    }

    proptest! {
        #[test]
        fn every_note_on_is_closed_and_nothing_is_closed_twice(
            starts in proptest::collection::vec((0u32..32, 1u32..40, 40u8..90), 0..40),
            sizes in proptest::collection::vec(1u32..4096, 1..200),
            tempo in 20.0f64..300.0,
            rate in prop_oneof![Just(22_050.0), Just(44_100.0), Just(48_000.0), Just(96_000.0), Just(192_000.0)],
            meter in prop_oneof![Just((4u8, 4u8)), Just((3, 4)), Just((6, 8)), Just((7, 8)), Just((5, 4))],
            stop_after in 0usize..200,
        ) {
            let mut notes: Vec<PatternNote> = starts.iter().map(|&(s, l, p)| note(s, l, p)).collect();
            notes.sort_by_key(|n| n.start);
            let pattern = four_four(notes, 2);
            let mut scheduler = Scheduler::new();
            let mut w = window(0.0, 0);
            w.tempo = tempo;
            w.sample_rate = rate;
            w.meter = Meter::new(meter.0, meter.1).unwrap();
            let mut sounding = std::collections::HashSet::new();
            let mut quarters = 0.0;
            for (index, &size) in sizes.iter().enumerate() {
                // The tempo ramps from block to block, as in a tempo automation.
                w.tempo = tempo * (1.0 + 0.5 * (index as f64 * 0.3).sin());
                w.samples = size;
                w.start = quarters;
                w.playing = index < stop_after;
                let bar = w.bar_quarters();
                w.bar_number = (w.start / bar).floor() as i64;
                w.bar_start = w.bar_number as f64 * bar;
                let events = scheduler.process(&pattern, &w, false).to_vec();
                let mut last = (0u32, false);
                for event in events {
                    prop_assert!(event.offset < size);
                    prop_assert!((event.offset, event.is_on()) >= last, "sorted, offs first");
                    last = (event.offset, event.is_on());
                    if event.is_on() {
                        prop_assert!(sounding.insert(event.pitch), "pitch {} struck while sounding", event.pitch);
                    } else {
                        prop_assert!(sounding.remove(&event.pitch), "pitch {} released while silent", event.pitch);
                    }
                }
                quarters = w.end();
            }
            let released = scheduler.panic().to_vec();
            for event in released {
                prop_assert!(sounding.remove(&event.pitch));
            }
            prop_assert!(sounding.is_empty(), "stuck: {sounding:?}");
        }
    }
}
