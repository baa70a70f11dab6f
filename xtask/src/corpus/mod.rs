//! `cargo xtask corpus`: rebuild the training corpus from the corpus inside music21, and
//! with `--only band` the band corpus from three Debian packages of free music ([`band`]).
//!
//! The conversion is Python (`xtask/corpus/music21_to_midi.py`) because music21 is
//! the only reader we trust for the MusicXML and ABC sources. This side exists so
//! that nobody has to set Python up by hand: music21 is pinned to one version in a
//! private venv under `target/`, which makes the corpus reproducible (the corpus
//! files ship inside the package, so the version pins the data too) and leaves the
//! user's own Python installation untouched.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

mod band;
mod mma;
mod wad;

/// The corpus is defined by the files inside this exact release; a different
/// version could add, drop or re-encode pieces and silently change the training set.
const MUSIC21_VERSION: &str = "10.5.1";
/// From music21 10.5.1's `Requires-Python`; checked up front because pip's own
/// message for a too-old interpreter ("no matching distribution") hides the cause.
const MIN_PYTHON: (u32, u32) = (3, 11);

#[derive(Args)]
pub struct CorpusArgs {
    /// Output folder [default: data/corpus in the workspace]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Rebuild only one collection (the others' files and manifests are kept); `band` is
    /// built only when asked for
    #[arg(long, value_enum)]
    only: Option<Collection>,
    /// Convert at most N pieces per collection (per source for band), for quick checks
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Parallel worker processes [default: number of cores]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    jobs: Option<u32>,
    /// Python interpreter that creates the private venv (for band: that runs MMA)
    #[arg(long, value_name = "PATH", default_value = "python3")]
    python: PathBuf,
    /// Band: MMA's folder, holding MMA/, lib/ and includes/ [default: beside an `mma` on PATH,
    /// /usr/local/share/mma, /usr/share/mma]
    #[arg(long, value_name = "DIR")]
    mma: Option<PathBuf>,
    /// Band: the folder holding freedoom1.wad and freedoom2.wad [default: /usr/share/games/doom]
    #[arg(long, value_name = "DIR")]
    freedoom: Option<PathBuf>,
    /// Band: OpenMSX's folder of .mid files [default: /usr/share/games/openttd/baseset/openmsx]
    #[arg(long, value_name = "DIR")]
    openmsx: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Collection {
    Chorales,
    Folk,
    /// Drums, bass and comping: MMA's grooves, Freedoom's and OpenMSX's songs. Opt-in: its
    /// sources are packages the user installs, under licences of their own (GPL-2.0-only for
    /// OpenMSX), so a plain `corpus` never takes them in unasked.
    Band,
}

impl Collection {
    fn as_arg(self) -> &'static str {
        match self {
            Collection::Chorales => "chorales",
            Collection::Folk => "folk",
            Collection::Band => unreachable!("the band corpus is built here, not by the music21 script"),
        }
    }
}

pub fn run(args: CorpusArgs) -> Result<()> {
    let started = Instant::now();
    let xtask_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = xtask_dir.parent().context("xtask is expected to sit inside the workspace")?;
    // A relative --out is taken from the current directory, as any CLI path would be;
    // only the default is anchored to the workspace, so it works from any subfolder.
    let out = match args.out {
        Some(dir) => {
            std::path::absolute(&dir).with_context(|| format!("cannot resolve the output folder {}", dir.display()))?
        }
        None => workspace.join("data").join("corpus"),
    };
    let jobs = match args.jobs {
        Some(n) => n as usize,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    if args.only == Some(Collection::Band) {
        return band::run(band::BandArgs {
            out: out.join("band"),
            mma: args.mma,
            freedoom: args.freedoom,
            openmsx: args.openmsx,
            python: args.python,
            jobs,
            limit: args.limit,
        });
    }
    if args.mma.is_some() || args.freedoom.is_some() || args.openmsx.is_some() {
        bail!("--mma, --freedoom and --openmsx name the band corpus's sources: add `--only band`");
    }
    let script = xtask_dir.join("corpus").join("music21_to_midi.py");
    if !script.is_file() {
        bail!("the converter script is missing: {}", script.display());
    }

    let venv = workspace.join("target").join("corpus-venv");
    let python = ensure_venv(&args.python, &venv)?;

    let mut cmd = Command::new(&python);
    cmd.arg(&script)
        .arg("--out")
        .arg(&out)
        .arg("--jobs")
        .arg(jobs.to_string())
        // Progress must reach the terminal as it happens, not when a pipe buffer fills;
        // and no __pycache__ should appear next to the script in the source tree.
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null());
    if let Some(only) = args.only {
        cmd.arg("--only").arg(only.as_arg());
    }
    if let Some(limit) = args.limit {
        cmd.arg("--limit").arg(limit.to_string());
    }
    println!("corpus: converting into {}", out.display());
    let status = cmd.status().with_context(|| format!("could not start {}", python.display()))?;
    if !status.success() {
        bail!("the converter failed ({status}); see its output above");
    }
    if !matches!(args.only, Some(Collection::Chorales)) {
        let files = gather_public_domain_folk(&out)?;
        println!("corpus: {files} public-domain folk tunes gathered into {}", out.join(PUBLIC_DOMAIN_FOLK).display());
    }
    println!("corpus: done in {:.0} s, written to {}", started.elapsed().as_secs_f64(), out.display());
    Ok(())
}

