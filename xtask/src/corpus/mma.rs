//! The band corpus's MMA part: every groove of MMA's hand-written styles, played by MMA's own
//! program over chord charts written here.
//!
//! MMA (Musical MIDI Accompaniment) is a Python program and a library of styles; a style file
//! defines grooves (`DefGroove`): drums, bass or walking bass, chord comping and arpeggios, in
//! a main version and its Intro, Fill, End, Sus and Plus variants. A groove is only patterns;
//! MMA turns it into notes over a chord chart. So for each groove we write songs over common
//! progressions and let MMA play them, and the manifest keeps each song's chart beside its
//! file: the chord under every bar, from which a model can learn what a bass does with a chord.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// The folders of MMA's `lib/` whose styles are written by hand, and so are band music made by
/// a musician: `stdlib` (MMA's author's own styles), `pflib` (Peter Falk's) and `alexis` (Alexis
/// Archambault's, patterns from magazine tutorials). The rest is left out, being keyboard
/// makers' and drum machines' factory patterns converted by program: `yamaha` says in each
/// file that it is a machine translation of a Yamaha style file (by MMA's `ys2mma`), `casio`
/// is converted from the Casio WK-3000's styles, `kara` (Kara Music Production) has the same
/// machine-written layout and names its `.sty` sources, and `zoom` is a Zoom drum machine's
/// numbered presets (`ROCK01`...), drums alone, with no author or description.
pub const KEPT_LIBRARIES: [&str; 3] = ["stdlib", "pflib", "alexis"];

/// Styles of the kept libraries that are not band music: a silent groove and count-in clicks.
const LEFT_OUT_STYLES: [&str; 5] = ["none", "metronome", "metronome3", "metronome6", "metronome68"];

/// Runs MMA from any folder that holds its `MMA/` package. MMA's own launcher looks for that
/// folder only in fixed places (beside itself, /usr/share/mma, ...) and hands MMA two globals
/// through `__main__`, `MMAdir` and `platform`; this does the same for the folder it is given
/// (argv[1]), so an unpacked package or release runs as it is, without installing.
const LAUNCHER: &str = "import sys, platform; MMAdir = sys.argv.pop(1); platform = platform.system(); \
                        sys.path.insert(0, MMAdir); import MMA.main";

/// A style file and the grooves it defines.
#[derive(Debug, PartialEq)]
pub struct Style {
    /// The folder of `lib/` it is in (`stdlib`).
    pub library: String,
    /// Its file name without `.mma` (`swing`).
    pub name: String,
    /// Its `Author` line.
    pub author: Option<String>,
    /// A tempo its description suggests ("good tempos are 120 to 150 bpm").
    pub suggested_tempo: Option<u32>,
    pub grooves: Vec<Groove>,
}

#[derive(Debug, PartialEq)]
pub struct Groove {
    pub name: String,
    /// MMA's `Time`: quarter-note beats in one of its bars.
    pub beats: u32,
    /// The style's `TimeSig` where it gives one ("6/8").
    pub notated_meter: Option<String>,
}

impl Style {
    /// Where its songs go under `mma/`: the style's name, or `library-name` outside `stdlib`,
    /// so that no two libraries' styles can share a folder.
    pub fn folder(&self) -> String {
        if self.library == "stdlib" {
            self.name.clone()
        } else {
            format!("{}-{}", self.library, self.name)
        }
    }
}

