//! Recording what the producer plays into Dreamroll, on the host's bar grid, as *the clip*
//! that vary, harmonise and continue read.
//!
//! The work is split across the two threads the way the rest of the plugin is: the audio
//! thread's [`CaptureTap`] only turns host events and transport blocks into small `Copy`
//! [`CaptureEvent`]s (pushed into a preallocated ring: nothing allocates, nothing waits), and
//! the engine thread's [`Recorder`] assembles them into whole-bar takes. Both are pure, so a
//! host session can be replayed through them in a test.
//!
//! A take is the bars `[k·n, (k+1)·n)` of the host's bar count (`n` the take length), played
//! through whole: a phrase as a musician counts it, not the last `n` bars at any moment, so
//! the clip changes once per phrase rather than at every bar line. A loop that wraps on a bar
//! line continues the take; a stop, or a jump anywhere else, starts it again. A take in which
//! nothing was played leaves the clip as it was.

use crate::roll::{Meter, Take, TakeNote, MOST_TAKE_NOTES};
use crate::schedule::Window;
use std::collections::VecDeque;

/// The resolution of recorded takes: fine enough for any grid a model uses (it divides by 2,
/// 3, 4, 5, 6, 8, 12, 16 and 32 steps a quarter).
pub const TICKS_PER_QUARTER: u16 = 960;

/// What the audio thread tells the recorder; small and `Copy`, for a wait-free ring.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CaptureEvent {
    /// A note-on (velocity 1..=127) or note-off (velocity 0), `at` quarter notes into host bar `bar`.
    Note { bar: i64, at: f64, channel: u8, pitch: u8, velocity: u8 },
    /// Host bar `bar` has played to its end; `whole` when it was also heard from its start.
    BarEnded { bar: i64, meter: Meter, whole: bool },
    /// The transport stopped, jumped, or recording was switched off: a take in progress is lost.
    Break,
}

/// Positions closer than this (in quarter notes) are the same: hosts round block positions.
const TOLERANCE: f64 = 1e-4;

/// The bar the transport is in, as the tap follows it.
#[derive(Clone, Copy, Debug)]
struct BarInProgress {
    number: i64,
    /// Its start, in quarter notes from the song's start.
    start: f64,
    meter: Meter,
    whole: bool,
}

impl BarInProgress {
    fn of(window: &Window) -> BarInProgress {
        let whole = window.start - window.bar_start <= TOLERANCE;
        BarInProgress { number: window.bar_number, start: window.bar_start, meter: window.meter, whole }
    }

    fn end(&self) -> f64 {
        self.start + self.meter.quarters_per_bar()
    }
}

/// The audio thread's half: follows the transport block by block. Call [`CaptureTap::begin_block`],
/// then [`CaptureTap::note`] for each incoming note, then [`CaptureTap::end_block`].
#[derive(Debug, Default)]
pub struct CaptureTap {
    bar: Option<BarInProgress>,
    /// Where the next block should start if the transport runs on.
    expected: f64,
}

impl CaptureTap {
    /// Starts a block; `recording` is false while the transport is stopped or capture is off.
    pub fn begin_block(&mut self, window: &Window, recording: bool, out: &mut impl FnMut(CaptureEvent)) {
        // A block the scheduler would not play (no tempo, a sample rate below 1 Hz, a
        // position no music reaches, thousands of bars at once) is a stop here too: following
        // it bar by bar would be unbounded work on the audio thread.
        if !recording || !window.playing || !window.is_playable() {
            if self.bar.take().is_some() {
                out(CaptureEvent::Break);
            }
            return;
        }
        let Some(bar) = self.bar else {
            self.bar = Some(BarInProgress::of(window));
            return;
        };
        if (window.start - self.expected).abs() <= TOLERANCE {
            return;
        }
        // A jump. A loop that wraps on a bar line carries on (its last bar has ended); any
        // other jump breaks the take.
        let lands_on_bar_line = window.start - window.bar_start <= TOLERANCE;
        let left_at_bar_end = (self.expected - bar.end()).abs() <= TOLERANCE;
        let left_at_bar_start = (self.expected - bar.start).abs() <= TOLERANCE;
        if lands_on_bar_line && left_at_bar_end {
            out(CaptureEvent::BarEnded { bar: bar.number, meter: bar.meter, whole: bar.whole });
        } else if !(lands_on_bar_line && left_at_bar_start) {
            out(CaptureEvent::Break);
        }
        self.bar = Some(BarInProgress::of(window));
    }

