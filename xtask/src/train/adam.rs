//! AdamW whose moments can be saved and restored. candle-nn's AdamW keeps them private, and a
//! resumed run that restarts its moments is not the run that was interrupted.

use candle_core::{CpuStorage, InplaceOp2, InplaceOp3, Layout, Result, Tensor, Var};
use dreamroll::model::kernels::for_each_piece;
use std::collections::HashMap;

pub struct AdamW {
    vars: Vec<(String, Var)>,
    first: Vec<Var>,
    second: Vec<Var>,
    pub step: u64,
    pub learning_rate: f64,
    beta1: f64,
    beta2: f64,
    epsilon: f64,
    weight_decay: f64,
    /// Gradients are scaled down to this global L2 norm, so one odd batch cannot throw the
    /// weights far.
    max_grad_norm: f64,
}

impl AdamW {
    pub fn new(
        mut vars: Vec<(String, Var)>,
        learning_rate: f64,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
    ) -> Result<AdamW> {
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let zeros = |var: &Var| Var::zeros(var.shape(), var.dtype(), var.device());
        let first = vars.iter().map(|(_, v)| zeros(v)).collect::<Result<_>>()?;
        let second = vars.iter().map(|(_, v)| zeros(v)).collect::<Result<_>>()?;
        Ok(AdamW {
            vars,
            first,
            second,
            step: 0,
            learning_rate,
            beta1,
            beta2,
            epsilon: 1e-8,
            weight_decay,
            max_grad_norm: 5.0,
        })
    }

    /// One update from the gradients of `loss`; returns the gradient norm before clipping.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<f64> {
        let grads = loss.backward()?;
        let mut squared = 0f64;
        let mut present = Vec::with_capacity(self.vars.len());
        for (_, var) in &self.vars {
            let grad = grads.get(var.as_tensor()).map(Tensor::contiguous).transpose()?;
            if let Some(grad) = &grad {
                squared += squared_norm(grad)?;
            }
            present.push(grad);
        }
        let norm = squared.sqrt();
        let scale = if norm > self.max_grad_norm { self.max_grad_norm / norm } else { 1.0 };
        self.step += 1;
        let t = self.step as i32;
        let (bias1, bias2) = (1.0 - self.beta1.powi(t), 1.0 - self.beta2.powi(t));
        let update = WeightUpdate {
            learning_rate: self.learning_rate,
            bias1,
            bias2,
            epsilon: self.epsilon,
            kept: 1.0 - self.learning_rate * self.weight_decay,
        };
        for (((_, var), grad), (m, v)) in self.vars.iter().zip(present).zip(self.first.iter().zip(&self.second)) {
            let Some(grad) = grad else { continue };
            if var.device().is_cpu() {
                m.inplace_op2(&grad, &MomentUpdate { decay: self.beta1, scale, squared: false })?;
                v.inplace_op2(&grad, &MomentUpdate { decay: self.beta2, scale, squared: true })?;
                var.inplace_op3(m, v, &update)?;
            } else {
                self.composite_update(var, m, v, &grad, scale, &update)?;
            }
        }
        Ok(norm)
    }

    /// One weight's update in candle's ops: on devices other than the CPU, and the reference
    /// for the in-place ops.
    fn composite_update(
        &self,
        var: &Var,
        m: &Var,
        v: &Var,
        grad: &Tensor,
        scale: f64,
        update: &WeightUpdate,
    ) -> Result<()> {
        let grad = (grad * scale)?;
        let next_m = ((m.as_tensor() * self.beta1)? + (&grad * (1.0 - self.beta1))?)?;
        let next_v = ((v.as_tensor() * self.beta2)? + (grad.sqr()? * (1.0 - self.beta2))?)?;
        let step = ((&next_m / update.bias1)? / ((&next_v / update.bias2)?.sqrt()? + self.epsilon)?)?;
        let decayed = (var.as_tensor() * update.kept)?;
        var.set(&(decayed - (step * self.learning_rate)?)?)?;
        m.set(&next_m)?;
        v.set(&next_v)
    }

    /// The moments, named for a checkpoint under `prefix`.
    pub fn state(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let mut tensors = Vec::with_capacity(2 * self.vars.len());
        for ((name, _), (m, v)) in self.vars.iter().zip(self.first.iter().zip(&self.second)) {
            tensors.push((format!("{prefix}.m.{name}"), m.as_tensor().clone()));
            tensors.push((format!("{prefix}.v.{name}"), v.as_tensor().clone()));
        }
        let device = candle_core::Device::Cpu;
        tensors
            .push((format!("{prefix}.step"), Tensor::new(&[self.step as u32], &device).expect("a one-value tensor")));
        tensors
    }

    pub fn restore(&mut self, prefix: &str, tensors: &HashMap<String, Tensor>) -> anyhow::Result<()> {
        for ((name, _), (m, v)) in self.vars.iter().zip(self.first.iter().zip(&self.second)) {
            for (moment, kind) in [(m, "m"), (v, "v")] {
                let key = format!("{prefix}.{kind}.{name}");
                let saved =
                    tensors.get(&key).ok_or_else(|| anyhow::anyhow!("checkpoint lacks optimiser state `{key}`"))?;
                moment.set(saved)?;
            }
        }
        let step = tensors
            .get(&format!("{prefix}.step"))
            .ok_or_else(|| anyhow::anyhow!("checkpoint lacks `{prefix}.step`"))?;
        self.step = u64::from(step.to_vec1::<u32>()?[0]);
        Ok(())
    }
}

