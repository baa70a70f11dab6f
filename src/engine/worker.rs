//! The engine thread: it owns the decoder, takes commands over a channel, and hands finished
//! patterns to the audio thread through a wait-free ring. The audio thread never runs the
//! model, never waits, and never frees memory: it sends patterns it is done with back here.
//!
//! A pattern always answers one (model, settings) pair; the engine renders whenever the pair
//! the user is asking for differs from the one the newest pattern answers. That single rule
//! covers knob moves, model changes and restored projects (whose saved pattern answers the
//! restored settings, so reopening plays it rather than re-rendering).

use super::models::{scan_models, ModelEntry, ModelSource};
use super::pattern::{build_pattern, PatternOptions};
use crate::metrics::attributes::Attribute;
use crate::model::card::ModelCard;
use crate::model::generator::{Generator, RenderRequest};
use crate::model::source::Source;
use crate::roll::{Clip, ClipError, Take};
use crate::schedule::Pattern;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use serde::{Deserialize, Serialize};
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the pattern should be: the render request, where its notes come from, and how to
/// voice it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub request: RenderRequest,
    pub voicing: PatternOptions,
    #[serde(default)]
    pub source: Source,
    /// The producer's clip, present when the source reads one (a new take changes nothing
    /// while Dreamroll dreams).
    #[serde(default)]
    pub clip: Option<Arc<Take>>,
}

pub enum Command {
    /// New settings; only the latest of a burst (a knob being turned) is rendered.
    Settings(Settings),
    /// Switch models; one that fails to load leaves the current one playing.
    LoadModel(ModelSource),
    /// A saved project: play its pattern at once, as the answer to its settings, and use its
    /// model if that model can still be loaded. `serial` numbers the loads, so that the state
    /// saver can tell when the engine has taken this one (see [`Published::restored`]).
    Restore { source: ModelSource, settings: Settings, pattern: Pattern, serial: u64 },
    /// List the built-in model and the folders in this models directory.
    ScanModels(Option<PathBuf>),
    /// Wakes the engine to find its stop flag set.
    Shutdown,
}

/// A finished pattern for the audio thread.
pub struct PatternUpdate {
    pub generation: u64,
    pub pattern: Pattern,
    /// Play it from the next block rather than the next bar line: a restored project's
    /// pattern, which should be heard from the first note.
    pub immediate: bool,
}

/// The model in use, for the editor.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    pub source: ModelSource,
    pub name: String,
    /// The model's parts (a kit, a hand of voices, one line), named, with their tracks: what
    /// the editor's mute and channel slots stand for.
    pub parts: Vec<(String, Vec<usize>)>,
    pub steps_per_beat: u32,
    /// The named knobs the model has.
    pub named_knobs: Vec<Attribute>,
}

/// What the engine tells the editor and the state saver; the audio thread never reads it.
#[derive(Clone, Debug, Default)]
pub struct Published {
    pub model: Option<ModelInfo>,
    /// The newest pattern handed to the audio thread, and what it answers.
    pub pattern: Option<Arc<Pattern>>,
    pub settings: Option<Settings>,
    pub generation: u64,
    /// How long the newest pattern took to make.
    pub render_time: Duration,
    /// What the engine did last (a render, a model load).
    pub message: String,
    /// What went wrong, shown until it is mended: a model that did not load stays reported
    /// until one does; a failed render until a render succeeds.
    pub problem: Option<String>,
    pub models: Vec<ModelEntry>,
    /// The newest saved project the engine has restored: its load's serial, and the pattern
    /// generation that restoring it made. While `generation` is still that one, nothing the
    /// user did has changed the project since it was loaded.
    pub restored: Option<RestoreMark>,
    /// The clip the newest pattern read, as the model read it, for the piano roll.
    pub clip: Option<ClipShown>,
}

