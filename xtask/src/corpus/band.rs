//! `cargo xtask corpus --only band`: a corpus of band music (drums, bass, comping, several
//! parts at once) from three Debian packages of free music, none of which ships with the
//! project: the user installs or unpacks them, and names where if they are elsewhere.
//!
//! - `mma`: the grooves of MMA's hand-written styles, played by MMA over chord charts written
//!   here ([`super::mma`]); GPL-2.0-or-later.
//! - `freedoom`: the songs inside Freedoom's two WADs ([`super::wad`]); BSD-3-Clause.
//! - `openttd-openmsx`: OpenMSX's songs for OpenTTD, copied as they are; GPL-2.0-only.
//!
//! What is found is built and what is missing is named with the way to get it; only when
//! nothing is found does the command fail. Each file gets a line in `band_manifest.jsonl`
//! (its licence and copyright holder, what it is, and what its notes show: meter, tempo,
//! bars, drums, swing).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use dreamroll::corpus::read_score;
use dreamroll::roll::{read_midi, Score, DRUM_CHANNEL};
use serde::Serialize;
use serde_json::json;

use super::mma::{self, Progression, PROGRESSIONS};
use super::wad::{self, MusicFormat};
use crate::train::checkpoint::write_file_atomically;

pub const MANIFEST: &str = "band_manifest.jsonl";
/// Where the MMA songs' charts go, beside the sources' folders.
const CHARTS: &str = "mma-charts";
/// How many songs MMA may fail on before any succeeds, before it is taken for broken.
const MMA_TRIES: usize = 10;

const DEFAULT_MMA_HOMES: [&str; 2] = ["/usr/local/share/mma", "/usr/share/mma"];
const DEFAULT_FREEDOOM: &str = "/usr/share/games/doom";
const DEFAULT_OPENMSX: &str = "/usr/share/games/openttd/baseset/openmsx";
const FREEDOOM_WADS: [&str; 2] = ["freedoom1.wad", "freedoom2.wad"];

/// The three sources, each a Debian package.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Mma,
    Freedoom,
    Openmsx,
}

impl Source {
    const ALL: [Source; 3] = [Source::Mma, Source::Freedoom, Source::Openmsx];

    fn name(self) -> &'static str {
        match self {
            Source::Mma => "MMA",
            Source::Freedoom => "Freedoom",
            Source::Openmsx => "OpenMSX",
        }
    }

    /// Its folder in the output, also its name in the manifest.
    fn folder(self) -> &'static str {
        match self {
            Source::Mma => "mma",
            Source::Freedoom => "freedoom",
            Source::Openmsx => "openmsx",
        }
    }

    /// As each package's `copyright` file states it, checked by hand: MMA's is "GPL-2+" for
    /// every file, Freedoom's is its own three-clause BSD text, and OpenMSX's is "GPL-2.0",
    /// version 2 only ("under the terms of the GNU General Public License version 2").
    fn licence(self) -> &'static str {
        match self {
            Source::Mma => "GPL-2.0-or-later",
            Source::Freedoom => "BSD-3-Clause",
            Source::Openmsx => "GPL-2.0-only",
        }
    }

    fn how_to_get(self) -> &'static str {
        match self {
            Source::Mma => {
                "`apt-get download mma && dpkg -x mma_*.deb DIR`, then pass `--mma DIR/usr/share/mma`\n  \
                 (or `apt-get install mma`; on any OS, unpack MMA's own release from https://www.mellowood.ca/mma/\n  \
                 and pass `--mma` the folder that holds its MMA/, lib/ and includes/). MMA runs on Python 3 (--python)."
            }
            Source::Freedoom => {
                "`apt-get download freedoom && dpkg -x freedoom_*.deb DIR`, then pass \
                 `--freedoom DIR/usr/share/games/doom`\n  (or `apt-get install freedoom`; on any OS, \
                 Freedoom's release zip holds the same freedoom1.wad and freedoom2.wad)."
            }
            Source::Openmsx => {
                "`apt-get download openttd-openmsx && dpkg -x openttd-openmsx_*.deb DIR`, then pass \
                 `--openmsx DIR/usr/share/games/openttd/baseset/openmsx`\n  (or `apt-get install openttd-openmsx`; \
                 on any OS, OpenMSX's release, or OpenTTD's in-game content download, has the same .mid files)."
            }
        }
    }
}

const MMA_COPYRIGHT: &str = "Bob van der Poel";
const FREEDOOM_COPYRIGHT: &str = "Contributors to the Freedoom project (see its CREDITS)";

/// OpenMSX's composers, from the credits in its readme.txt (0.4.2), by file name; a name
/// that starts with `_` is a file name's end, a composer's mark (`_redfarn`, `_imuh3`).
const OPENMSX_COMPOSERS: [(&str, &str); 20] = [
    ("_redfarn", "Jim Redfarn"),
    ("_imuh3", "imuh3"),
    ("train_filled_with_cash", "imuh3"),
    ("flying_scotsman", "imuh3"),
    ("chuggachugga", "imuh3"),
    ("busy_schedule", "mimm"),
    ("the_fast_route", "mimm"),
    ("modern_motion", "Kyle Timmerman (Mr.Ksoft)"),
    ("keep_on_rolling", "Trolley Trev"),
    ("tttheme2", "-lucas-"),
    ("ultimate_run", "Tistou Blomberg"),
    ("midnight_snow_run", "Tistou Blomberg"),
    ("run_for_your_life", "Tistou Blomberg"),
    ("coconut_run2", "Tistou Blomberg"),
    ("harp_harmony", "Tistou Blomberg"),
    ("mighty_giant_run", "Tistou Blomberg"),
    ("wood_whistles", "Tistou Blomberg"),
    ("linns_basket", "Tistou Blomberg"),
    ("relax_song", "Tistou Blomberg"),
    ("chemistry_lab", "Tistou Blomberg"),
];

