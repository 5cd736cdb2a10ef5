//! A plain f64 forward pass of any wgfit layer stack (NHWC), written from Keras's definitions,
//! for the layer tests' references and finite differences.

use super::cpu_reference::act_f64;
use wgfit::{LayerKind, LayerSpec, Padding};

/// The leading pad of a window of `window` elements moved by `stride` over `size` elements.
fn pad(p: Padding, size: usize, window: usize, stride: usize) -> usize {
    match p {
        Padding::Valid => 0,
        Padding::Same => {
            let out = size.div_ceil(stride);
            ((out - 1) * stride + window).saturating_sub(size) / 2
        }
    }
}

/// The outputs of `specs` for `rows` samples `x` with parameters `params` (every tensor in
/// the layers' order, as `Sequential::parameters` gives them), as evaluation computes them:
/// Dropout is the identity, BatchNormalization uses its moving statistics.
pub fn forward(specs: &[LayerSpec], params: &[Vec<f64>], x: &[f64], rows: usize) -> Vec<f64> {
    forward_in(specs, params, x, rows, false)
}

/// [`forward`], or with `training` as a training step computes it (BatchNormalization by the
/// batch's statistics; Dropout still the identity).
pub fn forward_in(
    specs: &[LayerSpec],
    params: &[Vec<f64>],
    x: &[f64],
    rows: usize,
    training: bool,
) -> Vec<f64> {
    // Tensor 0 is the input, tensor i + 1 layer i's output (a graph's layers name theirs).
    let mut tensors = vec![x.to_vec()];
    let mut next = 0;
    // Where each layer's tensors start in `params`: a shared layer's later calls use the
    // first call's.
    let mut starts = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let sources = if spec.sources.is_empty() {
            vec![i]
        } else {
            spec.sources.clone()
        };
        let a = tensors[sources[0]].clone();
        let start = spec.shares.map_or(next, |owner| starts[owner]);
        let mut cursor = start;
        let mut take = || {
            let t = &params[cursor];
            cursor += 1;
            t.clone()
        };
        let out = match &spec.kind {
            LayerKind::Dense => {
                let (w, b) = (take(), take());
                let width = *spec.in_shape.last().unwrap();
                let units = *spec.out_shape.last().unwrap();
                let m = rows * spec.inputs / width;
                let mut y = vec![0.0; m * units];
                for r in 0..m {
                    for u in 0..units {
                        let z: f64 = (0..width)
                            .map(|i| a[r * width + i] * w[u * width + i])
                            .sum();
                        y[r * units + u] = act_f64(z + b[u], spec.activation);
                    }
                }
                y
            }
            LayerKind::Conv2D {
                filters,
                kernel,
                strides,
                padding,
                dilation,
                use_bias,
            } => {
                let k = take();
                let b = if *use_bias {
                    take()
                } else {
                    vec![0.0; *filters]
                };
                let [h, w, c] = [spec.in_shape[0], spec.in_shape[1], spec.in_shape[2]];
                let [oh, ow] = [spec.out_shape[0], spec.out_shape[1]];
                let pt = pad(*padding, h, (kernel[0] - 1) * dilation[0] + 1, strides[0]);
                let pl = pad(*padding, w, (kernel[1] - 1) * dilation[1] + 1, strides[1]);
                let mut y = vec![0.0; rows * oh * ow * filters];
                for n in 0..rows {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            for f in 0..*filters {
                                let mut z = b[f];
                                for ky in 0..kernel[0] {
                                    for kx in 0..kernel[1] {
                                        let iy = (oy * strides[0] + ky * dilation[0]) as isize
                                            - pt as isize;
                                        let ix = (ox * strides[1] + kx * dilation[1]) as isize
                                            - pl as isize;
                                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize
                                        {
                                            continue;
                                        }
                                        for ch in 0..c {
                                            let xv = a[((n * h + iy as usize) * w + ix as usize)
                                                * c
                                                + ch];
                                            z += xv
                                                * k[((ky * kernel[1] + kx) * c + ch) * filters + f];
                                        }
                                    }
                                }
                                y[((n * oh + oy) * ow + ox) * filters + f] =
                                    act_f64(z, spec.activation);
                            }
                        }
                    }
                }
                y
            }
            LayerKind::MaxPooling2D {
                pool,
                strides,
                padding,
            }
            | LayerKind::AveragePooling2D {
                pool,
                strides,
                padding,
            } => {
                let max = matches!(spec.kind, LayerKind::MaxPooling2D { .. });
                pool2d(
                    &a,
                    rows,
                    &spec.in_shape,
                    &spec.out_shape,
                    *pool,
                    *strides,
                    *padding,
                    max,
                )
            }
            LayerKind::GlobalAveragePooling2D => {
                let [h, w] = [spec.in_shape[0], spec.in_shape[1]];
                pool2d(
                    &a,
                    rows,
                    &spec.in_shape,
                    &[1, 1, spec.in_shape[2]],
                    [h, w],
                    [h, w],
                    Padding::Valid,
                    false,
                )
            }
            LayerKind::Flatten | LayerKind::Reshape | LayerKind::Dropout { .. } => a,
            LayerKind::Activation => a.iter().map(|&v| act_f64(v, spec.activation)).collect(),
            LayerKind::BatchNormalization {
                epsilon,
                center,
                scale,
                ..
            } => {
                let gamma = if *scale { Some(take()) } else { None };
                let beta = if *center { Some(take()) } else { None };
                let (moving_mean, moving_variance) = (take(), take());
                let c = *spec.in_shape.last().unwrap();
                let n = a.len() / c;
                let mut y = vec![0.0; a.len()];
                for ch in 0..c {
                    let (mean, var) = if training {
                        let mean = (0..n).map(|s| a[s * c + ch]).sum::<f64>() / n as f64;
                        let var =
                            (0..n).map(|s| (a[s * c + ch] - mean).powi(2)).sum::<f64>() / n as f64;
                        (mean, var)
                    } else {
                        (moving_mean[ch], moving_variance[ch])
                    };
                    let inv = 1.0 / (var + *epsilon as f64).sqrt();
                    for s in 0..n {
                        let mut v = (a[s * c + ch] - mean) * inv;
                        if let Some(g) = &gamma {
                            v *= g[ch];
                        }
                        if let Some(b) = &beta {
                            v += b[ch];
                        }
                        y[s * c + ch] = v;
                    }
                }
                y
            }
            LayerKind::LayerNormalization {
                epsilon,
                center,
                scale,
            } => {
                let gamma = if *scale { Some(take()) } else { None };
                let beta = if *center { Some(take()) } else { None };
                let c = *spec.in_shape.last().unwrap();
                let mut y = vec![0.0; a.len()];
                for (sample, out) in a.chunks(c).zip(y.chunks_mut(c)) {
                    let mean = sample.iter().sum::<f64>() / c as f64;
                    let var = sample.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / c as f64;
                    let inv = 1.0 / (var + *epsilon as f64).sqrt();
                    for (ch, o) in out.iter_mut().enumerate() {
                        let mut v = (sample[ch] - mean) * inv;
                        if let Some(g) = &gamma {
                            v *= g[ch];
                        }
                        if let Some(b) = &beta {
                            v += b[ch];
                        }
                        *o = v;
                    }
                }
                y
            }
            LayerKind::Softmax => {
                let c = *spec.in_shape.last().unwrap();
                a.chunks(c)
                    .flat_map(|row| {
                        let m = row.iter().cloned().fold(f64::MIN, f64::max);
                        let e: Vec<f64> = row.iter().map(|v| (v - m).exp()).collect();
                        let sum: f64 = e.iter().sum();
                        e.into_iter().map(move |v| v / sum)
                    })
                    .collect()
            }
            LayerKind::Add => sources[1..].iter().fold(a, |sum, &s| {
                sum.iter().zip(&tensors[s]).map(|(x, y)| x + y).collect()
            }),
            LayerKind::MultiHeadAttention {
                num_heads,
                key_dim,
                value_dim,
                use_bias,
                use_causal_mask,
            } => {
                let mut p = Vec::new();
                for name in ["query", "key", "value", "output"] {
                    let kernel = take();
                    let bias = if *use_bias { Some(take()) } else { None };
                    p.push((name, kernel, bias));
                }
                let (t, c) = (spec.in_shape[0], spec.in_shape[1]);
                let (h, dk, dv) = (*num_heads, *key_dim, *value_dim);
                // x [positions, C] · kernel [C, width] + bias
                let project =
                    |x: &[f64], kernel: &[f64], bias: &Option<Vec<f64>>, k: usize, width: usize| {
                        let m = x.len() / k;
                        let mut y = vec![0.0; m * width];
                        for r in 0..m {
                            for j in 0..width {
                                let z: f64 =
                                    (0..k).map(|i| x[r * k + i] * kernel[i * width + j]).sum();
                                y[r * width + j] = z + bias.as_ref().map_or(0.0, |b| b[j]);
                            }
                        }
                        y
                    };
                let q = project(&a, &p[0].1, &p[0].2, c, h * dk);
                let k = project(&a, &p[1].1, &p[1].2, c, h * dk);
                let v = project(&a, &p[2].1, &p[2].2, c, h * dv);
                let scale = 1.0 / (dk as f64).sqrt();
                let mut ctx = vec![0.0; rows * t * h * dv];
                for b in 0..rows {
                    for head in 0..h {
                        for i in 0..t {
                            let last = if *use_causal_mask { i } else { t - 1 };
                            let qi = ((b * t + i) * h + head) * dk;
                            let scores: Vec<f64> = (0..=last)
                                .map(|j| {
                                    let kj = ((b * t + j) * h + head) * dk;
                                    (0..dk).map(|e| q[qi + e] * scale * k[kj + e]).sum()
                                })
                                .collect();
                            let m = scores.iter().cloned().fold(f64::MIN, f64::max);
                            let exps: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
                            let sum: f64 = exps.iter().sum();
                            for e in 0..dv {
                                ctx[((b * t + i) * h + head) * dv + e] = (0..=last)
                                    .map(|j| exps[j] / sum * v[((b * t + j) * h + head) * dv + e])
                                    .sum();
                            }
                        }
                    }
                }
                project(&ctx, &p[3].1, &p[3].2, h * dv, c)
            }
            LayerKind::PositionEmbedding { .. } => {
                let table = take();
                let per_sample = spec.outputs;
                (0..rows)
                    .flat_map(|_| table[..per_sample].to_vec())
                    .collect()
            }
            LayerKind::Embedding { output_dim, .. } => {
                let table = take();
                a.iter()
                    .flat_map(|&id| {
                        let row = id as usize * output_dim;
                        table[row..row + output_dim].to_vec()
                    })
                    .collect()
            }
        };
        tensors.push(out);
        starts.push(start);
        if spec.shares.is_none() {
            next = cursor;
        }
    }
    tensors.pop().unwrap()
}

