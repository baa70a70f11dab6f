//! Writing phrases with the voice network, one step and one voice at a time.
//!
//! Sampling is sequential by nature — each choice sees the ones before it — so running it as
//! a graph of small tensor operations would spend its time dispatching them. Everything the
//! network computes from the choices is a sum of embedding products, so those are tabulated
//! once when the model loads; what is left per step is the GRU's recurrent product and the
//! voices' heads, done here in plain loops over the same weights. The per-phrase parts (the
//! conductor, the context, the GRU's other inputs) run on the tensors of
//! [`super::network`], so both paths share every weight; a test holds them equal.

use super::leading::{add_scores, remember, LeadingLayout};
use super::network::{GivenView, VoiceNetwork, VoiceShape};
use super::tokens::{given_view, VoiceState, HOLD, NEW_NOTE, REST};
use super::Kit;
use crate::model::kernels::matvec::multiply_add_rows;
use candle_core::{DType, Device, Result, Tensor};
use rand::Rng;

/// A matrix [rows, columns], row-major.
#[derive(Clone, Debug)]
struct Matrix {
    columns: usize,
    values: Vec<f32>,
}

impl Matrix {
    fn from_tensor(tensor: &Tensor) -> Result<Matrix> {
        let (_, columns) = tensor.dims2()?;
        Ok(Matrix { columns, values: tensor.to_dtype(DType::F32)?.to_device(&Device::Cpu)?.flatten_all()?.to_vec1()? })
    }

    fn row(&self, row: usize) -> &[f32] {
        &self.values[row * self.columns..(row + 1) * self.columns]
    }

    /// `out += self · x`.
    fn multiply_add(&self, x: &[f32], out: &mut [f32]) {
        self.multiply_add_rows(0..out.len(), x, out);
    }

    fn multiply_add_rows(&self, rows: impl Iterator<Item = usize>, x: &[f32], out: &mut [f32]) {
        debug_assert_eq!(x.len(), self.columns);
        multiply_add_rows(&self.values, rows, x, out);
    }
}

fn add(out: &mut [f32], x: &[f32]) {
    out.iter_mut().zip(x).for_each(|(o, v)| *o += v);
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// A linear layer's contribution from one input block (an embedding) for every value the
/// block can take: `W[:, block] · E[value]`, as rows of a matrix.
fn tabulate(weight: &Tensor, first_column: usize, embedding: &Tensor) -> Result<Matrix> {
    let width = embedding.dim(1)?;
    Matrix::from_tensor(&embedding.matmul(&weight.narrow(1, first_column, width)?.t()?.contiguous()?)?)
}

struct HeadTables {
    /// [head, hidden] part of the hidden layer, applied to the GRU state.
    from_state: Matrix,
    bias: Vec<f32>,
    /// For each voice above: contributions of its pitch and its age.
    above: Vec<(Matrix, Matrix)>,
    out: Matrix,
    out_bias: Vec<f32>,
}

impl HeadTables {
    /// A drum lane's scores from its hidden layer: rest, hold and the `strikes` it can play
    /// (by row), every other new note barred.
    fn lane_scores(&self, hidden: &[f32], strikes: &[bool], scores: &mut [f32]) {
        let classes = scores.len();
        let scored = || {
            let playable = (NEW_NOTE as usize..classes).filter(|&class| strikes[class - NEW_NOTE as usize]);
            [REST as usize, HOLD as usize].into_iter().chain(playable)
        };
        scores.fill(f32::NEG_INFINITY);
        for class in scored() {
            scores[class] = self.out_bias[class];
        }
        self.out.multiply_add_rows(scored(), hidden, scores);
    }
}

/// How choices are drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampling {
    /// 0 takes the likeliest choice; 1 draws from the model's distribution.
    pub temperature: f32,
    /// Added to every new-note score (in logits): more or fewer notes.
    pub new_note_bias: f32,
    /// Added to every rest score (in logits): the model's calibrated rest rate.
    pub rest_bias: f32,
    /// Added to the score of every pitch that would sound above the lowest voice above this
    /// one (in logits): the model's calibrated crossing rate.
    pub crossing_bias: f32,
    /// Added to the score of every new note that would move in parallel perfect fifths or
    /// octaves with a voice above (in logits): the model's calibrated parallel rate.
    pub parallel_bias: f32,
    /// Added to the score of every choice that ends a note on the step after it was struck
    /// (a new note or a rest where the voice could hold): fewer or more one-step notes.
    pub short_note_bias: f32,
    /// Added to the score of striking the voice's last pitch again (in logits).
    pub repeat_bias: f32,
    /// Added to the score of every new note more than a fifth from the voice's last pitch
    /// (in logits).
    pub leap_bias: f32,
    /// Chords to follow, where the producer gives them.
    pub chords: Option<ChordGuide>,
}

impl Sampling {
    /// Drawing at `temperature` from the network's scores as they are: no bias, no guide.
    pub fn unbiased(temperature: f32) -> Sampling {
        Sampling {
            temperature,
            new_note_bias: 0.0,
            rest_bias: 0.0,
            crossing_bias: 0.0,
            parallel_bias: 0.0,
            short_note_bias: 0.0,
            repeat_bias: 0.0,
            leap_bias: 0.0,
            chords: None,
        }
    }
}

/// Most bars of a phrase a guide holds chords for.
pub const GUIDE_BARS: usize = 16;

/// Pitches to keep to, for the bars of one phrase: at every step a pitch outside the bar's
/// scale is `scale_bias` less likely (in logits), and on strong beats a pitch outside the bar's chord
/// is `bias` less likely besides, whether struck there or held into it. Chords bind strong
/// beats only, so that passing and neighbour notes between them stay the model's to write;
/// the scale keeps those in the key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChordGuide {
    /// Pitch classes (bit c for pitch class c) of each bar's chord.
    pub bars: [u16; GUIDE_BARS],
    pub steps_per_bar: usize,
    /// Steps between strong beats.
    pub strong_steps: usize,
    /// The pitch of choice row 0.
    pub lowest_pitch: u8,
    pub bias: f32,
    /// Pitch classes of each bar's scale: a melody that modulates is kept to each key in turn.
    pub scales: [u16; GUIDE_BARS],
    pub scale_bias: f32,
}

/// Every pitch class: a guide's chords or scale that constrain nothing.
pub const ALL_PITCH_CLASSES: u16 = 0xfff;