pub struct BandArgs {
    /// The band corpus's folder (`data/corpus/band`).
    pub out: PathBuf,
    pub mma: Option<PathBuf>,
    pub freedoom: Option<PathBuf>,
    pub openmsx: Option<PathBuf>,
    pub python: PathBuf,
    pub jobs: usize,
    pub limit: Option<usize>,
}

/// A source that was not found: which, where it was looked for, and how to get it.
#[derive(Debug)]
pub struct Missing {
    source: Source,
    looked_in: Vec<PathBuf>,
    why: String,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let looked: Vec<String> = self.looked_in.iter().map(|p| p.display().to_string()).collect();
        writeln!(f, "{} is missing: {} (looked in {}).", self.source.name(), self.why, looked.join(", "))?;
        write!(f, "  Get it: {}", self.source.how_to_get())
    }
}

/// MMA's home: `--mma` if given, else the folder of an `mma` on PATH (MMA's own release keeps
/// its program beside `MMA/`; a Debian-style install keeps it in `<prefix>/bin` and the rest in
/// `<prefix>/share/mma`), else where packages install it.
pub fn find_mma(explicit: Option<&Path>) -> Result<PathBuf, Missing> {
    let candidates: Vec<PathBuf> = match explicit {
        Some(dir) => vec![dir.to_path_buf()],
        None => {
            let mut dirs = Vec::new();
            if let Some(program) = on_path("mma") {
                let program = program.canonicalize().unwrap_or(program);
                if let Some(bin) = program.parent() {
                    dirs.push(bin.to_path_buf());
                    if let Some(prefix) = bin.parent() {
                        dirs.push(prefix.join("share").join("mma"));
                    }
                }
            }
            dirs.extend(DEFAULT_MMA_HOMES.iter().map(PathBuf::from));
            dirs
        }
    };
    let found = candidates.iter().find(|dir| mma::is_home(dir) && dir.join("lib").join("stdlib").is_dir());
    // Absolute, since MMA runs in each song's folder.
    found.and_then(|dir| std::path::absolute(dir).ok()).ok_or_else(|| Missing {
        source: Source::Mma,
        looked_in: candidates,
        why: "no folder holding MMA/main.py and lib/stdlib".into(),
    })
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(program)).find(|p| p.is_file())
}

/// The Freedoom WADs in `dir` (either or both).
pub fn find_freedoom(dir: Option<&Path>) -> Result<Vec<PathBuf>, Missing> {
    let dir = dir.map_or_else(|| PathBuf::from(DEFAULT_FREEDOOM), Path::to_path_buf);
    let wads: Vec<PathBuf> = FREEDOOM_WADS.iter().map(|name| dir.join(name)).filter(|p| p.is_file()).collect();
    if wads.is_empty() {
        return Err(Missing {
            source: Source::Freedoom,
            looked_in: vec![dir],
            why: format!("neither {} is there", FREEDOOM_WADS.join(" nor ")),
        });
    }
    Ok(wads)
}

/// The OpenMSX songs in `dir`, sorted.
pub fn find_openmsx(dir: Option<&Path>) -> Result<Vec<PathBuf>, Missing> {
    let dir = dir.map_or_else(|| PathBuf::from(DEFAULT_OPENMSX), Path::to_path_buf);
    let mut songs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    songs.retain(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("mid")) && p.is_file());
    songs.sort();
    if songs.is_empty() {
        return Err(Missing { source: Source::Openmsx, looked_in: vec![dir], why: "no .mid files there".into() });
    }
    Ok(songs)
}

/// What a file's notes show, the same measure for every source.
#[derive(Serialize, Debug, PartialEq)]
pub struct Facts {
    /// The file's time signatures in order (4/4 where it states none, as MIDI means).
    pub meters: Vec<String>,
    /// The first tempo (120 where the file states none).
    pub tempo_bpm: f64,
    pub tempo_changes: usize,
    /// Bars up to the one holding the last note's start, by the file's own time signatures.
    pub bars: u64,
    /// Whether it plays on General MIDI's percussion channel.
    pub drums: bool,
    pub channels: Vec<u8>,
    pub notes: usize,
    /// Whether any part swings: see [`dreamroll::roll::swing::swung_channels`].
    pub swing: bool,
    pub swung_channels: Vec<u8>,
}

pub fn facts(score: &Score) -> Facts {
    let mut meters: Vec<String> = Vec::new();
    for (_, meter) in &score.meters {
        if meters.last() != Some(&meter.to_string()) {
            meters.push(meter.to_string());
        }
    }
    if score.meters.first().is_none_or(|&(tick, _)| tick > 0) {
        meters.insert(0, "4/4".into());
    }
    let tempo_bpm = score.tempos.first().map_or(120.0, |&(_, micros)| (60e7 / f64::from(micros)).round() / 10.0);
    let tempo_changes = score.tempos.windows(2).filter(|w| w[0].1 != w[1].1).count();
    let bars = score.notes.iter().map(|n| n.start).max().map_or(0, |last| bar_of(score, last) + 1);
    let mut channels: Vec<u8> = score.notes.iter().map(|n| n.channel).collect();
    channels.sort_unstable();
    channels.dedup();
    let swung: Vec<u8> =
        dreamroll::roll::swing::swung_channels(score).into_iter().map(|(channel, _)| channel).collect();
    Facts {
        meters,
        tempo_bpm,
        tempo_changes,
        bars,
        drums: channels.contains(&DRUM_CHANNEL),
        channels,
        notes: score.notes.len(),
        swing: !swung.is_empty(),
        swung_channels: swung,
    }
}

