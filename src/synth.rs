//! The preview synth: a small polyphonic voice so that the plugin is audible on a track with
//! nothing after it, and so that hosts which only accept plugins with audio outputs get real
//! audio from it.
//!
//! It is pure and allocation-free (a fixed voice array), so that the audio thread can run it
//! and a test can run the very same code on the notes of a rendered file and expect the host's
//! audio to match it sample for sample.

use std::ops::Range;

/// Voices sounding at once; the oldest is taken when more are asked for.
pub const VOICES: usize = 32;

/// Envelope times in seconds; short enough to hear the rhythm, long enough not to click.
const ATTACK: f32 = 0.004;
const DECAY: f32 = 0.25;
const SUSTAIN: f32 = 0.55;
const RELEASE: f32 = 0.12;
/// Level of one full-velocity voice, leaving headroom for chords.
const VOICE_LEVEL: f32 = 0.18;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Stage {
    Idle,
    Attack,
    Decay,
    Sustain,
    Release,
}

#[derive(Clone, Copy, Debug)]
struct Voice {
    stage: Stage,
    channel: u8,
    key: u8,
    /// Which note-on started it, for stealing the oldest.
    age: u64,
    level: f32,
    envelope: f32,
    /// Release starts from wherever the envelope is.
    release_step: f32,
    phase: f32,
    phase_step: f32,
}

const SILENT: Voice = Voice {
    stage: Stage::Idle,
    channel: 0,
    key: 0,
    age: 0,
    level: 0.0,
    envelope: 0.0,
    release_step: 0.0,
    phase: 0.0,
    phase_step: 0.0,
};

pub struct PreviewSynth {
    voices: [Voice; VOICES],
    sample_rate: f32,
    notes_started: u64,
}

impl PreviewSynth {
    pub fn new(sample_rate: f32) -> PreviewSynth {
        PreviewSynth { voices: [SILENT; VOICES], sample_rate: sample_rate.max(1.0), notes_started: 0 }
    }

    /// A sample-rate change: the sounding voices would play at the wrong pitch, so all stop.
    pub fn set_sample_rate(&mut self, sample_rate: f32) {
        *self = PreviewSynth::new(sample_rate);
    }

    pub fn note_on(&mut self, channel: u8, key: u8, velocity: u8) {
        let free = self.voices.iter().position(|v| v.stage == Stage::Idle);
        let slot = free.unwrap_or_else(|| {
            let oldest = self.voices.iter().enumerate().min_by_key(|(_, v)| v.age);
            oldest.map_or(0, |(slot, _)| slot)
        });
        self.notes_started += 1;
        let frequency = 440.0 * ((f32::from(key) - 69.0) / 12.0).exp2();
        self.voices[slot] = Voice {
            stage: Stage::Attack,
            channel,
            key,
            age: self.notes_started,
            level: VOICE_LEVEL * f32::from(velocity.min(127)) / 127.0,
            envelope: 0.0,
            release_step: 0.0,
            phase: 0.0,
            phase_step: frequency / self.sample_rate,
        };
    }

    pub fn note_off(&mut self, channel: u8, key: u8) {
        let release_samples = RELEASE * self.sample_rate;
        for voice in &mut self.voices {
            if voice.channel == channel && voice.key == key && !matches!(voice.stage, Stage::Idle | Stage::Release) {
                voice.stage = Stage::Release;
                voice.release_step = voice.envelope / release_samples;
            }
        }
    }

    /// Silence at once (deactivate, a sample-rate change, preview switched off).
    pub fn silence(&mut self) {
        self.voices = [SILENT; VOICES];
    }

    pub fn is_silent(&self) -> bool {
        self.voices.iter().all(|v| v.stage == Stage::Idle)
    }