    /// A note played into the plugin at sample `offset` of the block.
    pub fn note(
        &self,
        window: &Window,
        offset: u32,
        channel: u8,
        pitch: u8,
        velocity: u8,
        out: &mut impl FnMut(CaptureEvent),
    ) {
        let Some(bar) = self.bar else { return };
        let quarters = window.start + f64::from(offset) * window.tempo / (60.0 * window.sample_rate);
        let bar_quarters = bar.meter.quarters_per_bar();
        let bars_on = ((quarters - bar.start) / bar_quarters + 1e-9).floor().max(0.0);
        let at = (quarters - bar.start - bars_on * bar_quarters).max(0.0);
        out(CaptureEvent::Note { bar: bar.number + bars_on as i64, at, channel, pitch, velocity });
    }

    /// Ends a block: every bar line the block crossed is reported.
    pub fn end_block(&mut self, window: &Window, out: &mut impl FnMut(CaptureEvent)) {
        let Some(bar) = self.bar.as_mut() else { return };
        let end = window.end();
        while end >= bar.end() - TOLERANCE {
            out(CaptureEvent::BarEnded { bar: bar.number, meter: bar.meter, whole: bar.whole });
            *bar = BarInProgress { number: bar.number + 1, start: bar.end(), meter: window.meter, whole: true };
        }
        self.expected = end;
    }
}

/// A whole bar as recorded: its host number, meter and note events in order.
#[derive(Clone, Debug)]
struct RecordedBar {
    number: i64,
    meter: Meter,
    events: Vec<(f64, u8, u8, u8)>,
}

/// The engine thread's half: whole bars in, takes out.
#[derive(Debug)]
pub struct Recorder {
    take_bars: usize,
    /// Note events of bars that have not ended yet.
    pending: Vec<(i64, f64, u8, u8, u8)>,
    /// The whole bars heard one after another since the last break, newest last.
    run: VecDeque<RecordedBar>,
    /// Note-ons not kept since the last take or break because [`MOST_PENDING_EVENTS`] were
    /// waiting: said in the next take's words.
    dropped: u32,
}

/// Most note events waiting for their bars to end: a take's worth of notes on and off. A host
/// (or a ring of stale events) can send any number; the recorder's memory stays bounded.
const MOST_PENDING_EVENTS: usize = 2 * MOST_TAKE_NOTES;

/// Longest take, in bars.
pub const MOST_BARS: usize = 8;

impl Recorder {
    pub fn new(take_bars: usize) -> Recorder {
        Recorder { take_bars: take_bars.clamp(1, MOST_BARS), pending: Vec::new(), run: VecDeque::new(), dropped: 0 }
    }

    /// A new take length applies from the next bar line.
    pub fn set_take_bars(&mut self, bars: usize) {
        self.take_bars = bars.clamp(1, MOST_BARS);
    }

    /// Whole bars heard toward the take in progress, for the editor ("recording 3 of 4").
    pub fn bars_toward_take(&self) -> usize {
        let Some(last) = self.run.back() else { return 0 };
        let into_take = last.number.wrapping_add(1).rem_euclid(self.take_bars as i64) as usize;
        into_take.min(self.run.len())
    }

    /// Takes one event; returns a take when one has just been completed with notes in it.
    pub fn feed(&mut self, event: CaptureEvent) -> Option<Take> {
        match event {
            CaptureEvent::Note { bar, at, channel, pitch, velocity } => {
                // Whatever a host sends: MIDI's own ranges, as the status byte would mask them.
                let (channel, pitch, velocity) = (channel & 0x0f, pitch & 0x7f, velocity.min(127));
                if self.pending.len() < MOST_PENDING_EVENTS {
                    self.pending.push((bar, at, channel, pitch, velocity));
                } else if velocity > 0 {
                    self.dropped = self.dropped.saturating_add(1);
                }
                None
            }
            CaptureEvent::Break => {
                self.pending.clear();
                self.run.clear();
                self.dropped = 0;
                None
            }
            CaptureEvent::BarEnded { bar, meter, whole } => {
                let mut events = Vec::new();
                // Events of this bar are its own; any of an earlier bar can no longer be used.
                self.pending.retain(|&(number, at, channel, pitch, velocity)| {
                    if number == bar {
                        events.push((at, channel, pitch, velocity));
                    }
                    number > bar
                });
                let whole = whole && Meter::new(meter.numerator, meter.denominator).is_ok();
                if !whole || self.run.back().is_some_and(|last| last.meter != meter) {
                    self.run.clear();
                }
                if whole {
                    self.run.push_back(RecordedBar { number: bar, meter, events });
                    while self.run.len() > MOST_BARS {
                        self.run.pop_front();
                    }
                }
                self.completed_take()
            }
        }
    }

