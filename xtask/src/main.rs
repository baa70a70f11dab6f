//! Developer tasks for Dreamroll: `cargo xtask <task>`.
//!
//! Tasks live here rather than in shell scripts so that they run the same on every machine
//! and share the library's own code (the corpus loader and the metrics).

mod bench;
mod corpus;
mod eval;
mod install;
mod knobs;
mod listen;
mod train;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Dreamroll developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

// Parsed once per run: boxing the larger argument sets would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Task {
    /// Rebuild the training corpus (Bach chorales and folk melodies) from the music21 package;
    /// `--only band`: drums, bass and comping from the mma, freedoom and openttd-openmsx packages.
    Corpus(corpus::CorpusArgs),
    /// Compute the objective metrics over a folder of MIDI files.
    Eval(eval::EvalArgs),
    /// How a model writes from held-out music: vary a clip, harmonise a melody.
    Listen(listen::ListenArgs),
    /// Learn a model's named knobs (register, note density, ...) from its corpus and check
    /// each by a sweep; --write puts those that pass into its card.
    Knobs(knobs::KnobsArgs),
    /// Train a decoder on a folder of MIDI files.
    Train(train::TrainArgs),
    /// Run the criterion benchmarks, or (--vs-pytorch) compare with a PyTorch twin.
    Bench(bench::BenchArgs),
    /// One side of `bench --vs-pytorch`, in a process of its own.
    #[command(hide = true)]
    BenchWorker(bench::candle_side::WorkerArgs),
    /// Build and bundle the plugin: `bundle dreamroll --release` writes
    /// target/bundled/dreamroll.clap and dreamroll.vst3 (nice-plug-xtask does the work).
    #[command(disable_help_flag = true)]
    Bundle {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Bundle the plugin in release and copy it where hosts look (~/.clap and ~/.vst3 on Linux).
    Install(install::InstallArgs),
}

/// Training frees and re-allocates the same large buffers every step. glibc hands blocks
/// over 128 KiB back to the kernel at once, so each step paid for fresh zeroed pages (a
/// third of backward's time went to page faults); keeping them in the heap removes that.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// candle asks for its thread count at every matrix product, which without
/// RAYON_NUM_THREADS means reading /proc/cpuinfo each time (2 % of a training step): ask
/// once, before any thread starts, and keep the answer where candle looks first.
fn settle_thread_count() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", candle_core::utils::get_num_threads().to_string());
    }
}

fn main() -> anyhow::Result<()> {
    keep_freed_memory();
    settle_thread_count();
    match Cli::parse().task {
        Task::Corpus(args) => corpus::run(args),
        Task::Eval(args) => eval::run(args),
        Task::Listen(args) => listen::run(args),
        Task::Knobs(args) => knobs::run(args),
        Task::Bench(args) => bench::run(args),
        Task::BenchWorker(args) => bench::candle_side::worker(args),
        Task::Train(args) => train::run(args),
        Task::Bundle { args } => {
            nice_plug_xtask::main_with_args("cargo xtask", std::iter::once("bundle".to_string()).chain(args))
        }
        Task::Install(args) => install::run(args),
    }
}