/// The bar (from 0) a tick lies in. A time signature that comes mid-bar starts a new bar,
/// as sequencers read it.
fn bar_of(score: &Score, tick: u64) -> u64 {
    let ticks_per_bar = |quarters: f64| quarters * f64::from(score.ticks_per_quarter);
    let (mut bars, mut from, mut bar) = (0u64, 0u64, ticks_per_bar(4.0));
    for &(at, meter) in &score.meters {
        if at > tick {
            break;
        }
        bars += ((at - from) as f64 / bar - 1e-9).ceil().max(0.0) as u64;
        (from, bar) = (at, ticks_per_bar(meter.quarters_per_bar()));
    }
    bars + ((tick - from) as f64 / bar).floor() as u64
}

/// One manifest line.
#[derive(Serialize)]
pub struct Row {
    /// Relative to the band folder.
    pub path: String,
    pub source: Source,
    pub licence: &'static str,
    pub copyright: String,
    /// What the source says the file is.
    #[serde(flatten)]
    pub about: BTreeMap<String, serde_json::Value>,
    #[serde(flatten)]
    pub facts: Facts,
}

fn about(value: serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    match value {
        serde_json::Value::Object(map) => map.into_iter().collect(),
        _ => unreachable!("about() is given a JSON object"),
    }
}

pub fn run(mut args: BandArgs) -> Result<()> {
    let started = Instant::now();
    // MMA runs in each song's folder: a python named by a relative path is made absolute
    // (a bare name is looked up on PATH, as before).
    if args.python.components().count() > 1 {
        args.python =
            std::path::absolute(&args.python).with_context(|| format!("cannot resolve {}", args.python.display()))?;
    }
    let mma_home = find_mma(args.mma.as_deref());
    let wads = find_freedoom(args.freedoom.as_deref());
    let songs = find_openmsx(args.openmsx.as_deref());
    let missing: Vec<&Missing> =
        [mma_home.as_ref().err(), wads.as_ref().err(), songs.as_ref().err()].into_iter().flatten().collect();
    if missing.len() == 3 {
        let all: Vec<String> = missing.iter().map(|m| m.to_string()).collect();
        bail!("none of the band corpus's sources was found:\n{}", all.join("\n"));
    }
    for m in &missing {
        println!("corpus: {m}");
    }

    // The folders are rebuilt whole, so that they always match the manifest: a source missing
    // this time, or a --limit run, must not leave an earlier run's files behind.
    for folder in Source::ALL.map(Source::folder).into_iter().chain([CHARTS]) {
        let dir = args.out.join(folder);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
        }
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    println!("corpus: building the band corpus into {}", args.out.display());

    let mut rows = Vec::new();
    let mut failures = Vec::new();
    if let Ok(home) = &mma_home {
        let (built, failed) = build_mma(home, &args)?;
        rows.extend(built);
        failures.extend(failed);
    }
    if let Ok(wads) = &wads {
        let (built, failed) = build_freedoom(wads, &args.out, args.limit)?;
        rows.extend(built);
        failures.extend(failed);
    }
    if let Ok(songs) = &songs {
        let (built, failed) = build_openmsx(songs, &args.out, args.limit)?;
        rows.extend(built);
        failures.extend(failed);
    }
    rows.sort_by(|a, b| a.path.cmp(&b.path));
    write_manifest(&args.out.join(MANIFEST), &rows)?;
    summarise(&rows, &failures, &missing, started.elapsed());
    Ok(())
}

fn write_manifest(path: &Path, rows: &[Row]) -> Result<()> {
    let mut text = String::new();
    for row in rows {
        text += &serde_json::to_string(row).expect("a manifest row is plain data");
        text.push('\n');
    }
    write_file_atomically(path, text.as_bytes())
}

/// A file that could not be made, and why.
type Failure = (String, String);

/// One MMA song to play.
struct Song<'a> {
    style: &'a mma::Style,
    groove: &'a mma::Groove,
    progression: &'a Progression,
    key: u8,
}

impl Song<'_> {
    fn file_stem(&self) -> String {
        // Groove names hold `&`, `-` and `+` at times; the stem's `-` separates its parts.
        let groove: String =
            self.groove.name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '+' { c } else { '_' }).collect();
        format!("{groove}-{}-{}", self.progression.name, self.progression.key_name(self.key))
    }
}

/// Every groove over every progression. Keys step round the circle of fifths from song to
/// song, so each progression meets all 12 keys across the grooves (5 songs a groove and 7
/// semitones a step: 35 and 12 share no factor).
fn songs(styles: &[mma::Style]) -> Vec<Song<'_>> {
    let all = styles.iter().flat_map(|style| {
        style.grooves.iter().flat_map(move |groove| PROGRESSIONS.iter().map(move |p| (style, groove, p)))
    });
    all.enumerate()
        .map(|(i, (style, groove, progression))| Song { style, groove, progression, key: (i * 7 % 12) as u8 })
        .collect()
}

/// At most `limit` of `items`, spread evenly over them (a quick look at every style rather
/// than every groove of the first).
fn spread<T>(items: Vec<T>, limit: Option<usize>) -> Vec<T> {
    match limit {
        Some(limit) if limit < items.len() => {
            let step = items.len() as f64 / limit as f64;
            let picks: Vec<usize> = (0..limit).map(|i| (i as f64 * step) as usize).collect();
            items.into_iter().enumerate().filter(|(i, _)| picks.binary_search(i).is_ok()).map(|(_, t)| t).collect()
        }
        _ => items,
    }
}

