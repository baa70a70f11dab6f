//! Chords as sets of pitch classes (bit `c` of a `u16` for pitch class `c`, C = 0): named as a
//! musician names them, read from a name, read from the bars of a clip, and the measure of
//! how well generated music follows them (the share of strong-beat notes that are chord tones).

use crate::roll::{Representation, Roll};
use serde::Serialize;

pub type PitchClasses = u16;

const NOTE_NAMES: [&str; 12] = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"];

const MAJOR_TRIAD: &[u8] = &[0, 4, 7];
const MINOR_TRIAD: &[u8] = &[0, 3, 7];

/// Chord qualities by their intervals above the root, most common first (so that an
/// ambiguous set, such as C6 = Am7, gets the more common name).
const QUALITIES: [(&str, &[u8]); 12] = [
    ("", MAJOR_TRIAD),
    ("m", MINOR_TRIAD),
    ("7", &[0, 4, 7, 10]),
    ("m7", &[0, 3, 7, 10]),
    ("maj7", &[0, 4, 7, 11]),
    ("dim", &[0, 3, 6]),
    ("m7b5", &[0, 3, 6, 10]),
    ("dim7", &[0, 3, 6, 9]),
    ("aug", &[0, 4, 8]),
    ("sus4", &[0, 5, 7]),
    ("sus2", &[0, 2, 7]),
    ("5", &[0, 7]),
];

fn shape(root: u8, intervals: &[u8]) -> PitchClasses {
    intervals.iter().fold(0, |mask, i| mask | 1 << ((root + i) % 12))
}

/// The pitch classes of some MIDI pitches.
pub fn pitch_classes(pitches: impl IntoIterator<Item = u8>) -> PitchClasses {
    pitches.into_iter().fold(0, |mask, p| mask | 1 << (p % 12))
}

pub fn contains(chord: PitchClasses, pitch: u8) -> bool {
    chord & (1 << (pitch % 12)) != 0
}

/// The chord's name ("Am7", "F/A" when `bass` is not its root); a set no quality fits is
/// spelled out ("C D F#"); `None` for no notes.
pub fn chord_name(chord: PitchClasses, bass: Option<u8>) -> Option<String> {
    if chord == 0 {
        return None;
    }
    let found = QUALITIES.iter().find_map(|(suffix, intervals)| {
        // With a bass note, its own root reading first (C E G A over A is Am7, not C6/A).
        let roots = bass.map(|b| b % 12).into_iter().chain(0..12);
        roots.into_iter().find(|&root| shape(root, intervals) == chord).map(|root| (root, *suffix))
    });
    Some(match found {
        Some((root, suffix)) => {
            let slash = bass
                .map(|b| b % 12)
                .filter(|&b| b != root)
                .map_or(String::new(), |b| format!("/{}", NOTE_NAMES[usize::from(b)]));
            format!("{}{suffix}{slash}", NOTE_NAMES[usize::from(root)])
        }
        None => (0..12u8)
            .filter(|&c| chord & (1 << c) != 0)
            .map(|c| NOTE_NAMES[usize::from(c)])
            .collect::<Vec<_>>()
            .join(" "),
    })
}

/// A chord from its name: a root (C, C#, Db … B) and one of the qualities `chord_name` writes.
pub fn parse_chord(name: &str) -> Result<PitchClasses, String> {
    let name = name.trim();
    let root_length = if matches!(name.get(1..2), Some("#" | "b")) { 2 } else { 1 };
    let Some((root, suffix)) = name.split_at_checked(root_length.min(name.len())) else {
        return Err(format!("`{name}`: a chord starts with its root, C to B"));
    };
    let mut root_chars = root.chars();
    let letter = root_chars.next().map(|c| c.to_ascii_uppercase());
    let natural = match letter {
        Some('C') => 0,
        Some('D') => 2,
        Some('E') => 4,
        Some('F') => 5,
        Some('G') => 7,
        Some('A') => 9,
        Some('B') => 11,
        _ => return Err(format!("`{name}`: a chord starts with its root, C to B")),
    };
    let root = match root_chars.next() {
        Some('#') => (natural + 1) % 12,
        Some('b') => (natural + 11) % 12,
        _ => natural,
    };
    QUALITIES.iter().find(|(quality, _)| *quality == suffix).map(|(_, intervals)| shape(root, intervals)).ok_or_else(
        || {
            format!(
                "`{name}`: `{suffix}` is not a chord quality ({})",
                QUALITIES.map(|(q, _)| if q.is_empty() { "major" } else { q }).join(", ")
            )
        },
    )
}

