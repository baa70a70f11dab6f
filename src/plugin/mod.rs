//! The nice-plug glue: parameters, `process()`, state and the CLAP/VST3 exports. All the
//! music happens in pure modules ([`crate::schedule`], [`crate::synth`], [`crate::engine`]);
//! this file only connects them to a host.
//!
//! The audio thread allocates nothing, locks nothing and waits on nothing: new patterns arrive
//! through a wait-free ring, used ones leave through another, and everything the editor sees
//! of playback is a handful of atomics.

mod clap_entry;
pub mod history;
pub mod params;
pub mod presets;
pub mod session;
pub mod shared;
pub mod watch;

use crate::capture::CaptureTap;
use crate::engine::models::ModelSource;
use crate::engine::worker::{AudioSide, Engine, PatternUpdate};
use crate::playhead::Playhead;
use crate::roll::swing::Swing;
use crate::roll::Meter;
use crate::schedule::{sort_events, NoteEvent, Pattern, Scheduler, Window, MAX_EVENTS};
use crate::synth::PreviewSynth;
use nice_plug::midi::{Channel, Key, NoteEvent as HostEvent, VoiceID};
use nice_plug::prelude::*;
use params::{DreamrollParams, SwitchAt};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use watch::CaptureLine;

/// Incoming notes passed through per block; more in one block is a flood, and the rest
/// are dropped rather than allocated for.
const THRU_CAPACITY: usize = 512;

pub struct Dreamroll {
    params: Arc<DreamrollParams>,
    engine: Option<Engine>,
    audio: Option<AudioSide>,
    /// The pattern playing, and the newest one waiting for its switch point.
    playing: Option<Box<PatternUpdate>>,
    incoming: Option<Box<PatternUpdate>>,
    /// Played while no pattern has arrived: nothing, without a special case.
    silence: Pattern,
    scheduler: Box<Scheduler>,
    synth: Box<PreviewSynth>,
    /// A block's outgoing events, generated and passed through, in time order: room for the
    /// passed-through notes and the scheduler's fullest output on both sides of a switch.
    outgoing: Box<[NoteEvent; 2 * MAX_EVENTS + THRU_CAPACITY]>,
    sample_rate: f32,
    was_bypassed: bool,
    preview_was_on: bool,
    /// An offline bounce: the host waits for us, so we may wait for the engine.
    offline: bool,
    playhead: Arc<Playhead>,
    /// What is played in, on its way to the engine's recorder.
    tap: CaptureTap,
    capture: Option<CaptureLine>,
    /// Keys held on the input (bit p for MIDI pitch p), for the chord Follow chords hears.
    held: u128,
}

/// Why a wait for the engine ended.
#[derive(Debug, PartialEq)]
enum Waited {
    Answered,
    /// Its thread has ended: there is nothing to wait for.
    EngineGone,
    /// It is alive but has not answered in seconds.
    GaveUp,
}

impl Default for Dreamroll {
    /// The engine starts with the instance, so that the editor (which hosts may open before
    /// activating) has a model to show and activation only waits for the first pattern.
    fn default() -> Self {
        let mut plugin = Dreamroll {
            params: Arc::new(DreamrollParams::default()),
            engine: None,
            audio: None,
            playing: None,
            incoming: None,
            silence: Pattern {
                steps_per_beat: 4,
                meter: Meter::COMMON,
                bars: 1,
                notes: Vec::new(),
                swing: Swing::STRAIGHT,
            },
            scheduler: Box::new(Scheduler::new()),
            synth: Box::new(PreviewSynth::new(44_100.0)),
            outgoing: Box::new(
                [NoteEvent { offset: 0, channel: 0, pitch: 0, velocity: 0 }; 2 * MAX_EVENTS + THRU_CAPACITY],
            ),
            sample_rate: 44_100.0,
            was_bypassed: false,
            preview_was_on: false,
            offline: false,
            playhead: Arc::new(Playhead::default()),
            tap: CaptureTap::default(),
            capture: None,
            held: 0,
        };
        plugin.start_engine();
        plugin
    }
}