/// The folk tunes a producer may use in released music: the Essen collection's terms are
/// non-commercial research only, so a model meant for music leaves it out.
const PUBLIC_DOMAIN_FOLK: &str = "folk-public-domain";
/// The 19th-century and early-20th-century books in music21's folk corpus, all long out of
/// copyright: O'Neill's Music of Ireland: 1850 Melodies (1903), Aird's Selection of Scotch,
/// English, Irish and Foreign Airs, Ryan's Mammoth Collection, and miscFolk (The American
/// Veteran Fifer, Northumbrian Minstrelsy).
const PUBLIC_DOMAIN_SOURCES: [&str; 4] = ["oneills1850", "airdsAirs", "ryansMammoth", "miscFolk"];

/// Makes `folk-public-domain/<source>/` beside `folk/` from the public-domain sources alone
/// (hard links where the file system allows, copies elsewhere), so that a model trained on
/// it names one folder as its data. Returns how many tunes it holds.
fn gather_public_domain_folk(out: &Path) -> Result<usize> {
    let target = out.join(PUBLIC_DOMAIN_FOLK);
    if target.exists() {
        std::fs::remove_dir_all(&target).with_context(|| format!("cannot clear {}", target.display()))?;
    }
    let mut files = 0;
    for source in PUBLIC_DOMAIN_SOURCES {
        let from = out.join("folk").join(source);
        let to = target.join(source);
        std::fs::create_dir_all(&to).with_context(|| format!("cannot create {}", to.display()))?;
        let entries = std::fs::read_dir(&from)
            .with_context(|| format!("{} is missing: the folk conversion did not write it", from.display()))?;
        for entry in entries {
            let path = entry.with_context(|| format!("cannot list {}", from.display()))?.path();
            if path.extension().is_some_and(|e| e == "mid") {
                let dest = to.join(path.file_name().expect("a listed file has a name"));
                if std::fs::hard_link(&path, &dest).is_err() {
                    std::fs::copy(&path, &dest)
                        .with_context(|| format!("cannot copy {} to {}", path.display(), dest.display()))?;
                }
                files += 1;
            }
        }
    }
    Ok(files)
}

fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

