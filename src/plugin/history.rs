//! The patterns a session made, to step back and forward through and bring one back — the way
//! producers audition a generator: new seeds, takes and knob moves, each a *moment* kept as
//! the parameter values that asked for it. Since the same values always give the same notes,
//! bringing a moment back is setting its values again (as one host gesture each, so the host's
//! undo and automation see it), and what follows carries on from there.
//!
//! A knob being turned asks for a pattern at every stop along the way: a run of changes to one
//! parameter within [`GESTURE`] is one moment, its last value. The list is bounded; it is saved
//! with the project.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Most moments kept; the oldest go first.
pub const MOST_MOMENTS: usize = 64;
/// Changes to one parameter closer together than this are one gesture.
pub const GESTURE: Duration = Duration::from_millis(1500);

/// One pattern the session made, as what asked for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Moment {
    /// Each parameter that shapes the notes, by its stable ID, at its normalised value.
    pub values: BTreeMap<String, f32>,
    /// The seed's take ("New seed" presses).
    pub takes: u32,
    /// What changed from the moment before, as the editor lists it.
    pub label: String,
}

impl Moment {
    /// The parameters whose values differ from `other`'s.
    fn changed_from<'a>(&'a self, other: &Moment) -> Vec<&'a str> {
        self.values
            .iter()
            .filter(|(id, value)| other.values.get(*id) != Some(value))
            .map(|(id, _)| id.as_str())
            .collect()
    }

    fn asks_as(&self, other: &Moment) -> bool {
        self.values == other.values && self.takes == other.takes
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    moments: Vec<Moment>,
    /// The moment playing now (an index into `moments`).
    at: Option<usize>,
    /// The one parameter whose change made the newest moment, and when: the next change to
    /// it alone within [`GESTURE`] carries on the same gesture.
    #[serde(skip)]
    gesture: Option<(String, Instant)>,
    /// A moment being brought back, and when: its parameters are set one by one, and what they
    /// ask for on the way is no moment of its own.
    #[serde(skip)]
    recalling: Option<(usize, Instant)>,
}

impl History {
    pub fn moments(&self) -> &[Moment] {
        &self.moments
    }

    pub fn at(&self) -> Option<usize> {
        self.at
    }

    /// The moment playing now.
    pub fn playing(&self) -> Option<&Moment> {
        self.moments.get(self.at?)
    }

    /// The parameters now ask for `now`: one the history holds becomes the moment playing
    /// (a moment brought back, or stepped to by hand); a new one is added at the end — or
    /// replaces the newest, where it carries on the gesture that made it. Returns whether
    /// anything changed.
    pub fn record(&mut self, now: Moment, when: Instant) -> bool {
        if let Some((index, since)) = self.recalling {
            let arrived = self.moments.get(index).is_some_and(|moment| moment.asks_as(&now));
            if !arrived && when.saturating_duration_since(since) < GESTURE {
                return false;
            }
            self.recalling = None;
        }
        if let Some(index) = self.moments.iter().position(|moment| moment.asks_as(&now)) {
            let changed = self.at != Some(index);
            self.at = Some(index);
            return changed;
        }
        // The one parameter moved from the moment playing, if only one was.
        let moved = self.playing().filter(|playing| playing.takes == now.takes).and_then(|playing| {
            let changed = now.changed_from(playing);
            (changed.len() == 1).then(|| changed[0].to_string())
        });
        let newest_playing = self.at.is_some_and(|at| at + 1 == self.moments.len());
        let continues_gesture = newest_playing
            && self.gesture.as_ref().is_some_and(|(id, since)| {
                Some(id) == moved.as_ref() && when.saturating_duration_since(*since) < GESTURE
            });
        if continues_gesture {
            self.moments.pop();
        }
        self.moments.push(now);
        if self.moments.len() > MOST_MOMENTS {
            self.moments.remove(0);
        }
        self.at = Some(self.moments.len() - 1);
        self.gesture = moved.map(|id| (id, when));
        true
    }

    /// Moment `index`, made the one playing and being brought back from `when`: until the
    /// parameters ask for it (or a gesture's time has passed), what they ask for on the way
    /// is not recorded.
    pub fn recall(&mut self, index: usize, when: Instant) -> Option<&Moment> {
        let moment = self.moments.get(index)?;
        self.at = Some(index);
        self.recalling = Some((index, when));
        Some(moment)
    }

    /// A history as saved, made safe to use: at most [`MOST_MOMENTS`], the newest kept, values
    /// in 0..=1, and a playing moment that exists.
    pub fn sanitised(mut self) -> History {
        let excess = self.moments.len().saturating_sub(MOST_MOMENTS);
        self.moments.drain(..excess);
        for moment in &mut self.moments {
            moment.values.values_mut().for_each(|value| *value = value.clamp(0.0, 1.0));
        }
        self.at = self.at.and_then(|at| at.checked_sub(excess)).filter(|&at| at < self.moments.len());
        self.gesture = None;
        self.recalling = None;
        self
    }
}