/// Reads a style file's grooves in the order it defines them: each with the `Time` and
/// `TimeSig` in force at its `DefGroove`, which is what the groove saves. A name defined
/// twice (a later definition replaces an earlier one) is listed once.
pub fn read_style(library: &str, name: &str, text: &str) -> Style {
    let mut style = Style {
        library: library.to_string(),
        name: name.to_string(),
        author: None,
        suggested_tempo: None,
        grooves: Vec::new(),
    };
    let (mut beats, mut notated_meter) = (4, None);
    let mut doc: Option<String> = None;
    for line in logical_lines(text) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(first) = words.first().map(|w| w.to_ascii_lowercase()) else { continue };
        if let Some(text) = doc.as_mut() {
            if first == "end" && words.len() == 1 {
                style.suggested_tempo = style.suggested_tempo.or(suggested_tempo(text));
                doc = None;
            } else {
                text.push(' ');
                text.push_str(&line);
            }
            continue;
        }
        match (first.as_str(), words.get(1)) {
            ("begin", Some(what)) if what.eq_ignore_ascii_case("doc") => doc = Some(String::new()),
            ("time", Some(value)) => {
                if let Some(n) = value.split('/').next().and_then(|n| n.parse().ok()) {
                    beats = n;
                }
            }
            ("timesig", Some(value)) => {
                let meter = match words.get(2) {
                    Some(denominator) if !value.contains('/') => format!("{value}/{denominator}"),
                    _ => value.to_string(),
                };
                notated_meter = Some(meter);
            }
            ("author", Some(_)) => style.author = Some(words[1..].join(" ")),
            ("defgroove", Some(groove)) if !style.grooves.iter().any(|g| g.name.eq_ignore_ascii_case(groove)) => {
                style.grooves.push(Groove { name: groove.to_string(), beats, notated_meter: notated_meter.clone() });
            }
            _ => {}
        }
    }
    style
}

/// MMA's lines with `//` comments cut and `\` continuations joined.
fn logical_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut pending = String::new();
    for raw in text.lines() {
        let line = raw.split("//").next().unwrap_or("").trim();
        match line.strip_suffix('\\') {
            Some(start) => {
                pending.push_str(start);
                pending.push(' ');
            }
            None => {
                pending.push_str(line);
                lines.push(std::mem::take(&mut pending));
            }
        }
    }
    if !pending.is_empty() {
        lines.push(pending);
    }
    lines
}

/// The tempo a style's description suggests, if it names one: "120 to 150 bpm" (the middle),
/// "around 60bpm", "at a tempo of 280", "tempos around 200", "200 (100) bpm" (the first: MMA's
/// own count).
fn suggested_tempo(doc: &str) -> Option<u32> {
    let lower = doc.to_lowercase();
    let words: Vec<&str> =
        lower.split(|c: char| c.is_whitespace() || ",.;:()\"'!?".contains(c)).filter(|w| !w.is_empty()).collect();
    let number = |word: &str| -> Option<(u32, bool)> {
        let (digits, bpm) = match word.strip_suffix("bpm") {
            Some(digits) => (digits, true),
            None => (word, false),
        };
        digits.parse().ok().filter(|n| (40..=320).contains(n)).map(|n| (n, bpm))
    };
    let is_bpm = |i: usize| words.get(i).is_some_and(|w| *w == "bpm");
    for (i, word) in words.iter().enumerate() {
        let Some((n, bpm)) = number(word) else { continue };
        if matches!(words.get(i + 1), Some(&"to" | &"-")) {
            if let Some((m, m_bpm)) = words.get(i + 2).and_then(|w| number(w)) {
                if m_bpm || is_bpm(i + 3) {
                    return Some((n + m) / 2);
                }
            }
        }
        // "200 (100) bpm": the tempo as written, then as a 2/4 reader would count it.
        let before_another = words.get(i + 1).and_then(|w| number(w)).is_some() && is_bpm(i + 2);
        if bpm
            || is_bpm(i + 1)
            || before_another
            || words[i.saturating_sub(3)..i].iter().any(|w| w.starts_with("tempo"))
        {
            return Some(n);
        }
    }
    None
}

/// The tempo a style's songs are played at: the one its description suggests, else one by its
/// name's kind. The corpus is read on a beat grid, so the tempo changes nothing a model learns
/// from the notes; it only makes the files sound as the style is meant.
pub fn tempo(style: &Style) -> u32 {
    let name = style.name.to_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| name.contains(w));
    style.suggested_tempo.unwrap_or(if any(&["ballad", "slow", "lullaby", "hymn"]) {
        72
    } else if any(&["fast", "quickstep"]) {
        200
    } else {
        120
    })
}

/// A chord progression, one chord a bar: (semitones above the key's tonic, MMA's chord type).
pub struct Progression {
    /// Its name in file names and the manifest.
    pub name: &'static str,
    pub minor: bool,
    pub bars: &'static [(u8, &'static str)],
}