/// The host's transport for one block, with what hosts leave out filled in: no tempo means
/// 120 BPM, no meter 4/4, no bar start a bar grid from the song's start. A transport no
/// music has (see [`Window::is_playable`]: a sample rate below 1 Hz, a position beyond any
/// song, more bars in one block than can be walked) is a stopped one at the song's start, so
/// that everything downstream (scheduler, capture, switch points) works on ordinary numbers.
pub fn window_from(transport: &Transport, samples: u32) -> Window {
    let window = host_window(transport, samples);
    if window.is_playable() {
        window
    } else {
        Window { playing: false, start: 0.0, bar_start: 0.0, bar_number: 0, ..window }
    }
}

fn host_window(transport: &Transport, samples: u32) -> Window {
    let meter = match (transport.time_sig_numerator, transport.time_sig_denominator) {
        (Some(n @ 1..=32), Some(d @ (1 | 2 | 4 | 8 | 16 | 32))) => Meter { numerator: n as u8, denominator: d as u8 },
        _ => Meter::COMMON,
    };
    let tempo = transport.tempo.filter(|t| t.is_finite() && *t > 0.0).unwrap_or(120.0);
    let sample_rate = f64::from(transport.sample_rate);
    let start = transport
        .pos_beats()
        .or_else(|| transport.pos_seconds().map(|s| s * tempo / 60.0))
        .filter(|b| b.is_finite())
        .unwrap_or(0.0);
    let bar_quarters = meter.quarters_per_bar();
    let (bar_start, bar_number) = match (transport.bar_start_pos_beats(), transport.bar_number()) {
        (Some(bar_start), Some(bar_number))
            if bar_start.is_finite() && bar_start <= start + 1e-9 && start - bar_start < bar_quarters + 1e-9 =>
        {
            (bar_start, i64::from(bar_number))
        }
        _ => {
            let bar = (start / bar_quarters + 1e-9).floor();
            (bar * bar_quarters, bar as i64)
        }
    };
    Window { playing: transport.playing, sample_rate, tempo, start, bar_start, bar_number, meter, samples }
}

/// A host's note-on velocity (nominally 0..1) as MIDI's 1..=127: above 1 is loudest, and
/// NaN or negative is softest, never a note-off.
fn midi_velocity(velocity: f32) -> u8 {
    ((velocity.clamp(0.0, 1.0) * 127.0).round() as u8).max(1)
}

/// The first sample of the block at or after which a waiting pattern may take over: the next
/// bar line, or the next step of the playing pattern. `None` when it falls past the block.
pub fn switch_offset(window: &Window, playing: &Pattern, at: SwitchAt) -> Option<u32> {
    let unit = match at {
        SwitchAt::NextBar => window.meter.quarters_per_bar(),
        SwitchAt::NextStep => playing.quarters_per_step(),
    };
    let boundary = window.bar_start + ((window.start - window.bar_start) / unit - 1e-9).ceil() * unit;
    let offset = ((boundary - window.start) * window.sample_rate * 60.0 / window.tempo).round().max(0.0);
    (offset < f64::from(window.samples)).then_some(offset as u32)
}

/// A window's tail from `offset` on, as the scheduler would see a block starting there.
pub fn window_tail(window: &Window, offset: u32) -> Window {
    let quarters = f64::from(offset) * window.tempo / (60.0 * window.sample_rate);
    let start = window.start + quarters;
    let bar_quarters = window.meter.quarters_per_bar();
    let bars_on = ((start - window.bar_start) / bar_quarters + 1e-9).floor();
    Window {
        start,
        bar_start: window.bar_start + bars_on * bar_quarters,
        bar_number: window.bar_number + bars_on as i64,
        samples: window.samples - offset,
        ..*window
    }
}

