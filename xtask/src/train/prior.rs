//! Phrases from the prior, written on every core: the calibrations after training write
//! thousands of them, one step and one voice at a time, and each phrase is independent of
//! the others once its place in the random stream is known.

use dreamroll::model::generator::Generator;
use dreamroll::model::rolls::DecodeOptions;
use dreamroll::roll::Roll;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Phrases in the unit of work a thread takes. The split is fixed, whatever the number of
/// threads, so the phrases never depend on it.
pub const CHUNK: usize = 16;

/// Threads to write phrases on: as many as candle computes with (`RAYON_NUM_THREADS`, else
/// one per core).
pub fn threads() -> usize {
    candle_core::utils::get_num_threads().max(1)
}

/// One phrase per latent, exactly as `generator.generate(latents, options, rng)` writes them
/// with `rng` a ChaCha8 stream seeded with `seed`, on up to `threads` threads: each chunk of
/// [`CHUNK`] phrases starts at the word of that stream where the phrases before it leave it.
/// `done` hears of every chunk written (its phrase count), from whichever thread wrote it.
/// Where phrases do not take a fixed number of draws, they are written one after another.
pub fn generate(
    generator: &Generator,
    latents: &[Vec<f32>],
    options: &DecodeOptions,
    seed: u64,
    threads: usize,
    done: &(dyn Fn(usize) + Sync),
) -> anyhow::Result<Vec<Roll>> {
    // A phrase equal to a learned one is drawn again, so with learned phrases the draws vary.
    let Some(draws) = generator.draws_per_phrase(options).filter(|_| generator.learned_phrases().is_empty()) else {
        let phrases = generator.generate(latents, options, &mut ChaCha8Rng::seed_from_u64(seed))?;
        done(phrases.len());
        return Ok(phrases);
    };
    let chunks: Vec<&[Vec<f32>]> = latents.chunks(CHUNK).collect();
    let written: Mutex<Vec<Option<Vec<Roll>>>> = Mutex::new(vec![None; chunks.len()]);
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<candle_core::Error>> = Mutex::new(None);
    let work = || loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        let Some(chunk) = chunks.get(index) else { break };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let first = (index * CHUNK) as u128;
        rng.set_word_pos(first * draws);
        // This thread's chunk on this thread alone: the others take the other chunks.
        match generator.generate_on(chunk, options, &mut rng, 1) {
            Ok(phrases) => {
                debug_assert_eq!(rng.get_word_pos(), (first + chunk.len() as u128) * draws, "draws per phrase");
                done(phrases.len());
                written.lock().expect("no thread panics holding it")[index] = Some(phrases);
            }
            Err(error) => {
                failure.lock().expect("no thread panics holding it").get_or_insert(error);
                // The other threads find no more work.
                next.store(chunks.len(), Ordering::Relaxed);
            }
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads.clamp(1, chunks.len().max(1)) {
            scope.spawn(work);
        }
        work();
    });
    if let Some(error) = failure.into_inner().expect("no thread panicked") {
        return Err(error.into());
    }
    Ok(written.into_inner().expect("no thread panicked").into_iter().flat_map(|c| c.expect("every chunk")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::prior_latents;

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
