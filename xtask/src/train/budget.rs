//! `--time-budget`: the whole run, from reading the data to the written model folder, in the
//! minutes given. What follows the training loop (the last checkpoint, the decoding's
//! calibration, the macro knobs, the files) is timed before the loop starts, at rates
//! measured on the run's own model and data, and the loop stops early enough to leave it
//! that time. The calibration, the one stage whose cost grows with the model (voices, pitch
//! window) as much as with the data, gets at most [`AFTER_TRAINING_SHARE`] of the budget: on
//! fewer phrases when its full size would take longer, and bounded by a deadline besides.

use std::time::{Duration, Instant};

/// The largest share of the budget kept for what follows the training loop, when the
/// calibration at full size would need more.
pub const AFTER_TRAINING_SHARE: f64 = 0.25;

/// What is kept for the stages after the loop, over their estimate: measured rates are
/// noisy on a machine that is doing other things.
pub const MARGIN: f64 = 1.1;

/// The run's clock: what earlier runs of it spent (a resumed run's training time) and what
/// this one has spent since it started.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    started: Instant,
    before: f64,
}

impl Clock {
    pub fn start(started: Instant, before: f64) -> Clock {
        Clock { started, before }
    }

    /// Seconds spent in all.
    pub fn spent(&self) -> f64 {
        self.before + self.started.elapsed().as_secs_f64()
    }

    /// The moment at which `seconds` will have been spent in all.
    pub fn instant_at(&self, seconds: f64) -> Instant {
        let from_now = seconds - self.spent();
        if from_now > 0.0 {
            Instant::now() + Duration::from_secs_f64(from_now)
        } else {
            Instant::now()
        }
    }
}

/// The size of each bisection search of the decoding's calibration: phrases written at
/// every step, and steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CalibrationPlan {
    pub phrases: usize,
    pub steps: usize,
}

impl CalibrationPlan {
    /// What a run without a time budget does: rests and part-writing faults come in clumps
    /// (a part out for a bar), so it takes a thousand phrases for the rate to settle within a
    /// tenth of itself, and 12 steps narrow the bias to 0.003 of a logit.
    pub const FULL: CalibrationPlan = CalibrationPlan { phrases: 1024, steps: 12 };
    /// The least a calibration does, however small the budget.
    pub const SMALLEST: CalibrationPlan = CalibrationPlan { phrases: 64, steps: 8 };

    /// The plan with `phrases` a step (a multiple of 16, at least 64): one step fewer each
    /// time the phrases halve, since a rate from fewer phrases is too rough to bisect as
    /// finely (8 steps at 64 phrases still find the bias to 0.05 of a logit).
    pub fn of(phrases: usize) -> CalibrationPlan {
        let phrases = (phrases / 16 * 16).clamp(Self::SMALLEST.phrases, Self::FULL.phrases);
        let doublings = (phrases / Self::SMALLEST.phrases).ilog2() as usize;
        CalibrationPlan { phrases, steps: Self::SMALLEST.steps + doublings }
    }

    /// Phrases written by `searches` searches.
    pub fn phrases_in_all(&self, searches: usize) -> usize {
        searches * self.steps * self.phrases
    }
}

/// What the stages after the training loop cost, in wall seconds, as measured before it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Costs {
    /// One phrase from the prior, written (on every thread) and counted, in a calibration.
    pub phrase: f64,
    /// Bisection searches the calibration runs (the voices preset's biases; 0 for the
    /// presets whose calibration is part of writing samples).
    pub searches: usize,
    /// Between the loop and the calibration: the last checkpoint (validation, its files,
    /// its progress samples).
    pub before_calibration: f64,
    /// After the calibration: the samples (the other presets' thresholds are calibrated
    /// there), the encoder's reading of the training phrases for the macro knobs, the files.
    pub after_calibration: f64,
}

impl Costs {
    /// Seconds from the end of the loop to the written model with `plan`.
    pub fn after_training(&self, plan: CalibrationPlan) -> f64 {
        self.before_calibration + self.calibration(plan) + self.after_calibration
    }

    pub fn calibration(&self, plan: CalibrationPlan) -> f64 {
        plan.phrases_in_all(self.searches) as f64 * self.phrase
    }
}

/// How a time budget is shared out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Split {
    pub budget: f64,
    /// Seconds on the run's clock at which the training loop stops.
    pub training_until: f64,
    /// Seconds on the run's clock by which the calibration stops, whatever it has reached.
    pub calibration_until: f64,
    pub plan: CalibrationPlan,
    /// The estimate of what follows the loop with `plan`, before the margin.
    pub after_training: f64,
}

/// Shares `budget` seconds out between the training loop and what follows it: the full
/// calibration if what follows the loop fits in [`AFTER_TRAINING_SHARE`] of the budget,
/// else the largest smaller one that does (at least [`CalibrationPlan::SMALLEST`]); the loop
/// stops when only that (with [`MARGIN`]) is left.
pub fn split(budget: f64, costs: &Costs) -> Split {
    let budget = budget.max(0.0);
    let allowed = AFTER_TRAINING_SHARE * budget;
    let for_calibration = allowed / MARGIN - costs.before_calibration - costs.after_calibration;
    let plan = plan_within(for_calibration, costs.phrase, costs.searches);
    let after_training = costs.after_training(plan);
    Split {
        budget,
        training_until: (budget - MARGIN * after_training).max(0.0),
        calibration_until: budget - MARGIN * costs.after_calibration,
        plan,
        after_training,
    }
}

