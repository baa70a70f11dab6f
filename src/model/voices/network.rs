//! The voice decoder's network, as the trainer runs it: every step of every voice scored at
//! once under teacher forcing. The sampler in [`super::sampler`] runs the same weights one
//! step at a time.
//!
//! A phrase latent goes through a *conductor* to one embedding per bar (MusicVAE's
//! hierarchy). Each bar is then written step by step by a GRU that starts afresh from its
//! bar's embedding — so what a bar plays has to come from the latent, which keeps the knobs
//! meaningful — and reads the voices' state at the step before (pitch and how long it has
//! sounded), the position in the bar, the bar's embedding, and a *context*: a
//! non-causal reading of whatever the caller gives (voices or bars to keep). At each step the
//! voices choose in turn, top voice first, each seeing the choices of the voices above it, so
//! a chord is built the way a part-writer builds one.

use super::leading::{remember, LeadingLayout};
use super::tokens::{classes, HOLD};
use crate::model::kernels::for_each_record;
use crate::model::kernels::picked_rows::RowPicks;
use crate::model::kernels::table_scores::{add_table_sums, TablePicks};
use crate::model::layers::{linear_over_last, linear_relu_over_last, linear_tanh_over_last};
use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::{embedding, linear, Embedding, Linear, VarBuilder};

/// Dilations of the context reader's layers: together they see 31 steps around each step,
/// about two bars at four steps per beat.
pub const CONTEXT_DILATIONS: [usize; 4] = [1, 2, 4, 8];

/// Sizes read off a card.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VoiceShape {
    pub voices: usize,
    pub bars: usize,
    pub steps_per_bar: usize,
    pub pitches: usize,
    pub latent: usize,
    /// The GRU's state.
    pub hidden: usize,
    /// One bar's embedding from the conductor.
    pub conductor: usize,
    /// A pitch's embedding.
    pub embed: usize,
    /// A note age's embedding.
    pub age_embed: usize,
    pub position_embed: usize,
    pub context: usize,
    /// Each voice's output layer.
    pub head: usize,
    /// Voice-leading scores ([`super::leading`]); models from before them have none.
    pub leading: bool,
    /// Loudness levels a voice chooses among for each note it strikes; 0 for none.
    pub velocity_levels: usize,
}

impl VoiceShape {
    pub fn steps(&self) -> usize {
        self.bars * self.steps_per_bar
    }

    /// Ages are clipped at a bar: longer notes all read alike.
    pub fn max_age(&self) -> u32 {
        self.steps_per_bar as u32
    }

    pub fn classes(&self) -> usize {
        classes(self.pitches)
    }

    pub fn leading_layout(&self) -> LeadingLayout {
        LeadingLayout { voices: self.voices, pitches: self.pitches }
    }

    /// What the network reads of one voice at one step.
    pub fn voice_features(&self) -> usize {
        self.embed + self.age_embed
    }

    /// The GRU's input: every voice's state, the position, the bar's embedding, the context.
    pub fn step_input(&self) -> usize {
        self.voices * self.voice_features() + self.position_embed + self.conductor + self.context
    }
}

/// A batch of phrases as the network reads them; every tensor is [batch, steps, voices].
pub struct VoiceBatch {
    /// Each voice's state after each step (sounding row + 1, or 0; and age), u32: what
    /// teacher forcing feeds the steps after and the voices below.
    pub sounding: Tensor,
    pub age: Tensor,
    pub given: GivenView,
}

/// What the context reader sees of the given choices (see
/// [`super::tokens::given_view`]): states as the given choices alone make them (u32), and
/// `mask`, 1.0 where a choice is given (f32).
pub struct GivenView {
    pub sounding: Tensor,
    pub age: Tensor,
    pub mask: Tensor,
}

/// Latent -> one embedding per bar.
pub struct Conductor {
    first: Linear,
    bars: Linear,
    shape: VoiceShape,
}

impl Conductor {
    fn new(shape: VoiceShape, vb: VarBuilder) -> Result<Conductor> {
        Ok(Conductor {
            first: linear(shape.latent, shape.hidden, vb.pp("first"))?,
            bars: linear(shape.hidden, shape.bars * shape.conductor, vb.pp("bars"))?,
            shape,
        })
    }

