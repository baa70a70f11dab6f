//! Randomised host sessions against the built CLAP plugin: play and stop, seeks, loop wraps,
//! tempo ramps, meter changes, irregular blocks of 1 to 8 192 samples, sample rates from
//! 22 050 to 192 000 Hz, knob automation inside blocks, hold, bypass, model switches and
//! deactivation. Every block is checked: events sorted and inside the block, no note struck
//! while sounding or released while silent, nothing left hanging at the end, and, in sessions
//! whose pattern is held, every event exactly where the pure scheduler puts it.
//!
//! `DREAMROLL_SESSIONS=10000 cargo test --release --test host_sessions` runs the full set; CI
//! runs the first few hundred. A failing session prints its seed; keep it in `REGRESSIONS`.

mod clap_host;
mod hosts;

use clap_host::{ClapInstance, Played, Transport};
use clap_sys::fixedpoint::CLAP_BEATTIME_FACTOR;
use dreamroll::roll::Meter;
use dreamroll::schedule::{Pattern, Scheduler, Window};
use std::collections::BTreeSet;

/// Sessions that once failed, run first every time.
const REGRESSIONS: [u64; 0] = [];

const METERS: [(u16, u16); 5] = [(4, 4), (3, 4), (6, 8), (7, 8), (5, 4)];
const RATES: [f64; 6] = [22_050.0, 44_100.0, 48_000.0, 88_200.0, 96_000.0, 192_000.0];

struct Dice(u64);
impl Dice {
    fn next(&mut self) -> u64 {
        // SplitMix64: well mixed from any seed, including small ones.
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}

/// Beats as a CLAP host sends them: fixed point, 2^31 steps per quarter note.
fn on_clap_grid(beats: f64) -> f64 {
    (beats * CLAP_BEATTIME_FACTOR as f64).round() / CLAP_BEATTIME_FACTOR as f64
}

/// The playing pattern, read from the plugin's saved session.
fn pattern_in_state(plugin: &mut ClapInstance, seed: u64) -> Pattern {
    let session = clap_host::session_in_state(&plugin.save_state());
    serde_json::from_value(session["pattern"].clone())
        .unwrap_or_else(|e| panic!("session seed {seed:#x}: no pattern in {session}: {e}"))
}

struct Session {
    dice: Dice,
    rate: f64,
    tempo: f64,
    tempo_step: f64,
    beats: f64,
    meter: (u16, u16),
    /// Where the current meter's bars are counted from, and that bar's number.
    meter_origin: (f64, i32),
    playing: bool,
    loop_range: Option<(f64, f64)>,
}

impl Session {
    fn bar_quarters(&self) -> f64 {
        f64::from(self.meter.0) * 4.0 / f64::from(self.meter.1)
    }

    fn transport(&self) -> Transport {
        let beats = on_clap_grid(self.beats);
        let bars = ((beats - self.meter_origin.0) / self.bar_quarters() + 1e-9).floor();
        Transport {
            playing: self.playing,
            tempo: self.tempo,
            beats,
            bar_start: on_clap_grid(self.meter_origin.0 + bars * self.bar_quarters()),
            bar_number: self.meter_origin.1 + bars as i32,
            numerator: self.meter.0,
            denominator: self.meter.1,
            loop_range: self.loop_range,
        }
    }