/// The sum of a gradient's squares, read in place on the CPU (elsewhere, candle's ops).
fn squared_norm(grad: &Tensor) -> Result<f64> {
    if !grad.device().is_cpu() {
        return Ok(f64::from(grad.sqr()?.sum_all()?.to_scalar::<f32>()?));
    }
    let (storage, layout) = grad.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*storage else { unreachable!("a CPU tensor's storage") };
    Ok(values(cpu, layout, "gradient")?.iter().map(|&g| f64::from(g) * f64::from(g)).sum())
}

/// A contiguous CPU tensor's values.
fn values<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&storage.as_slice::<f32>()?[start..end]),
        None => candle_core::bail!("adam: the {what} is not contiguous"),
    }
}

fn values_mut<'a>(storage: &'a mut CpuStorage, layout: &Layout, what: &str) -> Result<&'a mut [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(all), Some((start, end))) => Ok(&mut all[start..end]),
        _ => candle_core::bail!("adam: the {what} is not a contiguous f32 tensor"),
    }
}

/// Operations per element of an update: large weights are shared between threads.
const ELEMENT_COST: usize = 8;

/// A moment's running average, in place from the clipped gradient: the CPU's update is
/// then one pass per moment and one for the weights, where candle's ops made fourteen
/// passes and as many new tensors per weight (a twentieth of a training step).
struct MomentUpdate {
    decay: f64,
    /// The clipping's scale for the gradient.
    scale: f64,
    /// The second moment averages the gradient's square.
    squared: bool,
}

impl InplaceOp2 for MomentUpdate {
    fn name(&self) -> &'static str {
        "adam-moment"
    }

    fn cpu_fwd(
        &self,
        moment: &mut CpuStorage,
        moment_layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
    ) -> Result<()> {
        let grad = values(grad, grad_layout, "gradient")?;
        let moment = values_mut(moment, moment_layout, "moment")?;
        let (decay, rest, scale) = (self.decay as f32, (1.0 - self.decay) as f32, self.scale as f32);
        for_each_piece(moment, ELEMENT_COST, |offset, moment| {
            for (m, &g) in moment.iter_mut().zip(&grad[offset..]) {
                let g = g * scale;
                *m = *m * decay + rest * if self.squared { g * g } else { g };
            }
        });
        Ok(())
    }
}

/// The weights' step from both moments, with decoupled weight decay.
struct WeightUpdate {
    learning_rate: f64,
    bias1: f64,
    bias2: f64,
    epsilon: f64,
    /// What weight decay keeps of a weight.
    kept: f64,
}

impl InplaceOp3 for WeightUpdate {
    fn name(&self) -> &'static str {
        "adam-weights"
    }

    fn cpu_fwd(
        &self,
        weights: &mut CpuStorage,
        weights_layout: &Layout,
        m: &CpuStorage,
        m_layout: &Layout,
        v: &CpuStorage,
        v_layout: &Layout,
    ) -> Result<()> {
        let (m, v) = (values(m, m_layout, "first moment")?, values(v, v_layout, "second moment")?);
        let weights = values_mut(weights, weights_layout, "weight")?;
        let (rate, bias1, bias2, epsilon, kept) =
            (self.learning_rate as f32, self.bias1 as f32, self.bias2 as f32, self.epsilon as f32, self.kept as f32);
        for_each_piece(weights, ELEMENT_COST, |offset, weights| {
            for ((w, &m), &v) in weights.iter_mut().zip(&m[offset..]).zip(&v[offset..]) {
                *w = *w * kept - rate * ((m / bias1) / ((v / bias2).sqrt() + epsilon));
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn var(values: &[f32]) -> Var {
        Var::from_tensor(&Tensor::new(values, &Device::Cpu).unwrap()).unwrap()
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.to_vec1::<f32>().unwrap()
    }

    #[test]
    fn the_in_place_update_matches_candles_ops() {
        let weights = [0.5f32, -1.25, 2.0, 0.0, -0.01];
        let grad = Tensor::new(&[0.3f32, -2.0, 0.0, 1e-3, 5.0], &Device::Cpu).unwrap();
        let adam = AdamW::new(vec![("w".into(), var(&weights))], 1e-2, 0.9, 0.999, 0.05).unwrap();
        // Moments from earlier steps, and clipping at work.
        let (m, v) = (var(&[0.1, -0.2, 0.05, 0.0, 0.3]), var(&[0.01, 0.04, 0.002, 0.0, 0.2]));
        let update = WeightUpdate {
            learning_rate: adam.learning_rate,
            bias1: 1.0 - 0.9f64.powi(3),
            bias2: 1.0 - 0.999f64.powi(3),
            epsilon: adam.epsilon,
            kept: 1.0 - 1e-2 * 0.05,
        };
        let (fused_w, fused_m, fused_v) = (var(&weights), var(&values(&m)), var(&values(&v)));
        fused_m.inplace_op2(&grad, &MomentUpdate { decay: 0.9, scale: 0.5, squared: false }).unwrap();
        fused_v.inplace_op2(&grad, &MomentUpdate { decay: 0.999, scale: 0.5, squared: true }).unwrap();
        fused_w.inplace_op3(&fused_m, &fused_v, &update).unwrap();
        let reference_w = var(&weights);
        adam.composite_update(&reference_w, &m, &v, &grad, 0.5, &update).unwrap();
        for (fused, reference) in [(&fused_w, &reference_w), (&fused_m, &m), (&fused_v, &v)] {
            let (a, b) = (values(fused), values(reference));
            assert!(a.iter().zip(&b).all(|(a, b)| (a - b).abs() <= 1e-6 * (1.0 + b.abs())), "{a:?} vs {b:?}");
        }
        assert_ne!(values(&fused_w), weights.to_vec(), "the weights moved");
    }
}