impl ChordGuide {
    /// A guide that only keeps to a scale.
    pub fn scale_only(scale: u16, steps_per_bar: usize, lowest_pitch: u8, scale_bias: f32) -> ChordGuide {
        ChordGuide {
            bars: [ALL_PITCH_CLASSES; GUIDE_BARS],
            steps_per_bar,
            strong_steps: steps_per_bar,
            lowest_pitch,
            bias: 0.0,
            scales: [scale; GUIDE_BARS],
            scale_bias,
        }
    }

    /// Moves the scores of a step's choices; `holding` is the row + 1 the voice sounds (0 resting).
    /// The new notes' share of the choice stays as the model had it: the guide decides which
    /// notes a voice strikes, not whether it strikes one — a penalty alone would hand the
    /// off-chord notes' share to rest, and a part following chords would fall silent for bars.
    fn apply(&self, step: usize, holding: u32, scores: &mut [f32]) {
        let new_notes_before = log_sum_exp(&scores[NEW_NOTE as usize..]);
        let bar = (step / self.steps_per_bar).min(GUIDE_BARS - 1);
        let chord = if step.is_multiple_of(self.strong_steps) { self.bars[bar] } else { ALL_PITCH_CLASSES };
        let penalty = |row: u32| {
            let class = 1 << ((u32::from(self.lowest_pitch) + row) % 12);
            let off_scale = if self.scales[bar] & class == 0 { self.scale_bias } else { 0.0 };
            off_scale + if chord & class == 0 { self.bias } else { 0.0 }
        };
        for (row, score) in scores[NEW_NOTE as usize..].iter_mut().enumerate() {
            *score += penalty(row as u32);
        }
        let lift = new_notes_before - log_sum_exp(&scores[NEW_NOTE as usize..]);
        if lift.is_finite() {
            scores[NEW_NOTE as usize..].iter_mut().for_each(|score| *score += lift);
        }
        if holding > 0 {
            scores[HOLD as usize] += penalty(holding - 1);
        }
    }
}

/// ln Σ e^x, safe for large and infinite scores.
fn log_sum_exp(scores: &[f32]) -> f32 {
    let (top, log_total) = top_and_log_total(scores);
    top + log_total
}

/// The largest score, and the log of the sum of every score's exp taken from it (0 when no
/// score is finite): log-sum-exp in two parts, so that it neither overflows nor is rounded
/// differently where a single choice's log-probability is taken from it.
fn top_and_log_total(scores: &[f32]) -> (f32, f32) {
    let top = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !top.is_finite() {
        return (top, 0.0);
    }
    (top, scores.iter().map(|x| (x - top).exp()).sum::<f32>().ln())
}

pub struct VoiceSampler {
    shape: VoiceShape,
    /// Per voice: the GRU input's contributions of its pitch and its age.
    input_pitch: Vec<Matrix>,
    input_age: Vec<Matrix>,
    weight_hh: Matrix,
    bias_hh: Vec<f32>,
    /// The GRU input's weights for the conditions ([conditions, 3 hidden], on the network's
    /// device), transposed once here rather than at every phrase: the copy is a megabyte.
    conditioning_weight: Tensor,
    heads: Vec<HeadTables>,
    /// The voice-leading table, where the model has one.
    leading: Option<(LeadingLayout, Vec<f32>)>,
    kit: Kit,
    /// Per voice, the loudness levels' layer (weight, bias); empty without levels.
    velocity: Vec<(Matrix, Vec<f32>)>,
}

/// Choices a caller fixes, [step][voice]: `None` (or a missing step or voice) is the
/// model's to make.
pub type Given = [Vec<Option<u32>>];

/// How a span written between two given sides is chosen (`VoiceSampler::best_joined`): of
/// `candidates` drawn, the one that scores best, its own choices' likelihood counting
/// `own_weight` beside that of the given choices after it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JoinDraws {
    pub candidates: usize,
    pub own_weight: f32,
}

impl VoiceSampler {
    /// The drum rows each voice may strike (`None` for a pitched voice).
    pub fn kit(&self) -> &Kit {
        &self.kit
    }

    pub fn new(network: &VoiceNetwork, kit: Kit) -> Result<VoiceSampler> {
        let s = network.shape;
        let features = s.voice_features();
        let (pitch, age) = (network.pitch.embeddings(), network.age.embeddings());
        let mut input_pitch = Vec::with_capacity(s.voices);
        let mut input_age = Vec::with_capacity(s.voices);
        for v in 0..s.voices {
            input_pitch.push(tabulate(&network.gru.weight_ih, v * features, pitch)?);
            input_age.push(tabulate(&network.gru.weight_ih, v * features + s.embed, age)?);
        }
        let mut heads = Vec::with_capacity(s.voices);
        for (v, head) in network.heads.iter().enumerate() {
            let weight = head.hidden.weight();
            let above = (0..v)
                .map(|u| {
                    Ok((
                        tabulate(weight, s.hidden + u * features, pitch)?,
                        tabulate(weight, s.hidden + u * features + s.embed, age)?,
                    ))
                })
                .collect::<Result<_>>()?;
            heads.push(HeadTables {
                from_state: Matrix::from_tensor(&weight.narrow(1, 0, s.hidden)?)?,
                bias: bias_of(head.hidden.bias(), s.head)?,
                above,
                out: Matrix::from_tensor(head.out.weight())?,
                out_bias: bias_of(head.out.bias(), s.classes())?,
            });
        }
        let choice_columns = s.voices * s.voice_features();
        let conditioning_weight =
            network.gru.weight_ih.narrow(1, choice_columns, s.step_input() - choice_columns)?.t()?.contiguous()?;
        Ok(VoiceSampler {
            shape: s,
            input_pitch,
            input_age,
            weight_hh: Matrix::from_tensor(&network.gru.weight_hh)?,
            bias_hh: network.gru.bias_hh.to_dtype(DType::F32)?.to_vec1()?,
            conditioning_weight,
            heads,
            leading: network
                .leading
                .as_ref()
                .map(|table| {
                    Ok::<_, candle_core::Error>((
                        s.leading_layout(),
                        table.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
                    ))
                })
                .transpose()?,
            kit,
            velocity: network
                .heads
                .iter()
                .filter_map(|head| head.velocity.as_ref())
                .map(|layer| Ok((Matrix::from_tensor(layer.weight())?, bias_of(layer.bias(), s.velocity_levels)?)))
                .collect::<Result<_>>()?,
        })
    }