/// A clip as the editor shows it: its notes voiced like the pattern's, and a sentence on
/// what was read and what was left out.
#[derive(Clone, Debug, PartialEq)]
pub struct ClipShown {
    pub pattern: Arc<Pattern>,
    pub summary: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestoreMark {
    pub serial: u64,
    pub generation: u64,
}

/// The audio thread's ends: new patterns in, used ones out.
pub struct AudioSide {
    pub patterns: rtrb::Consumer<Box<PatternUpdate>>,
    pub used: rtrb::Producer<Box<PatternUpdate>>,
    /// The watch fingerprint the engine has answered: its pattern (if it needed a new one)
    /// is in `patterns` before this is stored.
    pub answered: Arc<AtomicU64>,
}

/// Reads the user's current settings for a model: the plugin's parameters, polled on the
/// engine thread so that neither the audio thread nor a parameter callback ever sends.
pub trait Watch: Send {
    /// Called at every poll, 200 times a second while nothing happens, so its cost must not
    /// grow with the session: a fingerprint of the parameter values (which the audio thread
    /// can compute too: an offline bounce waits until the engine has answered it), and
    /// anything to tell the user.
    fn poll(&mut self) -> Polled;
    /// The settings the parameters ask of `card`'s model; read only when the fingerprint or
    /// the model has changed, since they hold copies of the morph points.
    fn settings(&mut self, card: &ModelCard) -> Settings;
}

/// What one poll of a [`Watch`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct Polled {
    pub fingerprint: u64,
    /// Something gone wrong outside a render, for the status line until the next render.
    pub problem: Option<String>,
}

pub struct Engine {
    commands: Sender<Command>,
    published: Arc<Mutex<Published>>,
    thread: Option<JoinHandle<()>>,
    /// Set on drop; the engine looks at it between commands and inside long jobs, so that
    /// closing an instance never waits behind a queue of work.
    stop: Arc<AtomicBool>,
    /// Cleared when the engine thread ends, however it ends.
    alive: Arc<AtomicBool>,
}

/// Patterns waiting for the audio thread; a few, since only the newest matters.
const RING: usize = 8;
/// How often a watch is polled: well under a bar at any tempo, and cheap (a few atomic loads).
const POLL: Duration = Duration::from_millis(5);

impl Engine {
    pub fn spawn(generator: Generator, source: ModelSource, watch: Option<Box<dyn Watch>>) -> (Engine, AudioSide) {
        let (commands, inbox) = crossbeam_channel::unbounded();
        let (patterns_in, patterns) = rtrb::RingBuffer::new(RING);
        let (used, used_out) = rtrb::RingBuffer::new(RING * 2);
        let published =
            Arc::new(Mutex::new(Published { model: Some(model_info(&generator, &source)), ..Published::default() }));
        let answered = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let alive = Arc::new(AtomicBool::new(true));
        let worker = Worker {
            generator,
            source,
            watch,
            read: None,
            stop: stop.clone(),
            doing: "starting",
            answered_fingerprint: answered.clone(),
            published: published.clone(),
            patterns: patterns_in,
            used: used_out,
            pending: None,
            latest: None,
            answered: None,
            generation: 0,
            passing_problem: false,
            restored: Restored::No,
        };
        let lifeline = Lifeline { alive: alive.clone(), published: published.clone() };
        let thread = std::thread::Builder::new().name("dreamroll-engine".into()).spawn(move || {
            let _lifeline = lifeline;
            worker.run(inbox);
        });
        // The lifeline went down with the closure: the engine reads as gone, and says why.
        let thread = thread
            .map_err(|error| {
                lock(&published).problem =
                    Some(format!("the engine thread could not start: {error}; no pattern will play"))
            })
            .ok();
        (Engine { commands, published, thread, stop, alive }, AudioSide { patterns, used, answered })
    }

    /// False once the engine thread has ended: nothing it was asked will be answered.
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    pub fn send(&self, command: Command) {
        // A closed channel means the engine is shutting down; there is no one left to tell.
        let _ = self.commands.send(command);
    }

    /// A sender of commands, for the editor and the state loader.
    pub fn commander(&self) -> Sender<Command> {
        self.commands.clone()
    }

    /// What the engine has published; hold it briefly (the engine waits for it).
    pub fn published(&self) -> MutexGuard<'_, Published> {
        lock(&self.published)
    }

    /// The same, for holders that outlive the engine handle (the editor, the state saver).
    pub fn published_handle(&self) -> Arc<Mutex<Published>> {
        self.published.clone()
    }
}