/// Aarden and Essen's key profiles: how often each pitch class above the tonic sounds in
/// major and minor folk melodies (the Essen collection). Keys are mostly read here from a
/// lone melody, where these do better than Krumhansl and Kessler's listener ratings, whose
/// flatter profiles let a melody that dwells on its third read as the minor key of that
/// third (the test below): on the held-out chorale phrases, the key read from the soprano
/// alone is the key read from all four parts 41 times in 75 with these, 31 with Krumhansl
/// and Kessler's (sounding time alone, before cadences were weighed).
const MAJOR_PROFILE: [f64; 12] =
    [17.7661, 0.145624, 14.9265, 0.160186, 19.8049, 11.3587, 0.291248, 22.062, 0.145624, 8.15494, 0.232998, 4.95122];
const MINOR_PROFILE: [f64; 12] =
    [18.2648, 0.737619, 14.0499, 16.8599, 0.702494, 14.4362, 0.702494, 18.6161, 4.56621, 1.93186, 7.37619, 1.75623];

/// How much a lone part's phrase ends count in reading its key: what ending on a key's tonic
/// adds to the key's score, and the share of that which ending on its fifth adds. Sounding
/// time alone often takes a melody for its relative minor or its dominant's key, and where
/// the melody closes tells them apart: Bach's chorale sopranos end on the tonic in 273 of
/// the 329 training pieces (on the fifth in 28). Chosen on those pieces from a grid (each
/// weight 0.1 to 0.5, the fifth's share 0.3 or 0.6, the third's 0 or 0.3): the whole
/// soprano's key is then the four parts' key in 294 of 329, 261 by sounding time alone;
/// larger weights read more 4-bar phrases wrong, whose long notes close their key less
/// often. Chosen again in ten folds over all 364 pieces, they read 321 right (88.2 %). Only a lone part's cadences count: read from all four parts,
/// the key by sounding time alone is the key of the signature in all 364 pieces, and 348
/// with cadences weighed, as the bass's roots already carry the tonic's weight.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CadenceWeights {
    pub tonic: f64,
    pub fifth_share: f64,
}

impl CadenceWeights {
    pub const CHOSEN: CadenceWeights = CadenceWeights { tonic: 0.1, fifth_share: 0.3 };

    /// The weights `CHOSEN` was chosen from (tonic 0.1 to 0.5, the fifth's share 0.3 or 0.6;
    /// the third's share, which the choice left at 0, aside), so that a reading can be
    /// measured with its weights chosen again without the pieces it is measured on (`cargo
    /// xtask listen`).
    pub fn grid() -> impl Iterator<Item = CadenceWeights> {
        (1..=5).flat_map(|tenths| {
            [0.3, 0.6].map(|fifth_share| CadenceWeights { tonic: f64::from(tenths) / 10.0, fifth_share })
        })
    }
}

/// Bars either side of a bar whose notes decide its own key: five bars hold enough notes
/// to name a key (a chorale phrase is two), and are few enough to follow a modulation.
const KEY_WINDOW_BARS: usize = 2;
/// What each bar adds to the score of keeping to the whole clip's key, and what a change of
/// key costs: a melody's notes seldom decide a modulation on their own, so a bar leaves the
/// clip's key only where several bars' notes insist. Chosen on the training chorales: each
/// bar's key read from the whole soprano is the key read the same way from all four parts
/// in 86.6 % of their bars, 64 % with each window's key alone and 87.5 % with the whole
/// piece's key throughout, which follows no modulation (these follow eight bars in C and
/// then eight in G).
const CLIP_KEY_PRIOR: f64 = 0.1;
const KEY_CHANGE_COST: f64 = 0.5;

/// A key: the pitch class of its tonic, and its mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    pub tonic: u8,
    pub minor: bool,
}

impl Key {
    fn all() -> impl Iterator<Item = Key> + Clone {
        (0..12).flat_map(|tonic| [Key { tonic, minor: false }, Key { tonic, minor: true }])
    }