    /// Per step of one phrase, the GRU input's part that does not depend on the choices
    /// (W_ih · [0, position, bar, context] + b_ih), and each bar's first state.
    fn phrase_constants(&self, network: &VoiceNetwork, z: &[f32], given: &Given) -> Result<(Matrix, Matrix)> {
        let s = self.shape;
        // The network's own device (a trainer's GPU, say); only the tables live on the host.
        let device = network.gru.weight_ih.device();
        let z = Tensor::from_slice(z, (1, s.latent), device)?;
        let bar_embeddings = network.conductor.forward(&z)?;
        let (sounding, age, mask) = given_view(given, s.steps(), s.voices, s.max_age());
        let shape = (1, s.steps(), s.voices);
        let view = GivenView {
            sounding: Tensor::from_vec(sounding, shape, device)?,
            age: Tensor::from_vec(age, shape, device)?,
            mask: Tensor::from_vec(mask, shape, device)?,
        };
        let conditions = network.step_conditions(&bar_embeddings, &network.context_of(&view)?)?.squeeze(0)?;
        let constants = conditions.matmul(&self.conditioning_weight)?.broadcast_add(&network.gru.bias_ih)?;
        let initial = network.initial_state(&bar_embeddings.squeeze(0)?)?;
        Ok((Matrix::from_tensor(&constants)?, Matrix::from_tensor(&initial)?))
    }

    /// Writes one phrase from latent `z`, from silence, as the decoder learnt its phrases.
    /// `given[step][voice]` forces a choice there; missing steps or `None` are the model's to
    /// choose. Returns the tokens [steps][voices]; `scores_seen` collects every voice's
    /// scores before its choice at the steps the network runs, for checking them against it.
    ///
    /// The network runs only where it has something to write: the recurrent state starts
    /// afresh at every bar line, so the bars before the first bar with a choice to make are
    /// only read (their given choices set each voice's state), and the steps after the last
    /// choice to make cannot change it. Rewriting the first beats of a phrase (a seam) thus
    /// costs those beats, not a phrase.
    pub fn phrase(
        &self,
        network: &VoiceNetwork,
        z: &[f32],
        given: &Given,
        sampling: Sampling,
        rng: &mut impl Rng,
        scores_seen: Option<&mut Vec<Vec<f32>>>,
    ) -> Result<Vec<Vec<u32>>> {
        self.check_given(given)?;
        let (constants, initial) = self.phrase_constants(network, z, given)?;
        let run = self.run_span(given, false);
        Ok(self.write(&constants, &initial, given, run, sampling, rng, 0.0, scores_seen).0)
    }

    /// The likeliest-joined of `draws.candidates` phrases written around `given` (see
    /// `phrase`): each is scored by how likely the network finds the given choices that follow
    /// what it wrote, to the end of that bar, so that a span written between two given sides is
    /// one the side after it follows from, not only one that follows the side before it; plus
    /// `draws.own_weight` times how likely it finds the candidate's own choices (as biased
    /// before the draw), so that of openings the side after fits alike the smoother is kept. The
    /// network's recurrent state starts afresh each bar, so the rest of the phrase scores the
    /// same after every candidate. The candidates draw from `rng` one after another.
    pub fn best_joined(
        &self,
        network: &VoiceNetwork,
        z: &[f32],
        given: &Given,
        sampling: Sampling,
        rng: &mut impl Rng,
        draws: JoinDraws,
    ) -> Result<Vec<Vec<u32>>> {
        self.check_given(given)?;
        let (constants, initial) = self.phrase_constants(network, z, given)?;
        let run = self.run_span(given, true);
        let mut best: Option<(Vec<Vec<u32>>, f32)> = None;
        for _ in 0..draws.candidates.max(1) {
            let (tokens, joined) =
                self.write(&constants, &initial, given, run.clone(), sampling, rng, draws.own_weight, None);
            if best.as_ref().is_none_or(|(_, most)| joined > *most) {
                best = Some((tokens, joined));
            }
        }
        Ok(best.expect("at least one candidate").0)
    }

    fn check_given(&self, given: &Given) -> Result<()> {
        match given.iter().flatten().flatten().find(|&&t| t as usize >= self.shape.classes()) {
            Some(token) => {
                candle_core::bail!("a given choice {token} lies outside the model's {} choices", self.shape.classes())
            }
            None => Ok(()),
        }
    }

    /// The steps the network must run for `given`: from the bar of the first choice to make to
    /// the last choice to make, or (`to_bar_end`) on to the end of the bar holding the step
    /// after it, so that given choices after it are scored. Empty when everything is given.
    fn run_span(&self, given: &Given, to_bar_end: bool) -> std::ops::Range<usize> {
        let s = self.shape;
        let is_free =
            |step: usize| (0..s.voices).any(|v| given.get(step).and_then(|g| g.get(v).copied()).flatten().is_none());
        let Some(first_free) = (0..s.steps()).find(|&step| is_free(step)) else { return 0..0 };
        let last_free = (0..s.steps()).rev().find(|&step| is_free(step)).expect("a free step was found");
        let end = if to_bar_end { ((last_free + 1) / s.steps_per_bar + 1) * s.steps_per_bar } else { last_free + 1 };
        first_free - first_free % s.steps_per_bar..end.min(s.steps())
    }