impl Dreamroll {
    fn start_engine(&mut self) {
        let generator = match crate::model::default_generator() {
            Ok(generator) => generator,
            Err(error) => {
                // The embedded model is checked by the build and the tests; this cannot happen in
                // a released binary, but the host must not go down if it does.
                nice_error!("the built-in model does not load: {error}");
                return;
            }
        };
        let (line, parameters) = watch::capture_line(self.params.clone(), watch::CAPTURE_RING);
        self.capture = Some(line);
        let (engine, audio) = Engine::spawn(generator, ModelSource::Embedded, Some(Box::new(parameters)));
        self.params.session.connect(engine.published_handle(), engine.commander(), self.params.session_slots());
        self.engine = Some(engine);
        self.audio = Some(audio);
    }

    /// Two or more pitch classes held are the chord to follow, until another is held.
    fn latch_held_chord(&self) {
        if self.held == 0 {
            return;
        }
        let classes = crate::metrics::chords::pitch_classes((0..128u8).filter(|&p| self.held & (1 << p) != 0));
        if classes.count_ones() >= 2 {
            let chord = Some((classes, Some(self.held.trailing_zeros() as u8)));
            if self.params.heard_chord.get() != chord {
                self.params.heard_chord.set(chord);
            }
        }
    }

    /// Hands a pattern the audio thread is done with back to the engine to be freed.
    fn retire(audio: &mut AudioSide, update: Box<PatternUpdate>) {
        // The return ring holds twice the delivery ring, so it has room; if it ever had not,
        // freeing here once is better than a leak.
        if let Err(rtrb::PushError::Full(update)) = audio.used.push(update) {
            nice_plug::util::permit_alloc(|| drop(update));
        }
    }

    /// Offline, a bounce must play what the parameters ask for at each switch point, as a
    /// real-time run would if the engine were instant: in a block holding a switch point,
    /// wait (bounded) until the engine has answered the parameters. Real time never waits.
    fn await_engine_for_switch(&self, window: &Window) {
        // Silence too has switch points: a source waiting for its clip starts on a bar line.
        let playing = self.playing.as_ref().map_or(&self.silence, |p| &p.pattern);
        if switch_offset(window, playing, self.params.switch_at.value()).is_some() {
            self.wait_until_answered();
        }
    }

