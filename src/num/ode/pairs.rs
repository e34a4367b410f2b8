//! The two embedded pairs (Dormand–Prince 5(4), DOP853) behind the shared adaptive driver.

use super::*;

/// What distinguishes the two pairs inside the shared driver. `k[0]` holds f(t, y) on entry to
/// [`Pair::attempt`]; [`Pair::accept`] leaves f(t_new, y_new) in `k[0]`'s successor slot and
/// returns it.
pub(super) trait Pair {
    /// The pair, for the trajectory's dense output.
    const METHOD: Method;
    /// Order of the propagated solution (initial step) and exponent 1/(q + 1) of the controller
    /// (DP45: 1/5 from its 4th-order estimate; DOP853: 1/8 as in Hairer's code).
    const ORDER: i32;
    const EXPONENT: f64;
    /// Bounds of the step-size factor.
    const FAC_MIN: f64;
    const FAC_MAX: f64;

    /// One attempted step: (y_new, error norm, evaluations).
    fn attempt<const D: usize>(
        f: &mut impl FnMut(f64, &SVector<f64, D>) -> Result<SVector<f64, D>>,
        t: f64,
        y: &SVector<f64, D>,
        k: &mut Stages<D>,
        hs: f64,
        t_new: f64,
        opts: &OdeOptions,
    ) -> Result<(SVector<f64, D>, f64, usize)>;

    /// On acceptance: (f(t_new, y_new), dense-output coefficients, evaluations); the full-order
    /// dense output only if `full`.
    #[allow(clippy::too_many_arguments)]
    fn accept<const D: usize>(
        f: &mut impl FnMut(f64, &SVector<f64, D>) -> Result<SVector<f64, D>>,
        t: f64,
        y: &SVector<f64, D>,
        y_new: &SVector<f64, D>,
        k: &mut Stages<D>,
        hs: f64,
        t_new: f64,
        full: bool,
    ) -> Result<(SVector<f64, D>, [SVector<f64, D>; 8], usize)>;

    /// The full-order dense output of an accepted step whose [`Pair::accept`] ran without it
    /// (the step of an event): (coefficients, evaluations). `None` (the default) for a pair
    /// whose [`Pair::accept`] always gives it.
    fn complete<const D: usize>(
        _f: &mut impl FnMut(f64, &SVector<f64, D>) -> Result<SVector<f64, D>>,
        _t: f64,
        _y: &SVector<f64, D>,
        _y_new: &SVector<f64, D>,
        _k: &mut Stages<D>,
        _hs: f64,
    ) -> Result<Option<([SVector<f64, D>; 8], usize)>> {
        Ok(None)
    }

    fn interpolate<const D: usize>(c: &[SVector<f64, D>; 8], theta: f64) -> SVector<f64, D>;
}

pub(super) struct Dp45Pair;

impl Pair for Dp45Pair {
    const METHOD: Method = Method::Dp45;
    const ORDER: i32 = 5;
    const EXPONENT: f64 = 0.2;
    const FAC_MIN: f64 = 0.2;
    const FAC_MAX: f64 = 10.0;

    #[inline]
    fn attempt<const D: usize>(
        f: &mut impl FnMut(f64, &SVector<f64, D>) -> Result<SVector<f64, D>>,
        t: f64,
        y: &SVector<f64, D>,
        k: &mut Stages<D>,
        hs: f64,
        t_new: f64,
        opts: &OdeOptions,
    ) -> Result<(SVector<f64, D>, f64, usize)> {
        let y = *y;
        let k1 = k[0];
        let k2 = f(t + C2 * hs, &(y + k1 * (A21 * hs)))?;
        let k3 = f(t + C3 * hs, &(y + (k1 * A31 + k2 * A32) * hs))?;
        let k4 = f(t + C4 * hs, &(y + (k1 * A41 + k2 * A42 + k3 * A43) * hs))?;
        let k5 = f(
            t + C5 * hs,
            &(y + (k1 * A51 + k2 * A52 + k3 * A53 + k4 * A54) * hs),
        )?;
        let k6 = f(
            t + hs,
            &(y + (k1 * A61 + k2 * A62 + k3 * A63 + k4 * A64 + k5 * A65) * hs),
        )?;
        let y_new = y + (k1 * A71 + k3 * A73 + k4 * A74 + k5 * A75 + k6 * A76) * hs;
        let k7 = f(t_new, &y_new)?;
        let err_vec = (k1 * E1 + k3 * E3 + k4 * E4 + k5 * E5 + k6 * E6 + k7 * E7) * hs;
        let err = rms_err(&err_vec, &y, &y_new, opts);
        k[1] = k2;
        k[2] = k3;
        k[3] = k4;
        k[4] = k5;
        k[5] = k6;
        k[6] = k7;
        Ok((y_new, err, 6))
    }