/// The progressions every groove is played over: pop's I-V-vi-IV and the doo-wop I-vi-IV-V,
/// jazz's ii-V-I (with a vi to lead back), the 12-bar blues and a minor i-iv-V-i: between
/// them the triads, sevenths, dominant and minor chords that band music is made of.
pub const PROGRESSIONS: [Progression; 5] = [
    Progression {
        name: "pop",
        minor: false,
        bars: &[(0, ""), (7, ""), (9, "m"), (5, ""), (0, ""), (7, ""), (9, "m"), (5, "")],
    },
    Progression {
        name: "doowop",
        minor: false,
        bars: &[(0, ""), (9, "m"), (5, ""), (7, ""), (0, ""), (9, "m"), (5, ""), (7, "")],
    },
    Progression {
        name: "jazz",
        minor: false,
        bars: &[(2, "m7"), (7, "7"), (0, "maj7"), (9, "m7"), (2, "m7"), (7, "7"), (0, "maj7"), (0, "maj7")],
    },
    Progression {
        name: "blues",
        minor: false,
        bars: &[
            (0, "7"),
            (5, "7"),
            (0, "7"),
            (0, "7"),
            (5, "7"),
            (5, "7"),
            (0, "7"),
            (0, "7"),
            (7, "7"),
            (5, "7"),
            (0, "7"),
            (7, "7"),
        ],
    },
    Progression {
        name: "minor",
        minor: true,
        bars: &[(0, "m"), (5, "m"), (7, "7"), (0, "m"), (0, "m"), (5, "m"), (7, "7"), (0, "m")],
    },
];

/// Pitch classes by name. One spelling each (flats), in file names and charts alike: MMA
/// reads any, and a chart names sounding pitches, not a notated key.
const PITCH_NAMES: [&str; 12] = ["C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B"];

impl Progression {
    /// The chart in a key (the tonic's pitch class): one chord name a bar.
    pub fn chart(&self, key: u8) -> Vec<String> {
        self.bars
            .iter()
            .map(|&(degree, kind)| format!("{}{kind}", PITCH_NAMES[usize::from((key + degree) % 12)]))
            .collect()
    }

    /// The key's name: "Eb", or "Cm" for a minor progression.
    pub fn key_name(&self, key: u8) -> String {
        format!("{}{}", PITCH_NAMES[usize::from(key % 12)], if self.minor { "m" } else { "" })
    }
}

/// The song MMA plays: the style's file loaded by path (MMA's groove database is not needed, or
/// written), the groove, a time signature that matches MMA's bar (styles in 6/8 are written
/// as 2, 4 or 6 quarter beats, while their `TimeSig` says 6/8, which would put the file's bar
/// lines where MMA's bars are not), the tempo, and one chord a bar.
pub fn song_text(style: &Style, groove: &Groove, progression: &Progression, key: u8, tempo: u32) -> String {
    let mut text = format!(
        "// Dreamroll band corpus: {}/{}, groove {}, {} in {}\n",
        style.library,
        style.name,
        groove.name,
        progression.name,
        progression.key_name(key)
    );
    text += &format!("Use {}/{}\n", style.library, style.name);
    text += &format!("Groove {}\n", groove.name);
    text += &format!("TimeSig {} 4\n", groove.beats);
    text += &format!("Tempo {tempo}\n");
    for (bar, chord) in progression.chart(key).iter().enumerate() {
        text += &format!("{} {chord}\n", bar + 1);
    }
    text
}

/// The kind of a groove by its name's words: MMA's styles name their variants `...Intro`,
/// `...Fill`, `...End` (with a number or `Sus` after it, at times). A variant played for eight
/// bars is a loop of its intro or ending, which a consumer may want to leave out.
pub fn variant(groove: &str) -> &'static str {
    let mut words = Vec::new();
    let mut word = String::new();
    for c in groove.chars() {
        if c.is_ascii_uppercase() && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        if c.is_ascii_alphabetic() {
            word.push(c.to_ascii_lowercase());
        } else if !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
    }
    words.push(word);
    let has = |names: &[&str]| words.iter().any(|w| names.contains(&w.as_str()));
    if has(&["intro"]) {
        "intro"
    } else if has(&["end", "ending"]) {
        "ending"
    } else if has(&["fill", "break"]) {
        "fill"
    } else {
        "main"
    }
}