    /// Waits (at most a few seconds, for a model that will not render; not at all for an
    /// engine that has gone) until the engine has heard everything played in so far and
    /// answered the parameters as they are then.
    fn wait_until_answered(&self) -> Waited {
        const MOST_MILLISECONDS: u32 = 5_000;
        let (Some(audio), Some(engine)) = (&self.audio, &self.engine) else { return Waited::EngineGone };
        let until = |done: &dyn Fn() -> bool| {
            for _ in 0..MOST_MILLISECONDS {
                if done() {
                    return Waited::Answered;
                }
                if !engine.is_alive() {
                    return Waited::EngineGone;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            if done() {
                Waited::Answered
            } else {
                Waited::GaveUp
            }
        };
        match until(&|| self.capture.as_ref().is_none_or(CaptureLine::all_heard)) {
            Waited::Answered => {}
            stuck => return stuck,
        }
        let wanted = params::pattern_fingerprint(&self.params);
        until(&|| audio.answered.load(Ordering::Acquire) == wanted)
    }

    /// Takes the newest delivered pattern as the one waiting to play.
    fn collect_patterns(&mut self) {
        let Some(audio) = self.audio.as_mut() else { return };
        while let Ok(mut update) = audio.patterns.pop() {
            if let Some(older) = self.incoming.take() {
                update.immediate |= older.immediate;
                Self::retire(audio, older);
            }
            self.incoming = Some(update);
        }
    }

    fn promote_incoming(&mut self) -> bool {
        let Some(incoming) = self.incoming.take() else { return false };
        let changed = self.playing.as_ref().is_none_or(|p| p.pattern != incoming.pattern);
        if let (Some(old), Some(audio)) = (self.playing.replace(incoming), self.audio.as_mut()) {
            Self::retire(audio, old);
        }
        changed
    }

    fn emit(&mut self, count: usize, buffer: &mut Buffer, context: &mut impl ProcessContext<Self>) {
        let events = &mut self.outgoing[..count];
        sort_events(events);
        let preview = self.params.preview.value();
        let gain = self.params.preview_volume.value();
        let samples = buffer.samples();
        // Whatever outputs the host gave (stereo, mono or none), the notes go out; the preview
        // sounds in the channels there are.
        let channels = buffer.as_slice();
        for channel in channels.iter_mut() {
            channel.fill(0.0);
        }
        if !preview && self.preview_was_on {
            self.synth.silence();
        }
        self.preview_was_on = preview;
        let mut rendered = 0usize;
        for event in events.iter() {
            let offset = (event.offset as usize).min(samples);
            if preview {
                self.synth.render(channels, rendered..offset, gain);
                rendered = offset;
                if event.is_on() {
                    self.synth.note_on(event.channel, event.pitch, event.velocity);
                } else {
                    self.synth.note_off(event.channel, event.pitch);
                }
            }
            let (channel, key) = (Channel::Number(event.channel), Key::Number(event.pitch));
            let note = if event.is_on() {
                HostEvent::NoteOn {
                    timing: event.offset,
                    voice_id: VoiceID::Wildcard,
                    channel,
                    key,
                    velocity: f32::from(event.velocity) / 127.0,
                }
            } else {
                HostEvent::NoteOff { timing: event.offset, voice_id: VoiceID::Wildcard, channel, key, velocity: 0.0 }
            };
            // A host with a full event buffer loses the event; nothing better can be done
            // without blocking, and the scheduler's own book-keeping stays consistent.
            let _ = context.try_send_event(note);
        }
        if preview {
            self.synth.render(channels, rendered..samples, gain);
        }
    }
}

/// A layout with no audio input and `channels` of preview output (none: MIDI only).
const fn output_layout(channels: Option<NonZeroU32>, name: &'static str) -> AudioIOLayout {
    AudioIOLayout {
        main_input_channels: None,
        main_output_channels: channels,
        aux_input_ports: &[],
        aux_output_ports: &[],
        names: PortNames {
            layout: Some(name),
            main_input: None,
            main_output: if channels.is_some() { Some("Preview") } else { None },
            aux_inputs: &[],
            aux_outputs: &[],
        },
    }
}

impl Plugin for Dreamroll {
    const NAME: &'static str = "Dreamroll";
    const VENDOR: &'static str = "Dreamroll";
    const URL: &'static str = "https://github.com/dreamroll/dreamroll";
    const EMAIL: &'static str = "dreamroll@example.org";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    /// Stereo first, as most hosts take the first; mono and MIDI-only for hosts and tracks
    /// that offer only those, where the notes go out all the same.
    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[
        output_layout(NonZeroU32::new(2), "Stereo preview"),
        output_layout(NonZeroU32::new(1), "Mono preview"),
        output_layout(None, "MIDI only"),
    ];
    const MIDI_INPUT: MidiConfig = MidiConfig::Basic;
    const MIDI_OUTPUT: MidiConfig = MidiConfig::Basic;
    const SAMPLE_ACCURATE_AUTOMATION: bool = false;

    type Editor = nice_plug_egui::EguiEditor<crate::editor::DreamrollEditor>;
    type SysExMessage = ();
    type BackgroundTask = ();

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn editor(&mut self, _async_executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
        crate::editor::create(
            self.params.clone(),
            self.playhead.clone(),
            self.engine.as_ref().map(|e| (e.published_handle(), e.commander())),
        )
    }

    fn activate(
        &mut self,
        _layout: &AudioIOLayout,
        buffer_config: &BufferConfig,
        _context: &mut impl ActivateContext<Self>,
    ) -> bool {
        self.offline = buffer_config.process_mode == ProcessMode::Offline;
        if self.sample_rate != buffer_config.sample_rate {
            self.sample_rate = buffer_config.sample_rate;
            self.synth.set_sample_rate(buffer_config.sample_rate);
        }
        // The first block should play what the parameters ask for (hosts often set them just
        // before activating, and bounce at once): wait here, off the audio thread, until the
        // engine has answered them, a few tens of milliseconds, and start on that pattern;
        // unless the user holds the one that is playing.
        if self.playing.is_none() || !self.params.hold.value() {
            self.wait_until_answered();
            self.collect_patterns();
            self.promote_incoming();
        }
        true
    }

    fn reset(&mut self) {
        self.scheduler.panic();
        self.synth.silence();
    }

    fn deactivate(&mut self) {
        // Hosts stop calling process() now; anything sounding downstream is released by the
        // host on deactivation, and the scheduler forgets it so nothing is owed on return.
        self.scheduler.panic();
        self.synth.silence();
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        _aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        let samples = buffer.samples() as u32;
        let mut count = 0usize;
        let window = window_from(context.transport(), samples);
        let recording = self.params.record.value();
        let (tap, capture) = (&mut self.tap, &mut self.capture);
        // A full ring loses the event rather than wait (and the take it was part of); the
        // engine drains it every few ms.
        let mut send = |event| {
            if let Some(line) = capture.as_mut() {
                line.send(event);
            }
        };
        tap.begin_block(&window, recording, &mut send);
        // Incoming notes pass through, so Dreamroll can sit in front of an instrument
        // without swallowing what is played into it; and are recorded as the clip.
        while let Some(event) = context.next_event() {
            let (offset, channel, key, velocity) = match event {
                HostEvent::NoteOn { timing, channel, key, velocity, .. } => {
                    (timing, channel, key, midi_velocity(velocity))
                }
                HostEvent::NoteOff { timing, channel, key, .. } => (timing, channel, key, 0),
                _ => continue,
            };
            // Raw MIDI from a host reaches here unmasked: a key or channel no MIDI message can
            // carry is neither passed on nor recorded.
            let (Some(channel @ 0..=15), Some(pitch @ 0..=127)) = (channel.number(), key.number()) else { continue };
            tap.note(&window, offset.min(samples.saturating_sub(1)), channel, pitch, velocity, &mut send);
            if velocity > 0 {
                self.held |= 1 << pitch;
            } else {
                self.held &= !(1 << pitch);
            }
            if count < THRU_CAPACITY {
                self.outgoing[count] =
                    NoteEvent { offset: offset.min(samples.saturating_sub(1)), channel, pitch, velocity };
                count += 1;
            }
        }
        tap.end_block(&window, &mut send);
        self.latch_held_chord();
        if f64::from(self.sample_rate) != window.sample_rate && window.sample_rate > 0.0 {
            self.sample_rate = window.sample_rate as f32;
            self.synth.set_sample_rate(self.sample_rate);
        }
        let bypassed = self.params.bypass.value();
        let hold = self.params.hold.value();
        if self.offline && !hold && !bypassed && window.playing {
            self.await_engine_for_switch(&window);
        }
        if !hold {
            self.collect_patterns();
        }
        if bypassed {
            for &event in self.scheduler.panic() {
                self.outgoing[count] = event;
                count += 1;
            }
        } else {
            let switch_at = self.params.switch_at.value();
            let split = match (&self.incoming, &self.playing) {
                (None, _) => None,
                (Some(incoming), Some(playing)) if !incoming.immediate && window.playing && !self.was_bypassed => {
                    switch_offset(&window, &playing.pattern, switch_at)
                }
                _ => Some(0),
            };
            let head_samples = split.unwrap_or(samples);
            if head_samples > 0 {
                let head = Window { samples: head_samples, ..window };
                let pattern = self.playing.as_ref().map_or(&self.silence, |p| &p.pattern);
                for &event in self.scheduler.process(pattern, &head, false) {
                    self.outgoing[count] = event;
                    count += 1;
                }
            }
            if let Some(offset) = split {
                let changed = self.promote_incoming();
                if offset < samples {
                    let tail = window_tail(&window, offset);
                    let pattern = self.playing.as_ref().map_or(&self.silence, |p| &p.pattern);
                    for &event in self.scheduler.process(pattern, &tail, changed) {
                        self.outgoing[count] = NoteEvent { offset: event.offset + offset, ..event };
                        count += 1;
                    }
                }
            }
        }
        self.was_bypassed = bypassed;
        if let Some(playing) = &self.playing {
            let loop_quarters = f64::from(playing.pattern.bars) * playing.pattern.meter.quarters_per_bar();
            let bar_quarters = window.meter.quarters_per_bar();
            let loop_bar = window.bar_number.rem_euclid(i64::from(playing.pattern.bars.max(1)));
            let position = (loop_bar as f64 * bar_quarters + (window.start - window.bar_start))
                .rem_euclid(loop_quarters.max(1e-9));
            self.playhead.set_position(position);
        }
        self.playhead.playing.store(window.playing && !bypassed, Ordering::Relaxed);
        self.emit(count, buffer, context);
        if self.params.preview.value() && !self.synth.is_silent() {
            ProcessStatus::KeepAlive
        } else {
            ProcessStatus::Normal
        }
    }
}

impl ClapPlugin for Dreamroll {
    const CLAP_ID: &'static str = "org.dreamroll.dreamroll";
    const CLAP_DESCRIPTION: Option<&'static str> =
        Some("MIDI from a learned piano-roll decoder, in time with the host");
    const CLAP_MANUAL_URL: Option<&'static str> = None;
    const CLAP_SUPPORT_URL: Option<&'static str> = None;
    const CLAP_FEATURES: &'static [ClapFeature] =
        &[ClapFeature::NoteEffect, ClapFeature::Instrument, ClapFeature::Synthesizer, ClapFeature::Stereo];

    /// Pages of eight that a hardware controller maps with no setup (Bitwig puts a device's
    /// pages on a controller's eight knobs): what a producer turns while a loop plays first,
    /// the knobs that steer the music, then the pattern, where the notes come from, and the
    /// key and output.
    fn remote_controls(&self, context: &mut impl RemoteControlsContext) {
        let p = &self.params;
        context.add_section("Dreamroll", |section| {
            section.add_page("Macro knobs", |page| p.knobs.iter().for_each(|knob| page.add_param(&knob.value)));
            section.add_page("Named knobs", |page| p.named.iter().for_each(|knob| page.add_param(&knob.value)));
            section.add_page("Pattern", |page| {
                page.add_param(&p.seed);
                page.add_param(&p.new_seed);
                page.add_param(&p.variation);
                page.add_param(&p.density);
                page.add_param(&p.temperature);
                page.add_param(&p.velocity);
                page.add_param(&p.humanise);
                page.add_param(&p.swing);
            });
            section.add_page("Source", |page| {
                page.add_param(&p.source);
                page.add_param(&p.distance);
                page.add_param(&p.morph);
                page.add_param(&p.style);
                page.add_param(&p.record);
                page.add_param(&p.take_length);
                page.add_param(&p.loop_bars);
                page.add_param(&p.hold);
            });
            section.add_page("Key and output", |page| {
                page.add_param(&p.key);
                page.add_param(&p.scale);
                page.add_param(&p.transpose);
                page.add_param(&p.switch_at);
                page.add_param(&p.preview);
                page.add_param(&p.preview_volume);
                page.add_param(&p.bypass);
            });
        });
    }
}

impl Vst3Plugin for Dreamroll {
    const VST3_CLASS_ID: [u8; 16] = *b"DreamrollMidiGen";
    const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] = &[Vst3SubCategory::Instrument, Vst3SubCategory::Generator];
}

nice_export_vst3!(Dreamroll);

#[cfg(test)]
mod tests {
    use super::*;

