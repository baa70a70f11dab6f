//! What a project saves beyond parameter values: the pattern that is playing, the settings
//! and model it answers, and the seed's take. With it a project reopens playing exactly the
//! notes it was saved with, even if the model folder has gone since.
//!
//! The blob carries its own schema version. A blob that is garbage, truncated, too large, or
//! from a newer Dreamroll is refused with a reason the editor shows; the plugin then plays what
//! its parameters ask for, and nothing reaches the audio thread unchecked. A damaged clip or
//! morph point is the producer's own material but not the session's core: it is dropped alone,
//! in words, and the rest restored.

use crate::engine::models::ModelSource;
use crate::engine::worker::{lock, Command, Published, Settings};
use crate::model::latent::KNOB_REACH;
use crate::model::source::MorphPoint;
use crate::plugin::history::History;
use crate::plugin::shared::{ClipSlot, HeardChord, HistorySlot, MorphPoints, SessionSlots};
use crate::roll::Take;
use crate::roll::{MAX_BEATS_PER_BAR, MAX_STEPS_PER_BEAT};
use crate::schedule::{Pattern, MAX_DELAY};
use crossbeam_channel::Sender;
use nice_plug::params::persist::PersistentField;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

pub const SESSION_VERSION: u32 = 1;
/// The session's key among the plugin state's persisted fields (`#[persist]` in the parameters).
pub const SESSION_FIELD: &str = "session";

/// Longest loop a session may hold, and most notes: far past anything the plugin makes, and a
/// bound on what a hostile blob can make the audio thread walk.
const MAX_BARS: u32 = 1024;
const MAX_NOTES: usize = 200_000;

/// Largest saved session read: a loop of the most notes, a clip and two clip points, several
/// times over. The text is refused before it is parsed, since parsing costs a multiple of it.
pub const MOST_SESSION_BYTES: usize = 64 << 20;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Session {
    pub schema_version: u32,
    pub model: ModelSource,
    pub settings: Settings,
    pub takes: u32,
    pub pattern: Pattern,
    /// The producer's clip, kept whether or not the source reads it now.
    #[serde(default)]
    pub clip: Option<Take>,
    /// Morph points A and B.
    #[serde(default)]
    pub morph_points: [Option<MorphPoint>; 2],
    /// The patterns the session made, to step back through.
    #[serde(default)]
    pub history: History,
}

/// A session as saved, its clip and morph points left as text to be read one by one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Saved<'a> {
    schema_version: u32,
    model: ModelSource,
    settings: Settings,
    takes: u32,
    pattern: Pattern,
    #[serde(default, borrow)]
    clip: Option<&'a RawValue>,
    #[serde(default, borrow)]
    morph_points: [Option<&'a RawValue>; 2],
    #[serde(default, borrow)]
    history: Option<&'a RawValue>,
}

/// Only the version, read first: whatever else a newer Dreamroll saves, it should say so.
#[derive(Deserialize)]
struct Versioned<'a> {
    #[serde(default, borrow)]
    schema_version: Option<&'a RawValue>,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("the saved session is {0} bytes, more than the {MOST_SESSION_BYTES} a session can be")]
    TooLarge(usize),
    #[error("the saved session is not readable JSON ({0})")]
    NotJson(serde_json::Error),
    #[error("the saved session has no schema version")]
    NoVersion,
    #[error("the saved session is from a newer Dreamroll (schema {found}; this one reads up to {SESSION_VERSION})")]
    FromTheFuture { found: u64 },
    #[error("the saved session is damaged: {0}")]
    Damaged(String),
}

/// What a saved session restores; see [`read_session`] for what it drops.
pub fn parse_session(text: &str) -> Result<Session, SessionError> {
    read_session(text).map(|(session, _)| session)
}