    /// Writes the phrase, running the network over `run` (the steps outside it are given
    /// whole); returns the tokens and the log-likelihood the network gives the given choices
    /// it runs over after the first choice it makes, plus `own_weight` times that of the
    /// choices it makes.
    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        constants: &Matrix,
        initial: &Matrix,
        given: &Given,
        run: std::ops::Range<usize>,
        sampling: Sampling,
        rng: &mut impl Rng,
        own_weight: f32,
        mut scores_seen: Option<&mut Vec<Vec<f32>>>,
    ) -> (Vec<Vec<u32>>, f32) {
        let s = self.shape;
        let mut states = vec![VoiceState::SILENT; s.voices];
        let mut made_a_choice = false;
        let mut joined = 0f32;
        let mut recurrence = Recurrence::new(s.hidden);
        let mut head_hidden = vec![0f32; s.head];
        let mut scores = vec![0f32; s.classes()];
        // The scores a choice is drawn from, before the draw reshapes them, where the choices'
        // own likelihood counts.
        let mut drawn_from = (own_weight > 0.0).then(|| vec![0f32; s.classes()]);
        // Each voice's last pitch before the step, and its pitch at this step once chosen.
        let mut last = vec![0u32; s.voices];
        let mut now = vec![0u32; s.voices];
        let mut leading_entries = Vec::new();
        let (mut pitched_last, mut pitched_now) = (Vec::with_capacity(s.voices), Vec::with_capacity(s.voices));
        let mut tokens = Vec::with_capacity(s.steps());
        for step in 0..s.steps() {
            if !run.contains(&step) {
                let chosen: Vec<u32> =
                    (0..s.voices).map(|v| given[step][v].expect("a step the network skips is given whole")).collect();
                for (v, &token) in chosen.iter().enumerate() {
                    states[v] = states[v].after(token, s.max_age());
                    now[v] = states[v].sounding;
                }
                remember(&mut last, &now);
                tokens.push(chosen);
                continue;
            }
            self.advance(constants, initial, step, &states, &mut recurrence);
            let mut chosen = vec![0u32; s.voices];
            let forced = given.get(step);
            for (v, head) in self.heads.iter().enumerate() {
                let forced_token = forced.and_then(|f| f.get(v).copied().flatten());
                // A drum lane choosing strikes only its own sounds, so only those are scored; a
                // given choice is scored in full, as the network reads it.
                let strikes = match forced_token {
                    Some(_) => None,
                    None => self.kit.rows.get(v).and_then(Option::as_deref),
                };
                self.head_hidden(v, &recurrence.state, &states, &mut head_hidden);
                match strikes {
                    Some(rows) => head.lane_scores(&head_hidden, rows, &mut scores),
                    None => {
                        scores.copy_from_slice(&head.out_bias);
                        head.out.multiply_add(&head_hidden, &mut scores);
                    }
                }
                if let Some((layout, table)) = &self.leading {
                    add_scores(layout, table, v, &last, &now[..v], strikes, &mut scores, &mut leading_entries);
                }
                if let Some(seen) = scores_seen.as_deref_mut() {
                    seen.push(scores.clone());
                }
                let token = match forced_token {
                    Some(token) => {
                        if made_a_choice {
                            joined += log_probability(&scores, token);
                        }
                        token
                    }
                    None => {
                        made_a_choice = true;
                        // Part-writing is among the pitched voices above: drums lead no voice.
                        if !self.kit.is_drum(v) {
                            pitched_last.clear();
                            pitched_now.clear();
                            for u in (0..v).filter(|&u| !self.kit.is_drum(u)) {
                                pitched_last.push(last[u]);
                                pitched_now.push(now[u]);
                            }
                            pitched_last.push(last[v]);
                            add_part_writing_biases(&mut scores, states[v], &pitched_last, &pitched_now, sampling);
                            if let Some(guide) = &sampling.chords {
                                guide.apply(step, states[v].sounding, &mut scores);
                            }
                        }
                        if let Some(drawn_from) = drawn_from.as_mut() {
                            drawn_from.copy_from_slice(&scores);
                        }
                        let token = choose(&mut scores, states[v], sampling, rng);
                        if let Some(drawn_from) = &drawn_from {
                            joined += own_weight * log_probability(drawn_from, token);
                        }
                        token
                    }
                };
                chosen[v] = token;
                // The voices below see this voice as it now is.
                states[v] = states[v].after(token, s.max_age());
                now[v] = states[v].sounding;
            }
            remember(&mut last, &now);
            tokens.push(chosen);
        }
        (tokens, joined)
    }
}

/// The GRU's state at a step, with its scratch space.
struct Recurrence {
    state: Vec<f32>,
    gates_in: Vec<f32>,
    gates_state: Vec<f32>,
}

impl Recurrence {
    fn new(hidden: usize) -> Recurrence {
        Recurrence { state: vec![0.0; hidden], gates_in: vec![0.0; 3 * hidden], gates_state: vec![0.0; 3 * hidden] }
    }
}

impl VoiceSampler {
    /// One step of the recurrence from the voices' `states` before it; a bar starts afresh
    /// from its embedding.
    fn advance(&self, constants: &Matrix, initial: &Matrix, step: usize, states: &[VoiceState], r: &mut Recurrence) {
        let s = self.shape;
        let hidden = s.hidden;
        if step.is_multiple_of(s.steps_per_bar) {
            r.state.copy_from_slice(initial.row(step / s.steps_per_bar));
        }
        r.gates_in.copy_from_slice(constants.row(step));
        for (v, voice) in states.iter().enumerate() {
            add(&mut r.gates_in, self.input_pitch[v].row(voice.sounding as usize));
            add(&mut r.gates_in, self.input_age[v].row(voice.age as usize));
        }
        r.gates_state.copy_from_slice(&self.bias_hh);
        self.weight_hh.multiply_add(&r.state, &mut r.gates_state);
        for i in 0..hidden {
            let reset = sigmoid(r.gates_in[i] + r.gates_state[i]);
            let update = sigmoid(r.gates_in[hidden + i] + r.gates_state[hidden + i]);
            let candidate = (r.gates_in[2 * hidden + i] + reset * r.gates_state[2 * hidden + i]).tanh();
            r.state[i] = candidate + update * (r.state[i] - candidate);
        }
    }

    /// Voice `v`'s hidden layer from the step's state and the voices above as they now are.
    fn head_hidden(&self, v: usize, state: &[f32], states: &[VoiceState], out: &mut [f32]) {
        let head = &self.heads[v];
        out.copy_from_slice(&head.bias);
        head.from_state.multiply_add(state, out);
        for (u, (pitch, age)) in head.above.iter().enumerate() {
            add(out, pitch.row(states[u].sounding as usize));
            add(out, age.row(states[u].age as usize));
        }
        out.iter_mut().for_each(|x| *x = x.max(0.0));
    }

    /// The loudness level of every note struck in `tokens` (one phrase, [step][voice]), drawn
    /// at `temperature` from what the network makes of the phrase under latent `z` (0 at
    /// every other cell; `None` for a decoder without levels). Levels feed nothing back, so
    /// drawing them once the choices are final is drawing them as the choices are made.
    pub fn levels(
        &self,
        network: &VoiceNetwork,
        z: &[f32],
        tokens: &[Vec<u32>],
        temperature: f32,
        rng: &mut impl Rng,
    ) -> Result<Option<Vec<Vec<u8>>>> {
        if self.velocity.is_empty() {
            return Ok(None);
        }
        let s = self.shape;
        let given: Vec<Vec<Option<u32>>> = tokens.iter().map(|step| step.iter().map(|&t| Some(t)).collect()).collect();
        self.check_given(&given)?;
        let (constants, initial) = self.phrase_constants(network, z, &[])?;
        let mut recurrence = Recurrence::new(s.hidden);
        let mut head_hidden = vec![0f32; s.head];
        let mut scores = vec![0f32; s.velocity_levels];
        let mut states = vec![VoiceState::SILENT; s.voices];
        let mut levels = vec![vec![0u8; s.voices]; tokens.len()];
        for (step, choices) in tokens.iter().enumerate().take(s.steps()) {
            self.advance(&constants, &initial, step, &states, &mut recurrence);
            for (v, &token) in choices.iter().enumerate() {
                if token >= NEW_NOTE {
                    self.head_hidden(v, &recurrence.state, &states, &mut head_hidden);
                    let (weight, bias) = &self.velocity[v];
                    scores.copy_from_slice(bias);
                    weight.multiply_add(&head_hidden, &mut scores);
                    levels[step][v] = draw(&mut scores, temperature, rng) as u8;
                }
                states[v] = states[v].after(token, s.max_age());
            }
        }
        Ok(Some(levels))
    }
}

