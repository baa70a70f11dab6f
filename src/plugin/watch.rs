//! What the engine thread reads from the plugin: the parameters, and the notes played in,
//! which reach it through a ring the audio thread fills without ever waiting.

use super::history;
use super::params::{self, DreamrollParams};
use crate::capture::{CaptureEvent, Recorder};
use crate::engine::worker::{lock, Polled, Settings, Watch};
use crate::model::card::ModelCard;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Capture events in flight: a bar of dense playing is a few hundred; the engine drains the
/// ring every few milliseconds.
pub const CAPTURE_RING: usize = 8192;

/// The audio thread's end of the capture: events out, and counts that let an offline bounce
/// wait until the engine has heard all of them.
pub struct CaptureLine {
    events: rtrb::Producer<CaptureEvent>,
    sent: u64,
    heard: Arc<AtomicU64>,
    /// Events the ring had no room for, for the engine to tell the user.
    lost: Arc<AtomicU64>,
    /// Events were lost, and the break that marks where has not gone in yet.
    gap: bool,
}

impl CaptureLine {
    /// Sends `event` if the ring has room, never waiting. With the ring full it is lost, and
    /// every note after it is dropped up to the next bar line or break, which goes in as a
    /// break: the recorder drops the take in progress there and starts again from a bar
    /// heard whole, so no take is ever made across the gap.
    pub fn send(&mut self, event: CaptureEvent) {
        let event = match event {
            CaptureEvent::Note { .. } if self.gap => {
                self.lost.fetch_add(1, Ordering::Release);
                return;
            }
            _ if self.gap => CaptureEvent::Break,
            event => event,
        };
        if self.events.push(event).is_ok() {
            self.sent += 1;
            self.gap = false;
        } else {
            self.gap = true;
            self.lost.fetch_add(1, Ordering::Release);
        }
    }

    /// Whether the engine has taken in everything sent so far.
    pub fn all_heard(&self) -> bool {
        self.heard.load(Ordering::Acquire) >= self.sent
    }
}

/// The engine's end: reads the parameters, and on the way turns what was played in into
/// takes. The recorder runs where the settings are read, so a take is in the settings the
/// moment it is complete.
pub struct ParameterWatch {
    params: Arc<DreamrollParams>,
    captured: rtrb::Consumer<CaptureEvent>,
    recorder: Recorder,
    heard: Arc<AtomicU64>,
    lost: Arc<AtomicU64>,
    /// Of the events lost, those the user has been told of.
    lost_told: u64,
    /// Events lost since losing began, while it goes on from poll to poll (a gap lasts to the
    /// next bar line), so that the status line gives the whole count, not its last part.
    lost_in_gap: u64,
}

/// A capture ring of `capacity` events between the audio thread and the engine.
pub fn capture_line(params: Arc<DreamrollParams>, capacity: usize) -> (CaptureLine, ParameterWatch) {
    let (events, captured) = rtrb::RingBuffer::new(capacity);
    let (heard, lost) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let recorder = Recorder::new(params.take_length.value().bars());
    let line = CaptureLine { events, sent: 0, heard: heard.clone(), lost: lost.clone(), gap: false };
    (line, ParameterWatch { params, captured, recorder, heard, lost, lost_told: 0, lost_in_gap: 0 })
}

impl ParameterWatch {
    /// The parameters ask for a new pattern: a moment of the history, named by what changed
    /// since the one playing.
    fn remember_moment(&self) {
        let mut now = self.params.moment();
        let mut history = lock(&self.params.history);
        now.label = history::label(history.playing(), &now, |id, value| self.params.shaping_text(id, value));
        history.record(now, Instant::now());
    }
}