    /// The pitch classes music in the key draws on: in minor with the raised sixth and
    /// seventh its melodies and dominants use.
    pub fn scale(self) -> PitchClasses {
        let degrees: &[u8] = if self.minor { &[0, 2, 3, 5, 7, 8, 9, 10, 11] } else { &[0, 2, 4, 5, 7, 9, 11] };
        shape(self.tonic, degrees)
    }

    /// The correlation of time (or count) per pitch class with the key's profile: the
    /// Krumhansl–Schmuckler method. 0 for no time at all.
    fn fit(self, weights: &[f64; 12]) -> f64 {
        let profile = if self.minor { &MINOR_PROFILE } else { &MAJOR_PROFILE };
        let rotated: Vec<f64> = (0..12).map(|c| profile[(c + 12 - usize::from(self.tonic)) % 12]).collect();
        let (mw, mp) = (weights.iter().sum::<f64>() / 12.0, rotated.iter().sum::<f64>() / 12.0);
        let (mut cov, mut vw, mut vp) = (0.0, 0.0, 0.0);
        for (w, p) in weights.iter().zip(&rotated) {
            cov += (w - mw) * (p - mp);
            vw += (w - mw).powi(2);
            vp += (p - mp).powi(2);
        }
        cov / (vw * vp).sqrt().max(f64::MIN_POSITIVE)
    }

    /// How much a phrase that ends on `pitch_class` says it is in this key, of the tonic's.
    fn cadence_on(self, pitch_class: u8, fifth_share: f64) -> f64 {
        match (pitch_class + 12 - self.tonic) % 12 {
            0 => 1.0,
            7 => fifth_share,
            _ => 0.0,
        }
    }
}

/// The key whose score is highest.
fn best_key(score: impl Fn(Key) -> f64) -> Key {
    Key::all().max_by(|&a, &b| score(a).total_cmp(&score(b))).expect("24 keys")
}

/// What some tracks of a roll say about their key, bar by bar.
struct KeyEvidence {
    /// Steps each pitch class sounds, per bar.
    time: Vec<[f64; 12]>,
    /// Of a lone part, per bar, the pitch classes of the notes struck in it that close a
    /// phrase: long (two beats or more) and struck on a strong beat, as a chorale's or a
    /// hymn's phrases end.
    cadences: Vec<Vec<u8>>,
    /// Of a lone part, the bar and pitch class of each note it ends on, where that ends a
    /// phrase: long and on a strong beat, or followed by silence to the end of the roll
    /// (where the music goes on, its last notes are only where the roll was cut).
    finals: Vec<(usize, u8)>,
}

impl KeyEvidence {
    /// `None` when the tracks are silent.
    fn of(roll: &Roll, tracks: &[usize]) -> Option<KeyEvidence> {
        let representation = roll.representation();
        let bar = representation.steps_per_bar();
        let bars = roll.steps().div_ceil(bar);
        let tracks: Vec<usize> = tracks.iter().copied().filter(|&t| t < roll.track_count()).collect();
        let mut time = vec![[0f64; 12]; bars];
        for step in 0..roll.steps() {
            for &track in &tracks {
                for (row, &on) in roll.sounding_at(track, step).iter().enumerate() {
                    if on {
                        time[step / bar][usize::from(representation.pitch_of_row(row) % 12)] += 1.0;
                    }
                }
            }
        }
        if time.iter().flatten().all(|&t| t == 0.0) {
            return None;
        }
        let notes: Vec<_> = roll.notes().into_iter().filter(|note| tracks.contains(&note.track)).collect();
        let mut cadences = vec![Vec::new(); bars];
        if notes.iter().any(|note| note.track != notes[0].track) {
            // Several parts: their harmony's sounding time carries the tonic and dominant's
            // weight already (see `CadenceWeights`).
            return Some(KeyEvidence { time, cadences, finals: Vec::new() });
        }
        let closes = |note: &crate::roll::GridNote| {
            note.length >= 2 * representation.steps_per_beat()
                && note.start.is_multiple_of(strong_beat_steps(representation))
        };
        let end = notes.iter().map(|note| note.start + note.length).max().unwrap_or(0);
        let (last, earlier): (Vec<_>, Vec<_>) = notes.iter().partition(|note| note.start + note.length == end);
        for note in earlier.into_iter().filter(|note| closes(note)) {
            cadences[note.start / bar].push(note.pitch % 12);
        }
        let finals = last
            .into_iter()
            .filter(|note| closes(note) || end < roll.steps())
            .map(|note| (note.start / bar, note.pitch % 12))
            .collect();
        Some(KeyEvidence { time, cadences, finals })
    }

