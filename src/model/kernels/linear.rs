//! A linear layer, x·Wᵀ + b, as one op.
//!
//! candle's `Linear` is a product and then a broadcast add of the bias: a second full-size
//! output forward, and backward a copy of the gradient for the product plus a reduction
//! for the bias. Here the bias is where the product starts, and backward computes the three
//! gradients directly — none for an input that needs none.

use super::{column_sums, contiguous, cpu_values, matmul, parallel_for, product_gradients, DisjointWrites, Strided};
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};

/// What follows the product. relu: candle's is five full-size passes backward (a
/// comparison with zeros, a cast, a product, the sum of gradients); fused, it is a mask read
/// off the output. tanh: the same tanh as candle's (so the same values), shared between
/// threads, and backward one pass, (1 − y²) g, where candle's is four full-size nodes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Identity,
    Relu,
    Tanh,
}

impl Activation {
    /// The same in candle's own ops: where the fused op has no code (GPUs), and its reference.
    pub fn composite(self, y: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Identity => Ok(y.clone()),
            Activation::Relu => y.relu(),
            Activation::Tanh => y.tanh(),
        }
    }
}

/// `activation`(`x` [rows, in] · `weight` [out, in]ᵀ + `bias` [out]) -> [rows, out].
pub fn linear(x: &Tensor, weight: &Tensor, bias: &Tensor, activation: Activation) -> Result<Tensor> {
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, Linear { activation })
}

struct Linear {
    activation: Activation,
}

/// Element operations of one tanh: what [`parallel_for`] weighs.
const TANH_COST: usize = 20;

fn sizes(x: &[usize], weight: &[usize], bias: &[usize]) -> Result<(usize, usize, usize)> {
    match (x, weight, bias) {
        ([rows, inputs], [outputs, inputs_w], [outputs_b]) if inputs == inputs_w && outputs == outputs_b => {
            Ok((*rows, *inputs, *outputs))
        }
        _ => candle_core::bail!(
            "linear: shapes {x:?}, {weight:?}, {bias:?} do not make a layer (want [rows, in], [out, in], [out])"
        ),
    }
}

