//! General MIDI drum sounds as a drummer groups them: each lane is what one limb or one
//! instrument of the kit plays, and plays one sound at a time, so a lane is a voice that
//! chooses among its sounds. Reading a kit as lanes rather than one track of every sound
//! lets the voices decoder hold a groove's kick, backbeat and hats as lines of their own.

use super::representation::TrackSpec;

/// A lane of the kit: its name and the General MIDI percussion notes it plays.
pub struct DrumLane {
    pub name: &'static str,
    pub sounds: &'static [u8],
}

/// The kit's lanes, in the order a drummer counts them. Every General MIDI percussion note
/// (27..=87, the GS extras at both ends included) belongs to exactly one lane. The hand
/// percussion is two lanes, since a conga player and a shaker play at once.
pub const GENERAL_MIDI_LANES: [DrumLane; 7] = [
    DrumLane { name: "Kick", sounds: &[35, 36] },
    // Side stick, snares and hand clap: the backbeat.
    DrumLane { name: "Snare", sounds: &[37, 38, 39, 40] },
    // Closed, pedal and open: one pair of cymbals under one foot.
    DrumLane { name: "Hi-hat", sounds: &[42, 44, 46] },
    DrumLane { name: "Toms", sounds: &[41, 43, 45, 47, 48, 50] },
    // Crashes, rides, china, splash, ride bell.
    DrumLane { name: "Cymbals", sounds: &[49, 51, 52, 53, 55, 57, 59] },
    // Bongos, congas, timbales, cuica, and the GS extras of the low end (high Q, slap,
    // scratches, sticks, square click, metronome).
    DrumLane { name: "Hand drums", sounds: &[27, 28, 29, 30, 31, 32, 33, 34, 60, 61, 62, 63, 64, 65, 66, 78, 79] },
    // Tambourine, cowbell, vibraslap, agogos, cabasa, maracas, whistles, guiro, claves,
    // wood blocks, triangles, and the GS extras of the high end (shaker, bells, castanets,
    // surdos).
    DrumLane {
        name: "Shakers & bells",
        sounds: &[54, 56, 58, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 80, 81, 82, 83, 84, 85, 86, 87],
    },
];

/// The lane of a General MIDI percussion note, if it is one.
pub fn lane_of(sound: u8) -> Option<usize> {
    GENERAL_MIDI_LANES.iter().position(|lane| lane.sounds.contains(&sound))
}

/// Drum tracks for the sounds a corpus plays: a lane for each lane that has any, naming only
/// the sounds heard (a model plays what it learned). Sounds of no lane are left out.
pub fn lanes_for(heard: &[u8]) -> Vec<TrackSpec> {
    GENERAL_MIDI_LANES
        .iter()
        .filter_map(|lane| {
            let sounds: Vec<u8> = lane.sounds.iter().copied().filter(|s| heard.contains(s)).collect();
            (!sounds.is_empty()).then(|| TrackSpec::drums(lane.name, sounds))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_general_midi_sound_has_exactly_one_lane() {
        for sound in 27..=87u8 {
            let lanes = GENERAL_MIDI_LANES.iter().filter(|lane| lane.sounds.contains(&sound)).count();
            assert_eq!(lanes, 1, "sound {sound}");
        }
        assert_eq!(lane_of(36), Some(0));
        assert_eq!(lane_of(46), Some(2));
        assert_eq!(lane_of(20), None);
    }

    #[test]
    fn lanes_are_made_for_the_sounds_heard() {
        let tracks = lanes_for(&[36, 38, 42, 46, 99]);
        let names: Vec<&str> = tracks.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, vec!["Kick", "Snare", "Hi-hat"]);
        assert_eq!(tracks[2].sounds, vec![42, 46]);
        assert!(tracks.iter().all(|t| t.is_drum));
    }
}
