//! Weight initialisation drawn from the run's seed. candle's CPU initialisers draw from an
//! unseeded thread RNG, and a training run must be reproducible from its seed; this backend
//! gives a `VarMap` the same distributions candle would, from a stream per weight name (so
//! the order in which layers are built does not matter).

use candle_core::{DType, Device, Result, Shape, Tensor, Var};
use candle_nn::init::{Init, NormalOrUniform};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarMap;
use dreamroll::hash::fnv1a;
use dreamroll::model::latent::noise_in_stream;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub struct SeededVarMap {
    pub varmap: VarMap,
    pub seed: u64,
}

/// FNV-1a: a stable hash (std's hashers may change between Rust releases, and the streams
/// and the validation split must not).
fn draw(init: Init, shape: &Shape, seed: u64, name: &str) -> Vec<f32> {
    let count = shape.elem_count();
    let stream = fnv1a(name.bytes());
    let uniform = |lo: f64, up: f64| -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        (0..count).map(|_| (lo + (up - lo) * rng.random::<f64>()) as f32).collect()
    };
    let normal = |mean: f64, stdev: f64| -> Vec<f32> {
        noise_in_stream(seed, stream, count).into_iter().map(|v| (mean + stdev * f64::from(v)) as f32).collect()
    };
    match init {
        Init::Const(value) => vec![value as f32; count],
        Init::Randn { mean, stdev } => normal(mean, stdev),
        Init::Uniform { lo, up } => uniform(lo, up),
        Init::Kaiming { dist, fan, non_linearity } => {
            let stdev = non_linearity.gain() / (fan.for_shape(shape) as f64).sqrt();
            match dist {
                NormalOrUniform::Normal => normal(0.0, stdev),
                NormalOrUniform::Uniform => {
                    let bound = 3f64.sqrt() * stdev;
                    uniform(-bound, bound)
                }
            }
        }
    }
}

impl SimpleBackend for SeededVarMap {
    fn get(&self, shape: Shape, name: &str, init: Init, dtype: DType, device: &Device) -> Result<Tensor> {
        let mut vars = self.varmap.data().lock().expect("one trainer thread builds the networks");
        if let Some(var) = vars.get(name) {
            if var.shape() != &shape {
                candle_core::bail!("shape mismatch for {name}: {:?} already built, {shape:?} asked for", var.shape());
            }
            return Ok(var.as_tensor().clone());
        }
        let values = Tensor::from_vec(draw(init, &shape, self.seed, name), shape, device)?.to_dtype(dtype)?;
        let var = Var::from_tensor(&values)?;
        vars.insert(name.to_string(), var.clone());
        Ok(var.as_tensor().clone())
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _device: &Device) -> Result<Tensor> {
        candle_core::bail!("{name}: weights are built with their shape, not looked up")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.varmap.data().lock().expect("one trainer thread builds the networks").contains_key(name)
    }
}