    #[inline]
    fn accept<const D: usize>(
        _f: &mut impl FnMut(f64, &SVector<f64, D>) -> Result<SVector<f64, D>>,
        _t: f64,
        y: &SVector<f64, D>,
        y_new: &SVector<f64, D>,
        k: &mut Stages<D>,
        hs: f64,
        _t_new: f64,
        _full: bool,
    ) -> Result<(SVector<f64, D>, [SVector<f64, D>; 8], usize)> {
        let (k1, k3, k4, k5, k6, k7) = (k[0], k[2], k[3], k[4], k[5], k[6]);
        let ydiff = y_new - y;
        let bspl = k1 * hs - ydiff;
        let z = SVector::<f64, D>::zeros();
        let cont = [
            *y,
            ydiff,
            bspl,
            ydiff - k7 * hs - bspl,
            (k1 * D1 + k3 * D3 + k4 * D4 + k5 * D5 + k6 * D6 + k7 * D7) * hs,
            z,
            z,
            z,
        ];
        Ok((k7, cont, 0))
    }

    #[inline]
    fn interpolate<const D: usize>(c: &[SVector<f64, D>; 8], theta: f64) -> SVector<f64, D> {
        interpolate5(c, theta)
    }
}

pub(super) struct Dop853Pair;

impl Pair for Dop853Pair {
    const METHOD: Method = Method::Dop853;
    const ORDER: i32 = 8;
    const EXPONENT: f64 = 0.125;
    const FAC_MIN: f64 = 1.0 / 3.0;
    const FAC_MAX: f64 = 6.0;

    #[inline]
    fn attempt<const D: usize>(
        f: &mut impl FnMut(f64, &SVector<f64, D>) -> Result<SVector<f64, D>>,
        t: f64,
        y: &SVector<f64, D>,
        k: &mut Stages<D>,
        hs: f64,
        _t_new: f64,
        opts: &OdeOptions,
    ) -> Result<(SVector<f64, D>, f64, usize)> {
        let y_new = dop853::attempt(f, t, y, k, hs)?;
        let err = dop853::error_norm(k, y, &y_new, hs, opts.rtol, opts.atol);
        Ok((y_new, err, 11))
    }

    #[inline]
    fn accept<const D: usize>(
        f: &mut impl FnMut(f64, &SVector<f64, D>) -> Result<SVector<f64, D>>,
        t: f64,
        y: &SVector<f64, D>,
        y_new: &SVector<f64, D>,
        k: &mut Stages<D>,
        hs: f64,
        t_new: f64,
        full: bool,
    ) -> Result<(SVector<f64, D>, [SVector<f64, D>; 8], usize)> {
        k[12] = f(t_new, y_new)?;
        let cont = dop853::dense(f, t, y, y_new, k, hs, full)?;
        Ok((k[12], cont, if full { 4 } else { 1 }))
    }

    fn complete<const D: usize>(
        f: &mut impl FnMut(f64, &SVector<f64, D>) -> Result<SVector<f64, D>>,
        t: f64,
        y: &SVector<f64, D>,
        y_new: &SVector<f64, D>,
        k: &mut Stages<D>,
        hs: f64,
    ) -> Result<Option<([SVector<f64, D>; 8], usize)>> {
        Ok(Some((dop853::dense(f, t, y, y_new, k, hs, true)?, 3)))
    }

    #[inline]
    fn interpolate<const D: usize>(c: &[SVector<f64, D>; 8], theta: f64) -> SVector<f64, D> {
        dop853::interpolate(c, theta)
    }
}