impl CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        "linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (rows, inputs, outputs) = sizes(l1.dims(), l2.dims(), l3.dims())?;
        let (x, weight, bias) =
            (contiguous(s1, l1, "linear")?, contiguous(s2, l2, "linear")?, contiguous(s3, l3, "linear")?);
        let mut out = bias.repeat(rows);
        matmul(
            &mut out,
            Strided::row_major(rows, outputs),
            x,
            Strided::row_major(rows, inputs),
            weight,
            Strided::row_major(outputs, inputs).t(),
            true,
        );
        match self.activation {
            Activation::Identity => {}
            Activation::Relu => out.iter_mut().for_each(|y| *y = y.max(0.0)),
            Activation::Tanh => {
                let all_out = DisjointWrites::new(&mut out);
                parallel_for(rows, outputs * TANH_COST, |part| {
                    // SAFETY: the parts of `parallel_for` are disjoint ranges of rows.
                    unsafe { all_out.part(part.start * outputs..part.end * outputs) }
                        .iter_mut()
                        .for_each(|y| *y = y.tanh());
                });
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((rows, outputs))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        out: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (_, _, outputs) = sizes(x.dims(), weight.dims(), bias.dims())?;
        let grad = grad.contiguous()?;
        let (grad_storage, grad_layout) = grad.storage_and_layout();
        let passed: Vec<f32>;
        let g = if self.activation == Activation::Identity {
            cpu_values(&grad_storage, grad_layout, "linear")?
        } else {
            let out = out.contiguous()?;
            let (out_storage, out_layout) = out.storage_and_layout();
            let out_values = cpu_values(&out_storage, out_layout, "linear")?;
            let grad_values = cpu_values(&grad_storage, grad_layout, "linear")?.iter();
            passed = match self.activation {
                // relu passes the gradient where its output is positive.
                Activation::Relu => grad_values.zip(out_values).map(|(&g, &y)| if y > 0.0 { g } else { 0.0 }).collect(),
                _ => grad_values.zip(out_values).map(|(&g, &y)| g * (1.0 - y * y)).collect(),
            };
            &passed[..]
        };
        let device = x.device();
        let (d_x, d_weight) = product_gradients(x, weight, g, "linear")?;
        let d_bias =
            if bias.track_op() { Some(Tensor::from_vec(column_sums(g, outputs), outputs, device)?) } else { None };
        Ok((d_x, d_weight, d_bias))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Module, Var};

    fn random(shape: &[usize], seed: u64) -> Var {
        super::super::random_var(shape, seed, 1.0)
    }

    #[test]
    fn output_and_every_gradient_match_candles_linear() {
        let (x, w, b) = (random(&[9, 5], 1), random(&[4, 5], 2), random(&[4], 3));
        let fused = linear(&x, &w, &b, Activation::Identity).unwrap();
        let reference = candle_nn::Linear::new(w.as_tensor().clone(), Some(b.as_tensor().clone())).forward(&x).unwrap();
        let close = |a: &Tensor, b: &Tensor| {
            let (a, b) = (
                a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                b.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            );
            a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5 * (1.0 + y.abs()))
        };
        assert!(close(&fused, &reference));
        let weights = Tensor::arange(0f32, 36.0, &Device::Cpu).unwrap().reshape((9, 4)).unwrap().sin().unwrap();
        let loss = |y: &Tensor| y.mul(&weights).unwrap().sum_all().unwrap();
        let (g1, g2) = (loss(&fused).backward().unwrap(), loss(&reference).backward().unwrap());
        for var in [&x, &w, &b] {
            assert!(close(g1.get(var).unwrap(), g2.get(var).unwrap()));
        }
    }

    #[test]
    fn the_relu_layer_matches_candles_relu() {
        let (x, w, b) = (random(&[7, 3], 4), random(&[5, 3], 5), random(&[5], 6));
        let fused = linear(&x, &w, &b, Activation::Relu).unwrap();
        let reference = candle_nn::Linear::new(w.as_tensor().clone(), Some(b.as_tensor().clone()))
            .forward(&x)
            .unwrap()
            .relu()
            .unwrap();
        let weights = Tensor::arange(0f32, 35.0, &Device::Cpu).unwrap().reshape((7, 5)).unwrap().cos().unwrap();
        let loss = |y: &Tensor| y.mul(&weights).unwrap().sum_all().unwrap();
        let (g1, g2) = (loss(&fused).backward().unwrap(), loss(&reference).backward().unwrap());
        for var in [&x, &w, &b] {
            let (a, b) = (
                g1.get(var).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                g2.get(var).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            );
            assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5 * (1.0 + y.abs())));
        }
        assert!(
            fused.flatten_all().unwrap().to_vec1::<f32>().unwrap().contains(&0.0),
            "the test reaches relu's flat side"
        );
    }

    #[test]
    fn the_tanh_layer_matches_candles_tanh_exactly_forward() {
        // Large enough for the tanh to be shared between threads.
        let (x, w, b) = (random(&[300, 40], 7), random(&[50, 40], 8), random(&[50], 9));
        let fused = linear(&x, &w, &b, Activation::Tanh).unwrap();
        let reference = linear(&x, &w, &b, Activation::Identity).unwrap().tanh().unwrap();
        let values = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(values(&fused), values(&reference), "the same tanh, so the same values");
        let weights = Tensor::arange(0f32, 15_000.0, &Device::Cpu).unwrap().reshape((300, 50)).unwrap().cos().unwrap();
        let loss = |y: &Tensor| y.mul(&weights).unwrap().sum_all().unwrap();
        let (g1, g2) = (loss(&fused).backward().unwrap(), loss(&reference).backward().unwrap());
        for var in [&x, &w, &b] {
            let (a, b) = (values(g1.get(var).unwrap()), values(g2.get(var).unwrap()));
            assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-4 * (1.0 + y.abs())));
        }
    }

    #[test]
    fn a_constant_input_gets_no_gradient_and_bad_shapes_are_refused() {
        let x = random(&[3, 2], 1).as_tensor().detach();
        let (w, b) = (random(&[2, 2], 2), random(&[2], 3));
        let grads = linear(&x, &w, &b, Activation::Identity).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&x).is_none() && grads.get(&w).is_some());
        let error = linear(&x, &random(&[2, 3], 4), &b, Activation::Identity).unwrap_err().to_string();
        assert!(error.contains("do not make a layer"), "{error}");
    }
}
