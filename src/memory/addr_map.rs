//! Maps keyed by addresses in the target, with a hasher fit for them: addresses are not
//! chosen by an adversary, and SipHash was a measurable share of a snapshot.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map keyed by addresses in the target. Its hasher is a multiply of the one word hashed:
/// addresses are not chosen by an adversary, and SipHash was a measurable share of a snapshot.
pub type AddrMap<V> = HashMap<usize, V, BuildHasherDefault<AddrHasher>>;

#[derive(Default)]
pub struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        // The product's low bits depend only on the input's low bits (zero for page
        // addresses), and hashbrown picks buckets by the low bits: bring the mixed high bits down.
        self.0.rotate_left(26)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(5) ^ *b as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
    fn write_usize(&mut self, n: usize) {
        // Fibonacci hashing: the product's high bits depend on every input bit.
        self.0 = (n as u64 ^ self.0).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}