    /// [batch, latent] -> [batch, bars, conductor]
    pub fn forward(&self, z: &Tensor) -> Result<Tensor> {
        let batch = z.dim(0)?;
        linear_tanh_over_last(&self.bars, &linear_relu_over_last(&self.first, z)?)?.reshape((
            batch,
            self.shape.bars,
            self.shape.conductor,
        ))
    }
}

/// Reads what is given, looking both ways in time: [batch, steps, context].
pub struct ContextReader {
    input: Linear,
    layers: Vec<Linear>,
}

impl ContextReader {
    fn new(shape: VoiceShape, vb: VarBuilder) -> Result<ContextReader> {
        let input = linear(shape.voices * (shape.voice_features() + 1), shape.context, vb.pp("input"))?;
        let layers = (0..CONTEXT_DILATIONS.len())
            .map(|i| linear(3 * shape.context, shape.context, vb.pp(format!("layer{i}"))))
            .collect::<Result<_>>()?;
        Ok(ContextReader { input, layers })
    }

    /// `features`: [batch, steps, voices, voice features] of the given view's states;
    /// `given`: [batch, steps, voices], 1.0 where given. Cells not given are zeroed here, so
    /// the reader sees only the mask there.
    pub fn forward(&self, features: &Tensor, given: &Tensor) -> Result<Tensor> {
        let (batch, steps, _, _) = features.dims4()?;
        let masked = features.broadcast_mul(&given.unsqueeze(D::Minus1)?)?;
        let input = Tensor::cat(&[masked, given.unsqueeze(D::Minus1)?], D::Minus1)?.reshape((batch, steps, ()))?;
        let mut x = linear_relu_over_last(&self.input, &input)?;
        for (layer, &dilation) in self.layers.iter().zip(&CONTEXT_DILATIONS) {
            let bias = layer.bias().expect("context layers have a bias");
            x = if x.device().is_cpu() {
                crate::model::kernels::dilated::dilated_residual(&x, layer.weight(), bias, dilation)?
            } else {
                composite_dilated_residual(&x, layer.weight(), bias, dilation)?
            };
        }
        Ok(x)
    }
}

/// `x` [batch, steps, channels] + relu(a dilated convolution of width 3 over the steps), in
/// candle's own ops: one matrix product over the step before, the step, and the step after
/// (zeros past the edges). Where the fused kernel has no code (GPUs), and its reference.
pub fn composite_dilated_residual(x: &Tensor, weight: &Tensor, bias: &Tensor, dilation: usize) -> Result<Tensor> {
    let windows = Tensor::cat(&[shift(x, dilation as isize)?, x.clone(), shift(x, -(dilation as isize))?], D::Minus1)?;
    x + linear_relu_over_last(&Linear::new(weight.clone(), Some(bias.clone())), &windows)?
}

/// `x` [batch, steps, channels] moved `by` steps later in time (earlier for negative), with
/// zeros where nothing moves in.
fn shift(x: &Tensor, by: isize) -> Result<Tensor> {
    let (batch, steps, channels) = x.dims3()?;
    let by_abs = by.unsigned_abs().min(steps);
    if by_abs == 0 {
        return Ok(x.clone());
    }
    let zeros = Tensor::zeros((batch, by_abs, channels), x.dtype(), x.device())?;
    let kept = steps - by_abs;
    if by > 0 {
        Tensor::cat(&[zeros, x.narrow(1, 0, kept)?], 1)
    } else {
        Tensor::cat(&[x.narrow(1, by_abs, kept)?, zeros], 1)
    }
}

/// PyTorch's GRU cell, weights named as PyTorch names them, so that a twin can load them.
pub struct GruWeights {
    pub weight_ih: Tensor,
    pub weight_hh: Tensor,
    pub bias_ih: Tensor,
    pub bias_hh: Tensor,
}