fn build_mma(home: &Path, args: &BandArgs) -> Result<(Vec<Row>, Vec<Failure>)> {
    let styles = mma::kept_styles(home)?;
    let all = songs(&styles);
    let total_grooves: usize = styles.iter().map(|s| s.grooves.len()).sum();
    let songs = spread(all, args.limit);
    println!(
        "corpus: MMA at {}: {} styles, {total_grooves} grooves; playing {} songs with {} worker(s)",
        home.display(),
        styles.len(),
        songs.len(),
        args.jobs
    );

    if !super::runs_quietly(Command::new(&args.python).arg("--version")) {
        bail!(
            "`{}` does not run: MMA is a Python 3 program; install Python 3 or point --python at it",
            args.python.display()
        );
    }

    let next = AtomicUsize::new(0);
    let (done, made) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let results = Mutex::new(Vec::with_capacity(songs.len()));
    // MMA that fails on its first songs fails on all of them (a Python it cannot run on, a
    // damaged package): stop there and say why, rather than fail thousands of times.
    let broken = || made.load(Ordering::Relaxed) == 0 && done.load(Ordering::Relaxed) >= MMA_TRIES;
    std::thread::scope(|scope| {
        for _ in 0..args.jobs {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(song) = songs.get(i).filter(|_| !broken()) else { break };
                let result = play(song, home, args);
                made.fetch_add(usize::from(result.is_ok()), Ordering::Relaxed);
                results.lock().expect("no worker panics holding the lock").push((i, result));
                done.fetch_add(1, Ordering::Relaxed);
            });
        }
        report_progress(&done, songs.len(), broken);
    });

    let mut results = results.into_inner().expect("no worker panicked");
    if broken() {
        let first = results.iter().find_map(|(_, r)| r.as_ref().err()).expect("failures were counted");
        bail!("MMA failed on each of its first {MMA_TRIES} songs; the first time: {first}");
    }
    results.sort_by_key(|(i, _)| *i);
    let (mut rows, mut failures) = (Vec::new(), Vec::new());
    for (i, result) in results {
        match result {
            Ok(row) => rows.push(row),
            Err(error) => failures.push((
                format!("{}/{}/{}", Source::Mma.folder(), songs[i].style.folder(), songs[i].file_stem()),
                error,
            )),
        }
    }
    Ok((rows, failures))
}

/// Says how far the workers are every 10 s until they are done (or give up).
fn report_progress(done: &AtomicUsize, total: usize, given_up: impl Fn() -> bool) {
    let started = Instant::now();
    let mut last = Instant::now();
    while done.load(Ordering::Relaxed) < total && !given_up() {
        std::thread::sleep(Duration::from_millis(200));
        if last.elapsed() >= Duration::from_secs(10) {
            last = Instant::now();
            let n = done.load(Ordering::Relaxed).max(1);
            let elapsed = started.elapsed().as_secs_f64();
            println!(
                "  {n:>6}/{total} songs, {elapsed:.0} s elapsed, ~{:.0} s left",
                elapsed / n as f64 * (total - n) as f64
            );
        }
    }
}

/// Writes one song's chart, has MMA play it and describes the result.
fn play(song: &Song, home: &Path, args: &BandArgs) -> Result<Row, String> {
    let folder = song.style.folder();
    let stem = song.file_stem();
    let relative = format!("{}/{folder}/{stem}.mid", Source::Mma.folder());
    let chart_path = args.out.join(CHARTS).join(&folder).join(format!("{stem}.mma"));
    let midi_path = args.out.join(&relative);
    let tempo = mma::tempo(song.style);
    let text = mma::song_text(song.style, song.groove, song.progression, song.key, tempo);
    let go = || -> Result<Row> {
        for dir in [chart_path.parent(), midi_path.parent()].into_iter().flatten() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&chart_path, &text).with_context(|| format!("cannot write {}", chart_path.display()))?;
        mma::render(&args.python, home, &chart_path, &midi_path)?;
        let score = read_score(&midi_path)?;
        Ok(Row {
            path: relative.clone(),
            source: Source::Mma,
            licence: Source::Mma.licence(),
            copyright: song.style.author.clone().unwrap_or_else(|| MMA_COPYRIGHT.into()),
            about: about(json!({
                "library": song.style.library,
                "style": song.style.name,
                "groove": song.groove.name,
                "variant": mma::variant(&song.groove.name),
                "progression": song.progression.name,
                "key": song.progression.key_name(song.key),
                "beats_per_bar": song.groove.beats,
                "chart": song.progression.chart(song.key),
                "style_meter": song.groove.notated_meter,
                "chart_file": format!("{CHARTS}/{folder}/{stem}.mma"),
            })),
            facts: facts(&score),
        })
    };
    go().map_err(|e| format!("{e:#}"))
}