/// A poisoned lock only means a panic elsewhere; the data is plain and still usable.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.send(Command::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Lives on the engine thread: its drop marks the engine gone, and, when a panic got past every
/// catch (one whose payload panics again on drop), says so where the user looks.
struct Lifeline {
    alive: Arc<AtomicBool>,
    published: Arc<Mutex<Published>>,
}

impl Drop for Lifeline {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::Release);
        if std::thread::panicking() {
            lock(&self.published).problem =
                Some("the engine stopped after an internal error it could not recover from; the pattern playing stays, and Dreamroll must be reopened to change it".into());
        }
    }
}

/// A panic's message, as `panic!` was given it.
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message")
}

fn model_info(generator: &Generator, source: &ModelSource) -> ModelInfo {
    let card = generator.card();
    ModelInfo {
        source: source.clone(),
        name: card.name.clone(),
        parts: card
            .representation
            .parts()
            .into_iter()
            .map(|part| (card.representation.part_name(&part), part))
            .collect(),
        steps_per_beat: u32::from(card.representation.steps_per_beat),
        named_knobs: card.named_knobs.iter().map(|k| k.attribute).collect(),
    }
}

/// What the editor shows of a clip the model has read.
fn clip_shown(clip: &Clip, voicing: &PatternOptions, generator: &Generator) -> ClipShown {
    let tracks = &generator.card().representation.tracks;
    let parts: Vec<&str> = clip.tracks_given.iter().filter_map(|&t| tracks.get(t)).map(|t| t.name.as_str()).collect();
    let notes = clip.roll.notes().len();
    let mut summary = format!("clip: {} bars, {notes} notes on {}", clip.roll.bar_count(), parts.join(", "));
    if !clip.left_out.is_empty() {
        summary += &format!("; left out {}", clip.left_out.join(", "));
    }
    ClipShown { pattern: Arc::new(build_pattern(&clip.roll, voicing)), summary }
}

/// The clip as `generator` reads it for `settings`, where their source reads one: the one
/// path from a saved take to what a render is given, for the engine and the fuzz targets.
pub fn clip_for(generator: &Generator, settings: &Settings) -> Result<Option<Clip>, ClipError> {
    let reads = settings.source.mode.reads_clip(!settings.source.chords.is_empty());
    settings.clip.as_deref().filter(|_| reads).map(|take| generator.read_take(take, settings.request.bars)).transpose()
}

struct Worker {
    generator: Generator,
    source: ModelSource,
    watch: Option<Box<dyn Watch>>,
    /// The fingerprint whose settings were read last.
    read: Option<u64>,
    stop: Arc<AtomicBool>,
    /// What the engine is doing, for the words on a panic.
    doing: &'static str,
    answered_fingerprint: Arc<AtomicU64>,
    published: Arc<Mutex<Published>>,
    patterns: rtrb::Producer<Box<PatternUpdate>>,
    used: rtrb::Consumer<Box<PatternUpdate>>,
    /// A finished pattern the audio thread has no room for yet (it is not processing); a
    /// newer one replaces it, so the newest always arrives.
    pending: Option<Box<PatternUpdate>>,
    /// What the user asks for now.
    latest: Option<Settings>,
    /// The model and settings the newest pattern answers.
    answered: Option<(ModelSource, Settings)>,
    generation: u64,
    /// The problem shown is one the next render that succeeds mends (a failed render, a
    /// caught panic, lost notes), rather than one that stays until a model loads.
    passing_problem: bool,
    restored: Restored,
}

/// Whether a restored project's pattern still stands.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Restored {
    No,
    /// Until the watch has read the restored parameters once.
    AwaitingParameters,
    /// Until the parameters differ from these.
    KeepWhile(u64),
}

impl Worker {
    /// Serves until shutdown. A panic anywhere in serving is reported and serving starts
    /// again, with everything as the panic left it: every step keeps the worker whole (a
    /// render marks its settings answered before it starts, so it is not retried in a loop).
    fn run(mut self, inbox: Receiver<Command>) {
        while let Err(panic) = catch_unwind(AssertUnwindSafe(|| self.serve(&inbox))) {
            self.report(format!(
                "the engine hit an internal error while {}: {}; the pattern playing stays",
                self.doing,
                panic_message(&*panic)
            ));
        }
    }