impl Watch for ParameterWatch {
    fn poll(&mut self) -> Polled {
        let params = &self.params;
        self.recorder.set_take_bars(params.take_length.value().bars());
        let mut count = 0;
        while let Ok(event) = self.captured.pop() {
            count += 1;
            if let Some(take) = self.recorder.feed(event) {
                params.clip.set(Some(Arc::new(take)));
            }
        }
        self.heard.fetch_add(count, Ordering::AcqRel);
        params.bars_heard.store(self.recorder.bars_toward_take() as u32, Ordering::Relaxed);
        let lost = self.lost.load(Ordering::Acquire);
        self.lost_in_gap = if lost > self.lost_told { self.lost_in_gap + lost - self.lost_told } else { 0 };
        let problem = (lost > self.lost_told).then(|| {
            format!(
                "{} notes and bar lines played in were lost (the engine fell behind); the take in progress was discarded",
                self.lost_in_gap
            )
        });
        self.lost_told = lost;
        Polled { fingerprint: params::pattern_fingerprint(params), problem }
    }

    fn settings(&mut self, card: &ModelCard) -> Settings {
        self.params.style_names.show(card.styles.iter().map(|style| &style.name));
        self.remember_moment();
        params::settings_for(&self.params, card)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::CaptureTap;
    use crate::roll::Meter;
    use crate::schedule::Window;

    /// 120 BPM at 48 kHz: a quarter note is 24 000 samples.
    const QUARTER: u32 = 24_000;

    /// Plays quarter `quarter` of the song as one block through the tap into the line: a
    /// quarter note at its start, and `flood` short notes after it.
    fn play_quarter(tap: &mut CaptureTap, line: &mut CaptureLine, quarter: u32, flood: u32) {
        let start = f64::from(quarter);
        let bar = (start / 4.0).floor();
        let window = Window {
            playing: true,
            sample_rate: 48_000.0,
            tempo: 120.0,
            start,
            bar_start: bar * 4.0,
            bar_number: bar as i64,
            meter: Meter::COMMON,
            samples: QUARTER,
        };
        let mut send = |event| line.send(event);
        tap.begin_block(&window, true, &mut send);
        let pitch = 60 + (quarter % 12) as u8;
        tap.note(&window, 0, 0, pitch, 90, &mut send);
        for i in 0..flood {
            tap.note(&window, 100 + 2 * i, 0, 40, 90, &mut send);
            tap.note(&window, 101 + 2 * i, 0, 40, 0, &mut send);
        }
        tap.note(&window, QUARTER / 2, 0, pitch, 0, &mut send);
        tap.end_block(&window, &mut send);
    }

    #[test]
    fn a_take_that_lost_events_to_a_full_ring_is_discarded_with_words() {
        let params = Arc::new(DreamrollParams::default());
        assert_eq!(params.take_length.value().bars(), 4);
        let (mut line, mut watch) = capture_line(params.clone(), 16);
        let mut tap = CaptureTap::default();
        let mut problems = Vec::new();
        // Four bars of quarter notes, the engine polling after every quarter; in the second
        // bar a flood of notes in one block overflows the ring.
        for quarter in 0..16 {
            play_quarter(&mut tap, &mut line, quarter, if quarter == 5 { 20 } else { 0 });
            problems.extend(watch.poll().problem);
            assert!(line.all_heard());
        }
        assert_eq!(params.clip.get(), None, "the take with a gap is not kept");
        // 42 events in one block, 16 of them fitting; then the rest of the bar's notes (two a
        // quarter) are dropped until its bar line, and the count grows to the whole gap.
        let told = |lost: u32| {
            format!("{lost} notes and bar lines played in were lost (the engine fell behind); the take in progress was discarded")
        };
        assert_eq!(problems, [told(26), told(28), told(30)]);
        // The next four bars are heard whole, and are the take.
        for quarter in 16..32 {
            play_quarter(&mut tap, &mut line, quarter, 0);
            assert_eq!(watch.poll().problem, None);
        }
        let take = params.clip.get().expect("a take of the four bars after the gap");
        let pitches: Vec<u8> = take.notes.iter().map(|note| note.pitch).collect();
        assert_eq!(pitches, (16..32).map(|quarter| 60 + (quarter % 12) as u8).collect::<Vec<_>>());
    }
}