/// Returns the venv's interpreter with music21 at the pinned version, creating or
/// repairing the venv only when needed so that a rebuild does not reinstall.
fn ensure_venv(base_python: &Path, venv: &Path) -> Result<PathBuf> {
    let python = venv_python(venv);
    if installed_music21(&python).as_deref() == Some(MUSIC21_VERSION) {
        return Ok(python);
    }

    // A venv whose interpreter no longer starts (its base Python was upgraded or
    // removed), lacks pip, or is too old for music21 cannot be repaired in place:
    // start over.
    if venv.exists()
        && (!runs_quietly(Command::new(&python).args(["-m", "pip", "--version"])) || check_python(&python).is_err())
    {
        println!("corpus: the venv at {} is broken, recreating it", venv.display());
        std::fs::remove_dir_all(venv).with_context(|| format!("cannot remove the broken venv {}", venv.display()))?;
    }
    if !venv.exists() {
        check_python(base_python)?;
        println!("corpus: creating a Python venv at {}", venv.display());
        let status = Command::new(base_python)
            .args(["-m", "venv"])
            .arg(venv)
            .status()
            .with_context(|| format!("could not run {}", base_python.display()))?;
        if !status.success() {
            // Leave nothing half-made behind, or the next run would think it exists.
            let _ = std::fs::remove_dir_all(venv);
            bail!(
                "`{} -m venv {}` failed ({status}). On Debian and Ubuntu the venv module \
                 is a separate package: install python3-venv (or python3.X-venv), then retry.",
                base_python.display(),
                venv.display()
            );
        }
    }

    println!("corpus: installing music21=={MUSIC21_VERSION} into the venv");
    let status = Command::new(&python)
        .args(["-m", "pip", "install", "--disable-pip-version-check"])
        .arg(format!("music21=={MUSIC21_VERSION}"))
        .status()
        .with_context(|| format!("could not run {}", python.display()))?;
    if !status.success() {
        bail!(
            "pip could not install music21=={MUSIC21_VERSION} ({status}); see pip's output \
             above. It needs access to PyPI (or a configured mirror)."
        );
    }
    match installed_music21(&python) {
        Some(v) if v == MUSIC21_VERSION => Ok(python),
        Some(v) => bail!("pip left music21 {v} in the venv, not {MUSIC21_VERSION}"),
        None => bail!("music21 is still not importable from {} after pip install", python.display()),
    }
}

/// Asks the package metadata rather than importing music21, which takes a second.
fn installed_music21(python: &Path) -> Option<String> {
    let output = Command::new(python)
        .args(["-c", "import importlib.metadata as m; print(m.version('music21'))"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn runs_quietly(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

fn check_python(python: &Path) -> Result<()> {
    let output = Command::new(python).args(["-c", "import sys; print('%d %d' % sys.version_info[:2])"]).output();
    let output = match output {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "`{}` was not found. Python {}.{}+ is needed to build the corpus; install it \
             or point --python at an interpreter.",
            python.display(),
            MIN_PYTHON.0,
            MIN_PYTHON.1
        ),
        Err(e) => return Err(e).with_context(|| format!("could not run {}", python.display())),
    };
    if !output.status.success() {
        bail!(
            "`{}` does not run as a Python interpreter: {}",
            python.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let version: Vec<u32> = text.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    match version[..] {
        [major, minor] if (major, minor) >= MIN_PYTHON => Ok(()),
        [major, minor] => bail!(
            "music21 {MUSIC21_VERSION} needs Python {}.{} or newer, but `{}` is {major}.{minor}; \
             point --python at a newer interpreter.",
            MIN_PYTHON.0,
            MIN_PYTHON.1,
            python.display()
        ),
        _ => bail!("could not tell which Python version `{}` is", python.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_interpreter_is_named_with_the_way_out() {
        let error = check_python(Path::new("/nonexistent/python3")).unwrap_err().to_string();
        assert!(error.contains("/nonexistent/python3"), "{error}");
        assert!(error.contains("--python"), "{error}");
    }

    #[test]
    fn something_that_is_not_python_is_refused() {
        // `true` runs and succeeds but prints no version: the check must not pass it.
        if Path::new("/bin/true").exists() {
            assert!(check_python(Path::new("/bin/true")).is_err());
        }
    }

    #[test]
    fn the_public_domain_folk_leaves_essen_out() {
        let out = std::env::temp_dir().join(format!("dreamroll-pd-folk-{}", std::process::id()));
        for source in ["essen", "oneills1850", "airdsAirs", "ryansMammoth", "miscFolk"] {
            let dir = out.join("folk").join(source);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("{source}_0001.mid")), b"MThd").unwrap();
        }
        assert_eq!(gather_public_domain_folk(&out).unwrap(), 4);
        assert!(!out.join(PUBLIC_DOMAIN_FOLK).join("essen").exists());
        assert!(out.join(PUBLIC_DOMAIN_FOLK).join("oneills1850").join("oneills1850_0001.mid").is_file());
        assert_eq!(gather_public_domain_folk(&out).unwrap(), 4, "a rebuild starts the folder afresh");
        std::fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn the_converter_script_is_where_run_looks() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join("music21_to_midi.py");
        assert!(script.is_file(), "{} is missing", script.display());
    }
}