    fn host(beats: Option<f64>, tempo: Option<f64>, meter: Option<(i32, i32)>) -> Transport {
        let mut transport = Transport::new(48_000.0);
        transport.playing = true;
        transport.pos_beats = beats;
        transport.tempo = tempo;
        transport.time_sig_numerator = meter.map(|m| m.0);
        transport.time_sig_denominator = meter.map(|m| m.1);
        transport
    }

    #[test]
    fn waiting_for_an_engine_whose_thread_died_ends_at_once() {
        let mut plugin = Dreamroll::default();
        let (engine, audio) = crate::engine::worker::tests::dead_engine();
        (plugin.engine, plugin.audio) = (Some(engine), Some(audio));
        assert_eq!(plugin.wait_until_answered(), Waited::EngineGone);
    }

    #[test]
    fn what_a_host_leaves_out_is_filled_in() {
        let window = window_from(&host(None, None, None), 512);
        assert_eq!(
            (window.tempo, window.start, window.meter),
            (120.0, 0.0, Meter::COMMON),
            "no tempo, position or meter"
        );
        let window = window_from(&host(Some(7.5), Some(90.0), Some((3, 4))), 512);
        assert_eq!((window.bar_start, window.bar_number), (6.0, 2), "bars of three quarters from the song's start");
        let nonsense = window_from(&host(Some(f64::NAN), Some(-5.0), Some((0, 3))), 512);
        assert_eq!((nonsense.start, nonsense.tempo, nonsense.meter), (0.0, 120.0, Meter::COMMON));
    }