/// The settings' own numbers are finite: JSON has no infinity, so one would be saved as `null`
/// and the project refused the next time it opens.
fn check_numbers(settings: &Settings) -> Result<(), String> {
    let request = &settings.request;
    let numbers = request.knobs.iter().chain(&request.named).chain(request.temperature.as_ref()).chain([
        &request.variation,
        &request.density,
        &settings.voicing.humanise,
        &settings.source.distance,
    ]);
    match numbers.copied().find(|value| !value.is_finite()) {
        Some(value) => Err(format!("a setting of {value}")),
        None => Ok(()),
    }
}

/// Reads a saved session, checking its size and version before anything else and every
/// number the scheduler will trust; with it, a line for each clip or morph point dropped as
/// damaged.
pub fn read_session(text: &str) -> Result<(Session, Vec<String>), SessionError> {
    if text.len() > MOST_SESSION_BYTES {
        return Err(SessionError::TooLarge(text.len()));
    }
    let versioned: Versioned = serde_json::from_str(text).map_err(|error| match error.classify() {
        serde_json::error::Category::Data => SessionError::NoVersion,
        _ => SessionError::NotJson(error),
    })?;
    let version =
        versioned.schema_version.and_then(|raw| raw.get().parse::<u64>().ok()).ok_or(SessionError::NoVersion)?;
    if version > u64::from(SESSION_VERSION) {
        return Err(SessionError::FromTheFuture { found: version });
    }
    let saved: Saved = serde_json::from_str(text).map_err(|e| SessionError::Damaged(e.to_string()))?;
    let mut pattern = saved.pattern;
    check_pattern(&mut pattern).map_err(SessionError::Damaged)?;
    let settings = saved.settings;
    check_numbers(&settings).map_err(SessionError::Damaged)?;
    let settings_points = settings.source.morph.iter().flat_map(|morph| [&morph.a, &morph.b]);
    for point in settings_points {
        check_point(point).map_err(SessionError::Damaged)?;
    }
    if let Some(morph) = settings.source.morph.as_ref().filter(|morph| !(0.0..=1.0).contains(&morph.amount)) {
        return Err(SessionError::Damaged(format!("a morph {} of the way from A to B", morph.amount)));
    }
    if let Some(take) = &settings.clip {
        take.check().map_err(SessionError::Damaged)?;
    }
    let mut dropped = Vec::new();
    let clip = saved.clip.and_then(|raw| {
        let take = serde_json::from_str::<Take>(raw.get())
            .map_err(|e| e.to_string())
            .and_then(|take| take.check().map(|()| take));
        take.map_err(|reason| dropped.push(format!("the saved clip was damaged and is left out ({reason})"))).ok()
    });
    let morph_points = [0, 1].map(|which| {
        let raw = saved.morph_points[which]?;
        let point = serde_json::from_str::<MorphPoint>(raw.get())
            .map_err(|e| e.to_string())
            .and_then(|point| check_point(&point).map(|()| point));
        let name = ["A", "B"][which];
        point.map_err(|reason| dropped.push(format!("morph point {name} was damaged and is left out ({reason})"))).ok()
    });
    let history = saved.history.map_or_else(History::default, |raw| {
        serde_json::from_str::<History>(raw.get()).map(History::sanitised).unwrap_or_else(|reason| {
            dropped.push(format!("the pattern history was damaged and is left out ({reason})"));
            History::default()
        })
    });
    let session = Session {
        schema_version: saved.schema_version,
        model: saved.model,
        settings,
        takes: saved.takes,
        pattern,
        clip,
        morph_points,
        history,
    };
    Ok((session, dropped))
}

/// A morph point as a render will trust it: a sound take, or knob values a knob can take.
fn check_point(point: &MorphPoint) -> Result<(), String> {
    match point {
        MorphPoint::Clip(take) => take.check(),
        MorphPoint::Dream { knobs, named, .. } => {
            match knobs.iter().chain(named).find(|value| !(-KNOB_REACH..=KNOB_REACH).contains(*value)) {
                Some(value) => Err(format!("a knob at {value}, past the ±{KNOB_REACH} a knob reaches")),
                None => Ok(()),
            }
        }
    }
}

