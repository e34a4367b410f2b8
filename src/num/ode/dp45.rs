//! The Dormand–Prince 5(4) tableau and its dense output (shared with the dynamic-size solver in `num::rk`).

use super::*;

#[inline]
pub(super) fn interpolate5<const D: usize>(
    c: &[SVector<f64, D>; 8],
    theta: f64,
) -> SVector<f64, D> {
    let th1 = 1.0 - theta;
    c[0] + (c[1] + (c[2] + (c[3] + c[4] * th1) * theta) * th1) * theta
}

// Dormand–Prince 5(4) tableau (shared with the dynamic-size solver in `super::rk`).
pub(in crate::num) const C2: f64 = 1.0 / 5.0;
pub(in crate::num) const C3: f64 = 3.0 / 10.0;
pub(in crate::num) const C4: f64 = 4.0 / 5.0;
pub(in crate::num) const C5: f64 = 8.0 / 9.0;
pub(in crate::num) const A21: f64 = 1.0 / 5.0;
pub(in crate::num) const A31: f64 = 3.0 / 40.0;
pub(in crate::num) const A32: f64 = 9.0 / 40.0;
pub(in crate::num) const A41: f64 = 44.0 / 45.0;
pub(in crate::num) const A42: f64 = -56.0 / 15.0;
pub(in crate::num) const A43: f64 = 32.0 / 9.0;
pub(in crate::num) const A51: f64 = 19372.0 / 6561.0;
pub(in crate::num) const A52: f64 = -25360.0 / 2187.0;
pub(in crate::num) const A53: f64 = 64448.0 / 6561.0;
pub(in crate::num) const A54: f64 = -212.0 / 729.0;
pub(in crate::num) const A61: f64 = 9017.0 / 3168.0;
pub(in crate::num) const A62: f64 = -355.0 / 33.0;
pub(in crate::num) const A63: f64 = 46732.0 / 5247.0;
pub(in crate::num) const A64: f64 = 49.0 / 176.0;
pub(in crate::num) const A65: f64 = -5103.0 / 18656.0;
pub(in crate::num) const A71: f64 = 35.0 / 384.0;
pub(in crate::num) const A73: f64 = 500.0 / 1113.0;
pub(in crate::num) const A74: f64 = 125.0 / 192.0;
pub(in crate::num) const A75: f64 = -2187.0 / 6784.0;
pub(in crate::num) const A76: f64 = 11.0 / 84.0;
pub(in crate::num) const E1: f64 = 71.0 / 57600.0;
pub(in crate::num) const E3: f64 = -71.0 / 16695.0;
pub(in crate::num) const E4: f64 = 71.0 / 1920.0;
pub(in crate::num) const E5: f64 = -17253.0 / 339200.0;
pub(in crate::num) const E6: f64 = 22.0 / 525.0;
pub(in crate::num) const E7: f64 = -1.0 / 40.0;
pub(in crate::num) const D1: f64 = -12715105075.0 / 11282082432.0;
pub(in crate::num) const D3: f64 = 87487479700.0 / 32700410799.0;
pub(in crate::num) const D4: f64 = -10690763975.0 / 1880347072.0;
pub(in crate::num) const D5: f64 = 701980252875.0 / 199316789632.0;
pub(in crate::num) const D6: f64 = -1453857185.0 / 822651844.0;
pub(in crate::num) const D7: f64 = 69997945.0 / 29380423.0;
