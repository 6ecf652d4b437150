//! A Python number as a plain `f64`: a `float`'s value or an `int`'s, for the timeouts and
//! deadlines frames keep (`timeout=0.5`, `endtime = monotonic() + timeout`). Only reads; a
//! value that is not finite is no number.

use super::objects::Objects;

/// `PyFloatObject.ob_fval`: right after the object header on every supported version.
const FLOAT_VALUE: usize = 16;

impl Objects<'_> {
    /// The value of a `float` or `int` (bool included), if `obj` is one and it is finite.
    pub fn number(&self, obj: usize) -> Option<f64> {
        let value = if self.type_is(obj, "float") {
            f64::from_bits(self.mem.u64(obj + FLOAT_VALUE).ok()?)
        } else {
            self.int(obj).ok()? as f64
        };
        value.is_finite().then_some(value)
    }
}