fn check_pattern(pattern: &mut Pattern) -> Result<(), String> {
    let meter = pattern.meter;
    if pattern.steps_per_beat == 0 || pattern.steps_per_beat > u32::from(MAX_STEPS_PER_BEAT) {
        return Err(format!("{} steps per beat", pattern.steps_per_beat));
    }
    if meter.numerator == 0
        || u32::from(meter.numerator) > u32::from(MAX_BEATS_PER_BAR)
        || !matches!(meter.denominator, 1 | 2 | 4 | 8 | 16 | 32)
    {
        return Err(format!("a meter of {}/{}", meter.numerator, meter.denominator));
    }
    if pattern.bars == 0 || pattern.bars > MAX_BARS {
        return Err(format!("a loop of {} bars", pattern.bars));
    }
    if pattern.notes.len() > MAX_NOTES {
        return Err(format!("{} notes", pattern.notes.len()));
    }
    let steps = pattern.bars * pattern.steps_per_bar();
    for note in &pattern.notes {
        let fits =
            note.start < steps && note.length >= 1 && note.length <= steps && note.channel < 16 && note.pitch < 128;
        if !fits || !(1..=127).contains(&note.velocity) || note.delay > MAX_DELAY {
            return Err(format!("an impossible note {note:?}"));
        }
    }
    // One note per step, channel and pitch, as the engine makes them: a step's work on the
    // audio thread is then bounded by the keys there are, not by what a blob holds.
    pattern.notes.sort_by_key(|n| (n.start, n.channel, n.pitch));
    pattern.notes.dedup_by_key(|n| (n.start, n.channel, n.pitch));
    Ok(())
}

/// The session as a persisted field: loading parses and hands the result to the engine;
/// saving gives back what was loaded until the user changes something, and from then on
/// what the engine published.
#[derive(Default)]
pub struct SessionField {
    inner: Mutex<Link>,
}

#[derive(Default)]
struct Link {
    published: Option<Arc<Mutex<Published>>>,
    commands: Option<Sender<Command>>,
    takes: Option<Arc<AtomicU32>>,
    clip: Option<Arc<ClipSlot>>,
    chord: Option<Arc<HeardChord>>,
    morph: Option<Arc<MorphPoints>>,
    history: Option<Arc<HistorySlot>>,
    /// The session the host loaded last, as its exact text. Hosts save right after loading
    /// (a project opened on a frozen track, an undo snapshot, a duplicated track) before the
    /// engine has run, and must get back exactly what they gave.
    loaded: Option<Loaded>,
    /// A loaded session the engine has not been connected for yet.
    waiting: Option<(Session, u64)>,
    /// Loads so far, numbering the engine's restores.
    loads: u64,
    /// Why the last loaded session was refused, or what of it was dropped.
    problem: Option<String>,
}

struct Loaded {
    text: String,
    serial: u64,
    /// The serials of the clip and the morph points once this session's were put in; `None`
    /// until then. Either changing since means the user changed the project.
    extras_serial: Option<u64>,
}

/// The engine's side of the plugin that a restore writes to.
struct Targets<'a> {
    commands: &'a Sender<Command>,
    takes: &'a AtomicU32,
    clip: &'a ClipSlot,
    chord: &'a HeardChord,
    morph: &'a MorphPoints,
    history: &'a HistorySlot,
}

/// Hands a session to the engine; returns the extras' serial with its clip and points in.
fn restore(targets: Targets, session: Session, serial: u64) -> u64 {
    targets.takes.store(session.takes, Ordering::Release);
    targets.clip.set(session.clip.map(Arc::new));
    targets.morph.set(session.morph_points);
    *lock(targets.history) = session.history;
    // The chord a project followed is heard again, so its settings are what the parameters ask.
    targets.chord.set(session.settings.source.chords.first().map(|&classes| (classes, None)));
    let extras_serial = targets.clip.serial() + targets.morph.serial();
    let _ = targets.commands.send(Command::Restore {
        source: session.model,
        settings: session.settings,
        pattern: session.pattern,
        serial,
    });
    extras_serial
}

