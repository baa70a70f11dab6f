//! AdamW whose moments can be saved and restored. candle-nn's AdamW keeps them private, and a
//! resumed run that restarts its moments is not the run that was interrupted.

use candle_core::{Result, Tensor, Var};
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
    pub fn new(mut vars: Vec<(String, Var)>, learning_rate: f64, beta1: f64, beta2: f64, weight_decay: f64) -> Result<AdamW> {
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let zeros = |var: &Var| Var::zeros(var.shape(), var.dtype(), var.device());
        let first = vars.iter().map(|(_, v)| zeros(v)).collect::<Result<_>>()?;
        let second = vars.iter().map(|(_, v)| zeros(v)).collect::<Result<_>>()?;
        Ok(AdamW { vars, first, second, step: 0, learning_rate, beta1, beta2, epsilon: 1e-8, weight_decay, max_grad_norm: 5.0 })
    }

    /// One update from the gradients of `loss`; returns the gradient norm before clipping.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<f64> {
        let grads = loss.backward()?;
        let mut squared = 0f64;
        let mut present = Vec::with_capacity(self.vars.len());
        for (_, var) in &self.vars {
            let grad = grads.get(var.as_tensor()).cloned();
            if let Some(grad) = &grad {
                squared += f64::from(grad.sqr()?.sum_all()?.to_scalar::<f32>()?);
            }
            present.push(grad);
        }
        let norm = squared.sqrt();
        let scale = if norm > self.max_grad_norm { self.max_grad_norm / norm } else { 1.0 };
        self.step += 1;
        let t = self.step as i32;
        let (bias1, bias2) = (1.0 - self.beta1.powi(t), 1.0 - self.beta2.powi(t));
        for (((_, var), grad), (m, v)) in self.vars.iter().zip(present).zip(self.first.iter().zip(&self.second)) {
            let Some(grad) = grad else { continue };
            let grad = (grad * scale)?;
            let next_m = ((m.as_tensor() * self.beta1)? + (&grad * (1.0 - self.beta1))?)?;
            let next_v = ((v.as_tensor() * self.beta2)? + (grad.sqr()? * (1.0 - self.beta2))?)?;
            let update = ((&next_m / bias1)? / ((&next_v / bias2)?.sqrt()? + self.epsilon)?)?;
            let decayed = (var.as_tensor() * (1.0 - self.learning_rate * self.weight_decay))?;
            var.set(&(decayed - (update * self.learning_rate)?)?)?;
            m.set(&next_m)?;
            v.set(&next_v)?;
        }
        Ok(norm)
    }

    /// The moments, named for a checkpoint under `prefix`.
    pub fn state(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let mut tensors = Vec::with_capacity(2 * self.vars.len());
        for ((name, _), (m, v)) in self.vars.iter().zip(self.first.iter().zip(&self.second)) {
            tensors.push((format!("{prefix}.m.{name}"), m.as_tensor().clone()));
            tensors.push((format!("{prefix}.v.{name}"), v.as_tensor().clone()));
        }
        let device = candle_core::Device::Cpu;
        tensors.push((format!("{prefix}.step"), Tensor::new(&[self.step as u32], &device).expect("a one-value tensor")));
        tensors
    }

    pub fn restore(&mut self, prefix: &str, tensors: &HashMap<String, Tensor>) -> anyhow::Result<()> {
        for ((name, _), (m, v)) in self.vars.iter().zip(self.first.iter().zip(&self.second)) {
            for (moment, kind) in [(m, "m"), (v, "v")] {
                let key = format!("{prefix}.{kind}.{name}");
                let saved = tensors.get(&key).ok_or_else(|| anyhow::anyhow!("checkpoint lacks optimiser state `{key}`"))?;
                moment.set(saved)?;
            }
        }
        let step = tensors.get(&format!("{prefix}.step")).ok_or_else(|| anyhow::anyhow!("checkpoint lacks `{prefix}.step`"))?;
        self.step = u64::from(step.to_vec1::<u32>()?[0]);
        Ok(())
    }
}