/// What a change from `before` to `now` is called in the list: the parameter and its new text
/// (`show(id, value)`), "New seed, take n", or how many parameters changed at once.
pub fn label(before: Option<&Moment>, now: &Moment, show: impl Fn(&str, f32) -> Option<String>) -> String {
    let Some(before) = before else { return "Opened".to_string() };
    if now.takes != before.takes {
        return format!("New seed, take {}", now.takes);
    }
    match now.changed_from(before).as_slice() {
        [] => "The same".to_string(),
        [id] => show(id, now.values[*id]).unwrap_or_else(|| id.to_string()),
        many => format!("{} changes", many.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moment(values: &[(&str, f32)], takes: u32) -> Moment {
        Moment {
            values: values.iter().map(|&(id, v)| (id.to_string(), v)).collect(),
            takes,
            label: format!("{values:?} {takes}"),
        }
    }

    #[test]
    fn a_knob_turned_in_one_gesture_is_one_moment_and_two_gestures_are_two() {
        let start = Instant::now();
        let later = |ms: u64| start + Duration::from_millis(ms);
        let mut history = History::default();
        history.record(moment(&[("seed", 0.1), ("knob_1", 0.5)], 0), later(0));
        history.record(moment(&[("seed", 0.2), ("knob_1", 0.5)], 0), later(5000));
        // The knob turned through three values quickly: one moment, its last value.
        for (i, value) in [0.6, 0.7, 0.8].into_iter().enumerate() {
            history.record(moment(&[("seed", 0.2), ("knob_1", value)], 0), later(9000 + 200 * i as u64));
        }
        assert_eq!(history.moments().len(), 3, "{:?}", history.moments());
        assert_eq!(history.moments()[2].values["knob_1"], 0.8);
        // The same knob again after a pause is a new gesture.
        history.record(moment(&[("seed", 0.2), ("knob_1", 0.3)], 0), later(20_000));
        assert_eq!(history.moments().len(), 4);
        // Another parameter right after is a change of its own, not part of the knob's gesture.
        history.record(moment(&[("seed", 0.3), ("knob_1", 0.3)], 0), later(20_100));
        assert_eq!(history.moments().len(), 5);
        assert_eq!(history.at(), Some(4));
        // Back to the first moment, then the knob turned from there: one moment at the end.
        history.recall(0, later(30_000));
        history.record(moment(&[("seed", 0.1), ("knob_1", 0.5)], 0), later(30_000));
        for (i, value) in [0.6, 0.7].into_iter().enumerate() {
            history.record(moment(&[("seed", 0.1), ("knob_1", value)], 0), later(31_000 + 200 * i as u64));
        }
        assert_eq!(history.moments().len(), 6);
        assert_eq!((history.moments()[5].values["knob_1"], history.at()), (0.7, Some(5)));
    }

    #[test]
    fn bringing_a_moment_back_adds_nothing_and_what_follows_carries_on_from_it() {
        let start = Instant::now();
        let mut history = History::default();
        let at = |s: u64| start + Duration::from_secs(s);
        for takes in 0..3 {
            history.record(moment(&[("seed", 0.1), ("knob_1", 0.5)], takes), at(u64::from(takes) * 10));
        }
        assert_eq!(history.recall(0, at(60)).map(|m| m.takes), Some(0));
        assert!(history.recall(3, at(60)).is_none(), "nothing after the newest");
        assert_eq!(history.at(), Some(0));
        // The parameters are set back one by one: on the way they ask for what no moment is.
        assert!(!history.record(moment(&[("seed", 0.1), ("knob_1", 0.9)], 2), at(60)));
        // Once they ask for the moment brought back, nothing is added either.
        assert!(!history.record(moment(&[("seed", 0.1), ("knob_1", 0.5)], 0), at(60)));
        assert_eq!((history.moments().len(), history.at()), (3, Some(0)));
        // A change made afterwards is a moment again, added at the end.
        assert!(history.record(moment(&[("seed", 0.3), ("knob_1", 0.5)], 0), at(61)));
        assert_eq!((history.moments().len(), history.at()), (4, Some(3)));
        // Setting the parameters by hand to where an older moment had them goes back to it.
        assert!(history.record(moment(&[("seed", 0.1), ("knob_1", 0.5)], 1), at(70)));
        assert_eq!(history.at(), Some(1));
        // A recall the parameters never reach (the host kept one from changing) stops holding
        // the record back once a gesture's time has passed.
        history.recall(2, at(80));
        assert!(history.record(moment(&[("seed", 0.9), ("knob_1", 0.5)], 2), at(90)));
        assert_eq!(history.moments().len(), 5);
    }

    #[test]
    fn the_oldest_moments_go_first_and_a_saved_history_is_made_safe() {
        let start = Instant::now();
        let mut history = History::default();
        for takes in 0..(MOST_MOMENTS as u32 + 10) {
            history.record(moment(&[], takes), start + Duration::from_secs(u64::from(takes) * 10));
        }
        assert_eq!(history.moments().len(), MOST_MOMENTS);
        assert_eq!(history.moments()[0].takes, 10);
        assert_eq!(history.at(), Some(MOST_MOMENTS - 1));

        let mut saved =
            History { moments: vec![moment(&[("seed", 7.0)], 0); MOST_MOMENTS + 2], at: Some(1), ..History::default() };
        saved.moments[MOST_MOMENTS + 1].values.insert("knob_1".into(), -3.0);
        let safe = saved.sanitised();
        assert_eq!(safe.moments().len(), MOST_MOMENTS);
        assert_eq!(safe.at(), None, "the playing moment was among those dropped");
        assert!(safe.moments().iter().flat_map(|m| m.values.values()).all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn a_change_is_named_by_what_changed() {
        let show = |id: &str, value: f32| (id == "seed").then(|| format!("Seed {}", (value * 100.0).round()));
        let before = moment(&[("seed", 0.1), ("knob_1", 0.5)], 0);
        assert_eq!(label(None, &before, show), "Opened");
        assert_eq!(label(Some(&before), &moment(&[("seed", 0.42), ("knob_1", 0.5)], 0), show), "Seed 42");
        assert_eq!(label(Some(&before), &moment(&[("seed", 0.1), ("knob_1", 0.5)], 3), show), "New seed, take 3");
        assert_eq!(label(Some(&before), &moment(&[("seed", 0.2), ("knob_1", 0.6)], 0), show), "2 changes");
        assert_eq!(label(Some(&before), &moment(&[("seed", 0.1), ("knob_1", 0.6)], 0), show), "knob_1");
    }
}