    #[test]
    fn a_transport_no_music_has_is_a_stopped_one_at_the_start() {
        let rate = |sample_rate: f32, beats: f64, tempo: f64| {
            let mut transport = host(Some(beats), Some(tempo), None);
            transport.sample_rate = sample_rate;
            transport
        };
        for (transport, samples) in [
            (rate(48_000.0, 0.0, 1e300), 512),
            (rate(1.0, 0.0, 1e6), 4096),
            (rate(0.0, 8.0, 120.0), 512),
            (rate(f32::NAN, 8.0, 120.0), 512),
            (rate(48_000.0, 1e300, 120.0), 512),
            (rate(48_000.0, -1e300, 120.0), 512),
        ] {
            let window = window_from(&transport, samples);
            assert!(!window.playing, "{window:?}");
            assert_eq!((window.start, window.bar_start, window.bar_number), (0.0, 0.0, 0));
        }
        assert!(
            window_from(&rate(1.0, 4e9, 120.0), 512).playing,
            "1 Hz four billion beats in is slow and late, but music"
        );
    }

    #[test]
    fn a_host_velocity_is_midis_one_to_127() {
        assert_eq!(
            [2.0, 1.0, 0.5, 0.0, -3.0, f32::NAN, f32::INFINITY].map(midi_velocity),
            [127, 127, 64, 1, 1, 1, 127]
        );
    }

