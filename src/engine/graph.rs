//! The buffers of a model's tensors and of their gradients, for a stack of layers and for a
//! graph (the Functional API) alike.
//!
//! Tensor 0 is the batch's input and tensor `i + 1` the output of layer `i`; each layer reads
//! the tensors its [`LayerSpec::sources`] name (earlier ones: the layers are in topological
//! order). Every layer writes the gradient by each of its inputs to that input's *edge*
//! buffer. A tensor read by one layer takes that edge as its gradient; a tensor read by
//! several (a residual connection) gets its own gradient buffer, the sum of its edges in the
//! order of the layers that read it, added before its producer's backward pass. Flatten and
//! Reshape record nothing: their edge is their output's gradient buffer itself. Add copies its
//! output's gradient to each input's edge: an edge shared between its inputs would be
//! overwritten by a layer that turns its output's gradient into its own in place (Dense's
//! activation backward) before another input read it.

use crate::error::Result;
use crate::gpu::Gpu;
use crate::layer::{LayerKind, LayerSpec};

/// The tensors of one batch of `rows` rows and their gradients.
pub(super) struct GraphBuffers {
    /// Per tensor: its values (Flatten and Reshape share their input's).
    pub acts: Vec<wgpu::Buffer>,
    /// Per layer `i`: the gradient by its output (tensor `i + 1`).
    pub grads: Vec<wgpu::Buffer>,
    /// Per layer, per source: where the layer writes the gradient by that input; `None` when
    /// nothing before that input has parameters (nor is it ids).
    pub edges: Vec<Vec<Option<wgpu::Buffer>>>,
    /// Per layer `i`: the edges summed into `grads[i]` before its backward pass, in order
    /// (empty unless tensor `i + 1` is read by several layers).
    pub sums: Vec<Vec<wgpu::Buffer>>,
}

/// The sources of layer `i`: as given, or the previous tensor.
pub(crate) fn sources(spec: &LayerSpec, i: usize) -> Vec<usize> {
    if spec.sources.is_empty() {
        vec![i]
    } else {
        spec.sources.clone()
    }
}

/// Whether the layer's gradient by its input is its gradient by its output, in the same
/// memory.
fn passes_gradient_through(kind: &LayerKind) -> bool {
    kind.moves_nothing()
}

/// Lays out the buffers of `specs` for batches of `rows` rows with `features` inputs each.
pub(super) fn buffers(
    gpu: &Gpu,
    specs: &[LayerSpec],
    rows: usize,
    features: usize,
) -> Result<GraphBuffers> {
    let n = specs.len();
    let sources: Vec<Vec<usize>> = specs
        .iter()
        .enumerate()
        .map(|(i, s)| sources(s, i))
        .collect();
    // Whether a tensor's gradient is needed: some layer before it has parameters.
    let mut needs_grad = vec![false; n + 1];
    for (i, spec) in specs.iter().enumerate() {
        needs_grad[i + 1] = !spec.tensors().is_empty()
            || (!spec.kind.stops_gradient() && sources[i].iter().any(|&s| needs_grad[s]));
    }

    let mut acts = vec![gpu.storage("batch x", (rows * features) as u64 * 4)?];
    for (i, spec) in specs.iter().enumerate() {
        let bytes = (rows * spec.outputs) as u64 * 4;
        acts.push(if spec.kind.moves_nothing() {
            acts[sources[i][0]].clone()
        } else {
            gpu.storage("activations", bytes)?
        });
    }

    // Gradients from the last tensor back: an edge of a pass-through layer is its output's
    // gradient, decided before the edge is.
    let mut grads: Vec<Option<wgpu::Buffer>> = vec![None; n + 1];
    let mut edges: Vec<Vec<Option<wgpu::Buffer>>> =
        sources.iter().map(|s| vec![None; s.len()]).collect();
    let mut sums: Vec<Vec<wgpu::Buffer>> = vec![Vec::new(); n];
    for t in (1..=n).rev() {
        let bytes = (rows * specs[t - 1].outputs) as u64 * 4;
        let readers: Vec<(usize, usize)> = (t..n)
            .flat_map(|i| {
                let reads = &sources[i];
                (0..reads.len())
                    .filter(move |&k| reads[k] == t)
                    .map(move |k| (i, k))
            })
            .filter(|&(i, _)| !specs[i].kind.stops_gradient())
            .collect();
        let edge_buffer = |i: usize, grads: &[Option<wgpu::Buffer>]| -> Result<wgpu::Buffer> {
            match &grads[i + 1] {
                Some(g) if passes_gradient_through(&specs[i].kind) => Ok(g.clone()),
                _ => gpu.storage("activation gradients", bytes),
            }
        };
        let own = match readers.as_slice() {
            [(i, k)] if needs_grad[t] => {
                let edge = edge_buffer(*i, &grads)?;
                edges[*i][*k] = Some(edge.clone());
                edge
            }
            several if needs_grad[t] && !several.is_empty() => {
                for &(i, k) in several {
                    let edge = edge_buffer(i, &grads)?;
                    edges[i][k] = Some(edge.clone());
                    sums[t - 1].push(edge);
                }
                gpu.storage("activation gradients", bytes)?
            }
            // The model's output (its gradient comes from the loss), or a tensor nothing
            // before has parameters for: its buffer is bound but never needed.
            _ => match readers.first() {
                Some(&(i, _)) if passes_gradient_through(&specs[i].kind) => edge_buffer(i, &grads)?,
                _ => gpu.storage("activation gradients", bytes)?,
            },
        };
        grads[t] = Some(own);
    }
    let grads = grads
        .into_iter()
        .skip(1)
        .map(|g| g.expect("every layer's output has a gradient buffer"))
        .collect();
    Ok(GraphBuffers {
        acts,
        grads,
        edges,
        sums,
    })
}