    /// How well the bars `from..to` fit `key`: their sounding time against its profile, and
    /// their phrase ends on its tonic or fifth.
    fn score(&self, key: Key, from: usize, to: usize, weights: CadenceWeights) -> f64 {
        let mut time = [0f64; 12];
        for bar in &self.time[from..to] {
            for (sum, t) in time.iter_mut().zip(bar) {
                *sum += t;
            }
        }
        let mean = |classes: &mut dyn Iterator<Item = u8>| {
            let (sum, count) =
                classes.fold((0.0, 0), |(sum, count), c| (sum + key.cadence_on(c, weights.fifth_share), count + 1));
            if count == 0 {
                0.0
            } else {
                sum / f64::from(count)
            }
        };
        let finals = mean(&mut self.finals.iter().filter(|(bar, _)| (from..to).contains(bar)).map(|&(_, c)| c));
        let cadences = mean(&mut self.cadences[from..to].iter().flatten().copied());
        key.fit(&time) + weights.tonic * (finals + cadences)
    }

    /// The whole roll's key.
    fn key(&self, weights: CadenceWeights) -> Key {
        best_key(|key| self.score(key, 0, self.time.len(), weights))
    }

    /// Each bar's key: the key of the bars around it, smoothed (the path of keys that scores
    /// best, each bar scoring its window's fit, a bonus for the whole roll's key, less a cost
    /// for each change of key).
    fn bar_keys(&self) -> Vec<Key> {
        let whole = self.key(CadenceWeights::CHOSEN);
        let keys: Vec<Key> = Key::all().collect();
        let local = |bar: usize, key: Key| {
            let from = bar.saturating_sub(KEY_WINDOW_BARS);
            let to = (bar + KEY_WINDOW_BARS + 1).min(self.time.len());
            self.score(key, from, to, CadenceWeights::CHOSEN) + if key == whole { CLIP_KEY_PRIOR } else { 0.0 }
        };
        let best_of =
            |totals: &[f64]| (0..totals.len()).max_by(|&a, &b| totals[a].total_cmp(&totals[b])).expect("keys");
        let mut totals: Vec<f64> = keys.iter().map(|&key| local(0, key)).collect();
        let mut came_from: Vec<Vec<usize>> = Vec::with_capacity(self.time.len());
        for bar in 1..self.time.len() {
            let best = best_of(&totals);
            let from: Vec<usize> =
                (0..keys.len()).map(|k| if totals[k] >= totals[best] - KEY_CHANGE_COST { k } else { best }).collect();
            totals = (0..keys.len())
                .map(|k| {
                    let change = if from[k] == k { 0.0 } else { KEY_CHANGE_COST };
                    totals[from[k]] - change + local(bar, keys[k])
                })
                .collect();
            came_from.push(from);
        }
        let mut k = best_of(&totals);
        let mut path = vec![keys[k]];
        for from in came_from.iter().rev() {
            k = from[k];
            path.push(keys[k]);
        }
        path.reverse();
        path
    }
}

/// The key of `tracks` of `roll`: the key whose profile (Aarden and Essen's) best fits
/// their sounding time per pitch class (the Krumhansl–Schmuckler method) and, of a lone
/// part, whose tonic or fifth its phrases end on. `None` when the tracks are silent.
pub fn key(roll: &Roll, tracks: &[usize]) -> Option<Key> {
    key_weighing_cadences(roll, tracks, CadenceWeights::CHOSEN)
}

/// [`key`] with a lone part's phrase ends weighed by `weights`.
pub fn key_weighing_cadences(roll: &Roll, tracks: &[usize], weights: CadenceWeights) -> Option<Key> {
    KeyEvidence::of(roll, tracks).map(|evidence| evidence.key(weights))
}

/// The scale ([`Key::scale`]) of the [`key`] of `tracks` of `roll`.
pub fn key_scale(roll: &Roll, tracks: &[usize]) -> Option<PitchClasses> {
    key(roll, tracks).map(Key::scale)
}