/// The largest calibration whose `searches` take at most `seconds` at `phrase` seconds a
/// phrase ([`CalibrationPlan::FULL`] at most, and [`CalibrationPlan::SMALLEST`] when not
/// even that fits).
pub fn plan_within(seconds: f64, phrase: f64, searches: usize) -> CalibrationPlan {
    (CalibrationPlan::SMALLEST.phrases..=CalibrationPlan::FULL.phrases)
        .rev()
        .step_by(16)
        .map(CalibrationPlan::of)
        .find(|plan| plan.phrases_in_all(searches) as f64 * phrase <= seconds)
        .unwrap_or(CalibrationPlan::SMALLEST)
}

/// A stage after training: says what it does, and when it is done how long it took.
pub fn stage<T>(what: &str, work: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    println!("{what} ...");
    let started = Instant::now();
    let result = work()?;
    println!("{what}: done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    const COSTS: Costs = Costs { phrase: 0.01, searches: 4, before_calibration: 1.0, after_calibration: 2.0 };

    #[test]
    fn plans_lose_a_step_each_time_their_phrases_halve() {
        assert_eq!(CalibrationPlan::of(1024), CalibrationPlan::FULL);
        assert_eq!(CalibrationPlan::of(5000), CalibrationPlan::FULL);
        assert_eq!(CalibrationPlan::of(64), CalibrationPlan::SMALLEST);
        assert_eq!(CalibrationPlan::of(10), CalibrationPlan::SMALLEST);
        assert_eq!(CalibrationPlan::of(256), CalibrationPlan { phrases: 256, steps: 10 });
        assert_eq!(CalibrationPlan::of(300), CalibrationPlan { phrases: 288, steps: 10 });
        assert_eq!(CalibrationPlan::FULL.phrases_in_all(4), 49_152);
    }

    #[test]
    fn a_calibration_that_fits_its_share_is_done_in_full_and_the_loop_leaves_it_its_time() {
        // Full: 49 152 phrases at 10 ms, 491.5 s, and 3 s besides; an hour's quarter holds it.
        let split = split(3600.0, &COSTS);
        assert_eq!(split.plan, CalibrationPlan::FULL);
        assert!((split.after_training - 494.52).abs() < 1e-9, "{}", split.after_training);
        assert!((split.training_until - (3600.0 - 1.1 * 494.52)).abs() < 1e-9);
        assert!((split.calibration_until - (3600.0 - 1.1 * 2.0)).abs() < 1e-9);
    }

    #[test]
    fn a_calibration_too_large_for_its_share_is_made_smaller_to_fit() {
        // 4 minutes: a quarter is 60 s, 54.5 s before the margin; 51.5 s for calibrating is
        // 5 154 phrases: 4 searches of 9 steps of 128 (4 608); of 144 they would be 5 184.
        let split = split(240.0, &COSTS);
        assert_eq!(split.plan, CalibrationPlan { phrases: 128, steps: 9 }, "{split:?}");
        assert!(MARGIN * split.after_training <= 60.0);
        let larger = CalibrationPlan::of(144);
        assert!(MARGIN * COSTS.after_training(larger) > 60.0, "the largest plan that fits");
        assert!((split.training_until - (240.0 - MARGIN * split.after_training)).abs() < 1e-9);
        // Slower phrases, a smaller plan.
        let slower = super::split(240.0, &Costs { phrase: 0.04, ..COSTS });
        assert!(slower.plan.phrases < split.plan.phrases);
    }

    #[test]
    fn the_plan_within_a_time_is_the_largest_that_fits() {
        // 4 searches at 1/128 s a phrase: 4 x 9 x 144 = 5 184 phrases take 40.5 s exactly.
        let phrase = 1.0 / 128.0;
        assert_eq!(plan_within(40.5, phrase, 4), CalibrationPlan { phrases: 144, steps: 9 });
        assert_eq!(plan_within(40.4, phrase, 4), CalibrationPlan { phrases: 128, steps: 9 });
        assert_eq!(plan_within(1e6, phrase, 4), CalibrationPlan::FULL);
        assert_eq!(plan_within(1.0, phrase, 4), CalibrationPlan::SMALLEST);
        assert_eq!(plan_within(-1.0, phrase, 4), CalibrationPlan::SMALLEST);
        // Slower phrases, a smaller plan; twice the time, a larger one.
        assert!(plan_within(40.5, 2.0 * phrase, 4).phrases < 144);
        assert!(plan_within(81.0, phrase, 4).phrases > 144);
    }

    #[test]
    fn the_smallest_calibration_is_kept_even_when_the_budget_cannot_hold_it() {
        let split = split(10.0, &COSTS);
        assert_eq!(split.plan, CalibrationPlan::SMALLEST);
        assert_eq!(split.training_until, 0.0, "nothing is left for training");
        let none = super::split(0.0, &COSTS);
        assert_eq!((none.plan, none.training_until), (CalibrationPlan::SMALLEST, 0.0));
        assert!(none.calibration_until < 0.0, "the calibration's deadline has passed");
    }

    #[test]
    fn presets_without_searches_keep_their_measured_stages_only() {
        let costs = Costs { searches: 0, ..COSTS };
        let split = split(240.0, &costs);
        assert_eq!(split.plan, CalibrationPlan::FULL, "no phrases to save");
        assert!((split.after_training - 3.0).abs() < 1e-9);
    }
}