impl SessionField {
    /// Connects the field to a running engine; a session loaded before it started goes to it now.
    pub fn connect(&self, published: Arc<Mutex<Published>>, commands: Sender<Command>, slots: SessionSlots) {
        let SessionSlots { takes, clip, chord, morph, history } = slots;
        let mut link = lock(&self.inner);
        if let Some((session, serial)) = link.waiting.take() {
            let extras_serial = restore(
                Targets {
                    commands: &commands,
                    takes: &takes,
                    clip: &clip,
                    chord: &chord,
                    morph: &morph,
                    history: &history,
                },
                session,
                serial,
            );
            if let Some(loaded) = link.loaded.as_mut().filter(|loaded| loaded.serial == serial) {
                loaded.extras_serial = Some(extras_serial);
            }
        }
        link.published = Some(published);
        link.commands = Some(commands);
        link.takes = Some(takes);
        link.clip = Some(clip);
        link.chord = Some(chord);
        link.morph = Some(morph);
        link.history = Some(history);
    }

    /// Why the project's session, or a part of it, could not be used, for the editor.
    pub fn problem(&self) -> Option<String> {
        lock(&self.inner).problem.clone()
    }

    /// The session to save now, as text: the loaded one while the engine has made nothing
    /// since restoring it (or has not restored it yet), else the newest pattern and what it
    /// answers; empty before there is either.
    pub fn saved_text(&self) -> String {
        let link = lock(&self.inner);
        let Some(published) = link.published.as_ref() else {
            return link.loaded.as_ref().map(|l| l.text.clone()).unwrap_or_default();
        };
        let published = lock(published);
        if let Some(loaded) = &link.loaded {
            let pattern_changed = published
                .restored
                .is_some_and(|mark| mark.serial == loaded.serial && published.generation != mark.generation);
            let now = link.clip.as_ref().zip(link.morph.as_ref()).map(|(clip, morph)| clip.serial() + morph.serial());
            let extras_changed = loaded.extras_serial.zip(now).is_some_and(|(at_load, now)| now != at_load);
            if !pattern_changed && !extras_changed {
                return loaded.text.clone();
            }
        }
        let session = (|| {
            Some(Session {
                schema_version: SESSION_VERSION,
                model: published.model.as_ref()?.source.clone(),
                settings: published.settings.clone()?,
                takes: link.takes.as_ref().map_or(0, |t| t.load(Ordering::Acquire)),
                pattern: Pattern::clone(published.pattern.as_ref()?),
                clip: link.clip.as_ref().and_then(|slot| slot.get()).map(Arc::unwrap_or_clone),
                morph_points: link.morph.as_ref().map(|points| points.get()).unwrap_or_default(),
                history: link.history.as_ref().map(|history| lock(history).clone()).unwrap_or_default(),
            })
        })();
        session.and_then(|s| serde_json::to_string(&s).ok()).unwrap_or_default()
    }

    /// Takes a saved session (from the host or a test).
    pub fn load(&self, text: &str) {
        let mut link = lock(&self.inner);
        match read_session(text) {
            Ok((session, dropped)) => {
                link.problem = (!dropped.is_empty()).then(|| dropped.join("; "));
                link.loads += 1;
                let serial = link.loads;
                let extras_serial =
                    match (&link.commands, &link.takes, &link.clip, &link.chord, &link.morph, &link.history) {
                        (Some(commands), Some(takes), Some(clip), Some(chord), Some(morph), Some(history)) => {
                            Some(restore(Targets { commands, takes, clip, chord, morph, history }, session, serial))
                        }
                        _ => {
                            link.waiting = Some((session, serial));
                            None
                        }
                    };
                link.loaded = Some(Loaded { text: text.to_string(), serial, extras_serial });
            }
            Err(error) => link.problem = Some(format!("{error}; starting from the project's parameter values")),
        }
    }
}