/// Where MMA is: a folder holding its `MMA/` package and `lib/`.
pub fn is_home(dir: &Path) -> bool {
    dir.join("MMA").join("main.py").is_file() && dir.join("lib").is_dir()
}

/// The kept styles of an MMA home, sorted by library (in [`KEPT_LIBRARIES`]' order) and name.
pub fn kept_styles(home: &Path) -> Result<Vec<Style>> {
    let mut styles = Vec::new();
    for library in KEPT_LIBRARIES {
        let folder = home.join("lib").join(library);
        if !folder.is_dir() {
            continue;
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
            .with_context(|| format!("cannot list {}", folder.display()))?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .with_context(|| format!("cannot list {}", folder.display()))?;
        files.retain(|p| p.extension().is_some_and(|e| e == "mma"));
        files.sort();
        for path in files {
            let name = path.file_stem().expect("a listed file has a name").to_string_lossy().into_owned();
            if LEFT_OUT_STYLES.contains(&name.as_str()) {
                continue;
            }
            // Some contributed files are Latin-1; their grooves' names are ASCII all the same.
            let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let style = read_style(library, &name, &String::from_utf8_lossy(&bytes));
            if !style.grooves.is_empty() {
                styles.push(style);
            }
        }
    }
    Ok(styles)
}

/// Plays one song file with MMA into `midi`. MMA's messages are kept for the error only: on
/// success it says just which file it wrote (and warns of its plugin folder, which a Debian
/// package does not ship and no style here uses).
pub fn render(python: &Path, home: &Path, song: &Path, midi: &Path) -> Result<()> {
    let output = Command::new(python)
        .arg("-c")
        .arg(LAUNCHER)
        .arg(home)
        .arg(song)
        .arg("-f")
        .arg(midi)
        .current_dir(song.parent().expect("a song file is in a folder"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .output()
        .with_context(|| {
            format!("could not start {} to run MMA (a Python program); point --python at Python 3", python.display())
        })?;
    if !output.status.success() || !midi.is_file() {
        let said = String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
        let said: Vec<&str> = said.lines().filter(|l| !l.contains("PLUGIN")).collect();
        bail!("MMA failed on {} ({}): {}", song.display(), output.status, said.join(" / "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STYLE: &str = "// A test style\n\
        Begin Doc\n  A swing for tests. Good tempos are 120 to 150 bpm.\nEnd\n\
        Author Bob van der Poel\n\
        SeqClear\nTime 4 // beats\nTimesig 4 4\n\
        Begin Drum-Ride\n  Sequence {1 0 90; 2.66 0 80} // the ride\nEnd\n\
        DefGroove Test   The basic groove, \\\n   with a continued description.\n\
        DefGroove TestSus  With strings.\n\
        Time 3\nTimeSig 3/4\n\
        DefGroove TestWaltzIntro A four-bar intro.\n\
        DefGroove TestSus  Redefined: listed once.\n\
        // DefGroove Commented  not a groove\n";

    #[test]
    fn a_style_file_lists_its_grooves_with_their_meters() {
        let style = read_style("stdlib", "test", STYLE);
        let groove = |name: &str, beats, meter: &str| Groove {
            name: name.to_string(),
            beats,
            notated_meter: Some(meter.to_string()),
        };
        assert_eq!(
            style,
            Style {
                library: "stdlib".into(),
                name: "test".into(),
                author: Some("Bob van der Poel".into()),
                suggested_tempo: Some(135),
                grooves: vec![
                    groove("Test", 4, "4/4"),
                    groove("TestSus", 4, "4/4"),
                    groove("TestWaltzIntro", 3, "3/4")
                ],
            }
        );
        assert_eq!(tempo(&style), 135);
    }

    #[test]
    fn a_suggested_tempo_is_read_from_the_words_around_it() {
        assert_eq!(suggested_tempo("I used this at a tempo of 280."), Some(280));
        assert_eq!(suggested_tempo("Best at slow tempos around 60bpm."), Some(60));
        assert_eq!(suggested_tempo("a fast (200 to 300 bpm) dance"), Some(250));
        assert_eq!(suggested_tempo("works best with tempos around 200."), Some(200));
        assert_eq!(suggested_tempo("Written in 4. Good for pieces which are 200 (100) bpm or faster."), Some(200));
        assert_eq!(suggested_tempo("Written in 4, so double the tempo. 16 bars of it."), None);
        let style = |name: &str| Style {
            library: "stdlib".into(),
            name: name.into(),
            author: None,
            suggested_tempo: None,
            grooves: vec![],
        };
        assert_eq!((tempo(&style("popballad")), tempo(&style("fastswing")), tempo(&style("rock-128"))), (72, 200, 120));
    }

    #[test]
    fn a_groove_and_progression_become_this_song() {
        let style = read_style("stdlib", "test", STYLE);
        let jazz = PROGRESSIONS.iter().find(|p| p.name == "jazz").unwrap();
        assert_eq!(
            song_text(&style, &style.grooves[0], jazz, 3, 135),
            "// Dreamroll band corpus: stdlib/test, groove Test, jazz in Eb\n\
             Use stdlib/test\nGroove Test\nTimeSig 4 4\nTempo 135\n\
             1 Fm7\n2 Bb7\n3 Ebmaj7\n4 Cm7\n5 Fm7\n6 Bb7\n7 Ebmaj7\n8 Ebmaj7\n"
        );
        let minor = PROGRESSIONS.iter().find(|p| p.name == "minor").unwrap();
        let waltz = &style.grooves[2];
        let song = song_text(&style, waltz, minor, 9, 120);
        assert!(song.contains("Groove TestWaltzIntro\nTimeSig 3 4\n"), "{song}");
        assert!(song.ends_with("1 Am\n2 Dm\n3 E7\n4 Am\n5 Am\n6 Dm\n7 E7\n8 Am\n"), "{song}");
        assert_eq!(minor.key_name(9), "Am");
    }

    #[test]
    fn every_progression_is_eight_bars_but_the_blues() {
        for progression in &PROGRESSIONS {
            let bars = if progression.name == "blues" { 12 } else { 8 };
            assert_eq!(progression.chart(0).len(), bars, "{}", progression.name);
        }
        let blues = PROGRESSIONS.iter().find(|p| p.name == "blues").unwrap();
        assert_eq!(blues.chart(7).join(" "), "G7 C7 G7 G7 C7 C7 G7 G7 D7 C7 G7 D7");
    }

    #[test]
    fn a_groove_variant_is_read_from_its_name() {
        assert_eq!(variant("50sRockIntro1"), "intro");
        assert_eq!(variant("SwingEnd"), "ending");
        assert_eq!(variant("R&B-BalladFill"), "fill");
        assert_eq!(variant("DescendingJazz"), "main");
        assert_eq!(variant("SwingSusPlus"), "main");
        assert_eq!(variant("8BeatIntroSus"), "intro");
    }

    #[test]
    fn only_the_hand_written_styles_are_kept() {
        let home = std::env::temp_dir().join(format!("dreamroll-mma-home-{}", std::process::id()));
        for (library, name) in [("stdlib", "swing"), ("stdlib", "none"), ("yamaha", "jazzbasie"), ("pflib", "rock1")] {
            let folder = home.join("lib").join(library);
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::write(folder.join(format!("{name}.mma")), format!("DefGroove {name}A\n")).unwrap();
        }
        std::fs::create_dir_all(home.join("MMA")).unwrap();
        assert!(!is_home(&home), "MMA/ has no main.py yet");
        std::fs::write(home.join("MMA").join("main.py"), "").unwrap();
        assert!(is_home(&home));
        let styles = kept_styles(&home).unwrap();
        let kept: Vec<String> = styles.iter().map(|s| format!("{} {}", s.folder(), s.grooves[0].name)).collect();
        assert_eq!(kept, ["swing swingA", "pflib-rock1 rock1A"]);
        std::fs::remove_dir_all(&home).unwrap();
    }
}