/// The music lumps of each WAD as MIDI files, MUS converted, each song once: a lump that
/// repeats an earlier one byte for byte (Freedoom plays one song in two maps) is listed in
/// that one's `also_as`.
fn build_freedoom(wads: &[PathBuf], out: &Path, limit: Option<usize>) -> Result<(Vec<Row>, Vec<Failure>)> {
    let folder = out.join("freedoom");
    std::fs::create_dir_all(&folder).with_context(|| format!("cannot create {}", folder.display()))?;
    let archives: Vec<(String, Vec<u8>)> = wads
        .iter()
        .map(|path| {
            let stem = path.file_stem().expect("a WAD file has a name").to_string_lossy().into_owned();
            Ok((stem, std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?))
        })
        .collect::<Result<_>>()?;
    let mut lumps = Vec::new();
    for ((stem, bytes), path) in archives.iter().zip(wads) {
        let listed = wad::read_wad(bytes).with_context(|| format!("cannot read the WAD {}", path.display()))?;
        lumps.extend(listed.into_iter().filter(wad::is_music).map(|lump| (stem.as_str(), lump)));
    }
    // Each song once, under the name of its first lump, with the names of its repeats.
    struct Song<'a> {
        name: String,
        wad: &'a str,
        lump: &'a wad::Lump<'a>,
        also_as: Vec<String>,
    }
    let mut first_of: HashMap<&[u8], usize> = HashMap::new();
    let mut unique: Vec<Song> = Vec::new();
    for (stem, lump) in &lumps {
        let name = format!("{stem}-{}", lump.name);
        match first_of.get(lump.data) {
            Some(&song) => unique[song].also_as.push(name),
            None => {
                first_of.insert(lump.data, unique.len());
                unique.push(Song { name, wad: stem, lump, also_as: Vec::new() });
            }
        }
    }
    println!("corpus: Freedoom: {} music lumps in {} WAD(s), {} songs", lumps.len(), wads.len(), unique.len());
    let (mut rows, mut failures): (Vec<Row>, Vec<Failure>) = (Vec::new(), Vec::new());
    for Song { name, wad: stem, lump, also_as } in spread(unique, limit) {
        let relative = format!("freedoom/{name}.mid");
        let made = (|| -> Result<Row> {
            let format = MusicFormat::of(lump.data).context("neither MIDI nor MUS")?;
            let midi = match format {
                MusicFormat::Midi => lump.data.to_vec(),
                MusicFormat::Mus => wad::mus_to_midi(lump.data)?,
            };
            let score = read_midi(&midi)?;
            let path = out.join(&relative);
            std::fs::write(&path, &midi).with_context(|| format!("cannot write {}", path.display()))?;
            Ok(Row {
                path: relative.clone(),
                source: Source::Freedoom,
                licence: Source::Freedoom.licence(),
                copyright: FREEDOOM_COPYRIGHT.into(),
                about: about(json!({
                    "wad": format!("{stem}.wad"),
                    "lump": lump.name,
                    "lump_format": format.name(),
                    "also_as": also_as,
                })),
                facts: facts(&score),
            })
        })();
        match made {
            Ok(row) => rows.push(row),
            Err(error) => failures.push((relative, format!("{error:#}"))),
        }
    }
    Ok((rows, failures))
}

/// The composer of an OpenMSX song by its file name.
fn openmsx_composer(file: &str) -> &'static str {
    let stem = file.trim_end_matches(".mid");
    OPENMSX_COMPOSERS
        .iter()
        .find(|(mark, _)| if mark.starts_with('_') { stem.ends_with(mark) } else { stem == *mark })
        .map_or("OpenMSX authors (see its readme.txt)", |(_, who)| who)
}

/// The songs' titles from OpenMSX's `openmsx.obm` (`[names]`: `file.mid = Title`), where it
/// is beside them.
fn openmsx_titles(dir: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(dir.join("openmsx.obm")).unwrap_or_default();
    let mut in_names = false;
    let mut titles = HashMap::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_names = line == "[names]";
        } else if let Some((file, title)) = line.split_once('=').filter(|_| in_names) {
            titles.insert(file.trim().to_string(), title.trim().to_string());
        }
    }
    titles
}

fn build_openmsx(songs: &[PathBuf], out: &Path, limit: Option<usize>) -> Result<(Vec<Row>, Vec<Failure>)> {
    let folder = out.join("openmsx");
    std::fs::create_dir_all(&folder).with_context(|| format!("cannot create {}", folder.display()))?;
    let titles = songs.first().and_then(|s| s.parent()).map(openmsx_titles).unwrap_or_default();
    println!("corpus: OpenMSX: {} songs", songs.len());
    let (mut rows, mut failures) = (Vec::new(), Vec::new());
    for song in spread(songs.to_vec(), limit) {
        let file = song.file_name().expect("a listed file has a name").to_string_lossy().into_owned();
        let relative = format!("openmsx/{file}");
        let made = (|| -> Result<Row> {
            let score = read_score(&song)?;
            let to = out.join(&relative);
            std::fs::copy(&song, &to).with_context(|| format!("cannot copy {} to {}", song.display(), to.display()))?;
            Ok(Row {
                path: relative.clone(),
                source: Source::Openmsx,
                licence: Source::Openmsx.licence(),
                copyright: openmsx_composer(&file).into(),
                about: about(json!({ "title": titles.get(&file) })),
                facts: facts(&score),
            })
        })();
        match made {
            Ok(row) => rows.push(row),
            Err(error) => failures.push((relative, format!("{error:#}"))),
        }
    }
    Ok((rows, failures))
}