/// The host stores the session as a JSON string inside its own JSON.
impl<'a> PersistentField<'a, String> for SessionField {
    fn set(&self, new_value: String) {
        self.load(&new_value);
    }

    fn map<F, R>(&self, f: F) -> R
    where
        F: Fn(&String) -> R,
    {
        f(&self.saved_text())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::engine::pattern::{PatternOptions, Scale};
    use crate::model::generator::RenderRequest;
    use crate::plugin::history::Moment;
    use crate::roll::swing::Swing;
    use crate::roll::Meter;
    use crate::schedule::PatternNote;
    use std::time::Instant;

    fn session() -> Session {
        Session {
            schema_version: SESSION_VERSION,
            model: ModelSource::Embedded,
            settings: Settings {
                request: RenderRequest {
                    bars: 1,
                    seed: 1,
                    knobs: vec![0.5],
                    variation: 0.0,
                    temperature: None,
                    density: 0.0,
                    named: Vec::new(),
                    style: None,
                },
                voicing: PatternOptions {
                    key: 0,
                    scale: Scale::Major,
                    transpose: 0,
                    velocity: 90,
                    humanise: 0.0,
                    seed: 1,
                    channels: vec![0],
                    muted: vec![false],
                    swing: Swing::new(66),
                },
                source: Default::default(),
                clip: None,
            },
            takes: 2,
            pattern: Pattern {
                steps_per_beat: 4,
                meter: Meter::COMMON,
                bars: 1,
                notes: vec![PatternNote { start: 4, length: 2, channel: 0, pitch: 60, velocity: 90, delay: 0 }],
                swing: Swing::new(66),
            },
            clip: None,
            morph_points: [None, None],
            history: {
                let mut history = History::default();
                for (seed, takes) in [(0.2, 0), (0.2, 1), (0.7, 1)] {
                    let values = [("seed".to_string(), seed), ("knob_1".to_string(), 0.5)].into();
                    history.record(Moment { values, takes, label: format!("{seed} {takes}") }, Instant::now());
                }
                history.sanitised()
            },
        }
    }

    #[test]
    fn a_session_survives_a_round_trip() {
        let text = serde_json::to_string(&session()).unwrap();
        assert_eq!(parse_session(&text).unwrap(), session());
        assert_eq!(session().history.moments().len(), 3, "with its history");
    }

    #[test]
    fn a_damaged_history_is_dropped_alone_in_words() {
        let mut saved: serde_json::Value = serde_json::to_value(session()).unwrap();
        saved["history"]["moments"][1]["takes"] = serde_json::json!("two");
        let (restored, dropped) = read_session(&saved.to_string()).unwrap();
        assert_eq!(restored.history, History::default());
        assert_eq!(restored.pattern, session().pattern, "the rest is restored");
        assert!(dropped.len() == 1 && dropped[0].starts_with("the pattern history was damaged"), "{dropped:?}");
        let old: serde_json::Value = {
            let mut old = serde_json::to_value(session()).unwrap();
            old.as_object_mut().unwrap().remove("history");
            old
        };
        assert_eq!(parse_session(&old.to_string()).unwrap().history, History::default(), "a project from before");
    }

    pub(crate) fn one_note_take() -> Take {
        let file = crate::roll::write_midi(
            480,
            500_000,
            Meter::COMMON,
            &[crate::roll::TrackToWrite { name: "a".into(), channel: 0, notes: vec![(0, 480, 72, 90)] }],
            1920,
        );
        Take::from_score(&crate::roll::read_midi(&file).unwrap(), 8)
    }

    #[test]
    fn a_clip_and_morph_points_survive_a_round_trip() {
        let take = one_note_take();
        let mut with = session();
        with.clip = Some(take.clone());
        with.morph_points = [
            Some(MorphPoint::Dream { seed: 3, knobs: vec![1.0], named: vec![], style: None }),
            Some(MorphPoint::Clip(take)),
        ];
        assert_eq!(read_session(&serde_json::to_string(&with).unwrap()).unwrap(), (with, vec![]));
    }

    #[test]
    fn a_damaged_clip_or_morph_point_is_dropped_alone_in_words() {
        let take = one_note_take();
        let mut with = session();
        with.clip = Some(take.clone());
        let mut damaged = take.clone();
        damaged.notes[0].pitch = 200;
        with.morph_points = [
            Some(MorphPoint::Clip(damaged)),
            Some(MorphPoint::Dream { seed: 3, knobs: vec![2.5], named: vec![], style: None }),
        ];
        let text = serde_json::to_string(&with).unwrap().replace("[2.5]", "[1e39]");
        let (restored, dropped) = read_session(&text).unwrap();
        assert_eq!((restored.pattern, restored.clip), (session().pattern, Some(take.clone())), "the rest is restored");
        assert_eq!(restored.morph_points, [None, None]);
        assert_eq!(dropped.len(), 2);
        assert!(
            dropped[0].starts_with("morph point A was damaged and is left out (an impossible note in the take"),
            "{dropped:?}"
        );
        assert_eq!(dropped[1], "morph point B was damaged and is left out (a knob at inf, past the ±3 a knob reaches)");

        with.morph_points = [None, Some(MorphPoint::Clip(take.clone()))];
        let clip = serde_json::to_string(&take).unwrap();
        let text = serde_json::to_string(&with).unwrap().replacen(
            &clip,
            &clip.replace("\"velocity\":90", "\"velocity\":\"loud\""),
            1,
        );
        let (restored, dropped) = read_session(&text).unwrap();
        assert_eq!(
            (restored.clip, restored.morph_points),
            (None, [None, Some(MorphPoint::Clip(take))]),
            "a clip that is not even a take"
        );
        assert!(dropped[0].starts_with("the saved clip was damaged and is left out (invalid type"), "{dropped:?}");

        let field = SessionField::default();
        field.load(&text);
        let problem = field.problem().unwrap();
        assert!(problem.starts_with("the saved clip was damaged and is left out (invalid type"), "{problem}");
        assert_eq!(field.saved_text(), text, "what was dropped is still saved as it came");
    }

    #[test]
    fn a_damaged_clip_in_the_settings_still_refuses_the_session() {
        let mut with = session();
        let mut damaged = one_note_take();
        damaged.notes[0].velocity = 0;
        with.settings.clip = Some(Arc::new(damaged));
        assert!(parse_session(&serde_json::to_string(&with).unwrap())
            .unwrap_err()
            .to_string()
            .contains("impossible note in the take"));
    }

    #[test]
    fn a_blob_past_the_limit_is_refused_unparsed_and_a_crowded_step_is_one_note_per_key() {
        let huge = " ".repeat(MOST_SESSION_BYTES + 1);
        assert_eq!(
            parse_session(&huge).unwrap_err().to_string(),
            format!(
                "the saved session is {} bytes, more than the {MOST_SESSION_BYTES} a session can be",
                MOST_SESSION_BYTES + 1
            )
        );
        let mut crowded = session();
        let note = crowded.pattern.notes[0];
        crowded.pattern.notes = vec![note; MAX_NOTES - 1];
        crowded.pattern.notes.push(PatternNote { pitch: 61, ..note });
        let parsed = parse_session(&serde_json::to_string(&crowded).unwrap()).unwrap();
        assert_eq!(parsed.pattern.notes.len(), 2, "one note per step, channel and pitch");
        assert_eq!(parsed.pattern.notes, vec![note, PatternNote { pitch: 61, ..note }]);
    }

    #[test]
    fn bad_blobs_are_refused_in_words() {
        let reason = |text: &str| parse_session(text).unwrap_err().to_string();
        assert!(reason("\u{0}\u{1}garbage").contains("not readable JSON"));
        let text = serde_json::to_string(&session()).unwrap();
        assert!(reason(&text[..text.len() / 2]).contains("not readable JSON"), "truncated");
        assert!(reason("{\"pattern\": []}").contains("no schema version"));
        let future = text.replace("\"schema_version\":1", "\"schema_version\":7");
        assert!(reason(&future).contains("newer Dreamroll (schema 7"), "{}", reason(&future));
        let wrong_type = text.replace("\"takes\":2", "\"takes\":\"two\"");
        assert!(reason(&wrong_type).contains("damaged"));
    }

    #[test]
    fn impossible_patterns_never_reach_the_scheduler() {
        let broken = |edit: fn(&mut Session)| {
            let mut s = session();
            edit(&mut s);
            parse_session(&serde_json::to_string(&s).unwrap()).unwrap_err().to_string()
        };
        assert!(broken(|s| s.pattern.steps_per_beat = 0).contains("0 steps per beat"));
        assert!(broken(|s| s.pattern.bars = 0).contains("0 bars"));
        assert!(broken(|s| s.pattern.meter.denominator = 3).contains("meter of 4/3"));
        assert!(broken(|s| s.pattern.notes[0].start = 16).contains("impossible note"), "past the loop's end");
        assert!(broken(|s| s.pattern.notes[0].pitch = 200).contains("impossible note"));
        assert!(broken(|s| s.pattern.notes[0].velocity = 0).contains("impossible note"));
    }

    #[test]
    fn notes_out_of_order_are_sorted_for_the_scheduler() {
        let mut s = session();
        s.pattern.notes.insert(0, PatternNote { start: 8, length: 1, channel: 0, pitch: 62, velocity: 80, delay: 0 });
        let parsed = parse_session(&serde_json::to_string(&s).unwrap()).unwrap();
        assert!(parsed.pattern.notes.windows(2).all(|w| w[0].start <= w[1].start));
    }

    #[test]
    fn a_session_loaded_before_the_engine_is_kept_whole_and_saved_again() {
        let field = SessionField::default();
        let text = serde_json::to_string(&session()).unwrap();
        field.load(&text);
        assert_eq!(field.saved_text(), text);
        field.load("{\"schema_version\": 99}");
        assert!(field.problem().unwrap().contains("newer Dreamroll"));
        assert_eq!(field.saved_text(), text, "a refused blob loses nothing");
    }

    #[test]
    fn the_loaded_text_is_saved_until_the_engine_makes_something_new() {
        use crate::engine::worker::RestoreMark;
        let field = SessionField::default();
        let published = Arc::new(Mutex::new(Published::default()));
        let (commands, inbox) = crossbeam_channel::unbounded();
        field.connect(published.clone(), commands, SessionSlots::default());
        // Spaces the engine would never write: the text itself is kept, not a re-encoding.
        let text = serde_json::to_string_pretty(&session()).unwrap();
        field.load(&text);
        assert!(matches!(inbox.try_recv(), Ok(Command::Restore { serial: 1, .. })));
        assert_eq!(field.saved_text(), text, "before the engine has restored it");
        lock(&published).restored = Some(RestoreMark { serial: 1, generation: 4 });
        lock(&published).generation = 4;
        assert_eq!(field.saved_text(), text, "restored, nothing changed since");
        let mut newer = session();
        newer.pattern.notes[0].pitch = 67;
        {
            let mut p = lock(&published);
            p.generation = 5;
            p.pattern = Some(Arc::new(newer.pattern.clone()));
            p.settings = Some(newer.settings.clone());
            p.model = Some(crate::engine::worker::ModelInfo {
                source: ModelSource::Embedded,
                name: "m".into(),
                parts: vec![],
                steps_per_beat: 4,
                named_knobs: vec![],
            });
        }
        let saved = parse_session(&field.saved_text()).unwrap();
        assert_eq!(saved.pattern, newer.pattern, "a new pattern since the restore is what is saved");
        // A second load, not yet restored, is saved as loaded.
        let second = serde_json::to_string(&newer).unwrap();
        field.load(&second);
        assert_eq!(field.saved_text(), second);
    }
}
