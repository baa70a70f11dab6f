//! The engine thread: it owns the decoder, takes commands over a channel, and hands finished
//! patterns to the audio thread through a wait-free ring. The audio thread never runs the
//! model, never waits, and never frees memory: it sends patterns it is done with back here.

use super::pattern::{build_pattern, PatternOptions};
use crate::model::generator::{Generator, RenderRequest};
use crate::schedule::Pattern;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

/// What the pattern should be: the render request and how to voice it.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub request: RenderRequest,
    pub voicing: PatternOptions,
}

pub enum Command {
    /// New settings; only the latest of a burst (a knob being turned) is rendered.
    Settings(Settings),
    /// Load a model folder; a model that fails leaves the current one playing.
    LoadModel(PathBuf),
    Shutdown,
}

/// A finished pattern and the settings generation it answers.
pub struct PatternUpdate {
    pub generation: u64,
    pub pattern: Pattern,
}

/// What the engine tells the editor.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    Rendered { generation: u64, notes: usize },
    ModelLoaded { name: String },
    Error(String),
}

/// The audio thread's ends: new patterns in, used ones out.
pub struct AudioSide {
    pub patterns: rtrb::Consumer<Box<PatternUpdate>>,
    pub used: rtrb::Producer<Box<PatternUpdate>>,
}

pub struct Engine {
    commands: Sender<Command>,
    pub status: Receiver<Status>,
    thread: Option<JoinHandle<()>>,
}

/// Patterns waiting for the audio thread; a few, since only the newest matters.
const RING: usize = 8;

impl Engine {
    pub fn spawn(generator: Generator) -> (Engine, AudioSide) {
        let (commands, inbox) = crossbeam_channel::unbounded();
        let (status_out, status) = crossbeam_channel::unbounded();
        let (patterns_in, patterns) = rtrb::RingBuffer::new(RING);
        let (used, used_out) = rtrb::RingBuffer::new(RING * 2);
        let thread = std::thread::Builder::new()
            .name("dreamroll-engine".into())
            .spawn(move || run(generator, inbox, status_out, patterns_in, used_out))
            .expect("the engine thread starts");
        (Engine { commands, status, thread: Some(thread) }, AudioSide { patterns, used })
    }

    pub fn send(&self, command: Command) {
        // A closed channel means the engine is shutting down; there is no one left to tell.
        let _ = self.commands.send(command);
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.send(Command::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(
    mut generator: Generator,
    inbox: Receiver<Command>,
    status: Sender<Status>,
    mut patterns: rtrb::Producer<Box<PatternUpdate>>,
    mut used: rtrb::Consumer<Box<PatternUpdate>>,
) {
    let mut latest: Option<Settings> = None;
    let mut generation = 0u64;
    // A finished pattern the audio thread has no room for yet (it is not processing); a newer
    // one replaces it, so the newest always arrives.
    let mut pending: Option<Box<PatternUpdate>> = None;
    loop {
        // Patterns the audio thread is done with are freed here, off the audio thread.
        while used.pop().is_ok() {}
        if let Some(update) = pending.take() {
            let (generation, notes) = (update.generation, update.pattern.notes.len());
            match patterns.push(update) {
                Ok(()) => {
                    let _ = status.send(Status::Rendered { generation, notes });
                }
                Err(rtrb::PushError::Full(update)) => pending = Some(update),
            }
        }
        let first = match inbox.recv_timeout(Duration::from_millis(20)) {
            Ok(command) => command,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut render = false;
        for command in std::iter::once(first).chain(inbox.try_iter()) {
            match command {
                Command::Shutdown => return,
                Command::Settings(settings) => {
                    render |= latest.as_ref() != Some(&settings);
                    latest = Some(settings);
                }
                Command::LoadModel(path) => match Generator::from_dir(&path) {
                    Ok(loaded) => {
                        let _ = status.send(Status::ModelLoaded { name: loaded.card().name.clone() });
                        generator = loaded;
                        render = true;
                    }
                    Err(error) => {
                        let _ = status.send(Status::Error(format!("{}: {error}; the current model keeps playing", path.display())));
                    }
                },
            }
        }
        let Some(settings) = latest.as_ref().filter(|_| render) else { continue };
        match generator.render(&settings.request) {
            Ok(roll) => {
                generation += 1;
                let update = Box::new(PatternUpdate { generation, pattern: build_pattern(&roll, &settings.voicing) });
                let notes = update.pattern.notes.len();
                match patterns.push(update) {
                    Ok(()) => {
                        let _ = status.send(Status::Rendered { generation, notes });
                    }
                    Err(rtrb::PushError::Full(update)) => pending = Some(update),
                }
            }
            Err(error) => {
                let _ = status.send(Status::Error(format!("the model failed to render: {error}")));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::pattern::Scale;
    use crate::model::default_generator;

    fn settings(seed: u64) -> Settings {
        let generator = default_generator().unwrap();
        let tracks = generator.card().representation.tracks.len();
        Settings {
            request: RenderRequest { bars: 4, seed, knobs: vec![], variation: 0.2, temperature: None },
            voicing: PatternOptions {
                key: 0,
                scale: Scale::Major,
                transpose: 0,
                velocity: 90,
                humanise: 0.0,
                seed,
                channels: (0..tracks as u8).collect(),
                muted: vec![false; tracks],
            },
        }
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

    #[test]
    fn settings_become_the_pattern_render_would_make() {
        let (engine, mut audio) = Engine::spawn(default_generator().unwrap());
        engine.send(Command::Settings(settings(3)));
        let update = next_pattern(&mut audio);
        let expected = build_pattern(&default_generator().unwrap().render(&settings(3).request).unwrap(), &settings(3).voicing);
        assert_eq!(update.pattern, expected);
        assert!(audio.used.push(update).is_ok(), "used patterns go back to be freed");
    }

    #[test]
    fn a_burst_of_settings_renders_the_last_and_repeats_render_nothing() {
        let (engine, mut audio) = Engine::spawn(default_generator().unwrap());
        for seed in 0..20 {
            engine.send(Command::Settings(settings(seed)));
            // Some renders between commands, so that the ring fills before anyone reads it.
            std::thread::sleep(Duration::from_millis(if seed % 2 == 0 { 30 } else { 0 }));
        }
        std::thread::sleep(Duration::from_millis(300));
        let expected = build_pattern(&default_generator().unwrap().render(&settings(19).request).unwrap(), &settings(19).voicing);
        // Reading frees room; the engine then delivers what it held back, the newest last.
        let mut last = next_pattern(&mut audio);
        for _ in 0..500 {
            while let Ok(update) = audio.patterns.pop() {
                last = update;
            }
            if last.pattern == expected {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(last.pattern, expected);
        engine.send(Command::Settings(settings(19)));
        std::thread::sleep(Duration::from_millis(200));
        assert!(audio.patterns.pop().is_err(), "the same settings again render nothing");
    }

    #[test]
    fn a_broken_model_is_reported_and_the_current_one_keeps_playing() {
        let (engine, mut audio) = Engine::spawn(default_generator().unwrap());
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(folder.path().join("model.json"), "{\"schema_version\": 1}").unwrap();
        engine.send(Command::LoadModel(folder.path().to_path_buf()));
        let status = engine.status.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(matches!(&status, Status::Error(message) if message.contains("the current model keeps playing")), "{status:?}");
        engine.send(Command::Settings(settings(5)));
        assert!(!next_pattern(&mut audio).pattern.notes.is_empty());
    }
}
