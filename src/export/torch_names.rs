//! The parameters under PyTorch's `nn.Sequential` state_dict names, for
//! `model.load_state_dict(safetensors.torch.load_file(path))`: each wgfit layer is one
//! module, and a Dense or Conv2D with an activation is two (the layer, then e.g. `nn.ReLU()`),
//! so module indices are those of the natural `nn.Sequential`; `k.weight` `[out, in]` and
//! `k.bias` for Linear; Conv2d's weight `[out, in, kh, kw]`; BatchNorm's `weight`, `bias`,
//! `running_mean`, `running_var` and `num_batches_tracked`. Only stacks of layers
//! `nn.Sequential` has map this way; a graph is refused (docs/INTEROP.md).

use crate::error::{Error, Result};
use crate::layer::LayerKind;
use crate::model::Sequential;
use crate::state::Tensor;
use safetensors::{Dtype, tensor::TensorView};
use std::collections::HashMap;
use std::path::Path;

impl Sequential {
    /// The parameters with PyTorch's names and layouts (see the module's docs).
    pub fn torch_state_dict(&self) -> Result<Vec<Tensor>> {
        let specs = self.specs()?;
        if super::keras_layout::is_functional(&specs) {
            return Err(refused(
                "a graph (Functional) model is not an nn.Sequential",
            ));
        }
        let params = self.parameters()?;
        let find = |name: String| {
            params
                .iter()
                .find(|t| t.name == name)
                .cloned()
                .ok_or_else(|| Error::internal(format!("no parameter {name}")))
        };
        let mut out = Vec::new();
        // `[H, W, C]` of a Flatten's input while only Dropout or Activation layers followed:
        // torch flattens `[C, H, W]`, so the next Linear's columns are put in that order.
        let mut flattened: Option<[usize; 3]> = None;
        let mut module = 0;
        for (i, spec) in specs.iter().enumerate() {
            let k = module;
            module += match spec.activation {
                crate::layer::Activation::Linear => 1,
                _ if matches!(spec.kind, LayerKind::Activation) => 1,
                _ => 2,
            };
            let renamed = |suffix: &str, torch: &str| -> Result<Tensor> {
                let t = find(format!("model.layers.{i}.{suffix}"))?;
                Ok(Tensor {
                    name: format!("{k}.{torch}"),
                    ..t
                })
            };
            match &spec.kind {
                LayerKind::Dense => {
                    let mut w = renamed("weight", "weight")?;
                    if let Some(hwc) = flattened {
                        w.data = channels_first_columns(&w.data, w.shape[0], hwc);
                    }
                    out.push(w);
                    out.push(renamed("bias", "bias")?);
                }
                LayerKind::Conv2D { use_bias, .. } => {
                    let w = renamed("weight", "weight")?;
                    // [kh, kw, in, out] to [out, in, kh, kw].
                    let (kh, kw, c, f) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3]);
                    let mut data = vec![0.0; w.data.len()];
                    for y in 0..kh {
                        for x in 0..kw {
                            for ci in 0..c {
                                for fo in 0..f {
                                    data[((fo * c + ci) * kh + y) * kw + x] =
                                        w.data[((y * kw + x) * c + ci) * f + fo];
                                }
                            }
                        }
                    }
                    out.push(Tensor {
                        shape: vec![f, c, kh, kw],
                        data,
                        ..w
                    });
                    if *use_bias {
                        out.push(renamed("bias", "bias")?);
                    }
                }
                LayerKind::BatchNormalization { center, scale, .. } => {
                    if !(*center && *scale) {
                        return Err(refused(
                            "BatchNorm2d has both a weight and a bias; this BatchNormalization lacks one (center or scale false)",
                        ));
                    }
                    out.push(renamed("gamma", "weight")?);
                    out.push(renamed("beta", "bias")?);
                    out.push(renamed("moving_mean", "running_mean")?);
                    out.push(renamed("moving_variance", "running_var")?);
                }
                LayerKind::Flatten if spec.in_shape.len() == 3 => {
                    let s = &spec.in_shape;
                    flattened = Some([s[0], s[1], s[2]]);
                    continue;
                }
                LayerKind::Dropout { .. } | LayerKind::Activation => continue,
                _ if spec.tensors().is_empty() => {}
                kind => {
                    return Err(refused(&format!(
                        "nn.Sequential has no layer with {}'s parameters named here",
                        kind.class_name()
                    )));
                }
            }
            flattened = None;
        }
        Ok(out)
    }

    /// Writes [`Sequential::torch_state_dict`] as safetensors (atomically), with
    /// `num_batches_tracked` (0: wgfit does not count them) for each BatchNorm, and the
    /// producer and the parameters' SHA-256 in the header's metadata.
    pub fn save_torch_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        let tensors = self.torch_state_dict()?;
        let metadata = HashMap::from([
            ("producer".to_string(), super::producer()),
            (
                "parameters_sha256".to_string(),
                super::parameters_sha256(&self.parameters()?),
            ),
            ("format".to_string(), "pt".to_string()),
        ]);
        let counters: Vec<String> = tensors
            .iter()
            .filter_map(|t| t.name.strip_suffix(".running_var"))
            .map(|k| format!("{k}.num_batches_tracked"))
            .collect();
        let bytes: Vec<Vec<u8>> = tensors
            .iter()
            .map(|t| bytemuck::cast_slice(&t.data).to_vec())
            .collect();
        let zero = 0i64.to_le_bytes();
        let encode = |e: safetensors::SafeTensorError| Error::encoding("PyTorch names", e);
        let mut views = Vec::new();
        for (t, b) in tensors.iter().zip(&bytes) {
            let view = TensorView::new(Dtype::F32, t.shape.clone(), b).map_err(encode)?;
            views.push((t.name.clone(), view));
        }
        for name in counters {
            views.push((
                name,
                TensorView::new(Dtype::I64, vec![], &zero).map_err(encode)?,
            ));
        }
        let data = safetensors::serialize(views, Some(metadata)).map_err(encode)?;
        crate::checkpoint::write_atomically(path.as_ref(), &data)?;
        Ok(())
    }
}

/// A `[rows, H·W·C]` weight whose columns follow `[H, W, C]`, with columns in `[C, H, W]`
/// order.
fn channels_first_columns(data: &[f32], rows: usize, [h, w, c]: [usize; 3]) -> Vec<f32> {
    let cols = h * w * c;
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        for y in 0..h {
            for x in 0..w {
                for ch in 0..c {
                    out[r * cols + (ch * h + y) * w + x] = data[r * cols + (y * w + x) * c + ch];
                }
            }
        }
    }
    out
}

fn refused(reason: &str) -> Error {
    Error::config("PyTorch names", reason)
}