/// log softmax(scores)[token]: how likely the network finds a choice, before any bias.
fn log_probability(scores: &[f32], token: u32) -> f32 {
    let (top, log_total) = top_and_log_total(scores);
    scores[token as usize] - top - log_total
}

fn bias_of(bias: Option<&Tensor>, size: usize) -> Result<Vec<f32>> {
    match bias {
        Some(bias) => bias.to_dtype(DType::F32)?.to_vec1(),
        None => Ok(vec![0.0; size]),
    }
}

/// Moves the scores of voice `v` (the last of `last`, each voice's last pitch before the
/// step, `row + 1`) by the calibrated part-writing biases: every choice that would sound
/// above the lowest of the voices above (`now`, 0 resting) crosses it; a new note on the
/// voice's last pitch repeats it, one more than a fifth from it leaps; every new note
/// that moves with a voice above in the same direction from a perfect fifth or octave
/// (unison) to the same interval class is a parallel.
fn add_part_writing_biases(scores: &mut [f32], voice: VoiceState, last: &[u32], now: &[u32], sampling: Sampling) {
    let lowest_above = now.iter().copied().filter(|&p| p > 0).min().unwrap_or(0);
    if lowest_above > 0 && sampling.crossing_bias != 0.0 {
        // New note at row r sounds r + 1: rows from `lowest_above` up cross.
        scores[NEW_NOTE as usize + lowest_above as usize..].iter_mut().for_each(|x| *x += sampling.crossing_bias);
        if voice.sounding > lowest_above {
            scores[HOLD as usize] += sampling.crossing_bias;
        }
    }
    let (&own_before, last_above) = last.split_last().expect("the voice itself is in `last`");
    if own_before == 0 {
        return;
    }
    if sampling.repeat_bias != 0.0 || sampling.leap_bias != 0.0 {
        for (row, score) in scores[NEW_NOTE as usize..].iter_mut().enumerate() {
            match (row as i32 + 1 - own_before as i32).abs() {
                0 => *score += sampling.repeat_bias,
                8.. => *score += sampling.leap_bias,
                _ => {}
            }
        }
    }
    if sampling.parallel_bias == 0.0 {
        return;
    }
    for (&upper_before, &upper_now) in last_above.iter().zip(now) {
        if upper_before == 0 || upper_now == 0 || upper_now == upper_before {
            continue;
        }
        let class_before = (upper_before as i32 - own_before as i32).rem_euclid(12);
        if class_before != 0 && class_before != 7 {
            continue;
        }
        // The one pitch keeping that interval class in each octave, moving the same way.
        let upward = upper_now > upper_before;
        for (row, score) in scores[NEW_NOTE as usize..].iter_mut().enumerate() {
            let pitch = row as i32 + 1;
            let moves_with = if upward { pitch > own_before as i32 } else { pitch < own_before as i32 };
            if moves_with && (upper_now as i32 - pitch).rem_euclid(12) == class_before {
                *score += sampling.parallel_bias;
            }
        }
    }
}

/// A choice from one voice's scores: hold is barred for a silent voice; new notes and rest
/// are moved by their biases, and by the short-note bias where they would end a note struck
/// at the step before; then the likeliest, or a draw at the temperature.
fn choose(scores: &mut [f32], voice: VoiceState, sampling: Sampling, rng: &mut impl Rng) -> u32 {
    if !voice.may_hold() {
        scores[HOLD as usize] = f32::NEG_INFINITY;
    }
    let ending_fresh_note = if voice.sounding > 0 && voice.age == 1 { sampling.short_note_bias } else { 0.0 };
    scores[NEW_NOTE as usize..].iter_mut().for_each(|x| *x += sampling.new_note_bias + ending_fresh_note);
    scores[REST as usize] += sampling.rest_bias + ending_fresh_note;
    draw(scores, sampling.temperature, rng)
}

/// The likeliest of `scores` at temperature 0, else a draw from their softmax at `temperature`.
fn draw(scores: &mut [f32], temperature: f32, rng: &mut impl Rng) -> u32 {
    draw_at(scores, temperature, || rng.random::<f32>())
}