impl GruWeights {
    fn new(input: usize, hidden: usize, vb: VarBuilder) -> Result<GruWeights> {
        let bound = 1.0 / (hidden as f64).sqrt();
        let init = candle_nn::Init::Uniform { lo: -bound, up: bound };
        Ok(GruWeights {
            weight_ih: vb.get_with_hints((3 * hidden, input), "weight_ih_l0", init)?,
            weight_hh: vb.get_with_hints((3 * hidden, hidden), "weight_hh_l0", init)?,
            bias_ih: vb.get_with_hints(3 * hidden, "bias_ih_l0", init)?,
            bias_hh: vb.get_with_hints(3 * hidden, "bias_hh_l0", init)?,
        })
    }

    /// The states after each step [rows × steps, H] (a row's steps consecutive), from the
    /// input's projection `gates_in` [rows × steps, 3H] (W_ih x + b_ih) and the state before
    /// the first step [rows, H].
    pub fn sequence(&self, gates_in: &Tensor, initial: &Tensor) -> Result<Tensor> {
        if gates_in.device().is_cpu() {
            let recurrent = Tensor::cat(&[&self.weight_hh, &self.bias_hh.unsqueeze(1)?], 1)?;
            return crate::model::kernels::gru::gru_sequence(gates_in, initial, &recurrent);
        }
        self.composite_sequence(gates_in, initial)
    }

    /// [`Self::sequence`] in candle's own ops: where the fused kernel has no code (GPUs),
    /// and the reference it is tested against.
    pub fn composite_sequence(&self, gates_in: &Tensor, initial: &Tensor) -> Result<Tensor> {
        let (rows, hidden) = initial.dims2()?;
        let gates_in = gates_in.reshape((rows, (), 3 * hidden))?;
        let mut state = initial.clone();
        let mut states = Vec::with_capacity(gates_in.dim(1)?);
        for step in 0..gates_in.dim(1)? {
            state = self.step(&gates_in.narrow(1, step, 1)?.squeeze(1)?, &state)?;
            states.push(state.clone());
        }
        Tensor::stack(&states, 1)?.reshape(((), hidden))
    }

    /// One step from the input's projection `gates_in` [rows, 3H] (W_ih x + b_ih) and the state.
    fn step(&self, gates_in: &Tensor, state: &Tensor) -> Result<Tensor> {
        let hidden = state.dim(1)?;
        let gates_state = state.matmul(&self.weight_hh.t()?)?.broadcast_add(&self.bias_hh)?;
        let reset = candle_nn::ops::sigmoid(&(gates_in.narrow(1, 0, hidden)? + gates_state.narrow(1, 0, hidden)?)?)?;
        let update =
            candle_nn::ops::sigmoid(&(gates_in.narrow(1, hidden, hidden)? + gates_state.narrow(1, hidden, hidden)?)?)?;
        let candidate = (gates_in.narrow(1, 2 * hidden, hidden)?
            + reset.mul(&gates_state.narrow(1, 2 * hidden, hidden)?)?)?
        .tanh()?;
        // (1 - u) n + u h, written as n + u (h - n).
        &candidate + update.mul(&(state - &candidate)?)?
    }
}

/// One voice's choice from the step's state and the choices of the voices above it.
pub struct VoiceHead {
    pub hidden: Linear,
    pub out: Linear,
    /// The loudness level of a note it strikes, from the same hidden layer. The level feeds
    /// nothing back (no later choice reads it), so it can be drawn once a phrase's choices
    /// are made, which keeps it out of every step that writes, rewrites and joins choices.
    pub velocity: Option<Linear>,
}

pub struct VoiceNetwork {
    pub shape: VoiceShape,
    pub conductor: Conductor,
    pub context: ContextReader,
    pub pitch: Embedding,
    pub age: Embedding,
    pub position: Embedding,
    pub gru: GruWeights,
    pub initial: Linear,
    pub heads: Vec<VoiceHead>,
    /// The voice-leading table [entries, 1], zero when new: it starts by changing nothing.
    pub leading: Option<Tensor>,
}

