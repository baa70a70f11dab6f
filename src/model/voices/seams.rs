//! Where a loop's phrases meet. A voices model writes each phrase from silence, as it learnt
//! them, so every phrase start — and the loop's wrap, where its last bar leads back into its
//! first — is a restart: each voice jumps to wherever the new phrase happens to begin. Here a
//! loop (as voice tokens) is cut into *seam windows*, one phrase long and centred on each
//! phrase start, reading round the wrap; the opening of the phrase is left for the model to
//! write again with both sides given (its context reader looks both ways), and the result is
//! copied back. Everything here is plain token arithmetic; the model call is the generator's.

use super::tokens::{HOLD, NEW_NOTE, REST};
use std::ops::Range;

/// One phrase start to join: the loop step the window begins at (reading round the wrap) and
/// the window's steps to write again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seam {
    /// The phrase of the loop that starts here (0: the wrap).
    pub phrase: usize,
    pub window_start: usize,
    pub rewrite: Range<usize>,
}

/// The seams of a loop of `loop_bars` bars: every phrase start, the loop's first bar included
/// (it follows the loop's last bar when the loop comes round). Each window holds the half
/// phrase before the seam and the half phrase from it; the first `rewrite_steps` after the
/// seam are written again.
pub fn seams(loop_bars: usize, bars_per_phrase: usize, steps_per_bar: usize, rewrite_steps: usize) -> Vec<Seam> {
    let loop_steps = loop_bars * steps_per_bar;
    let before = (bars_per_phrase / 2) * steps_per_bar;
    let rewrite_steps = rewrite_steps.min(bars_per_phrase * steps_per_bar - before);
    if loop_steps == 0 || before == 0 || rewrite_steps == 0 {
        return Vec::new();
    }
    (0..loop_bars)
        .step_by(bars_per_phrase)
        .enumerate()
        .map(|(phrase, bar)| Seam {
            phrase,
            window_start: (bar * steps_per_bar + loop_steps * before.div_ceil(loop_steps) - before) % loop_steps,
            rewrite: before..before + rewrite_steps,
        })
        .collect()
}

/// The row a voice sounds at `step` of `column` (each step's token), found by walking back to
/// its strike; `None` when it rests. A hold at the column's first step reads as rest, as a
/// sampler reads one.
fn sounding_row(column: impl DoubleEndedIterator<Item = u32>) -> Option<u32> {
    for token in column.rev() {
        match token {
            REST => return None,
            HOLD => continue,
            new => return Some(new - NEW_NOTE),
        }
    }
    None
}

/// Voice `v`'s token at `step` of `tokens`, a hold struck afresh: a window that starts on a
/// held note, or the first given step after a rewritten span, must not hold whatever the
/// model put before it.
fn struck(tokens: &[Vec<u32>], step: usize, v: usize) -> u32 {
    match tokens[step][v] {
        HOLD => sounding_row(tokens[..=step].iter().map(|row| row[v])).map_or(REST, |row| NEW_NOTE + row),
        token => token,
    }
}

/// `length` steps of the loop `tokens` from `start`, reading round the wrap; a note held into
/// the window is struck at its first step (what a listener hears is the note, not how it began).
pub fn window(tokens: &[Vec<u32>], start: usize, length: usize) -> Vec<Vec<u32>> {
    let loop_steps = tokens.len();
    let mut cut: Vec<Vec<u32>> = (0..length).map(|i| tokens[(start + i) % loop_steps].clone()).collect();
    if let Some(first) = cut.first_mut() {
        for (v, token) in first.iter_mut().enumerate() {
            if *token == HOLD {
                // Walk back round the wrap to the note's strike.
                let back = (0..loop_steps).map(|i| tokens[(start + loop_steps - i) % loop_steps][v]);
                *token = sounding_row(back.rev()).map_or(REST, |row| NEW_NOTE + row);
            }
        }
    }
    cut
}

/// What the model is given of a seam window: everything but the `rewrite` span, with a note
/// held out of the span into the given steps struck afresh where they begin.
pub fn given_around(window: &[Vec<u32>], rewrite: &Range<usize>) -> Vec<Vec<Option<u32>>> {
    (0..window.len())
        .map(|step| {
            (0..window[step].len())
                .map(|v| match step {
                    s if rewrite.contains(&s) => None,
                    s if s == rewrite.end => Some(struck(window, s, v)),
                    s => Some(window[s][v]),
                })
                .collect()
        })
        .collect()
}

/// Copies a written seam window's rewritten span, and the given step after it (where a held
/// note may have been struck afresh), back into the loop.
pub fn write_back(tokens: &mut [Vec<u32>], written: &[Vec<u32>], seam: &Seam) {
    let loop_steps = tokens.len();
    let end = (seam.rewrite.end + 1).min(written.len());
    for step in seam.rewrite.start..end {
        tokens[(seam.window_start + step) % loop_steps].clone_from(&written[step]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: u32 = NEW_NOTE;

    #[test]
    fn every_phrase_start_is_a_seam_and_the_first_reads_round_the_wrap() {
        let s = seams(8, 4, 16, 8);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0], Seam { phrase: 0, window_start: 6 * 16, rewrite: 32..40 });
        assert_eq!(s[1], Seam { phrase: 1, window_start: 2 * 16, rewrite: 32..40 });
        // A one-bar loop: the window is the bar four times over, starting on itself.
        assert_eq!(seams(1, 4, 16, 8), vec![Seam { phrase: 0, window_start: 0, rewrite: 32..40 }]);
        assert_eq!(seams(2, 4, 16, 8)[0].window_start, 0);
        assert_eq!(seams(3, 4, 12, 6)[0].window_start, 12, "3/4: two bars before the wrap");
        assert!(seams(4, 1, 16, 8).is_empty(), "a one-bar phrase has no half before its start");
    }

    #[test]
    fn a_window_reads_round_the_wrap_and_strikes_a_note_it_starts_inside() {
        // One voice, four steps: C held over steps 0..2, rest, D struck at step 3.
        let tokens = vec![vec![N], vec![HOLD], vec![REST], vec![N + 2]];
        assert_eq!(window(&tokens, 1, 4), vec![vec![N], vec![REST], vec![N + 2], vec![N]]);
        assert_eq!(window(&tokens, 3, 3), vec![vec![N + 2], vec![N], vec![HOLD]]);
    }

    #[test]
    fn the_rewritten_span_is_free_and_a_note_held_out_of_it_is_struck() {
        // Two voices: voice 0 strikes E in the span and holds it out; voice 1 rests into a hold.
        let window = vec![vec![N, N + 7], vec![N + 4, HOLD], vec![HOLD, REST], vec![HOLD, REST]];
        let given = given_around(&window, &(1..2));
        assert_eq!(given[0], vec![Some(N), Some(N + 7)]);
        assert_eq!(given[1], vec![None, None]);
        assert_eq!(given[2], vec![Some(N + 4), Some(REST)], "the E is struck where the given steps begin");
        assert_eq!(given[3], vec![Some(HOLD), Some(REST)]);
    }

    #[test]
    fn writing_back_lands_on_the_loop_steps_round_the_wrap() {
        let mut tokens = vec![vec![REST]; 4];
        let seam = Seam { phrase: 0, window_start: 3, rewrite: 1..3 };
        let written = vec![vec![N], vec![N + 1], vec![N + 2], vec![N + 3], vec![N + 4]];
        write_back(&mut tokens, &written, &seam);
        assert_eq!(tokens, vec![vec![N + 1], vec![N + 2], vec![N + 3], vec![REST]]);
    }
}