#[allow(clippy::too_many_arguments)]
fn pool2d(
    a: &[f64],
    rows: usize,
    in_shape: &[usize],
    out_shape: &[usize],
    pool: [usize; 2],
    strides: [usize; 2],
    padding: Padding,
    max: bool,
) -> Vec<f64> {
    let [h, w, c] = [in_shape[0], in_shape[1], in_shape[2]];
    let [oh, ow] = [out_shape[0], out_shape[1]];
    let pt = pad(padding, h, pool[0], strides[0]);
    let pl = pad(padding, w, pool[1], strides[1]);
    let mut y = vec![0.0; rows * oh * ow * c];
    for n in 0..rows {
        for oy in 0..oh {
            for ox in 0..ow {
                for ch in 0..c {
                    let mut values = Vec::new();
                    for ky in 0..pool[0] {
                        for kx in 0..pool[1] {
                            let iy = (oy * strides[0] + ky) as isize - pt as isize;
                            let ix = (ox * strides[1] + kx) as isize - pl as isize;
                            if iy >= 0 && ix >= 0 && iy < h as isize && ix < w as isize {
                                values.push(a[((n * h + iy as usize) * w + ix as usize) * c + ch]);
                            }
                        }
                    }
                    y[((n * oh + oy) * ow + ox) * c + ch] = if max {
                        values.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
                    } else {
                        values.iter().sum::<f64>() / values.len() as f64
                    };
                }
            }
        }
    }
    y
}
