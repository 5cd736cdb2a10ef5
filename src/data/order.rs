//! The per-epoch shuffle: a fixed, hand-written algorithm so resumed runs replay the same
//! batch order.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// The permutation of `0..n` for one epoch: a function of `(seed, epoch)` alone.
///
/// ChaCha8 seeded with `seed` (`seed_from_u64`), stream `epoch`, then a Fisher–Yates shuffle
/// drawing with an unbiased rejection sampler. Written out by hand so the order never changes
/// with a library's shuffle algorithm: resumed runs must see exactly the batches they would have
/// seen.
///
/// # Panics
/// If `n` exceeds 2^32 (indices would not fit `u32`).
pub fn epoch_permutation(seed: u64, epoch: u64, n: usize) -> Vec<u32> {
    assert!(
        n as u64 <= u64::from(u32::MAX) + 1,
        "epoch_permutation: {n} samples do not fit u32 indices"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(epoch);
    let mut perm: Vec<u32> = (0..n).map(|i| i as u32).collect();
    for i in (1..n).rev() {
        let j = uniform_below(&mut rng, i as u64 + 1) as usize;
        perm.swap(i, j);
    }
    perm
}

/// A uniform integer in `0..bound` (`bound > 0`) by rejection: draws falling in the last,
/// incomplete copy of `0..bound` within the u64 range are redrawn, so there is no modulo bias.
fn uniform_below(rng: &mut impl Rng, bound: u64) -> u64 {
    // 2^64 mod bound: the count of draws at the top of the range that would bias the result.
    let excess = bound.wrapping_neg() % bound;
    loop {
        let draw = rng.next_u64();
        if draw <= u64::MAX - excess {
            return draw % bound;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts draws to check the rejection bound: with bound 3, 2^64 mod 3 = 1, so only
    /// u64::MAX is rejected.
    struct Fixed(Vec<u64>);
    impl rand_core::TryRng for Fixed {
        type Error = std::convert::Infallible;
        fn try_next_u32(&mut self) -> std::result::Result<u32, Self::Error> {
            Ok(self.0.remove(0) as u32)
        }
        fn try_next_u64(&mut self) -> std::result::Result<u64, Self::Error> {
            Ok(self.0.remove(0))
        }
        fn try_fill_bytes(&mut self, _: &mut [u8]) -> std::result::Result<(), Self::Error> {
            Ok(())
        }
    }

    #[test]
    fn uniform_below_rejects_the_biased_tail() {
        let mut rng = Fixed(vec![u64::MAX, u64::MAX - 1]);
        assert_eq!(uniform_below(&mut rng, 3), (u64::MAX - 1) % 3);
        let mut rng = Fixed(vec![u64::MAX]);
        assert_eq!(uniform_below(&mut rng, 4), 3); // 2^64 is a multiple of 4: nothing rejected
    }
}