    /// Moves on by a block, wrapping at the loop's end as hosts do.
    fn advance(&mut self, frames: u32) {
        if !self.playing {
            return;
        }
        self.beats += f64::from(frames) * self.tempo / 60.0 / self.rate;
        if let Some((start, end)) = self.loop_range {
            if self.beats >= end {
                self.beats = start;
            }
        }
        self.tempo = (self.tempo + self.tempo_step).clamp(40.0, 300.0);
    }
}

fn window_of(transport: &Transport, rate: f64, samples: u32) -> Window {
    Window {
        playing: transport.playing,
        sample_rate: rate,
        tempo: transport.tempo,
        start: transport.beats,
        bar_start: transport.bar_start,
        bar_number: i64::from(transport.bar_number),
        meter: Meter { numerator: transport.numerator as u8, denominator: transport.denominator as u8 },
        samples,
    }
}

/// One session; returns the notes it played and the events it checked against the pure
/// scheduler. Panics with the seed on any broken invariant.
fn run_session(clap: &std::path::Path, seed: u64, folk_session: &str) -> (usize, usize) {
    let mut plugin = ClapInstance::load(clap);
    let mut dice = Dice(seed);
    let held = dice.chance(3);
    let knobs: Vec<u32> = (1..=8).map(|k| plugin.param_id(&format!("Knob {k}"))).collect();
    let [hold, bypass, switch_at, seed_param] =
        ["Hold", "Bypass", "Switch at", "Seed"].map(|name| plugin.param_id(name));
    let mut setup = vec![
        plugin.change("Seed", &dice.below(1000).to_string()),
        plugin.change("Loop length", ["1 bar", "2 bars", "4 bars", "8 bars"][dice.below(4) as usize]),
    ];
    if held {
        setup.push((hold, 1.0));
    }
    plugin.flush_params(&setup);
    let mut s = Session {
        rate: RATES[dice.below(6) as usize],
        tempo: [60.0, 90.0, 97.0, 120.0, 140.0, 174.0][dice.below(6) as usize],
        tempo_step: 0.0,
        beats: 0.0,
        meter: METERS[dice.below(5) as usize],
        meter_origin: (0.0, 0),
        playing: true,
        loop_range: None,
        dice,
    };
    plugin.activate(s.rate, 8192);
    let pattern = pattern_in_state(&mut plugin, seed);
    let mut reference = Scheduler::new();
    let mut bypassed = false;
    let mut sounding: BTreeSet<(u8, u8)> = BTreeSet::new();
    let mut notes = 0usize;
    let mut checked = 0usize;
    let blocks = 40 + s.dice.below(200);
    for block in 0..blocks {
        let fail = |what: String| -> ! { panic!("session seed {seed:#x}, block {block}: {what}") };
        let frames = match s.dice.below(10) {
            0 => 1 + s.dice.below(16) as u32,
            1 => 8192,
            _ => 1 + s.dice.below(4096) as u32,
        };
        let mut changes: Vec<(u32, u32, f64)> = Vec::new();
        match s.dice.below(30) {
            0 => s.beats = s.dice.below(64) as f64 * 0.25, // seek
            1 => s.playing = !s.playing,
            2 => s.tempo_step = [-2.0, -0.5, 0.0, 0.5, 3.0][s.dice.below(5) as usize], // a ramp
            3 => {
                // A meter change from the next bar line on.
                let bar = s.transport();
                s.meter_origin = (bar.bar_start + s.bar_quarters(), bar.bar_number + 1);
                s.meter = METERS[s.dice.below(5) as usize];
                s.beats = s.beats.max(s.meter_origin.0);
            }
            4 => {
                s.loop_range = if s.loop_range.is_some() {
                    None
                } else {
                    Some((s.beats.floor(), s.beats.floor() + 1.0 + s.dice.below(8) as f64))
                }
            }
            5..=9 => {
                for _ in 0..1 + s.dice.below(4) {
                    changes.push((
                        s.dice.below(u64::from(frames)) as u32,
                        knobs[s.dice.below(8) as usize],
                        s.dice.below(1001) as f64 / 1000.0,
                    ));
                }
            }
            10 if !held => changes.push((0, hold, s.dice.below(2) as f64)),
            11 => {
                bypassed = !bypassed;
                changes.push((0, bypass, f64::from(u8::from(bypassed))));
            }
            12 => changes.push((0, switch_at, s.dice.below(2) as f64)),
            13 if !held => changes.push((0, seed_param, s.dice.below(50) as f64)),
            14 if s.dice.chance(3) => {
                // Deactivate, maybe at another rate, and come back owing nothing.
                plugin.deactivate();
                sounding.clear();
                reference = Scheduler::new();
                s.rate = RATES[s.dice.below(6) as usize];
                plugin.activate(s.rate, 8192);
            }
            15 if !held && s.dice.chance(3) => {
                let state = clap_host::state_with_session(&plugin.save_state(), folk_session);
                if !plugin.load_state(&state) {
                    fail("the plugin refused a good state".into());
                }
            }
            _ => {}
        }
        let transport = s.transport();
        let (played, peak) = plugin.process(frames, &transport, &changes);
        if peak.is_nan() {
            fail("the audio output was left unwritten".into());
        }
        if played.windows(2).any(|w| w[0].sample > w[1].sample) {
            fail(format!("events out of order: {played:?}"));
        }
        let block_start = plugin.position - u64::from(frames);
        for event in &played {
            if event.on {
                if !sounding.insert((event.channel, event.key)) {
                    fail(format!("{event:?} struck while sounding"));
                }
                notes += 1;
            } else if !sounding.remove(&(event.channel, event.key)) {
                fail(format!("{event:?} released while silent"));
            }
        }
        if held {
            // The plugin's pattern is fixed: every event where the pure scheduler puts it.
            let window = window_of(&transport, s.rate, frames);
            let expected: Vec<Played> =
                if bypassed { reference.panic().iter() } else { reference.process(&pattern, &window, false).iter() }
                    .map(|e| Played {
                        sample: block_start + u64::from(e.offset),
                        on: e.is_on(),
                        channel: e.channel,
                        key: e.pitch,
                        velocity: e.velocity,
                    })
                    .collect();
            if played != expected {
                fail(format!("played {played:?}\nexpected {expected:?}\nunder {transport:?}"));
            }
            checked += expected.len();
        }
        s.advance(frames);
    }
    // The host stops: everything still sounding is released.
    let stop = Transport { playing: false, ..s.transport() };
    let (played, _) = plugin.process(64, &stop, &[]);
    for event in played {
        if event.on || !sounding.remove(&(event.channel, event.key)) {
            panic!("session seed {seed:#x}: at stop, {event:?}");
        }
    }
    assert!(sounding.is_empty(), "session seed {seed:#x}: left hanging {sounding:?}");
    assert_eq!(plugin.other_events, 0, "session seed {seed:#x}: events other than notes");
    (notes, checked)
}

fn folk_session() -> String {
    let folk = concat!(env!("CARGO_MANIFEST_DIR"), "/models/folk-melody");
    serde_json::json!({
        "schema_version": 1, "model": {"folder": folk}, "takes": 0,
        "settings": {"request": {"bars": 1, "seed": 1, "knobs": [], "variation": 0.0, "temperature": null, "density": 0.0},
                     "voicing": {"key": 0, "scale": "Major", "transpose": 0, "velocity": 90, "humanise": 0.0, "seed": 1, "channels": [0], "muted": [false]}},
        "pattern": {"steps_per_beat": 4, "meter": {"numerator": 4, "denominator": 4}, "bars": 1,
                    "notes": [{"start": 0, "length": 4, "channel": 0, "pitch": 60, "velocity": 90}]}
    })
    .to_string()
}

#[test]
fn randomised_host_sessions_keep_every_invariant() {
    let (clap, _) = hosts::bundles();
    let sessions: u64 = std::env::var("DREAMROLL_SESSIONS").ok().and_then(|n| n.parse().ok()).unwrap_or(300);
    let folk_session = folk_session();
    let started = std::time::Instant::now();
    let (mut notes, mut checked) = (0usize, 0usize);
    for seed in REGRESSIONS.into_iter().chain(0..sessions) {
        let (played, matched) = run_session(clap, seed, &folk_session);
        notes += played;
        checked += matched;
    }
    eprintln!(
        "{} sessions, {notes} notes, {checked} events matched to the pure scheduler, every invariant kept, in {:.1} s",
        REGRESSIONS.len() as u64 + sessions,
        started.elapsed().as_secs_f64()
    );
    assert!(notes > sessions as usize, "the sessions played {notes} notes");
    assert!(checked > sessions as usize, "held sessions checked {checked} events");
}

/// The same sessions against the build with debug assertions and nice-plug's
/// `assert_process_allocs`: an allocation inside process() aborts the run.
#[test]
fn randomised_host_sessions_never_allocate_on_the_audio_thread() {
    let plugin = hosts::alloc_checked_plugin();
    let sessions: u64 = std::env::var("DREAMROLL_ALLOC_SESSIONS").ok().and_then(|n| n.parse().ok()).unwrap_or(100);
    let folk_session = folk_session();
    let notes: usize = (0..sessions).map(|seed| run_session(plugin, 0xa110c ^ seed, &folk_session).0).sum();
    eprintln!("{sessions} sessions on the allocation-checked build, {notes} notes");
    assert!(notes > sessions as usize);
}
