//! The output shape of each layer kind on a given input shape: the rules Keras's layers
//! compute their `compute_output_shape` by, with the reason an input does not fit.

use super::{LayerKind, Padding};

/// The most elements one sample's tensor, or a window, may span: the kernels index them, and
/// take every size, stride and pad, as 32-bit signed integers.
pub(crate) const MAX_EXTENT: usize = i32::MAX as usize;

/// The elements of one sample's tensor of `shape`, or why it is too large (`what` names it).
pub(super) fn extent(shape: &[usize], what: &str) -> std::result::Result<usize, String> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= MAX_EXTENT)
        .ok_or_else(|| format!("{what} {shape:?} has more than {MAX_EXTENT} elements per sample"))
}

/// The output shape of `kind` on `in_shape` (`units`: Dense's width, or Reshape's element
/// count check), or why the input does not fit; both shapes are within [`MAX_EXTENT`].
pub(super) fn out_shape(
    kind: &LayerKind,
    in_shape: &[usize],
    units: usize,
) -> std::result::Result<Vec<usize>, String> {
    extent(in_shape, "an input of")?;
    let out = shape_of(kind, in_shape, units)?;
    extent(&out, "its output of")?;
    Ok(out)
}

fn shape_of(
    kind: &LayerKind,
    in_shape: &[usize],
    units: usize,
) -> std::result::Result<Vec<usize>, String> {
    let image = |what: &str| match in_shape {
        &[h, w, c] if h > 0 && w > 0 && c > 0 => Ok((h, w, c)),
        _ => Err(format!(
            "{what} takes an [height, width, channels] input, not {in_shape:?}"
        )),
    };
    let window = |size: usize, k: usize, d: usize, s: usize, p: Padding, axis: &str| {
        if k == 0 || s == 0 || d == 0 {
            return Err(format!("a {axis} window, stride or dilation of 0"));
        }
        let span = (k - 1).checked_mul(d).and_then(|n| n.checked_add(1));
        let (span, s) = match span {
            Some(span) if span <= MAX_EXTENT && s <= MAX_EXTENT && d <= MAX_EXTENT => (span, s),
            _ => {
                return Err(format!(
                    "a {axis} window of {k} dilated by {d}, or a stride of {s}, spans more \
                     than {MAX_EXTENT} elements"
                ));
            }
        };
        p.output(size, span, s).map(|(o, _)| o).ok_or_else(|| {
            format!(
                "its {axis} window of {span} does not fit the input's {size} with padding valid"
            )
        })
    };
    match kind {
        LayerKind::Dense => match in_shape.split_last() {
            Some((_, lead)) if units > 0 => Ok(lead.iter().copied().chain([units]).collect()),
            _ => Err("a Dense layer needs an input and at least one unit".into()),
        },
        LayerKind::Conv2D {
            filters,
            kernel,
            strides,
            padding,
            dilation,
            ..
        } => {
            let (h, w, _) = image("Conv2D")?;
            if *filters == 0 {
                return Err("Conv2D has 0 filters".into());
            }
            Ok(vec![
                window(h, kernel[0], dilation[0], strides[0], *padding, "height")?,
                window(w, kernel[1], dilation[1], strides[1], *padding, "width")?,
                *filters,
            ])
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
            let (h, w, c) = image(kind.class_name())?;
            Ok(vec![
                window(h, pool[0], 1, strides[0], *padding, "height")?,
                window(w, pool[1], 1, strides[1], *padding, "width")?,
                c,
            ])
        }
        LayerKind::GlobalAveragePooling2D => {
            image("GlobalAveragePooling2D").map(|(_, _, c)| vec![c])
        }
        LayerKind::Flatten => Ok(vec![in_shape.iter().product()]),
        LayerKind::Reshape => Err("Reshape needs its target shape (LayerSpec::reshape)".into()),
        LayerKind::Dropout { rate } => {
            if !(0.0..1.0).contains(rate) {
                return Err(format!("a Dropout rate of {rate}; it must be in [0, 1)"));
            }
            Ok(in_shape.to_vec())
        }
        LayerKind::Activation | LayerKind::Add | LayerKind::Softmax => Ok(in_shape.to_vec()),
        LayerKind::Embedding {
            input_dim,
            output_dim,
        } => {
            if *input_dim == 0 || *output_dim == 0 {
                return Err(format!(
                    "input_dim {input_dim} and output_dim {output_dim} must be positive"
                ));
            }
            match in_shape {
                [t] if *t > 0 => Ok(vec![*t, *output_dim]),
                _ => Err(format!(
                    "Embedding takes a [sequence length] input of ids, not {in_shape:?}"
                )),
            }
        }
        LayerKind::PositionEmbedding { sequence_length } => match in_shape {
            [t, c] if *t > 0 && *c > 0 && t <= sequence_length => Ok(in_shape.to_vec()),
            _ => Err(format!(
                "PositionEmbedding of sequence_length {sequence_length} takes a [T, features] \
                 input with T at most {sequence_length}, not {in_shape:?}"
            )),
        },
        LayerKind::MultiHeadAttention {
            num_heads,
            key_dim,
            value_dim,
            ..
        } => {
            if *num_heads == 0 || *key_dim == 0 || *value_dim == 0 {
                return Err(format!(
                    "num_heads {num_heads}, key_dim {key_dim} and value_dim {value_dim} must \
                     be positive"
                ));
            }
            match in_shape {
                [t, c] if *t > 0 && *c > 0 => Ok(in_shape.to_vec()),
                _ => Err(format!(
                    "MultiHeadAttention takes a [sequence length, features] input, not \
                     {in_shape:?}"
                )),
            }
        }
        LayerKind::BatchNormalization {
            momentum, epsilon, ..
        } => {
            if !((0.0..=1.0).contains(momentum) && epsilon.is_finite() && *epsilon > 0.0) {
                return Err(format!(
                    "momentum {momentum} (in [0, 1]) or epsilon {epsilon} (positive) out of range"
                ));
            }
            match in_shape.last() {
                Some(&c) if c > 0 => Ok(in_shape.to_vec()),
                _ => Err("BatchNormalization needs an input with channels".into()),
            }
        }
        LayerKind::LayerNormalization { epsilon, .. } => {
            if !(epsilon.is_finite() && *epsilon > 0.0) {
                return Err(format!("epsilon {epsilon} out of range (positive)"));
            }
            match in_shape.last() {
                Some(&c) if c > 0 => Ok(in_shape.to_vec()),
                _ => Err("LayerNormalization needs an input with a last axis".into()),
            }
        }
    }
}