    /// Adds the voices into samples `range` of every channel (one voice, centred: mono, stereo
    /// or more alike), scaled by `gain`.
    pub fn render(&mut self, channels: &mut [&mut [f32]], range: Range<usize>, gain: f32) {
        let rate = self.sample_rate;
        let (attack_step, decay_step) = (1.0 / (ATTACK * rate), (1.0 - SUSTAIN) / (DECAY * rate));
        for voice in self.voices.iter_mut().filter(|v| v.stage != Stage::Idle) {
            for index in range.clone() {
                match voice.stage {
                    Stage::Attack => {
                        voice.envelope += attack_step;
                        if voice.envelope >= 1.0 {
                            voice.envelope = 1.0;
                            voice.stage = Stage::Decay;
                        }
                    }
                    Stage::Decay => {
                        voice.envelope -= decay_step;
                        if voice.envelope <= SUSTAIN {
                            voice.envelope = SUSTAIN;
                            voice.stage = Stage::Sustain;
                        }
                    }
                    Stage::Sustain => {}
                    Stage::Release => {
                        voice.envelope -= voice.release_step;
                        if voice.envelope <= 0.0 {
                            *voice = SILENT;
                            break;
                        }
                    }
                    Stage::Idle => break,
                }
                // A sine with a little second and third harmonic: soft, but clear on any speaker.
                let angle = std::f32::consts::TAU * voice.phase;
                let wave = angle.sin() + 0.3 * (2.0 * angle).sin() + 0.12 * (3.0 * angle).sin();
                let sample = wave * voice.envelope * voice.level * gain;
                for channel in channels.iter_mut() {
                    if let Some(out) = channel.get_mut(index) {
                        *out += sample;
                    }
                }
                // The fraction, not a subtraction: at a sample rate below the note's frequency
                // a step is more than a cycle.
                voice.phase = (voice.phase + voice.phase_step).fract();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(synth: &mut PreviewSynth, samples: usize) -> Vec<f32> {
        let (mut left, mut right) = (vec![0.0; samples], vec![0.0; samples]);
        synth.render(&mut [&mut left, &mut right], 0..samples, 1.0);
        assert_eq!(left, right, "the preview is centred");
        left
    }

    #[test]
    fn a_note_sounds_from_its_first_sample_and_fades_after_its_off() {
        let mut synth = PreviewSynth::new(48_000.0);
        synth.note_on(0, 69, 127);
        let held = render(&mut synth, 4_800);
        assert!(held[1] != 0.0, "no latency: the wave starts at its zero crossing, then sounds");
        let peak = held.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!(peak > 0.1 && peak <= VOICE_LEVEL * 1.42 + 1e-6, "{peak}");
        synth.note_off(0, 69);
        let released = render(&mut synth, 48_000);
        assert!(synth.is_silent(), "the release ends");
        assert!(released[(RELEASE * 48_000.0) as usize + 10..].iter().all(|&s| s == 0.0));
    }

    #[test]
    fn a_note_off_only_releases_its_own_channel_and_key() {
        let mut synth = PreviewSynth::new(44_100.0);
        synth.note_on(0, 60, 100);
        synth.note_on(1, 60, 100);
        synth.note_off(0, 60);
        render(&mut synth, 44_100);
        assert!(!synth.is_silent(), "channel 2's C still sounds");
    }

    #[test]
    fn more_notes_than_voices_take_the_oldest() {
        let mut synth = PreviewSynth::new(44_100.0);
        for key in 0..(VOICES as u8 + 5) {
            synth.note_on(0, 40 + key, 100);
        }
        let keys: Vec<u8> = synth.voices.iter().map(|v| v.key).collect();
        assert!(!keys.contains(&40) && keys.contains(&(40 + VOICES as u8 + 4)), "{keys:?}");
    }

    #[test]
    fn the_same_events_give_the_same_samples_however_the_blocks_fall() {
        let play = |blocks: &[usize]| {
            let mut synth = PreviewSynth::new(44_100.0);
            synth.note_on(0, 64, 90);
            let mut out = Vec::new();
            for &size in blocks {
                out.extend(render(&mut synth, size));
            }
            out
        };
        assert_eq!(play(&[1000]), play(&[1, 511, 64, 424]));
    }

    #[test]
    fn mono_is_the_left_of_stereo_and_no_channels_is_no_harm() {
        let play = |channels: usize| {
            let mut synth = PreviewSynth::new(44_100.0);
            synth.note_on(0, 64, 90);
            let mut outputs = vec![vec![0.0f32; 500]; channels];
            let mut slices: Vec<&mut [f32]> = outputs.iter_mut().map(Vec::as_mut_slice).collect();
            synth.render(&mut slices, 100..500, 1.0);
            outputs
        };
        let stereo = play(2);
        assert!(
            stereo[0][..100].iter().all(|&s| s == 0.0) && stereo[0][101..].iter().any(|&s| s != 0.0),
            "only the range is written"
        );
        assert_eq!(play(1), stereo[..1]);
        assert!(play(0).is_empty());
    }

    #[test]
    fn a_sample_rate_below_the_pitch_keeps_the_phase_in_its_cycle() {
        let mut synth = PreviewSynth::new(1.0);
        synth.note_on(0, 127, 127);
        render(&mut synth, 64);
        assert!(synth.voices.iter().all(|v| (0.0..1.0).contains(&v.phase)), "{:?}", synth.voices[0]);
    }
}
