//! The phrases a model learned, as fingerprints, so that it never hands a producer one of
//! them note for note. A model that has learned its style well still writes, now and then, a
//! stock phrase that some training piece holds exactly (the folk model: 2 phrases in 500),
//! and a producer who releases it has released someone else's music. The trainer stores the
//! fingerprint (up to transposition) of every phrase of its data beside the weights; the
//! voice decoder draws a phrase that matches one again, from the same random stream, so the
//! same seed still gives the same notes.

use crate::metrics::transposition_free_fingerprint;
use crate::roll::Roll;

/// The file in a model folder (optional: folders from before it have no guard).
pub const LEARNED_PHRASES_FILE: &str = "learned-phrases.bin";

/// How many times a phrase equal to a learned one is drawn again; past that (a model that
/// writes nothing else) the last draw is kept, since silence would serve no one better.
pub const REDRAWS: usize = 16;

const MAGIC: &[u8; 8] = b"DRPHRAS1";

#[derive(Clone, Debug, Default, PartialEq)]
pub struct LearnedPhrases {
    sorted: Vec<u64>,
}

impl LearnedPhrases {
    pub fn of<'a>(phrases: impl IntoIterator<Item = &'a Roll>) -> LearnedPhrases {
        let mut sorted: Vec<u64> = phrases.into_iter().filter_map(transposition_free_fingerprint).collect();
        sorted.sort_unstable();
        sorted.dedup();
        LearnedPhrases { sorted }
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// Whether `phrase` equals a learned phrase up to transposition (a silent one never does).
    pub fn contains(&self, phrase: &Roll) -> bool {
        transposition_free_fingerprint(phrase)
            .is_some_and(|fingerprint| self.sorted.binary_search(&fingerprint).is_ok())
    }

    /// The file's bytes: a magic, the count, the fingerprints in ascending order, little-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(16 + 8 * self.sorted.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(self.sorted.len() as u64).to_le_bytes());
        self.sorted.iter().for_each(|f| bytes.extend_from_slice(&f.to_le_bytes()));
        bytes
    }

    /// Reads what `to_bytes` wrote; anything else is refused in words.
    pub fn from_bytes(bytes: &[u8]) -> Result<LearnedPhrases, String> {
        let (magic, rest) = bytes.split_at_checked(MAGIC.len()).ok_or("too short to be a learned-phrases file")?;
        if magic != MAGIC {
            return Err("not a learned-phrases file (it does not begin with DRPHRAS1)".into());
        }
        let (count, rest) = rest.split_at_checked(8).ok_or("cut off before its count")?;
        let count = u64::from_le_bytes(count.try_into().expect("eight bytes"));
        if count.checked_mul(8) != Some(rest.len() as u64) {
            return Err(format!("says it holds {count} fingerprints but has {} bytes of them", rest.len()));
        }
        let sorted: Vec<u64> =
            rest.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("eight bytes"))).collect();
        if sorted.windows(2).any(|w| w[0] >= w[1]) {
            return Err("its fingerprints are not in ascending order (the file is damaged)".into());
        }
        Ok(LearnedPhrases { sorted })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::roll;

    #[test]
    fn a_phrase_is_known_in_any_transposition_and_only_then() {
        let learned_phrase = roll(4, 1, 1, &[(0, 0, 60, 4), (0, 4, 62, 4), (0, 8, 64, 8)]);
        let learned = LearnedPhrases::of([&learned_phrase]);
        assert!(learned.contains(&learned_phrase));
        assert!(learned.contains(&roll(4, 1, 1, &[(0, 0, 65, 4), (0, 4, 67, 4), (0, 8, 69, 8)])), "a fourth higher");
        assert!(!learned.contains(&roll(4, 1, 1, &[(0, 0, 60, 4), (0, 4, 62, 4), (0, 8, 65, 8)])), "one note differs");
        assert!(
            !learned.contains(&roll(4, 1, 1, &[(0, 0, 60, 4), (0, 4, 62, 4), (0, 8, 64, 4), (0, 12, 64, 4)])),
            "re-struck, not held"
        );
        assert!(!learned.contains(&roll(4, 1, 1, &[])), "silence is nobody's");
    }

    #[test]
    fn the_file_reads_back_and_damage_is_refused_in_words() {
        let phrases: Vec<Roll> = (0..5).map(|i| roll(4, 1, 1, &[(0, 0, 60, 2 + i), (0, 8, 67 - i as u8, 4)])).collect();
        let learned = LearnedPhrases::of(&phrases);
        assert_eq!(learned.len(), 5);
        let bytes = learned.to_bytes();
        assert_eq!(LearnedPhrases::from_bytes(&bytes), Ok(learned));
        assert!(LearnedPhrases::from_bytes(&bytes[..bytes.len() - 1]).unwrap_err().contains("holds 5 fingerprints"));
        assert!(LearnedPhrases::from_bytes(b"MThd\0\0\0\x06").unwrap_err().contains("not a learned-phrases file"));
        let mut unsorted = bytes.clone();
        unsorted[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(LearnedPhrases::from_bytes(&unsorted).unwrap_err().contains("ascending"));
        assert!(LearnedPhrases::from_bytes(&[]).is_err());
    }
}