fn summarise(rows: &[Row], failures: &[Failure], missing: &[&Missing], elapsed: Duration) {
    println!();
    println!("Band corpus ({:.0} s)", elapsed.as_secs_f64());
    let mut meters: BTreeMap<&str, usize> = BTreeMap::new();
    for source in Source::ALL {
        let of: Vec<&Row> = rows.iter().filter(|r| r.source == source).collect();
        if of.is_empty() {
            continue;
        }
        let drums = of.iter().filter(|r| r.facts.drums).count();
        let swing = of.iter().filter(|r| r.facts.swing).count();
        let bars: u64 = of.iter().map(|r| r.facts.bars).sum();
        let name = source.folder();
        println!("  {name:<9} {:>6} files, {drums:>6} with drums, {swing:>5} swung, {bars:>7} bars", of.len());
        for row in of {
            *meters.entry(row.facts.meters[0].as_str()).or_default() += 1;
        }
    }
    let bars: u64 = rows.iter().map(|r| r.facts.bars).sum();
    println!(
        "  {:<9} {:>6} files, {:>6} with drums, {bars:>21} bars",
        "total",
        rows.len(),
        rows.iter().filter(|r| r.facts.drums).count()
    );
    let meters: Vec<String> = meters.iter().map(|(m, n)| format!("{m} x{n}")).collect();
    println!("  meters (first of each file): {}", meters.join(", "));
    if !failures.is_empty() {
        println!("  {} file(s) could not be made:", failures.len());
        for (path, why) in failures.iter().take(10) {
            println!("    {path}: {why}");
        }
    }
    for m in missing {
        println!("  not built: {} (see above for how to get it)", m.source.name());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::wad::tests::{mus, wad, SCORE};
    use dreamroll::roll::{write_midi, Meter, ScoreNote, TrackToWrite};

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dreamroll-band-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Two bars of 4/4 at 96 ticks a quarter: eighths on the given off-beat tick, a kick on
    /// channel 9 on every beat.
    fn eighths(offbeat: u64) -> Vec<u8> {
        let mut notes = Vec::new();
        for beat in 0..8u64 {
            notes.push((beat * 96, 40, 60, 90));
            notes.push((beat * 96 + offbeat, 30, 62, 70));
        }
        let kicks = (0..8u64).map(|beat| (beat * 96, 10, 36, 100)).collect();
        let tracks = [
            TrackToWrite { name: "Keys".into(), channel: 0, notes },
            TrackToWrite { name: "Drums".into(), channel: DRUM_CHANNEL, notes: kicks },
        ];
        write_midi(96, 500_000, Meter::COMMON, &tracks, 2 * 384)
    }

    #[test]
    fn swung_and_straight_eighths_are_told_apart() {
        let straight = facts(&read_midi(&eighths(48)).unwrap());
        assert_eq!(
            straight,
            Facts {
                meters: vec!["4/4".into()],
                tempo_bpm: 120.0,
                tempo_changes: 0,
                bars: 2,
                drums: true,
                channels: vec![0, DRUM_CHANNEL],
                notes: 24,
                swing: false,
                swung_channels: vec![],
            }
        );
        let swung = facts(&read_midi(&eighths(64)).unwrap());
        assert!(swung.swing && swung.swung_channels == [0], "{swung:?}");
        // The dotted swing of older jazz (an eighth at 0.75) swings; straight sixteenths, whose
        // 0.75 comes with a 0.25, do not.
        assert!(facts(&read_midi(&eighths(72)).unwrap()).swing);
        let mut sixteenths = read_midi(&eighths(72)).unwrap();
        let extra: Vec<ScoreNote> = (0..8u64)
            .map(|beat| ScoreNote {
                track: 1,
                channel: 0,
                pitch: 67,
                velocity: 80,
                start: beat * 96 + 24,
                end: beat * 96 + 40,
            })
            .collect();
        sixteenths.notes.extend(extra);
        sixteenths.notes.sort_by_key(|n| (n.start, n.channel, n.pitch));
        assert!(!facts(&sixteenths).swing);
        // A straight off-beat chord strummed over 16 ticks (to 0.67 of the beat) is straight.
        let mut score = read_midi(&eighths(48)).unwrap();
        let strums: Vec<ScoreNote> = (0..8u64)
            .flat_map(|beat| (1..5u64).map(move |i| (beat, i)))
            .map(|(beat, i)| ScoreNote {
                track: 1,
                channel: 0,
                pitch: 64 + i as u8,
                velocity: 80,
                start: beat * 96 + 48 + 4 * i,
                end: beat * 96 + 90,
            })
            .collect();
        score.notes.extend(strums);
        score.notes.sort_by_key(|n| (n.start, n.channel, n.pitch));
        assert!(!facts(&score).swing);
    }

    #[test]
    fn bars_follow_the_time_signatures() {
        let mut score = read_midi(&eighths(48)).unwrap();
        // 3/4 from the second bar on: the last note (tick 7 * 96 + 48 = 720) is in its 3rd bar.
        score.meters.push((384, Meter::new(3, 4).unwrap()));
        assert_eq!(bar_of(&score, 720), 2);
        assert_eq!(facts(&score).meters, ["4/4", "3/4"]);
        // A change mid-bar (at 3/4 of the first 4/4 bar) starts a bar of its own.
        score.meters[1].0 = 288;
        assert_eq!(bar_of(&score, 288), 1);
        assert_eq!(bar_of(&score, 287), 0);
    }

    #[test]
    fn a_missing_source_says_how_to_get_it() {
        let nowhere = Path::new("/nonexistent/dreamroll");
        let mma = find_mma(Some(nowhere)).unwrap_err().to_string();
        for needed in ["MMA is missing", "/nonexistent/dreamroll", "apt-get download mma", "--mma", "mellowood.ca"] {
            assert!(mma.contains(needed), "{needed:?} not in {mma}");
        }
        let freedoom = find_freedoom(Some(nowhere)).unwrap_err().to_string();
        for needed in ["Freedoom is missing", "freedoom1.wad", "apt-get download freedoom", "--freedoom"] {
            assert!(freedoom.contains(needed), "{needed:?} not in {freedoom}");
        }
        let openmsx = find_openmsx(Some(nowhere)).unwrap_err().to_string();
        for needed in ["OpenMSX is missing", "apt-get download openttd-openmsx", "--openmsx"] {
            assert!(openmsx.contains(needed), "{needed:?} not in {openmsx}");
        }
    }

    #[test]
    fn nothing_found_fails_and_names_every_source() {
        let nowhere = PathBuf::from("/nonexistent/dreamroll");
        let out = temp("none");
        let error = run(BandArgs {
            out: out.join("band"),
            mma: Some(nowhere.clone()),
            freedoom: Some(nowhere.clone()),
            openmsx: Some(nowhere),
            python: "python3".into(),
            jobs: 1,
            limit: None,
        })
        .unwrap_err()
        .to_string();
        for needed in
            ["none of the band corpus's sources", "MMA is missing", "Freedoom is missing", "OpenMSX is missing"]
        {
            assert!(error.contains(needed), "{needed:?} not in {error}");
        }
        assert!(!out.join("band").exists(), "nothing is written when nothing is found");
        std::fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn what_is_present_is_built_and_listed() {
        let root = temp("built");
        let doom = root.join("doom");
        let openmsx = root.join("openmsx");
        std::fs::create_dir_all(&doom).unwrap();
        std::fs::create_dir_all(&openmsx).unwrap();
        let song = eighths(64);
        let lumps: [(&str, &[u8]); 4] =
            [("PLAYPAL", b"colours"), ("D_E1M1", &mus(SCORE)), ("D_E1M2", &song), ("D_E2M6", &mus(SCORE))];
        std::fs::write(doom.join("freedoom1.wad"), wad(b"IWAD", &lumps)).unwrap();
        std::fs::write(openmsx.join("the_hobo_redfarn.mid"), eighths(48)).unwrap();
        std::fs::write(
            openmsx.join("openmsx.obm"),
            "[files]\nold_9 = the_hobo_redfarn.mid\n[names]\nthe_hobo_redfarn.mid = The Hobo\n",
        )
        .unwrap();
        let out = root.join("band");
        // A stale file of an earlier run goes.
        std::fs::create_dir_all(out.join("mma").join("old")).unwrap();
        run(BandArgs {
            out: out.clone(),
            mma: Some(root.join("no-mma")),
            freedoom: Some(doom),
            openmsx: Some(openmsx),
            python: "python3".into(),
            jobs: 1,
            limit: None,
        })
        .unwrap();
        assert!(!out.join("mma").exists());

        let manifest = std::fs::read_to_string(out.join(MANIFEST)).unwrap();
        let rows: Vec<serde_json::Value> = manifest.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let paths: Vec<&str> = rows.iter().map(|r| r["path"].as_str().unwrap()).collect();
        assert_eq!(
            paths,
            ["freedoom/freedoom1-D_E1M1.mid", "freedoom/freedoom1-D_E1M2.mid", "openmsx/the_hobo_redfarn.mid"]
        );
        for path in &paths {
            assert!(out.join(path).is_file(), "{path}");
        }
        let mus_row = &rows[0];
        assert_eq!(mus_row["source"], "freedoom");
        assert_eq!(mus_row["licence"], "BSD-3-Clause");
        assert_eq!(mus_row["lump_format"], "mus");
        assert_eq!(mus_row["also_as"], json!(["freedoom1-D_E2M6"]));
        assert_eq!(mus_row["drums"], true);
        assert_eq!(mus_row["channels"], json!([0, 9, 11]));
        assert_eq!(rows[1]["lump_format"], "midi");
        assert_eq!(rows[1]["swing"], true);
        assert_eq!(std::fs::read(out.join(paths[1])).unwrap(), song, "a MIDI lump is copied as it is");
        let hobo = &rows[2];
        assert_eq!(
            (&hobo["licence"], &hobo["copyright"], &hobo["title"], &hobo["bars"], &hobo["swing"]),
            (&json!("GPL-2.0-only"), &json!("Jim Redfarn"), &json!("The Hobo"), &json!(2), &json!(false))
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// An MMA home whose `MMA/main.py` is the given program, with a style of two grooves.
    fn fake_mma(root: &Path, main: &str) -> PathBuf {
        let home = root.join("mma");
        std::fs::create_dir_all(home.join("MMA")).unwrap();
        std::fs::create_dir_all(home.join("lib").join("stdlib")).unwrap();
        std::fs::write(home.join("MMA").join("main.py"), main).unwrap();
        std::fs::write(
            home.join("lib").join("stdlib").join("test.mma"),
            "Author A. Player\nDefGroove Test\nDefGroove TestEnd\n",
        )
        .unwrap();
        home
    }

    fn band_args(out: PathBuf, mma: PathBuf) -> BandArgs {
        let nowhere = PathBuf::from("/nonexistent/dreamroll");
        BandArgs {
            out,
            mma: Some(mma),
            freedoom: Some(nowhere.clone()),
            openmsx: Some(nowhere),
            python: "python3".into(),
            jobs: 2,
            limit: None,
        }
    }

    /// The launcher hands MMA its folder as MMA's own launcher does (`MMAdir` and `platform`
    /// in `__main__`) and the song and output file as arguments: a stand-in MMA that checks
    /// this and writes a known file gets every song listed with its chart.
    #[test]
    fn mma_is_run_as_its_launcher_runs_it() {
        let root = temp("fake-mma");
        let home = fake_mma(
            &root,
            "import shutil, sys\nfrom __main__ import MMAdir, platform\nassert sys.argv[1].endswith('.mma'), sys.argv\n\
             shutil.copy(MMAdir + '/song.mid', sys.argv[sys.argv.index('-f') + 1])\n",
        );
        std::fs::write(home.join("song.mid"), eighths(64)).unwrap();
        run(band_args(root.join("band"), home)).unwrap();
        let manifest = std::fs::read_to_string(root.join("band").join(MANIFEST)).unwrap();
        let rows: Vec<serde_json::Value> = manifest.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(rows.len(), 2 * PROGRESSIONS.len());
        let row = rows.iter().find(|r| r["path"] == "mma/test/Test-jazz-D.mid").expect("the third song is in D");
        assert_eq!(row["chart"], json!(["Em7", "A7", "Dmaj7", "Bm7", "Em7", "A7", "Dmaj7", "Dmaj7"]));
        assert_eq!(
            (&row["licence"], &row["copyright"], &row["variant"]),
            (&json!("GPL-2.0-or-later"), &json!("A. Player"), &json!("main"))
        );
        assert_eq!((&row["swing"], &row["swung_channels"]), (&json!(true), &json!([0])));
        let chart = std::fs::read_to_string(root.join("band").join(row["chart_file"].as_str().unwrap())).unwrap();
        assert!(chart.contains("Use stdlib/test\nGroove Test\n"), "{chart}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn an_mma_that_fails_on_every_song_is_stopped_with_its_words() {
        let root = temp("broken-mma");
        let home = fake_mma(&root, "import sys\nprint('Error: this MMA is broken')\nsys.exit(1)\n");
        let error = run(band_args(root.join("band"), home)).unwrap_err().to_string();
        assert!(error.contains(&format!("MMA failed on each of its first {MMA_TRIES} songs")), "{error}");
        assert!(error.contains("Error: this MMA is broken"), "{error}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn each_progression_meets_every_key() {
        let styles = [
            mma::read_style("stdlib", "s", "DefGroove G\n"),
            mma::read_style("stdlib", "t", "DefGroove A\nDefGroove B\n"),
        ];
        let songs = songs(&styles);
        assert_eq!(songs.len(), 3 * PROGRESSIONS.len());
        // With 12 grooves every progression gets every key once.
        let many = mma::read_style("stdlib", "m", &(0..12).map(|i| format!("DefGroove G{i}\n")).collect::<String>());
        let songs = super::songs(std::slice::from_ref(&many));
        for progression in &PROGRESSIONS {
            let mut keys: Vec<u8> =
                songs.iter().filter(|s| s.progression.name == progression.name).map(|s| s.key).collect();
            keys.sort_unstable();
            assert_eq!(keys, (0..12).collect::<Vec<u8>>(), "{}", progression.name);
        }
        assert_eq!(songs[5].file_stem(), "G1-pop-B");
    }

    #[test]
    fn a_limit_spreads_over_the_whole_list() {
        assert_eq!(spread((0..10).collect(), Some(3)), [0, 3, 6]);
        assert_eq!(spread((0..3).collect(), Some(5)), [0, 1, 2]);
        assert_eq!(spread((0..3).collect::<Vec<i32>>(), Some(0)), Vec::<i32>::new());
    }

    #[test]
    fn openmsx_songs_are_credited_to_their_composers() {
        assert_eq!(openmsx_composer("say_what_redfarn.mid"), "Jim Redfarn");
        assert_eq!(openmsx_composer("ttsong_iii_imuh3.mid"), "imuh3");
        assert_eq!(openmsx_composer("relax_song.mid"), "Tistou Blomberg");
        assert_eq!(openmsx_composer("tttheme2.mid"), "-lucas-");
        assert_eq!(openmsx_composer("someone_else.mid"), "OpenMSX authors (see its readme.txt)");
    }

    /// MMA itself, on one groove: set DREAMROLL_MMA to a folder holding MMA/ and lib/ (an
    /// unpacked `mma` package's usr/share/mma) and run with --ignored.
    #[test]
    #[ignore = "needs MMA: set DREAMROLL_MMA to its share folder (holding MMA/ and lib/) and run with --ignored"]
    fn mma_plays_a_groove_over_a_chart() {
        let home = PathBuf::from(std::env::var_os("DREAMROLL_MMA").expect("DREAMROLL_MMA names MMA's folder"));
        let root = temp("mma");
        let style_text = std::fs::read_to_string(home.join("lib").join("stdlib").join("swing.mma")).unwrap();
        let style = mma::read_style("stdlib", "swing", &style_text);
        let groove = style.grooves.iter().find(|g| g.name == "Swing").unwrap();
        let blues = PROGRESSIONS.iter().find(|p| p.name == "blues").unwrap();
        let song = root.join("song.mma");
        std::fs::write(&song, mma::song_text(&style, groove, blues, 5, 120)).unwrap();
        let midi = root.join("song.mid");
        mma::render(Path::new("python3"), &home, &song, &midi).unwrap();
        let score = read_score(&midi).unwrap();
        let facts = facts(&score);
        assert_eq!(
            (facts.bars, facts.meters.as_slice(), facts.drums, facts.swing),
            (12, &["4/4".to_string()][..], true, true)
        );
        // The bass (MMA's Bass track, on its own channel) starts every bar on the chord's root.
        let bass_channel =
            score.notes.iter().filter(|n| n.channel != DRUM_CHANNEL).min_by_key(|n| n.pitch).unwrap().channel;
        let tpq = u64::from(score.ticks_per_quarter);
        for (bar, chord) in blues.chart(5).iter().enumerate() {
            let root = ["C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B"]
                .iter()
                .position(|name| chord.trim_end_matches('7') == *name)
                .unwrap() as u8;
            let first = score
                .notes
                .iter()
                .filter(|n| n.channel == bass_channel && n.start / (4 * tpq) == bar as u64)
                .min_by_key(|n| n.start)
                .unwrap();
            assert_eq!(first.pitch % 12, root, "bar {bar} ({chord})");
        }
        std::fs::remove_dir_all(&root).unwrap();
    }
}