/// [`draw`] with its uniform in [0, 1) from `uniform`, asked for only when there is a draw to
/// make: the PyTorch twin's sampler is checked against it with the same uniforms.
pub fn draw_at(scores: &mut [f32], temperature: f32, uniform: impl FnOnce() -> f32) -> u32 {
    let best = scores.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i);
    if temperature <= 0.0 {
        return best as u32;
    }
    let top = scores[best];
    let mut total = 0.0f32;
    for x in scores.iter_mut() {
        *x = ((*x - top) / temperature).exp();
        total += *x;
    }
    let mut pick = uniform() * total;
    for (i, weight) in scores.iter().enumerate() {
        pick -= weight;
        if pick <= 0.0 && *weight > 0.0 {
            return i as u32;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::super::network::tests::{seeded_network, small_shape};
    use super::super::network::VoiceBatch;
    use super::super::tokens::states_after;
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// A small network of seeded weights, and its sampler.
    fn untrained() -> (VoiceShape, VoiceNetwork, VoiceSampler) {
        let shape = small_shape();
        let network = seeded_network(shape);
        let sampler = VoiceSampler::new(&network, Kit::default()).unwrap();
        (shape, network, sampler)
    }

    /// Lets the sampler write a phrase around `given`, recording its scores, then scores the
    /// same choices with the network under teacher forcing: the two must agree at every step
    /// the sampler ran, which are `ran`. Returns the tokens.
    fn sampled_scores_match_the_network(kit: Kit, given: &Given, ran: std::ops::Range<usize>) -> Vec<Vec<u32>> {
        let (shape, network, _) = untrained();
        let sampler = VoiceSampler::new(&network, kit.clone()).unwrap();
        let z = [0.4f32, -0.2, 1.1];
        let mut seen = Vec::new();
        let sampling = Sampling::unbiased(1.0);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let tokens = sampler.phrase(&network, &z, given, sampling, &mut rng, Some(&mut seen)).unwrap();
        let replay: Vec<VoiceState> = states_after(&tokens, shape.max_age()).into_iter().flatten().collect();
        let sounding: Vec<u32> = replay.iter().map(|state| state.sounding).collect();
        let age: Vec<u32> = replay.iter().map(|state| state.age).collect();
        let dims = (1, shape.steps(), shape.voices);
        let (given_sounding, given_age, mask) = given_view(given, shape.steps(), shape.voices, shape.max_age());
        let batch = VoiceBatch {
            sounding: Tensor::from_vec(sounding, dims, &Device::Cpu).unwrap(),
            age: Tensor::from_vec(age, dims, &Device::Cpu).unwrap(),
            given: GivenView {
                sounding: Tensor::from_vec(given_sounding, dims, &Device::Cpu).unwrap(),
                age: Tensor::from_vec(given_age, dims, &Device::Cpu).unwrap(),
                mask: Tensor::from_vec(mask, dims, &Device::Cpu).unwrap(),
            },
        };
        let zt = Tensor::from_slice(&z, (1, 3), &Device::Cpu).unwrap();
        let expected =
            network.forward(&zt, &batch).unwrap().flatten_to(2).unwrap().squeeze(0).unwrap().to_vec2::<f32>().unwrap();
        let expected = &expected[ran.start * shape.voices..ran.end * shape.voices];
        assert_eq!(seen.len(), expected.len());
        for (index, (got, want)) in seen.iter().zip(expected).enumerate() {
            let (step, v) = (ran.start + index / shape.voices, index % shape.voices);
            let chose = given.get(step).and_then(|g| g.get(v).copied().flatten()).is_none();
            for (class, (a, b)) in got.iter().zip(want).enumerate() {
                let barred = chose
                    && class >= NEW_NOTE as usize
                    && kit.rows.get(v).and_then(Option::as_ref).is_some_and(|rows| !rows[class - NEW_NOTE as usize]);
                match barred {
                    true => assert_eq!(*a, f32::NEG_INFINITY, "score {index}: a sound the lane cannot strike"),
                    false => assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "score {index}: {got:?} vs {want:?}"),
                }
            }
        }
        tokens
    }

    #[test]
    fn the_sampler_scores_as_the_network_does() {
        let steps = small_shape().steps();
        let tokens = sampled_scores_match_the_network(Kit::default(), &[], 0..steps);
        assert!(tokens.iter().flatten().any(|&t| t >= NEW_NOTE), "an untrained network still plays something");
    }

    #[test]
    fn a_drum_lane_is_scored_as_the_network_does_at_the_sounds_it_can_strike() {
        let shape = small_shape();
        let lane: Vec<bool> = (0..shape.pitches).map(|row| row % 2 == 1).collect();
        let kit = Kit { rows: vec![None, Some(lane)] };
        // The lane's first bar is given: a given choice is scored in full, as the network reads it.
        let given: Vec<Vec<Option<u32>>> =
            (0..shape.steps_per_bar).map(|step| vec![None, Some(if step == 0 { NEW_NOTE } else { REST })]).collect();
        sampled_scores_match_the_network(kit, &given, 0..shape.steps());
    }

    #[test]
    fn around_a_given_span_the_sampler_runs_only_from_its_bar_to_its_last_choice_and_scores_alike() {
        // Two bars of four steps: the first bar given whole, the second's first three steps free.
        let given: Vec<Vec<Option<u32>>> = (0..8)
            .map(|step| match step {
                0 => vec![Some(NEW_NOTE + 1), Some(NEW_NOTE + 4)],
                1..=3 => vec![Some(HOLD), Some(REST)],
                4..=6 => vec![None, None],
                _ => vec![Some(NEW_NOTE + 2), Some(REST)],
            })
            .collect();
        let tokens = sampled_scores_match_the_network(Kit::default(), &given, 4..7);
        assert_eq!(
            tokens[..4],
            [vec![NEW_NOTE + 1, NEW_NOTE + 4], vec![HOLD, REST], vec![HOLD, REST], vec![HOLD, REST]]
        );
        assert_eq!(tokens[7], vec![NEW_NOTE + 2, REST]);
    }

    #[test]
    fn given_choices_are_kept_and_the_likeliest_choice_is_repeatable() {
        let (shape, network, sampler) = untrained();
        let given: Vec<Vec<Option<u32>>> =
            (0..shape.steps()).map(|step| vec![Some(if step % 2 == 0 { NEW_NOTE + 3 } else { HOLD }), None]).collect();
        let strict = Sampling::unbiased(0.0);
        let write = |seed: u64| {
            sampler
                .phrase(&network, &[0.1, 0.2, 0.3], &given, strict, &mut ChaCha8Rng::seed_from_u64(seed), None)
                .unwrap()
        };
        let tokens = write(1);
        assert!(tokens.iter().zip(&given).all(|(t, g)| Some(t[0]) == g[0]), "the given voice is kept");
        assert_eq!(tokens, write(2), "at temperature 0 the seed does not matter");
    }

    #[test]
    fn a_drum_lane_strikes_only_its_sounds_and_no_chord_or_part_writing_moves_it() {
        let (shape, network, _) = untrained();
        // The lower voice is a lane of rows 1 and 3; the guide allows only row 0's pitch
        // class, and part-writing biases would bar the lane from sounding above the voice above.
        let kit = Kit { rows: vec![None, Some(vec![false, true, false, true, false])] };
        let sampler = VoiceSampler::new(&network, kit).unwrap();
        let mut sampling = Sampling::unbiased(1.0);
        sampling.crossing_bias = -1e6;
        let mut guide = ChordGuide::scale_only(1, shape.steps_per_bar, 0, -1e6);
        guide.bias = -1e6;
        guide.bars = [1; GUIDE_BARS];
        sampling.chords = Some(guide);
        sampling.new_note_bias = 5.0;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut struck = [0usize; 5];
        for _ in 0..20 {
            for step in sampler.phrase(&network, &[0.1, -0.4, 0.8], &[], sampling, &mut rng, None).unwrap() {
                assert!(
                    step[0] == REST || step[0] == HOLD || step[0] == NEW_NOTE,
                    "the pitched voice keeps to the guide"
                );
                if step[1] >= NEW_NOTE {
                    struck[(step[1] - NEW_NOTE) as usize] += 1;
                }
            }
        }
        assert_eq!((struck[0], struck[2], struck[4]), (0, 0, 0), "only the lane's sounds: {struck:?}");
        assert!(struck[1] > 0 && struck[3] > 0, "both of its sounds, guide or not: {struck:?}");
    }

    #[test]
    fn loudness_levels_are_the_networks_levels_for_the_notes_struck() {
        let (shape, network, sampler) = untrained();
        let z = [0.4f32, -0.2, 0.9];
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let tokens = sampler.phrase(&network, &z, &[], Sampling::unbiased(1.0), &mut rng, None).unwrap();
        let levels = sampler.levels(&network, &z, &tokens, 0.0, &mut rng).unwrap().expect("the shape has levels");
        let states = states_after(&tokens, shape.max_age());
        let column = |pick: fn(&VoiceState) -> u32| -> Tensor {
            let cells: Vec<u32> = states.iter().flatten().map(pick).collect();
            Tensor::from_vec(cells, (1, shape.steps(), shape.voices), &Device::Cpu).unwrap()
        };
        let batch = VoiceBatch {
            sounding: column(|s| s.sounding),
            age: column(|s| s.age),
            given: super::super::network::tests::nothing_given(1, shape.steps(), shape.voices),
        };
        let z_tensor = Tensor::from_slice(&z, (1, 3), &Device::Cpu).unwrap();
        let scores = network.forward_with_levels(&z_tensor, &batch).unwrap().1.unwrap();
        let scores = scores.squeeze(0).unwrap().to_vec3::<f32>().unwrap();
        let mut struck = 0;
        for (step, choices) in tokens.iter().enumerate() {
            for (v, &token) in choices.iter().enumerate() {
                let expected = match token >= NEW_NOTE {
                    true => {
                        struck += 1;
                        let row = &scores[step][v];
                        (0..row.len()).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap() as u8
                    }
                    false => 0,
                };
                assert_eq!(levels[step][v], expected, "step {step}, voice {v}");
            }
        }
        assert!(struck > 0);
    }

    #[test]
    fn a_silent_voice_never_holds() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for _ in 0..100 {
            let mut scores = vec![0.0, 50.0, 0.0, 0.0];
            let token = choose(&mut scores, VoiceState::SILENT, Sampling::unbiased(1.0), &mut rng);
            assert_ne!(token, HOLD);
        }
    }

    #[test]
    fn the_crossing_bias_moves_exactly_the_choices_that_cross() {
        // Rest, hold, then new notes at rows 0..6 (pitches 1..7); the voice above sounds 4.
        let sampling = Sampling { crossing_bias: -2.0, ..Sampling::unbiased(0.0) };
        let flat = || vec![0.0f32; NEW_NOTE as usize + 6];
        let holding_high = VoiceState { sounding: 6, age: 1 };
        let mut scores = flat();
        add_part_writing_biases(&mut scores, holding_high, &[4, 6], &[4], sampling);
        let crossed: Vec<bool> = scores.iter().map(|&x| x < 0.0).collect();
        let expected: Vec<bool> = (0..scores.len() as u32).map(|t| t == HOLD || t >= NEW_NOTE + 4).collect();
        assert_eq!(crossed, expected, "hold at 6 and new notes 5, 6 cross; 4 (a unison) does not");
        let mut scores = flat();
        add_part_writing_biases(&mut scores, holding_high, &[4, 6], &[0], sampling);
        assert!(scores.iter().all(|&x| x == 0.0), "with no voice sounding above, nothing crosses");
    }

    #[test]
    fn the_parallel_bias_moves_exactly_the_notes_that_move_in_parallel_fifths_or_octaves() {
        let sampling = Sampling { parallel_bias: -3.0, ..Sampling::unbiased(0.0) };
        let moved = |last: &[u32], now: &[u32]| -> Vec<u32> {
            let mut scores = vec![0.0f32; NEW_NOTE as usize + 40];
            add_part_writing_biases(
                &mut scores,
                VoiceState { sounding: *last.last().unwrap(), age: 1 },
                last,
                now,
                sampling,
            );
            scores.iter().enumerate().filter(|(_, &x)| x < 0.0).map(|(t, _)| t as u32 - NEW_NOTE + 1).collect()
        };
        // The upper voice goes 27 -> 29 over a lower voice at 20, a fifth: moving up to 22
        // keeps the fifth, and so does 34 (the same class, above it); 10 is contrary motion.
        assert_eq!(moved(&[27, 20], &[29]), vec![22, 34]);
        assert_eq!(moved(&[32, 20], &[30]), vec![6, 18], "octaves, moving down");
        assert!(moved(&[28, 20], &[30]).is_empty(), "from a sixth nothing is parallel");
        assert!(moved(&[27, 20], &[27]).is_empty(), "an upper voice that holds makes oblique motion");
        assert!(moved(&[27, 0], &[29]).is_empty(), "a voice's first note has no motion");
    }

    #[test]
    fn the_repeat_and_leap_biases_move_exactly_the_repeats_and_the_leaps_beyond_a_fifth() {
        let sampling = Sampling { repeat_bias: -1.0, leap_bias: -2.0, ..Sampling::unbiased(0.0) };
        let moved = |last: &[u32], bias: f32| -> Vec<u32> {
            let mut scores = vec![0.0f32; NEW_NOTE as usize + 40];
            add_part_writing_biases(
                &mut scores,
                VoiceState { sounding: *last.last().unwrap(), age: 3 },
                last,
                &[0],
                sampling,
            );
            assert!(scores[..NEW_NOTE as usize].iter().all(|&x| x == 0.0), "rest and hold are neither");
            scores.iter().enumerate().filter(|(_, &x)| x == bias).map(|(t, _)| t as u32 - NEW_NOTE + 1).collect()
        };
        assert_eq!(moved(&[30, 20], -1.0), vec![20], "striking the last pitch again repeats it");
        let leaps: Vec<u32> = (1..=12).chain(28..=40).collect();
        assert_eq!(
            moved(&[30, 20], -2.0),
            leaps,
            "more than seven semitones from 20 leaps; 13 and 27 (a fifth) do not"
        );
        assert!(
            moved(&[30, 0], -2.0).is_empty() && moved(&[30, 0], -1.0).is_empty(),
            "a voice's first note neither repeats nor leaps"
        );
    }

    #[test]
    fn the_kept_opening_is_the_one_whose_own_and_following_likelihood_score_best() {
        let (shape, network, sampler) = untrained();
        let z = [0.4f32, -0.2, 1.1];
        let sampling = Sampling::unbiased(1.0);
        let phrase = sampler.phrase(&network, &z, &[], sampling, &mut ChaCha8Rng::seed_from_u64(5), None).unwrap();
        // The first half of the second bar is left to write; the rest is given.
        let bar = shape.steps_per_bar;
        let given: Vec<Vec<Option<u32>>> = phrase
            .iter()
            .enumerate()
            .map(|(step, row)| row.iter().map(|&t| (!(bar..bar + bar / 2).contains(&step)).then_some(t)).collect())
            .collect();
        let (constants, initial) = sampler.phrase_constants(&network, &z, &given).unwrap();
        let run = sampler.run_span(&given, true);
        // Each candidate as `best_joined` draws it, scored without and with its own choices.
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let candidates: Vec<(Vec<Vec<u32>>, f32, f32)> = (0..6)
            .map(|_| {
                let with_own =
                    sampler.write(&constants, &initial, &given, run.clone(), sampling, &mut rng.clone(), 1.0, None);
                let (tokens, following) =
                    sampler.write(&constants, &initial, &given, run.clone(), sampling, &mut rng, 0.0, None);
                assert_eq!(tokens, with_own.0, "weighing a candidate draws nothing");
                (tokens, following, with_own.1 - following)
            })
            .collect();
        assert!(candidates.iter().all(|(_, _, own)| *own < 0.0), "a log-likelihood of choices made");
        for weight in [0.0f32, 1.0, 3.0] {
            let best = candidates
                .iter()
                .max_by(|a, b| (a.1 + weight * a.2).total_cmp(&(b.1 + weight * b.2)))
                .map(|(tokens, _, _)| tokens.clone());
            let draws = JoinDraws { candidates: 6, own_weight: weight };
            let kept =
                sampler.best_joined(&network, &z, &given, sampling, &mut ChaCha8Rng::seed_from_u64(9), draws).unwrap();
            assert_eq!(Some(kept), best, "own weight {weight}");
        }
    }

    #[test]
    fn the_short_note_bias_moves_only_the_choices_that_end_a_note_struck_a_step_before() {
        let sampling = Sampling { short_note_bias: 4.0, ..Sampling::unbiased(0.0) };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        // Hold is the likeliest by 3; ending the note is likelier only once it is a step old.
        let scores = || vec![0.0, 3.0, 0.0, 0.0, 0.0];
        assert_ne!(choose(&mut scores(), VoiceState { sounding: 2, age: 1 }, sampling, &mut rng), HOLD);
        assert_eq!(choose(&mut scores(), VoiceState { sounding: 2, age: 2 }, sampling, &mut rng), HOLD);
        let mut silent = vec![1.0, 0.0, 0.0, 0.0];
        assert_eq!(
            choose(&mut silent, VoiceState::SILENT, sampling, &mut rng),
            REST,
            "a silent voice has no note to end"
        );
    }

    #[test]
    fn a_chord_guide_chooses_which_notes_a_voice_strikes_not_whether_it_strikes_one() {
        let guide =
            ChordGuide { bias: -6.0, bars: [0b1001_0001; GUIDE_BARS], ..ChordGuide::scale_only(0xfff, 16, 60, 0.0) };
        let before: Vec<f32> = (0..NEW_NOTE as usize + 13).map(|i| ((i * 7) % 5) as f32 * 0.4 - 0.5).collect();
        let mut after = before.clone();
        guide.apply(0, 0, &mut after);
        let share_of_new_notes = |scores: &[f32]| {
            let total = log_sum_exp(scores);
            scores[NEW_NOTE as usize..].iter().map(|x| (x - total).exp()).sum::<f32>()
        };
        assert!((share_of_new_notes(&before) - share_of_new_notes(&after)).abs() < 1e-5);
        assert_eq!(after[..NEW_NOTE as usize], before[..NEW_NOTE as usize], "rest and hold keep their scores");
        let chord_tones =
            [0usize, 4, 7, 12].map(|row| after[NEW_NOTE as usize + row] - before[NEW_NOTE as usize + row]);
        assert!(
            chord_tones.iter().all(|&lift| lift > 0.0),
            "the chord's notes take the others' share: {chord_tones:?}"
        );
    }

    #[test]
    fn a_chord_guide_moves_exactly_the_pitches_outside_the_chord_on_strong_beats() {
        // Rows 0.. are pitches 60..; the chord is C E G; strong beats every 8 steps.
        let guide = ChordGuide {
            bars: [0b1001_0001; GUIDE_BARS],
            steps_per_bar: 16,
            strong_steps: 8,
            lowest_pitch: 60,
            bias: -5.0,
            scales: [ALL_PITCH_CLASSES; GUIDE_BARS],
            scale_bias: -1.0,
        };
        let moved = |step: usize, holding: u32| -> Vec<u32> {
            let mut scores = vec![0.0f32; NEW_NOTE as usize + 13];
            guide.apply(step, holding, &mut scores);
            scores.iter().enumerate().filter(|(_, &x)| x < 0.0).map(|(t, _)| t as u32).collect()
        };
        let outside: Vec<u32> = (0..13u32).filter(|r| ![0, 4, 7, 12].contains(r)).map(|r| NEW_NOTE + r).collect();
        assert_eq!(moved(8, 0), outside, "new notes off the chord, on beat 3");
        assert_eq!(moved(4, 0), Vec::<u32>::new(), "beat 2 is the model's");
        assert_eq!(moved(16, 2)[0], HOLD, "holding C# (row 1) into the next bar's downbeat");
        assert!(!moved(0, 5).contains(&HOLD), "holding E is in the chord");
        let (c_major, g_major) = (0b1010_1011_0101, 0b1010_1101_0101);
        let off_scale = |guide: &ChordGuide, step: usize| -> Vec<u32> {
            let mut scores = vec![0.0f32; NEW_NOTE as usize + 12];
            guide.apply(step, 0, &mut scores);
            scores.iter().enumerate().filter(|(_, &x)| x < 0.0).map(|(t, _)| t as u32 - NEW_NOTE).collect()
        };
        let in_c = ChordGuide::scale_only(c_major, 16, 60, -2.0);
        assert_eq!(off_scale(&in_c, 3), vec![1, 3, 6, 8, 10], "C#, Eb, F#, Ab, Bb at any step");
        let mut modulating = in_c;
        modulating.scales[1] = g_major;
        assert_eq!(off_scale(&modulating, 15), vec![1, 3, 6, 8, 10], "bar 1 in C");
        assert_eq!(off_scale(&modulating, 16 + 3), vec![1, 3, 5, 8, 10], "bar 2 in G: F is off, F# is not");
    }
}