    fn serve(&mut self, inbox: &Receiver<Command>) {
        while !self.stop.load(Ordering::Acquire) {
            // Patterns the audio thread is done with are freed here, off the audio thread.
            while self.used.pop().is_ok() {}
            if let Some(update) = self.pending.take() {
                self.deliver(update);
            }
            let mut commanded = false;
            match inbox.recv_timeout(POLL) {
                Ok(first) => {
                    for command in std::iter::once(first).chain(inbox.try_iter()) {
                        if self.stop.load(Ordering::Acquire) || !self.handle(command) {
                            return;
                        }
                        commanded = true;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            self.follow(commanded);
        }
    }

    /// Renders if the user now asks for something the newest pattern does not answer. Only
    /// a command or a new fingerprint can change that, so an idle poll costs a fingerprint.
    fn follow(&mut self, commanded: bool) {
        let mut fingerprint = None;
        let mut changed = commanded;
        if let Some(watch) = self.watch.as_mut() {
            self.doing = "reading the parameters";
            let polled = watch.poll();
            changed |= self.read != Some(polled.fingerprint);
            if changed {
                // Read before the settings are, so that a panic reading them is not repeated.
                self.read = Some(polled.fingerprint);
                self.latest = Some(watch.settings(self.generator.card()));
            }
            if let Some(problem) = polled.problem {
                self.report(problem);
            }
            fingerprint = Some(polled.fingerprint);
        }
        if let Some(settings) = self.latest.clone().filter(|_| changed) {
            let keep = match (self.restored, fingerprint) {
                // The parameters a project was restored with: its pattern stands, even where
                // the model in use would read them differently (its own model is missing).
                (Restored::AwaitingParameters, Some(print)) => {
                    self.restored = Restored::KeepWhile(print);
                    true
                }
                (Restored::KeepWhile(kept), Some(print)) if kept == print => true,
                _ => {
                    self.restored = Restored::No;
                    false
                }
            };
            let answered = self
                .answered
                .as_ref()
                .is_some_and(|(source, answered)| *source == self.source && *answered == settings);
            if !keep && !answered {
                self.doing = "rendering";
                self.render(settings);
            }
        }
        // Only once a pattern is in the ring (or held for it), so a waiting reader finds it.
        if let Some(print) = fingerprint.filter(|_| self.pending.is_none()) {
            self.answered_fingerprint.store(print, Ordering::Release);
        }
    }

    /// Shows `problem` until the next render that succeeds.
    fn report(&mut self, problem: String) {
        self.passing_problem = true;
        lock(&self.published).problem = Some(problem);
    }

    /// False for shutdown.
    fn handle(&mut self, command: Command) -> bool {
        match command {
            Command::Shutdown => return false,
            Command::Settings(settings) => self.latest = Some(settings),
            Command::LoadModel(source) => {
                self.doing = "loading a model";
                self.switch_model(source);
            }
            Command::Restore { source, settings, pattern, serial } => {
                self.doing = "restoring a project";
                let missing = source != self.source && !self.switch_model(source.clone());
                // The saved pattern answers the restored settings with whatever model is now in
                // use, so nothing replaces it until the user changes something.
                self.latest = Some(settings.clone());
                self.answered = Some((self.source.clone(), settings.clone()));
                // With its own model, the restored settings are what the parameters ask for and
                // the usual comparison keeps the pattern; without it, the current model reads the
                // parameters differently, so the pattern is kept until they change.
                self.restored =
                    if missing && self.watch.is_some() { Restored::AwaitingParameters } else { Restored::No };
                self.generation += 1;
                let update = Box::new(PatternUpdate { generation: self.generation, pattern, immediate: true });
                self.publish_pattern(&update, settings, Duration::ZERO);
                lock(&self.published).restored = Some(RestoreMark { serial, generation: self.generation });
                self.deliver(update);
                if missing {
                    let mut published = lock(&self.published);
                    let reason = published.problem.take().unwrap_or_default();
                    published.problem = Some(format!("the project's model cannot be used, so its saved pattern plays and changes use the current model: {reason}"));
                }
            }
            Command::ScanModels(dir) => {
                self.doing = "listing models";
                let published = &self.published;
                lock(published).models.clear();
                // Listed as they are read, so a slow folder fills the picker bit by bit.
                scan_models(dir.as_deref(), &self.stop, |entry| lock(published).models.push(entry));
            }
        }
        true
    }

    /// True when the model loaded.
    fn switch_model(&mut self, source: ModelSource) -> bool {
        match source.load() {
            Ok(loaded) => {
                let info = model_info(&loaded, &source);
                self.generator = loaded;
                self.source = source;
                let mut published = lock(&self.published);
                published.message = format!("loaded model {}", info.name);
                published.problem = None;
                published.model = Some(info);
                true
            }
            Err(error) => {
                lock(&self.published).problem = Some(format!("{error}; the current model keeps playing"));
                false
            }
        }
    }

    fn render(&mut self, settings: Settings) {
        let started = Instant::now();
        // Whatever happens, this pair has been answered: a failing render is not retried in
        // a loop, only when the user changes something.
        self.answered = Some((self.source.clone(), settings.clone()));
        let clip = match clip_for(&self.generator, &settings) {
            Ok(clip) => clip,
            Err(error) => {
                self.report(format!("the clip cannot be used: {error}; the pattern playing stays"));
                lock(&self.published).clip = None;
                return;
            }
        };
        match self.generator.render_from(&settings.request, &settings.source, clip.as_ref()) {
            Ok(roll) => {
                self.generation += 1;
                let pattern = build_pattern(&roll, &settings.voicing);
                let update = Box::new(PatternUpdate { generation: self.generation, pattern, immediate: false });
                let shown = clip.map(|clip| clip_shown(&clip, &settings.voicing, &self.generator));
                self.publish_pattern(&update, settings, started.elapsed());
                let mut published = lock(&self.published);
                published.clip = shown;
                if std::mem::take(&mut self.passing_problem) {
                    published.problem = None;
                }
                drop(published);
                self.deliver(update);
            }
            Err(error) => self.report(format!("{error}; the pattern playing stays")),
        }
    }

    fn publish_pattern(&mut self, update: &PatternUpdate, settings: Settings, render_time: Duration) {
        let mut published = lock(&self.published);
        published.pattern = Some(Arc::new(update.pattern.clone()));
        published.settings = Some(settings);
        published.generation = update.generation;
        published.render_time = render_time;
        published.message = if update.immediate {
            format!("the project's pattern: {} notes in {} bars", update.pattern.notes.len(), update.pattern.bars)
        } else {
            format!(
                "{} notes in {} bars, made in {} ms",
                update.pattern.notes.len(),
                update.pattern.bars,
                render_time.as_millis()
            )
        };
    }

    fn deliver(&mut self, update: Box<PatternUpdate>) {
        if let Err(rtrb::PushError::Full(update)) = self.patterns.push(update) {
            self.pending = Some(update);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::engine::pattern::Scale;
    use crate::model::default_generator;
    use crate::model::source::SourceMode;
    use crate::roll::swing::Swing;
    use std::path::Path;

    fn settings(seed: u64) -> Settings {
        let generator = default_generator().unwrap();
        let tracks = generator.card().representation.tracks.len();
        Settings {
            request: RenderRequest {
                bars: 4,
                seed,
                knobs: vec![],
                variation: 0.2,
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
                seed,
                channels: (0..tracks as u8).collect(),
                muted: vec![false; tracks],
                swing: Swing::STRAIGHT,
            },
            source: Default::default(),
            clip: None,
        }
    }

    fn spawn() -> (Engine, AudioSide) {
        Engine::spawn(default_generator().unwrap(), ModelSource::Embedded, None)
    }

    fn next_pattern(audio: &mut AudioSide) -> Box<PatternUpdate> {
        for _ in 0..500 {
            if let Ok(update) = audio.patterns.pop() {
                return update;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no pattern within 5 s");
    }

    fn expected(seed: u64) -> Pattern {
        build_pattern(&default_generator().unwrap().render(&settings(seed).request).unwrap(), &settings(seed).voicing)
    }

    #[test]
    fn settings_become_the_pattern_render_would_make() {
        let (engine, mut audio) = spawn();
        engine.send(Command::Settings(settings(3)));
        let update = next_pattern(&mut audio);
        assert_eq!(update.pattern, expected(3));
        assert!(!update.immediate, "a new pattern waits for its bar line");
        assert_eq!(engine.published().pattern.as_deref(), Some(&expected(3)));
        assert!(audio.used.push(update).is_ok(), "used patterns go back to be freed");
    }

    #[test]
    fn a_burst_of_settings_renders_the_last_and_repeats_render_nothing() {
        let (engine, mut audio) = spawn();
        for seed in 0..20 {
            engine.send(Command::Settings(settings(seed)));
            // Some renders between commands, so that the ring fills before anyone reads it.
            std::thread::sleep(Duration::from_millis(if seed % 2 == 0 { 30 } else { 0 }));
        }
        std::thread::sleep(Duration::from_millis(300));
        // Reading frees room; the engine then delivers what it held back, the newest last.
        let mut last = next_pattern(&mut audio);
        for _ in 0..500 {
            while let Ok(update) = audio.patterns.pop() {
                last = update;
            }
            if last.pattern == expected(19) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(last.pattern, expected(19));
        engine.send(Command::Settings(settings(19)));
        std::thread::sleep(Duration::from_millis(200));
        assert!(audio.patterns.pop().is_err(), "the same settings again render nothing");
    }

    #[test]
    fn a_broken_model_is_reported_and_the_current_one_keeps_playing() {
        let (engine, mut audio) = spawn();
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(folder.path().join("model.json"), "{\"schema_version\": 1}").unwrap();
        engine.send(Command::LoadModel(ModelSource::Folder(folder.path().to_path_buf())));
        engine.send(Command::Settings(settings(5)));
        assert_eq!(next_pattern(&mut audio).pattern, expected(5), "rendered with the built-in model");
        let published = engine.published();
        let problem = published.problem.as_deref().unwrap_or_default();
        assert!(problem.contains("the current model keeps playing"), "{problem}");
        assert_eq!(published.model.as_ref().unwrap().source, ModelSource::Embedded);
    }

    /// A watch whose fingerprint is whatever `print` holds, and whose settings `make` builds from
    /// it; it counts its polls and the settings it is asked for.
    struct Knob<F> {
        print: Arc<AtomicU64>,
        polled: u64,
        make: F,
        polls: Arc<AtomicU64>,
        reads: Arc<AtomicU64>,
    }

    impl<F: FnMut(u64) -> Settings + Send> Watch for Knob<F> {
        fn poll(&mut self) -> Polled {
            self.polls.fetch_add(1, Ordering::AcqRel);
            self.polled = self.print.load(Ordering::Acquire);
            Polled { fingerprint: self.polled, problem: None }
        }

        fn settings(&mut self, _card: &ModelCard) -> Settings {
            self.reads.fetch_add(1, Ordering::AcqRel);
            (self.make)(self.polled)
        }
    }

    /// An engine following a [`Knob`] that starts at `print`; its print, polls and reads.
    fn spawn_watching(
        print: u64,
        make: impl FnMut(u64) -> Settings + Send + 'static,
    ) -> (Engine, AudioSide, [Arc<AtomicU64>; 3]) {
        let counters = [Arc::new(AtomicU64::new(print)), Arc::default(), Arc::default()];
        let [print, polls, reads] = counters.clone();
        let watch = Knob { print, polled: 0, make, polls, reads };
        let (engine, audio) = Engine::spawn(default_generator().unwrap(), ModelSource::Embedded, Some(Box::new(watch)));
        (engine, audio, counters)
    }

    /// Waits (at most 5 s) for `condition`.
    fn eventually(condition: impl Fn() -> bool) -> bool {
        (0..5000).any(|_| {
            condition() || {
                std::thread::sleep(Duration::from_millis(1));
                false
            }
        })
    }

    fn knob_settings(knob: u64) -> Settings {
        let mut s = settings(8);
        s.request.knobs = vec![f32::from_bits(knob as u32)];
        s
    }

    #[test]
    fn a_watch_is_followed_without_commands() {
        let (engine, mut audio, [knob, ..]) = spawn_watching(0f32.to_bits().into(), knob_settings);
        let first = next_pattern(&mut audio);
        knob.store(2.5f32.to_bits().into(), Ordering::Release);
        let second = next_pattern(&mut audio);
        assert_ne!(first.pattern, second.pattern, "turning the knob made a new pattern");
        assert_eq!(audio.answered.load(Ordering::Acquire), u64::from(2.5f32.to_bits()), "and answered its fingerprint");
        assert_eq!(engine.published().settings.as_ref().unwrap().request.knobs, vec![2.5]);
    }

    #[test]
    fn an_idle_engine_polls_the_fingerprint_and_reads_the_settings_only_when_it_changes() {
        let (_engine, mut audio, [knob, polls, reads]) = spawn_watching(0f32.to_bits().into(), knob_settings);
        next_pattern(&mut audio);
        assert!(eventually(|| polls.load(Ordering::Acquire) >= 50), "the engine keeps polling");
        assert_eq!(reads.load(Ordering::Acquire), 1, "50 polls of unchanged parameters copied their settings once");
        knob.store(1f32.to_bits().into(), Ordering::Release);
        next_pattern(&mut audio);
        assert_eq!(reads.load(Ordering::Acquire), 2);
    }

    #[test]
    fn a_panic_is_reported_in_words_and_the_engine_keeps_serving() {
        let (engine, mut audio, [knob, ..]) = spawn_watching(1, |print| {
            assert_ne!(print, 1, "parameters no one can read");
            settings(print)
        });
        let published = engine.published_handle();
        let problem = || lock(&published).problem.clone().unwrap_or_default();
        assert!(eventually(|| problem().contains("internal error")), "{}", problem());
        assert!(
            problem().starts_with("the engine hit an internal error while reading the parameters: "),
            "{}",
            problem()
        );
        assert!(
            problem().contains("parameters no one can read") && problem().ends_with("; the pattern playing stays"),
            "{}",
            problem()
        );
        knob.store(2, Ordering::Release);
        assert_eq!(next_pattern(&mut audio).pattern, expected(2), "a change renders again");
        assert!(engine.is_alive());
        assert_eq!(problem(), "", "the render mended it");
    }

    /// A panic payload that panics again when it is dropped: the one kind of panic a catch
    /// cannot keep inside the thread.
    struct PanicsOnDrop;

    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("dropping the payload");
        }
    }

    struct Dying;

    impl Watch for Dying {
        fn poll(&mut self) -> Polled {
            std::panic::panic_any(PanicsOnDrop)
        }

        fn settings(&mut self, _card: &ModelCard) -> Settings {
            unreachable!("never polled")
        }
    }

    /// An engine whose thread has died.
    pub(crate) fn dead_engine() -> (Engine, AudioSide) {
        let (engine, audio) = Engine::spawn(default_generator().unwrap(), ModelSource::Embedded, Some(Box::new(Dying)));
        assert!(eventually(|| !engine.is_alive()), "the thread ends");
        (engine, audio)
    }

    #[test]
    fn an_engine_whose_thread_died_knows_it_and_says_so() {
        let (engine, _audio) = dead_engine();
        let problem = engine.published().problem.clone().unwrap_or_default();
        assert!(problem.starts_with("the engine stopped after an internal error"), "{problem}");
    }

    #[test]
    fn dropping_an_engine_ends_a_scan_under_way() {
        const FOLDERS: usize = 3000;
        let dir = tempfile::tempdir().unwrap();
        let card = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/folk-melody/model.json");
        for i in 0..FOLDERS {
            let folder = dir.path().join(format!("model-{i:04}"));
            std::fs::create_dir(&folder).unwrap();
            std::fs::hard_link(&card, folder.join("model.json"))
                .or_else(|_| std::fs::copy(&card, folder.join("model.json")).map(drop))
                .unwrap();
        }
        let (engine, _audio) = spawn();
        let published = engine.published_handle();
        engine.send(Command::ScanModels(Some(dir.path().to_path_buf())));
        let listed = || lock(&published).models.len();
        assert!(eventually(|| listed() >= 2), "the scan is under way");
        drop(engine);
        assert!(listed() < FOLDERS / 2, "{} of {FOLDERS} folders were read after the drop", listed() - 1);
    }

    #[test]
    fn a_restored_pattern_plays_at_once_and_is_not_re_rendered() {
        let (engine, mut audio) = spawn();
        // A pattern no model would make, so that a re-render would show.
        let mut saved = expected(4);
        saved.notes.truncate(3);
        let missing = ModelSource::Folder("/no/such/model".into());
        engine.send(Command::Restore { source: missing, settings: settings(4), pattern: saved.clone(), serial: 1 });
        let update = next_pattern(&mut audio);
        assert!(update.immediate);
        assert_eq!(update.pattern, saved);
        engine.send(Command::Settings(settings(4)));
        std::thread::sleep(Duration::from_millis(200));
        assert!(audio.patterns.pop().is_err(), "the restored settings are already answered");
        let problem = engine.published().problem.clone().unwrap_or_default();
        assert!(
            problem.contains("saved pattern plays") && problem.contains("/no/such/model"),
            "the missing model is reported: {problem}"
        );
        engine.send(Command::Settings(settings(6)));
        assert_eq!(next_pattern(&mut audio).pattern, expected(6), "a change renders with the model in use");
    }

    #[test]
    fn a_restored_project_keeps_its_pattern_until_its_parameters_change() {
        let (engine, mut audio, [print, ..]) = spawn_watching(7, |_| settings(1));
        assert_eq!(next_pattern(&mut audio).pattern, expected(1));
        let mut saved = expected(2);
        saved.notes.truncate(2);
        // Settings as another model (one track, on channel 6) would have them.
        let mut theirs = settings(2);
        theirs.voicing.channels = vec![5];
        engine.send(Command::Restore {
            source: ModelSource::Folder("/gone".into()),
            settings: theirs,
            pattern: saved.clone(),
            serial: 1,
        });
        assert_eq!(next_pattern(&mut audio).pattern, saved);
        std::thread::sleep(Duration::from_millis(200));
        assert!(audio.patterns.pop().is_err(), "the restored parameters keep the saved pattern");
        print.store(8, Ordering::Release);
        assert_eq!(next_pattern(&mut audio).pattern, expected(1), "a change renders with the model in use");
    }

    /// Two bars of a melody in quarter notes on the model's top part.
    fn melody_take() -> Take {
        let generator = default_generator().unwrap();
        let channel = generator.card().representation.tracks[0].channel;
        let notes = [72u8, 74, 76, 77, 79, 77, 76, 74]
            .iter()
            .enumerate()
            .map(|(i, &pitch)| crate::roll::TakeNote {
                track: 0,
                channel,
                pitch,
                velocity: 90,
                start: i as u64 * 960,
                end: (i as u64 + 1) * 960,
            })
            .collect();
        Take {
            ticks_per_quarter: 960,
            meter: crate::roll::Meter::COMMON,
            bars: 2,
            notes,
            after_meter_change: 0,
            after_last_bar: 0,
            unplayable: 0,
            past_note_cap: 0,
        }
    }

    #[test]
    fn a_clip_is_varied_as_render_varies_it_and_shown_with_what_was_read() {
        let (engine, mut audio) = spawn();
        let mut vary = settings(3);
        vary.source = Source { mode: SourceMode::Vary, distance: 0.5, ..Source::default() };
        engine.send(Command::Settings(vary.clone()));
        std::thread::sleep(Duration::from_millis(300));
        assert!(audio.patterns.pop().is_err(), "nothing to vary yet");
        let problem = engine.published().problem.clone().unwrap_or_default();
        assert!(problem.contains("vary needs a clip"), "{problem}");
        vary.clip = Some(Arc::new(melody_take()));
        engine.send(Command::Settings(vary.clone()));
        let generator = default_generator().unwrap();
        let clip = generator.read_take(&melody_take(), vary.request.bars).unwrap();
        let expected =
            build_pattern(&generator.render_from(&vary.request, &vary.source, Some(&clip)).unwrap(), &vary.voicing);
        assert_eq!(next_pattern(&mut audio).pattern, expected);
        assert_eq!(expected.bars, 2, "the clip's length");
        let published = engine.published();
        assert_eq!(published.problem, None, "the clip mended it");
        let shown = published.clip.as_ref().unwrap();
        assert!(shown.summary.starts_with("clip: 2 bars, 8 notes on "), "{}", shown.summary);
        assert_eq!(shown.pattern.notes.len(), 8);
    }
}
