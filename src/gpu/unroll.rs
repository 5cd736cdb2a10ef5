//! Expands the `//@repeat` blocks of a WGSL template (`shaders/matmul_subgroup.wgsl`,
//! `shaders/matmul_gpu.wgsl`).
//!
//! WGSL has no way to unroll a loop, and the kernels that need it keep more accumulators than
//! a loop over an array would leave in registers. A block
//!
//! ```text
//! //@repeat j 0..3
//! var s{j} = a[{j%2}];
//! //@end
//! ```
//!
//! becomes its body once for each `j` in `0..3`, with every `{j}` replaced by the number and
//! `{j/8}`, `{j%8}`, `{j%32/4}` … by the value of the expression (operators `/` and `%` with
//! integer literals, applied left to right). Blocks do not nest; everything outside them is
//! copied unchanged.

/// The template with its blocks expanded. Panics on a malformed template: templates are
/// compiled into the binary, so this is a broken invariant, not an input error.
pub(crate) fn unroll(template: &str) -> String {
    let mut out = String::with_capacity(template.len() * 8);
    let mut lines = template.lines();
    while let Some(line) = lines.next() {
        let Some(spec) = line.trim().strip_prefix("//@repeat ") else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let (var, range) = parse_repeat(spec);
        let mut body = Vec::new();
        loop {
            match lines.next() {
                Some(l) if l.trim() == "//@end" => break,
                Some(l) => body.push(l),
                None => panic!("`//@repeat {spec}` without its `//@end` in a WGSL template"),
            }
        }
        for value in range {
            for line in &body {
                out.push_str(&substitute(line, var, value));
                out.push('\n');
            }
        }
    }
    out
}

/// `j 0..64` → (`"j"`, `0..64`).
fn parse_repeat(spec: &str) -> (&str, std::ops::Range<u32>) {
    let malformed = || panic!("malformed `//@repeat {spec}` in a WGSL template");
    let mut words = spec.split_whitespace();
    let (Some(var), Some(range), None) = (words.next(), words.next(), words.next()) else {
        malformed()
    };
    let Some((lo, hi)) = range.split_once("..") else {
        malformed()
    };
    match (lo.parse(), hi.parse()) {
        (Ok(lo), Ok(hi)) => (var, lo..hi),
        _ => malformed(),
    }
}

/// Replaces each `{var…}` in `line` by its value for `var = value`; other braces stay.
fn substitute(line: &str, var: &str, value: u32) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after
            .find('}')
            .and_then(|close| evaluate(&after[..close], var, value).map(|v| (close, v)))
        {
            Some((close, v)) => {
                out.push_str(&v.to_string());
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The value of `var`, `var/8`, `var%32/4`, … or `None` if `expr` is not about `var`.
fn evaluate(expr: &str, var: &str, value: u32) -> Option<u32> {
    let mut rest = expr.strip_prefix(var)?;
    let mut acc = value;
    while let Some(op) = rest.chars().next() {
        let start = op.len_utf8();
        let digits = rest[start..]
            .find(|c: char| !c.is_ascii_digit())
            .map_or(rest.len(), |i| i + start);
        let operand: u32 = rest[start..digits].parse().ok()?;
        acc = match op {
            '/' if operand != 0 => acc / operand,
            '%' if operand != 0 => acc % operand,
            _ => return None,
        };
        rest = &rest[digits..];
    }
    Some(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_blocks_and_evaluates_expressions() {
        let t =
            "a\n  //@repeat j 30..34\n  x{j} = y[{j/8}][{j%32/4}]; // {j%4} {k}\n  //@end\nb {}\n";
        let want = "a\n  x30 = y[3][7]; // 2 {k}\n  x31 = y[3][7]; // 3 {k}\n  \
                    x32 = y[4][0]; // 0 {k}\n  x33 = y[4][0]; // 1 {k}\nb {}\n";
        assert_eq!(unroll(t), want);
    }

    #[test]
    fn the_matmul_template_expands_completely() {
        let wgsl = unroll(include_str!("../../shaders/matmul_subgroup.wgsl"));
        assert!(
            !wgsl.lines().any(|l| l.trim().starts_with("//@")),
            "a block was left unexpanded"
        );
        assert!(!wgsl.contains("{j"), "a row placeholder was left");
        assert!(wgsl.contains("put4(r0 + 63u, 4u * (c0 + LANES), s63_1);"));
        assert!(wgsl.contains("let z63 = subgroupBroadcast(a1[3], 7u);"));
    }

    #[test]
    #[should_panic(expected = "malformed")]
    fn a_malformed_repeat_is_a_broken_invariant() {
        unroll("//@repeat j 0-4\n//@end\n");
    }

    #[test]
    #[should_panic(expected = "without its `//@end`")]
    fn an_unterminated_repeat_is_a_broken_invariant() {
        unroll("//@repeat j 0..4\nx{j}\n");
    }
}