/// The scale of each bar's key (a trailing part bar counting as a bar), as `key_scale`
/// reads keys, but from the bars around it, so that a clip that modulates is read in one
/// key and then the other; the whole clip's key is preferred (see `CLIP_KEY_PRIOR`). `None`
/// when the tracks are silent.
pub fn bar_key_scales(roll: &Roll, tracks: &[usize]) -> Option<Vec<PitchClasses>> {
    KeyEvidence::of(roll, tracks).map(|evidence| evidence.bar_keys().into_iter().map(Key::scale).collect())
}

/// The scale (as `key_scale` gives it) of the key a progression of chords is in, each chord's
/// tones counting once.
pub fn key_scale_of_chords(chords: &[PitchClasses]) -> Option<PitchClasses> {
    let mut weights = [0f64; 12];
    for chord in chords {
        for (class, weight) in weights.iter_mut().enumerate() {
            *weight += f64::from(chord >> class & 1);
        }
    }
    if weights.iter().all(|&w| w == 0.0) {
        return None;
    }
    Some(best_key(|key| key.fit(&weights)).scale())
}

/// The root of a chord that is exactly a major or a minor triad (no note doubled in another
/// pitch class, nothing added); `None` for any other set.
pub fn triad_root(chord: PitchClasses) -> Option<u8> {
    (0..12).find(|&root| shape(root, MAJOR_TRIAD) == chord || shape(root, MINOR_TRIAD) == chord)
}

/// Steps between strong beats: the downbeat, and the bar's middle beat when it has an even
/// number of beats (beats 1 and 3 of 4/4, 1 and 4 of 6/8).
pub fn strong_beat_steps(representation: &Representation) -> usize {
    let bar = representation.steps_per_bar();
    if representation.meter.numerator.is_multiple_of(2) {
        bar / 2
    } else {
        bar
    }
}

/// Each bar's chord as a chord track gives it: the pitch classes of every note sounding in
/// it (0 for a silent bar).
pub fn bar_chords(roll: &Roll) -> Vec<PitchClasses> {
    let representation = roll.representation();
    let bar = representation.steps_per_bar();
    (0..roll.bar_count())
        .map(|b| {
            let mut chord = 0;
            for step in b * bar..(b + 1) * bar {
                for track in 0..roll.track_count() {
                    for (row, &on) in roll.sounding_at(track, step).iter().enumerate() {
                        if on {
                            chord |= 1 << (representation.pitch_of_row(row) % 12);
                        }
                    }
                }
            }
            chord
        })
        .collect()
}

/// Of the pitched notes that start on a strong beat, how many are tones of their bar's chord
/// (`chords[bar % chords.len()]`): (chord tones, notes). Drums have no pitch to be one.
pub fn strong_beat_chord_tones(roll: &Roll, chords: &[PitchClasses]) -> (usize, usize) {
    if chords.is_empty() {
        return (0, 0);
    }
    let representation = roll.representation();
    let (strong, bar) = (strong_beat_steps(representation), representation.steps_per_bar());
    let on_strong_beats =
        |note: &&crate::roll::GridNote| note.start.is_multiple_of(strong) && !representation.tracks[note.track].is_drum;
    roll.notes().iter().filter(on_strong_beats).fold((0, 0), |(tones, all), note| {
        (tones + usize::from(contains(chords[(note.start / bar) % chords.len()], note.pitch)), all + 1)
    })
}

/// Ode to Joy in G, both phrases (B B C D D C B A G G A B B. A A | B B C D D C B A G G A B A.
/// G G) as (pitch, steps of a sixteenth): a melody whose key tests read.
#[cfg(test)]
pub(crate) fn ode_to_joy() -> Vec<(u8, usize)> {
    let (g, a, b, c, d) = (55, 57, 59, 60, 62);
    let opening = [b, b, c, d, d, c, b, a, g, g, a, b].map(|pitch| (pitch, 4));
    [&opening[..], &[(b, 6), (a, 2), (a, 8)], &opening[..], &[(a, 6), (g, 2), (g, 8)]].concat()
}

