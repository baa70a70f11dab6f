//! Phrases from the prior, written on every core: the calibrations after training write
//! thousands of them, one step and one voice at a time, and report their progress.

use dreamroll::model::generator::Generator;
use dreamroll::model::rolls::DecodeOptions;
use dreamroll::roll::Roll;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Phrases written between two progress reports, shared among the threads.
pub const CHUNK: usize = 16;

/// Threads to write phrases on: as many as candle computes with (`RAYON_NUM_THREADS`, else
/// one per core).
pub fn threads() -> usize {
    candle_core::utils::get_num_threads().max(1)
}

/// One phrase per latent, exactly as `generator.generate(latents, options, rng)` writes them
/// with `rng` a ChaCha8 stream seeded with `seed`, on up to `threads` threads (see
/// `Generator::generate_on`), [`CHUNK`] phrases at a time. `done` hears of every chunk
/// written (its phrase count).
pub fn generate(
    generator: &Generator,
    latents: &[Vec<f32>],
    options: &DecodeOptions,
    seed: u64,
    threads: usize,
    done: &(dyn Fn(usize) + Sync),
) -> anyhow::Result<Vec<Roll>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut phrases = Vec::with_capacity(latents.len());
    for chunk in latents.chunks(CHUNK) {
        phrases.extend(generator.generate_on(chunk, options, &mut rng, threads)?);
        done(chunk.len());
    }
    Ok(phrases)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::prior_latents;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn phrases_are_the_same_on_any_number_of_threads_and_as_written_one_after_another() {
        for levels in [0, 3] {
            same_on_any_number_of_threads(levels);
        }
    }

    fn same_on_any_number_of_threads(velocity_levels: usize) {
        let (card, objective) = crate::train::small_voices_objective(true, velocity_levels, 5);
        let generator = objective.generator();
        // 3 chunks and a part, so that threads share the work unevenly.
        let latents = prior_latents(3 * CHUNK + 5, card.latent_size, 11);
        let options = DecodeOptions::from_card(&card.decoding);
        assert!(options.temperature > 0.0, "the voices preset samples");
        let one_stream = generator.generate(&latents, &options, &mut ChaCha8Rng::seed_from_u64(4)).unwrap();
        for threads in [1, 2, 3, 8] {
            let counted = AtomicUsize::new(0);
            let phrases = generate(generator, &latents, &options, 4, threads, &|n| {
                counted.fetch_add(n, Ordering::Relaxed);
            })
            .unwrap();
            assert!(phrases == one_stream, "{threads} threads write other phrases");
            assert_eq!(counted.into_inner(), latents.len());
        }
        let strict = DecodeOptions { temperature: 0.0, ..options };
        let one_stream = generator.generate(&latents, &strict, &mut ChaCha8Rng::seed_from_u64(4)).unwrap();
        assert!(generate(generator, &latents, &strict, 4, 2, &|_| {}).unwrap() == one_stream);
    }
}
