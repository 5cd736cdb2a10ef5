//! The gradient checks' comparison: the GPU's gradient, read through one SGD step with
//! learning rate 1 (g = before − after), against central finite differences of an f64 loss.

use wgfit::Tensor;

/// The entries whose gradient differs from the central difference (step 1e-6) of `loss` at
/// `base` by more than 1e-4 relative plus 1e-5, as lines naming them; tensors `skip` names
/// (state, not parameters) are left out.
pub fn wrong_entries(
    before: &[Tensor],
    after: &[Tensor],
    base: &[Vec<f64>],
    loss: impl Fn(&[Vec<f64>]) -> f64,
    skip: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut failures = Vec::new();
    let h = 1e-6;
    for (ti, tensor) in before.iter().enumerate() {
        if skip(&tensor.name) {
            continue;
        }
        for e in 0..tensor.data.len() {
            let g = tensor.data[e] as f64 - after[ti].data[e] as f64;
            let mut p = base.to_vec();
            p[ti][e] += h;
            let lp = loss(&p);
            p[ti][e] -= 2.0 * h;
            let lm = loss(&p);
            let fd = (lp - lm) / (2.0 * h);
            if (g - fd).abs() > 1e-4 * fd.abs() + 1e-5 {
                failures.push(format!("{}[{e}]: GPU {g:.6e}, CPU {fd:.6e}", tensor.name));
            }
        }
    }
    failures
}