    /// The take that the newest bar completes, if it ends a phrase of `take_bars` played
    /// through in order and anything sounded in it.
    fn completed_take(&mut self) -> Option<Take> {
        let n = self.take_bars;
        let last = self.run.back()?;
        if self.run.len() < n || last.number.wrapping_add(1).rem_euclid(n as i64) != 0 {
            return None;
        }
        let bars: Vec<&RecordedBar> = self.run.iter().skip(self.run.len() - n).collect();
        if bars.windows(2).any(|pair| Some(pair[1].number) != pair[0].number.checked_add(1)) {
            return None;
        }
        let meter = last.meter;
        let tick = |bar_index: usize, at: f64| {
            ((bar_index as f64 * meter.quarters_per_bar() + at.max(0.0)) * f64::from(TICKS_PER_QUARTER)).round() as u64
        };
        let end = tick(n, 0.0);
        // Notes pair up by channel and pitch; a release whose press came before the take is
        // not the take's, and a note still held at its end ends with it.
        let mut open: Vec<(u8, u8, u8, u64)> = Vec::new();
        let mut notes = Vec::new();
        let mut past_note_cap = std::mem::take(&mut self.dropped);
        let close = |open: &mut Vec<(u8, u8, u8, u64)>, index: usize, at: u64, notes: &mut Vec<TakeNote>| {
            let (channel, pitch, velocity, start) = open.swap_remove(index);
            notes.push(TakeNote {
                track: u16::from(channel),
                channel,
                pitch,
                velocity,
                start,
                end: at.max(start + 1).min(end),
            });
        };
        for (index, bar) in bars.iter().enumerate() {
            for &(at, channel, pitch, velocity) in &bar.events {
                let at = tick(index, at).min(end.saturating_sub(1));
                if let Some(held) = open.iter().position(|&(c, p, ..)| (c, p) == (channel, pitch)) {
                    close(&mut open, held, at, &mut notes);
                }
                if velocity > 0 && notes.len() + open.len() < MOST_TAKE_NOTES {
                    open.push((channel, pitch, velocity, at));
                } else if velocity > 0 {
                    past_note_cap += 1;
                }
            }
        }
        while !open.is_empty() {
            close(&mut open, 0, end, &mut notes);
        }
        if notes.is_empty() {
            return None;
        }
        notes.sort_by_key(|note| (note.start, note.channel, note.pitch));
        Some(Take {
            ticks_per_quarter: TICKS_PER_QUARTER,
            meter,
            bars: n as u32,
            notes,
            after_meter_change: 0,
            after_last_bar: 0,
            unplayable: 0,
            past_note_cap,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: f64 = 48_000.0;
    /// 120 BPM at 48 kHz: a quarter note is 24 000 samples, a 4/4 bar 96 000.
    const QUARTER: u32 = 24_000;

    fn window(start: f64, samples: u32) -> Window {
        let bar = (start / 4.0 + 1e-9).floor();
        Window {
            playing: true,
            sample_rate: RATE,
            tempo: 120.0,
            start,
            bar_start: bar * 4.0,
            bar_number: bar as i64,
            meter: Meter::COMMON,
            samples,
        }
    }

    /// A host run: blocks of `block` samples from quarter `from` for `quarters`, with notes
    /// (quarter position, pitch, length in quarters) played on channel 0; every event the tap sends.
    fn play(tap: &mut CaptureTap, from: f64, quarters: f64, block: u32, notes: &[(f64, u8, f64)]) -> Vec<CaptureEvent> {
        let mut events = Vec::new();
        let mut out = |e| events.push(e);
        let mut position = from;
        let end = from + quarters;
        let per_sample = 1.0 / f64::from(QUARTER);
        while position < end - 1e-9 {
            let samples = (((end - position) / per_sample).round() as u32).min(block);
            let w = window(position, samples);
            tap.begin_block(&w, true, &mut out);
            let block_end = w.end();
            let mut edges: Vec<(f64, u8, u8)> =
                notes.iter().flat_map(|&(at, pitch, length)| [(at, pitch, 100), (at + length, pitch, 0)]).collect();
            edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.2.cmp(&b.2)));
            for (at, pitch, velocity) in edges.into_iter().filter(|e| e.0 >= position - 1e-9 && e.0 < block_end - 1e-9)
            {
                let offset = ((at - position) / per_sample).round() as u32;
                tap.note(&w, offset, 0, pitch, velocity, &mut out);
            }
            tap.end_block(&w, &mut out);
            position = block_end;
        }
        events
    }

    fn takes(recorder: &mut Recorder, events: Vec<CaptureEvent>) -> Vec<Take> {
        events.into_iter().filter_map(|e| recorder.feed(e)).collect()
    }

    fn notes_of(take: &Take) -> Vec<(u64, u64, u8)> {
        take.notes.iter().map(|n| (n.start, n.end, n.pitch)).collect()
    }

    const Q: u64 = TICKS_PER_QUARTER as u64;

    #[test]
    fn a_phrase_played_through_becomes_a_take_at_its_last_bar_line() {
        let (mut tap, mut recorder) = (CaptureTap::default(), Recorder::new(2));
        // From bar 1 (a phrase of two starts on even bars, so bars 2 and 3 are the take), with
        // a note held over the bar line inside the take and one over its end.
        let notes = [(8.0, 60, 1.0), (11.5, 62, 1.0), (14.0, 64, 4.0)];
        let events = play(&mut tap, 4.0, 16.0, 512, &notes);
        let got = takes(&mut recorder, events);
        assert_eq!(got.len(), 1, "bars 2-3 complete a take; 4-5 are silent");
        assert_eq!(notes_of(&got[0]), vec![(0, Q, 60), (3 * Q + Q / 2, 4 * Q + Q / 2, 62), (6 * Q, 8 * Q, 64)]);
        assert_eq!((got[0].bars, got[0].meter), (2, Meter::COMMON));
        assert!(got[0].check().is_ok());
    }

    #[test]
    fn the_block_size_does_not_change_the_take() {
        let notes = [(0.25, 60, 0.5), (1.0, 67, 2.75), (3.75, 65, 0.25)];
        let reference = takes(&mut Recorder::new(1), play(&mut CaptureTap::default(), 0.0, 4.0, 512, &notes));
        for block in [1, 37, 4096, 96_000] {
            let events = play(&mut CaptureTap::default(), 0.0, 4.0, block, &notes);
            assert_eq!(takes(&mut Recorder::new(1), events), reference, "block size {block}");
        }
        assert_eq!(notes_of(&reference[0]), vec![(Q / 4, 3 * Q / 4, 60), (Q, 15 * Q / 4, 67), (15 * Q / 4, 4 * Q, 65)]);
    }

    #[test]
    fn a_bar_heard_from_its_middle_is_not_recorded_and_a_stop_breaks_the_take() {
        let (mut tap, mut recorder) = (CaptureTap::default(), Recorder::new(2));
        // Starting in the middle of bar 1: bar 1 is not whole, so bars 2-3 are the first take.
        let mut events = play(&mut tap, 6.0, 6.0, 256, &[(6.5, 60, 0.5), (9.0, 62, 1.0)]);
        assert_eq!(recorder.bars_toward_take(), 0);
        assert!(takes(&mut recorder, std::mem::take(&mut events)).is_empty(), "only bar 2 is whole so far");
        assert_eq!(recorder.bars_toward_take(), 1, "one bar of two");
        let mut stopped = window(12.0, 256);
        stopped.playing = false;
        let mut out = |e| events.push(e);
        tap.begin_block(&stopped, true, &mut out);
        assert_eq!(events, vec![CaptureEvent::Break]);
        assert!(takes(&mut recorder, events).is_empty());
        assert!(
            takes(&mut recorder, play(&mut tap, 12.0, 4.0, 256, &[(12.0, 64, 1.0)])).is_empty(),
            "bar 3 alone after the stop"
        );
    }

    #[test]
    fn a_loop_wrapping_on_its_bar_line_keeps_recording_and_a_jump_elsewhere_does_not() {
        let (mut tap, mut recorder) = (CaptureTap::default(), Recorder::new(2));
        // A loop over bars 0-1 played twice, different notes each pass: each pass is a take.
        let first = takes(&mut recorder, play(&mut tap, 0.0, 8.0, 300, &[(0.0, 60, 1.0)]));
        let second = takes(&mut recorder, play(&mut tap, 0.0, 8.0, 300, &[(4.0, 62, 1.0)]));
        assert_eq!(notes_of(&first[0]), vec![(0, Q, 60)]);
        assert_eq!(notes_of(&second[0]), vec![(4 * Q, 5 * Q, 62)]);
        // A jump from inside bar 1 back to bar 0: the bars heard before it are not a take.
        let mut events = play(&mut tap, 0.0, 6.0, 300, &[(1.0, 64, 1.0)]);
        events.extend(play(&mut tap, 0.0, 8.0, 300, &[]));
        assert!(events.contains(&CaptureEvent::Break));
        assert!(
            takes(&mut recorder, events).is_empty(),
            "the notes before the jump are gone and the pass after it is silent"
        );
    }

    #[test]
    fn switching_recording_off_breaks_and_notes_are_ignored_while_it_is_off() {
        let mut tap = CaptureTap::default();
        let mut events = Vec::new();
        let mut out = |e| events.push(e);
        let w = window(0.0, 512);
        tap.begin_block(&w, true, &mut out);
        tap.end_block(&w, &mut out);
        let w = window(w.end(), 512);
        tap.begin_block(&w, false, &mut out);
        tap.note(&w, 0, 0, 60, 100, &mut out);
        tap.end_block(&w, &mut out);
        assert_eq!(events, vec![CaptureEvent::Break]);
    }

    #[test]
    fn notes_a_host_should_not_send_make_a_sound_take() {
        let note = |at, channel, pitch, velocity| CaptureEvent::Note { bar: 0, at, channel, pitch, velocity };
        let events = vec![
            note(0.5, 200, 200, 255),
            note(1.0, 200, 200, 0),
            note(f64::NAN, 0, 60, 90),
            note(1e300, 0, 61, 90),
            note(-3.0, 0, 62, 90),
            CaptureEvent::BarEnded { bar: 0, meter: Meter::COMMON, whole: true },
        ];
        let take = takes(&mut Recorder::new(1), events).pop().unwrap();
        take.check().unwrap();
        assert_eq!(
            take.notes.iter().map(|n| (n.channel, n.pitch, n.velocity, n.start, n.end)).collect::<Vec<_>>(),
            vec![(0, 60, 90, 0, 4 * Q), (0, 62, 90, 0, 4 * Q), (8, 72, 127, Q / 2, Q), (0, 61, 90, 4 * Q - 1, 4 * Q)],
            "channel and pitch masked as MIDI's status and data bytes would be, velocity capped, times kept in the bar"
        );
    }

    #[test]
    fn a_flood_of_notes_is_capped_and_said() {
        let mut recorder = Recorder::new(1);
        let flood = (0..2 * MOST_TAKE_NOTES + 10).map(|k| CaptureEvent::Note {
            bar: 0,
            at: k as f64 * 1e-5,
            channel: 1,
            pitch: (k % 128) as u8,
            velocity: 100,
        });
        // Notes of bars that never end (a host's wild bar numbers) do not wait forever.
        let stale = (0..5).map(|k| CaptureEvent::Note { bar: -5, at: 0.0, channel: 0, pitch: k, velocity: 100 });
        let mut events: Vec<CaptureEvent> = stale.chain(flood).collect();
        events.push(CaptureEvent::BarEnded { bar: 0, meter: Meter::COMMON, whole: true });
        let take = takes(&mut recorder, events).pop().unwrap();
        take.check().unwrap();
        assert_eq!(take.notes.len(), MOST_TAKE_NOTES);
        assert_eq!(
            take.past_note_cap,
            MOST_TAKE_NOTES as u32 + 10,
            "every note of the flood not kept is counted, pending or not"
        );
        assert!(recorder.pending.is_empty(), "the stale bar's notes went with the bar that ended after it");
    }

    #[test]
    fn a_silent_take_leaves_the_clip_alone_and_the_length_is_bounded() {
        let mut recorder = Recorder::new(1);
        assert!(takes(&mut recorder, play(&mut CaptureTap::default(), 0.0, 8.0, 1024, &[])).is_empty());
        assert_eq!(Recorder::new(99).take_bars, MOST_BARS);
        assert_eq!(Recorder::new(0).take_bars, 1);
    }
}