    #[test]
    fn a_host_bar_start_that_does_not_hold_the_position_is_not_trusted() {
        let mut transport = host(Some(9.0), Some(120.0), Some((4, 4)));
        transport.bar_start_pos_beats = Some(4.0);
        transport.bar_number = Some(1);
        assert_eq!(window_from(&transport, 64).bar_start, 8.0, "beat 9 is in the bar from 8");
        transport.bar_start_pos_beats = Some(8.0);
        transport.bar_number = Some(11);
        assert_eq!(window_from(&transport, 64).bar_number, 11, "a plausible host bar number is kept");
    }

    #[test]
    fn a_new_pattern_waits_for_the_bar_line_or_the_step_inside_the_block() {
        let pattern =
            Pattern { steps_per_beat: 4, meter: Meter::COMMON, bars: 1, notes: Vec::new(), swing: Swing::STRAIGHT };
        // 120 BPM at 48 kHz: a quarter is 24 000 samples.
        let window = window_from(&host(Some(3.5), Some(120.0), None), 24_000);
        assert_eq!(switch_offset(&window, &pattern, SwitchAt::NextBar), Some(12_000));
        assert_eq!(switch_offset(&window, &pattern, SwitchAt::NextStep), Some(0), "3.5 is on a step");
        let window = window_from(&host(Some(3.6), Some(120.0), None), 1_000);
        assert_eq!(switch_offset(&window, &pattern, SwitchAt::NextBar), None, "the bar line is past this block");
        assert_eq!(switch_offset(&window, &pattern, SwitchAt::NextStep), None, "so is the next step, 3.75");
        let tail = window_tail(&window_from(&host(Some(3.5), Some(120.0), None), 24_000), 12_000);
        assert_eq!((tail.start, tail.bar_start, tail.bar_number, tail.samples), (4.0, 4.0, 1, 12_000));
    }
}