impl VoiceNetwork {
    pub fn new(shape: VoiceShape, vb: VarBuilder) -> Result<VoiceNetwork> {
        let features = shape.voice_features();
        let heads = (0..shape.voices)
            .map(|v| {
                let vb = vb.pp(format!("head{v}"));
                Ok(VoiceHead {
                    hidden: linear(shape.hidden + v * features, shape.head, vb.pp("hidden"))?,
                    out: linear(shape.head, shape.classes(), vb.pp("out"))?,
                    velocity: (shape.velocity_levels > 0)
                        .then(|| linear(shape.head, shape.velocity_levels, vb.pp("velocity")))
                        .transpose()?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(VoiceNetwork {
            shape,
            conductor: Conductor::new(shape, vb.pp("conductor"))?,
            context: ContextReader::new(shape, vb.pp("context"))?,
            pitch: embedding(shape.pitches + 1, shape.embed, vb.pp("pitch"))?,
            age: embedding(shape.max_age() as usize + 1, shape.age_embed, vb.pp("age"))?,
            position: embedding(shape.steps_per_bar, shape.position_embed, vb.pp("position"))?,
            gru: GruWeights::new(shape.step_input(), shape.hidden, vb.pp("gru"))?,
            initial: linear(shape.conductor, shape.hidden, vb.pp("initial"))?,
            heads,
            leading: shape
                .leading
                .then(|| {
                    vb.get_with_hints((shape.leading_layout().entries(), 1), "leading", candle_nn::Init::Const(0.0))
                })
                .transpose()?,
        })
    }

    /// [batch, steps, voices] of states -> [batch, steps, voices, voice features]
    pub fn features(&self, sounding: &Tensor, age: &Tensor) -> Result<Tensor> {
        Tensor::cat(&[self.pitch.forward(sounding)?, self.age.forward(age)?], D::Minus1)
    }

    /// The context of what is given: [batch, steps, context].
    pub fn context_of(&self, given: &GivenView) -> Result<Tensor> {
        self.context.forward(&self.features(&given.sounding, &given.age)?, &given.mask)
    }

    /// Each bar's starting GRU state: [rows, conductor] -> [rows, hidden].
    pub fn initial_state(&self, bar_embeddings: &Tensor) -> Result<Tensor> {
        linear_tanh_over_last(&self.initial, bar_embeddings)
    }

    /// Per step, what the GRU reads besides the voices' states: the position's embedding, the
    /// bar's embedding and the context, as [batch, steps, position + conductor + context].
    pub fn step_conditions(&self, bar_embeddings: &Tensor, context: &Tensor) -> Result<Tensor> {
        let s = self.shape;
        let batch = bar_embeddings.dim(0)?;
        let positions = Tensor::arange(0u32, s.steps_per_bar as u32, bar_embeddings.device())?;
        let position = self.position.forward(&positions)?.unsqueeze(0)?.repeat((batch, s.bars, 1))?;
        let per_step = bar_embeddings.unsqueeze(2)?.repeat((1, 1, s.steps_per_bar, 1))?.reshape((
            batch,
            s.steps(),
            s.conductor,
        ))?;
        Tensor::cat(&[position, per_step, context.clone()], D::Minus1)
    }

    /// The GRU's input projection W_ih x + b_ih at every step, [bars × steps, 3H]. x is the
    /// voices' states before the step, the step's position and context (`step_inputs`
    /// [bars × steps, ..]) and its bar's embedding (`bar_embeddings` [bars, conductor]),
    /// in W_ih's column order: states, position, bar, context. Each part is projected where
    /// it is cheapest: the states through tables of their embeddings' projections (as the
    /// sampler does), the bar once per bar rather than once per step. Together that saves
    /// a third of a training step's multiply-adds.
    fn input_gates(
        &self,
        batch: &VoiceBatch,
        current: &Tensor,
        step_inputs: &Tensor,
        bar_embeddings: &Tensor,
    ) -> Result<Tensor> {
        let s = self.shape;
        let w = &self.gru.weight_ih;
        let states_width = s.voices * s.voice_features();
        let bar_at = states_width + s.position_embed;
        let per_step_weight = Tensor::cat(
            &[w.narrow(1, states_width, s.position_embed)?, w.narrow(1, bar_at + s.conductor, s.context)?],
            1,
        )?;
        let per_bar = bar_embeddings.matmul(&w.narrow(1, bar_at, s.conductor)?.t()?)?;
        if step_inputs.device().is_cpu() {
            // Per step, the sum of the rows its voices' states pick from their tables, its
            // bar's row and the bias row.
            let (state_tables, mut picks) = self.state_tables(batch)?;
            let (bar_row, bias_row) = (state_tables.dim(0)?, state_tables.dim(0)? + per_bar.dim(0)?);
            let state_picks = std::mem::take(&mut picks.indices);
            picks.indices = state_picks
                .chunks_exact(picks.per_row)
                .enumerate()
                .flat_map(|(cell, states)| {
                    states.iter().copied().chain([(bar_row + cell / s.steps_per_bar) as u32, bias_row as u32])
                })
                .collect();
            picks.per_row += 2;
            let table = Tensor::cat(&[state_tables, per_bar, self.gru.bias_ih.unsqueeze(0)?], 0)?;
            return crate::model::kernels::picked_rows::linear_plus_picked_rows(
                step_inputs,
                &per_step_weight,
                &table,
                picks,
            );
        }
        let per_step = step_inputs.matmul(&per_step_weight.t()?)?.broadcast_add(&self.gru.bias_ih)?;
        // The states before each step: silence before the first.
        let items = current.dim(0)?;
        let silent = Tensor::zeros((items, 1, s.voices), DType::U32, current.device())?;
        let silence = self.features(&silent, &silent)?;
        let before = Tensor::cat(&[silence, current.narrow(1, 0, s.steps() - 1)?], 1)?
            .reshape((items * s.steps(), states_width))?;
        let states = before.matmul(&w.narrow(1, 0, states_width)?.t()?)?;
        let (bars, gates) = (bar_embeddings.dim(0)?, 3 * s.hidden);
        (per_step + states)?
            .reshape((bars, s.steps_per_bar, gates))?
            .broadcast_add(&per_bar.unsqueeze(1)?)?
            .reshape((bars * s.steps_per_bar, gates))
    }

    /// Per voice, the projections of its pitch and age embeddings by the GRU's input weights
    /// (stacked [voices × (pitches + 1 + ages), 3H]), and for every step the rows its voices'
    /// states before it pick (2 × voices per step).
    fn state_tables(&self, batch: &VoiceBatch) -> Result<(Tensor, RowPicks)> {
        let s = self.shape;
        let w = &self.gru.weight_ih;
        let (pitch_rows, age_rows) = (s.pitches + 1, s.max_age() as usize + 1);
        let mut tables = Vec::with_capacity(2 * s.voices);
        for v in 0..s.voices {
            let at = v * s.voice_features();
            tables.push(self.pitch.embeddings().matmul(&w.narrow(1, at, s.embed)?.t()?)?);
            tables.push(self.age.embeddings().matmul(&w.narrow(1, at + s.embed, s.age_embed)?.t()?)?);
        }
        let (items, steps, voices) = batch.sounding.dims3()?;
        let sounding = batch.sounding.flatten_all()?.to_vec1::<u32>()?;
        let age = batch.age.flatten_all()?.to_vec1::<u32>()?;
        let mut indices = Vec::with_capacity(items * steps * 2 * voices);
        for item in 0..items {
            for step in 0..steps {
                for v in 0..voices {
                    // The state before the step: the previous step's, silence at the start.
                    let (pitch, age) = if step == 0 {
                        (0, 0)
                    } else {
                        let cell = (item * steps + step - 1) * voices + v;
                        (sounding[cell], age[cell])
                    };
                    let base = (v * (pitch_rows + age_rows)) as u32;
                    indices.push(base + pitch);
                    indices.push(base + pitch_rows as u32 + age);
                }
            }
        }
        Ok((Tensor::cat(&tables, 0)?, RowPicks { indices, per_row: 2 * voices }))
    }

    /// Scores of every choice of every voice at every step, each given the true choices
    /// before it (teacher forcing): [batch, steps, voices, classes]. Hold is not yet masked.
    pub fn forward(&self, z: &Tensor, batch: &VoiceBatch) -> Result<Tensor> {
        Ok(self.forward_with_levels(z, batch)?.0)
    }

    /// [`Self::forward`], and where the decoder has loudness levels the scores of each level
    /// for a note struck at every step of every voice: [batch, steps, voices, levels].
    pub fn forward_with_levels(&self, z: &Tensor, batch: &VoiceBatch) -> Result<(Tensor, Option<Tensor>)> {
        let s = self.shape;
        let items = z.dim(0)?;
        let current = self.features(&batch.sounding, &batch.age)?;
        let context = self.context_of(&batch.given)?;
        let bar_embeddings = self.conductor.forward(z)?;
        // The states before each step: silence before the first.
        // Bars are written independently given their embeddings and the step before, so the
        // recurrence runs over one bar's steps with every bar of the batch side by side.
        let rows = items * s.bars;
        let positions = Tensor::arange(0u32, s.steps_per_bar as u32, z.device())?;
        let position = self.position.forward(&positions)?.unsqueeze(0)?.repeat((items, s.bars, 1))?;
        let step_inputs = Tensor::cat(&[position, context], D::Minus1)?.reshape((rows * s.steps_per_bar, ()))?;
        let gates_in =
            self.input_gates(batch, &current, &step_inputs, &bar_embeddings.reshape((rows, s.conductor))?)?;
        let initial = self.initial_state(&bar_embeddings.reshape((rows, s.conductor))?)?;
        // The heads work on one row per (phrase, step): every reshape is a copy in backward.
        let cells = items * s.steps();
        let states = self.gru.sequence(&gates_in, &initial)?;
        let current = current.reshape((cells, s.voices * s.voice_features()))?;
        let sounding = match self.leading {
            Some(_) => batch.sounding.flatten_all()?.to_vec1::<u32>()?,
            None => Vec::new(),
        };
        let mut scores = Vec::with_capacity(s.voices);
        let mut levels = Vec::with_capacity(s.voices);
        for (v, head) in self.heads.iter().enumerate() {
            let input = if v == 0 {
                states.clone()
            } else {
                Tensor::cat(&[&states, &current.narrow(1, 0, v * s.voice_features())?], 1)?
            };
            let hidden = linear_relu_over_last(&head.hidden, &input)?;
            let voice_scores = linear_over_last(&head.out, &hidden)?;
            scores.push(match &self.leading {
                Some(table) => self.with_leading_scores(&voice_scores, table, &sounding, v)?,
                None => voice_scores,
            });
            if let Some(velocity) = &head.velocity {
                levels.push(linear_over_last(velocity, &hidden)?);
            }
        }
        let scores = Tensor::stack(&scores, 1)?.reshape((items, s.steps(), s.voices, s.classes()))?;
        let levels = match levels.is_empty() {
            true => None,
            false => Some(Tensor::stack(&levels, 1)?.reshape((items, s.steps(), s.voices, s.velocity_levels))?),
        };
        Ok((scores, levels))
    }

    /// Voice `v`'s `scores` [phrases × steps, classes] with its voice-leading scores added
    /// (rest gets none), from each voice's state after each step (`sounding`, [phrases,
    /// steps, voices] flattened) under teacher forcing.
    fn with_leading_scores(&self, scores: &Tensor, table: &Tensor, sounding: &[u32], v: usize) -> Result<Tensor> {
        let s = self.shape;
        let layout = s.leading_layout();
        let per_phrase = s.steps() * layout.candidates() * layout.picks(v);
        let mut indices = vec![0u32; sounding.len() / s.voices / s.steps() * per_phrase];
        // Phrase by phrase on the worker pool: each phrase's entries read its own steps only
        // (every voice's last pitch starts afresh), and built on one thread they were a
        // twentieth of a training step while the other thread waited.
        for_each_record(&mut indices, per_phrase, per_phrase, |first, phrases| {
            let mut last = vec![0u32; s.voices];
            let mut out = Written { to: phrases, at: 0 };
            let steps = &sounding[first * s.steps() * s.voices..];
            for (cell, now) in steps.chunks_exact(s.voices).take(out.to.len() / per_phrase * s.steps()).enumerate() {
                if cell % s.steps() == 0 {
                    last.fill(0);
                }
                layout.candidate_entries(v, &last, &now[..v], &mut out);
                remember(&mut last, now);
            }
            assert_eq!(out.at, out.to.len(), "every entry written");
        });
        add_table_sums(scores, table, TablePicks { indices, picks: layout.picks(v), first_column: HOLD as usize })
    }
}

/// Entries written into a slice in order, as `candidate_entries` pushes them to a `Vec`.
struct Written<'a> {
    to: &'a mut [u32],
    at: usize,
}

impl Extend<u32> for Written<'_> {
    fn extend<I: IntoIterator<Item = u32>>(&mut self, entries: I) {
        for entry in entries {
            self.to[self.at] = entry;
            self.at += 1;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::VarMap;

    /// A small network whose every weight (the voice-leading table too, which starts at
    /// zero) is noise from a fixed seed: random initial weights would let a test's relu
    /// happen to cut the path it checks, once in many runs.
    pub fn seeded_network(shape: VoiceShape) -> VoiceNetwork {
        let varmap = VarMap::new();
        let network = VoiceNetwork::new(shape, VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu)).unwrap();
        let variables = varmap.data().lock().unwrap();
        let mut names: Vec<&String> = variables.keys().collect();
        names.sort();
        for (k, name) in names.into_iter().enumerate() {
            let variable = &variables[name];
            let noise =
                crate::model::latent::noise(k as u64, variable.elem_count()).into_iter().map(|x| 0.5 * x).collect();
            variable.set(&Tensor::from_vec(noise, variable.shape(), &Device::Cpu).unwrap()).unwrap();
        }
        network
    }

    pub fn nothing_given(batch: usize, steps: usize, voices: usize) -> GivenView {
        let zeros = || Tensor::zeros((batch, steps, voices), DType::U32, &Device::Cpu).unwrap();
        GivenView {
            sounding: zeros(),
            age: zeros(),
            mask: Tensor::zeros((batch, steps, voices), DType::F32, &Device::Cpu).unwrap(),
        }
    }

    pub fn small_shape() -> VoiceShape {
        VoiceShape {
            voices: 2,
            bars: 2,
            steps_per_bar: 4,
            pitches: 5,
            latent: 3,
            hidden: 6,
            conductor: 4,
            embed: 3,
            age_embed: 2,
            position_embed: 2,
            context: 4,
            head: 5,
            leading: true,
            velocity_levels: 3,
        }
    }

    #[test]
    fn a_choice_depends_on_the_past_and_on_the_voices_above_but_not_on_itself_or_later() {
        let network = seeded_network(small_shape());
        let z = Tensor::new(&[[0.3f32, -1.0, 0.5]], &Device::Cpu).unwrap();
        let scores = |sounding: &[u32]| {
            let ages: Vec<u32> = sounding.iter().map(|&s| u32::from(s > 0)).collect();
            let batch = VoiceBatch {
                sounding: Tensor::from_vec(sounding.to_vec(), (1, 8, 2), &Device::Cpu).unwrap(),
                age: Tensor::from_vec(ages, (1, 8, 2), &Device::Cpu).unwrap(),
                given: nothing_given(1, 8, 2),
            };
            network.forward(&z, &batch).unwrap().squeeze(0).unwrap().to_vec3::<f32>().unwrap()
        };
        let base = vec![1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1];
        let before = scores(&base);
        // Change the top voice at step 5 (index 10): step 5's top voice does not see it...
        let mut changed = base.clone();
        changed[10] = 0;
        let after = scores(&changed);
        assert_eq!(before[5][0], after[5][0], "a voice's own choice is not an input to its score");
        assert_ne!(before[5][1], after[5][1], "the voice below sees the choice above it");
        assert_ne!(before[6][0], after[6][0], "the next step sees it");
        assert!((0..5).all(|step| before[step] == after[step]), "earlier steps do not see the future");
    }
}