/// A melody of (pitch, steps) on track 0 of `grid`, one note after another, as long as its
/// notes.
#[cfg(test)]
pub(crate) fn melody_roll(grid: std::sync::Arc<crate::roll::Representation>, notes: &[(u8, usize)]) -> Roll {
    let mut roll = Roll::new(grid, notes.iter().map(|&(_, length)| length).sum());
    let mut start = 0;
    for &(pitch, length) in notes {
        roll.place(crate::roll::GridNote { track: 0, start, pitch, length, velocity: 90 }).unwrap();
        start += length;
    }
    roll
}

/// Sixteen bars of a melody: eight in C closing on C, then eight with F#s closing on G.
#[cfg(test)]
pub(crate) fn c_then_g() -> Vec<(u8, usize)> {
    let in_c = [60, 62, 64, 65, 67, 65, 64, 62, 60, 64, 67, 64, 59, 57, 55, 53, 52, 53, 55, 57, 55, 53, 52, 50];
    let in_g = [55, 54, 55, 57, 59, 57, 55, 54, 55, 59, 62, 67, 66, 64, 62, 60, 59, 60, 62, 64, 62, 60, 59, 57];
    let quarters = |pitches: &[u8]| pitches.iter().map(|&pitch| (pitch, 4)).collect::<Vec<_>>();
    let (c_close, g_close) = ([52, 50, 48, 50], [57, 59, 57, 54]);
    [quarters(&in_c), quarters(&c_close), vec![(48, 16)], quarters(&in_g), quarters(&g_close), vec![(55, 16)]].concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roll::GridNote;
    use std::sync::Arc;

    #[test]
    fn chords_are_named_as_musicians_name_them_and_read_back() {
        let named =
            |pitches: &[u8], bass: Option<u8>| chord_name(pitch_classes(pitches.iter().copied()), bass).unwrap();
        assert_eq!(named(&[60, 64, 67], None), "C");
        assert_eq!(named(&[57, 60, 64], Some(57)), "Am");
        assert_eq!(named(&[64, 67, 72], Some(64)), "C/E", "an inversion names its bass");
        assert_eq!(named(&[55, 59, 62, 65], None), "G7");
        assert_eq!(named(&[57, 60, 64, 67], Some(57)), "Am7", "the bass decides between Am7 and C6");
        assert_eq!(named(&[59, 62, 65], None), "Bdim");
        assert_eq!(named(&[60, 62, 66], None), "C D F#", "no quality fits: spelled out");
        assert_eq!(chord_name(0, None), None);
        for name in ["C", "F#m", "Bb7", "Ebmaj7", "Gsus4", "Dm7b5", "Ab"] {
            assert_eq!(chord_name(parse_chord(name).unwrap(), None).unwrap(), name, "{name}");
        }
        assert_eq!(parse_chord("Db").unwrap(), parse_chord("C#").unwrap());
        assert!(parse_chord("H7").unwrap_err().contains("root"));
        assert!(parse_chord("Cmaj9").unwrap_err().contains("`maj9` is not a chord quality"));
    }

    #[test]
    fn only_a_major_or_minor_triad_has_a_triad_root() {
        let root = |name: &str| triad_root(parse_chord(name).unwrap());
        assert_eq!((root("C"), root("F#m"), root("Bb")), (Some(0), Some(6), Some(10)));
        assert_eq!(triad_root(pitch_classes([64, 67, 72, 76])), Some(0), "doubled, inverted: still C");
        for other in ["G7", "Bdim", "Caug", "Dsus4", "E5"] {
            assert_eq!(root(other), None, "{other}");
        }
        assert_eq!(triad_root(0), None);
    }

    #[test]
    fn strong_beat_notes_are_checked_against_their_bars_chord() {
        // The test grid: 4/4, 4 steps a beat, two parts, pitches 48..72.
        let mut roll = Roll::new(Arc::new(crate::model::card::test_card().representation), 32);
        for (start, pitch) in [(0, 60), (4, 62), (8, 65), (16, 67), (24, 69)] {
            roll.place(GridNote { track: 0, start, pitch, length: 4, velocity: 90 }).unwrap();
        }
        assert_eq!(strong_beat_steps(roll.representation()), 8);
        let (c, g) = (parse_chord("C").unwrap(), parse_chord("G").unwrap());
        // Strong beats: 0 (C in C), 8 (F in C: no), 16 (G in G), 24 (A in G: no); 4 is weak.
        assert_eq!(strong_beat_chord_tones(&roll, &[c, g]), (2, 4));
        assert_eq!(bar_chords(&roll), vec![pitch_classes([60, 62, 65]), pitch_classes([67, 69])]);
        let mut kit = crate::model::card::test_card().representation;
        kit.tracks[1] = crate::roll::TrackSpec::drums("Snare", vec![50]);
        let mut with_drums = Roll::new(Arc::new(kit), 32);
        with_drums.place(GridNote { track: 0, start: 0, pitch: 60, length: 4, velocity: 90 }).unwrap();
        with_drums.place(GridNote { track: 1, start: 8, pitch: 50, length: 1, velocity: 90 }).unwrap();
        assert_eq!(strong_beat_chord_tones(&with_drums, &[c]), (1, 1), "a drum is no chord tone, nor a wrong note");
    }

    /// A melody on the test grid (4/4, 4 steps a beat, pitches 48..72).
    fn melody(notes: &[(u8, usize)]) -> Roll {
        melody_roll(Arc::new(crate::model::card::test_card().representation), notes)
    }

    #[test]
    fn a_melody_is_read_in_the_key_it_closes_in_bar_by_bar() {
        let g_major = parse_chord("G").unwrap() | parse_chord("D").unwrap() | parse_chord("C").unwrap();
        let ode = melody(&ode_to_joy());
        assert_eq!(key_scale(&ode, &[0]), Some(g_major), "Ode to Joy is in G major");
        assert_eq!(bar_key_scales(&ode, &[0]), Some(vec![g_major; 8]), "in every bar");
        for raised in [61, 68, 63] {
            assert!(!contains(g_major, raised), "no C#, G# or D# in its scale");
        }
        let c_major = parse_chord("C").unwrap() | parse_chord("G").unwrap() | parse_chord("F").unwrap();
        let modulating = melody(&c_then_g());
        let bars = bar_key_scales(&modulating, &[0]).unwrap();
        assert_eq!(bars.len(), 16);
        assert_eq!(bars[..6], [c_major; 6], "C major at first: {bars:?}");
        assert_eq!(bars[12..], [g_major; 4], "G major at the close: {bars:?}");
        assert_eq!(bar_key_scales(&modulating, &[1]), None, "a silent part has no key");
    }

    #[test]
    fn the_key_of_a_melody_or_a_progression_is_found() {
        // Ode to Joy in G, its first phrase (B B C D D C B A G G A B B. A A), which ends
        // on the dominant's A and dwells on B: read with listeners' ratings, B minor.
        let half_cadence = melody(&[
            (59, 4),
            (59, 4),
            (60, 4),
            (62, 4),
            (62, 4),
            (60, 4),
            (59, 4),
            (57, 4),
            (55, 4),
            (55, 4),
            (57, 4),
            (59, 4),
            (59, 6),
            (57, 2),
            (57, 8),
        ]);
        let g_major = key_scale(&half_cadence, &[0]).unwrap();
        assert_eq!(
            chord_name(g_major & parse_chord("G").unwrap(), None).unwrap(),
            "G",
            "G major's tonic triad is in it"
        );
        assert!(contains(g_major, 66) && !contains(g_major, 61), "F# is in G major, C# is not");
        assert!(!contains(g_major, 68) && !contains(g_major, 63) && !contains(g_major, 65), "nor Ab, Eb or F");
        // And the phrase that closes on G, in quarters.
        let roll = melody(&[59u8, 59, 60, 62, 62, 60, 59, 57, 55, 55, 57, 59, 59, 57, 57, 55].map(|pitch| (pitch, 4)));
        let scale = key_scale(&roll, &[0]).unwrap();
        assert_eq!(scale, g_major);
        assert_eq!(key(&roll, &[0]), Some(Key { tonic: 7, minor: false }));
        assert_eq!(chord_name(scale & parse_chord("G").unwrap(), None).unwrap(), "G", "G major's tonic triad is in it");
        assert!(contains(scale, 66) && !contains(scale, 61), "F# is in G major, C# is not");
        assert!(!contains(scale, 68) && !contains(scale, 63), "nor Ab and Eb");
        assert_eq!(key_scale(&roll, &[1]), None, "a silent part has no key");
        let progression = ["G", "Em", "C", "D7"].map(|c| parse_chord(c).unwrap());
        assert_eq!(key_scale_of_chords(&progression), Some(scale), "G Em C D7 is in G major too");
    }
}
