//! The argmin glue: the only module that talks to argmin (L-BFGS minimisation and Brent's root
//! finder), so an argmin or nalgebra upgrade touches one file.

use argmin::core::{CostFunction, Executor, Gradient, State, TerminationReason, TerminationStatus};
use argmin::solver::brent::BrentRoot;
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use nalgebra::DVector;

use crate::{Error, Result};

/// Options of [`lbfgs`].
#[derive(Debug, Clone, Copy)]
pub struct LbfgsOptions {
    pub max_iter: u64,
    /// Stop when |grad| <= grad_tol.
    pub grad_tol: f64,
    /// Stop when the relative cost change is below cost_tol.
    pub cost_tol: f64,
    /// Number of stored correction pairs.
    pub memory: usize,
}

impl Default for LbfgsOptions {
    fn default() -> Self {
        LbfgsOptions {
            max_iter: 1000,
            grad_tol: 1e-10,
            cost_tol: 1e-16,
            memory: 10,
        }
    }
}

/// Result of a minimisation.
#[derive(Debug, Clone)]
pub struct Minimum {
    pub x: DVector<f64>,
    pub cost: f64,
    /// |grad| at `x`.
    pub grad_norm: f64,
    pub iterations: u64,
}

struct Problem<F> {
    f: F,
}

impl<F: Fn(&DVector<f64>) -> (f64, DVector<f64>)> CostFunction for Problem<F> {
    type Param = DVector<f64>;
    type Output = f64;
    fn cost(&self, p: &Self::Param) -> std::result::Result<f64, argmin::core::Error> {
        Ok((self.f)(p).0)
    }
}

impl<F: Fn(&DVector<f64>) -> (f64, DVector<f64>)> Gradient for Problem<F> {
    type Param = DVector<f64>;
    type Gradient = DVector<f64>;
    fn gradient(&self, p: &Self::Param) -> std::result::Result<DVector<f64>, argmin::core::Error> {
        Ok((self.f)(p).1)
    }
}

fn argmin_error(solver: &str, e: argmin::core::Error) -> Error {
    Error::NoConvergence {
        solver: format!("{solver} ({e})"),
        iterations: 0,
        residual: f64::NAN,
        tolerance: 0.0,
    }
}

/// Minimise a smooth function given as `x -> (cost, gradient)` with L-BFGS (Moré–Thuente line
/// search). Returns the best point even when the iteration cap is reached (check `grad_norm`);
/// fails only if argmin fails or the cost is not finite at the start.
pub fn lbfgs(
    cost_grad: impl Fn(&DVector<f64>) -> (f64, DVector<f64>),
    x0: DVector<f64>,
    opts: &LbfgsOptions,
) -> Result<Minimum> {
    let (c0, g0) = cost_grad(&x0);
    if !c0.is_finite() || g0.iter().any(|v| !v.is_finite()) {
        return Err(Error::numerical(
            "L-BFGS: cost or gradient not finite at the starting point",
        ));
    }
    let problem = Problem { f: &cost_grad };
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), opts.memory)
        .with_tolerance_grad(opts.grad_tol)
        .and_then(|s| s.with_tolerance_cost(opts.cost_tol))
        .map_err(|e| argmin_error("L-BFGS", e))?;
    let res = Executor::new(problem, solver)
        .configure(|s| s.param(x0.clone()).max_iters(opts.max_iter))
        .run();
    let res = match res {
        Ok(r) => r,
        // A line search that cannot make progress at the optimum is not a failure.
        Err(e) if g0.norm() <= opts.grad_tol => {
            let _ = e;
            return Ok(Minimum {
                x: x0,
                cost: c0,
                grad_norm: g0.norm(),
                iterations: 0,
            });
        }
        Err(e) => return Err(argmin_error("L-BFGS", e)),
    };
    let state = res.state();
    let x = state.get_best_param().cloned().unwrap_or(x0);
    let (cost, g) = cost_grad(&x);
    Ok(Minimum {
        x,
        cost,
        grad_norm: g.norm(),
        iterations: state.get_iter(),
    })
}

struct Root<F> {
    f: F,
}

impl<F: Fn(f64) -> f64> CostFunction for Root<F> {
    type Param = f64;
    type Output = f64;
    fn cost(&self, p: &f64) -> std::result::Result<f64, argmin::core::Error> {
        Ok((self.f)(*p))
    }
}

/// A root of `f` in `[a, b]` by Brent's method; `f(a)` and `f(b)` must differ in sign.
pub fn brent_root(f: impl Fn(f64) -> f64, a: f64, b: f64, tol: f64) -> Result<f64> {
    let (fa, fb) = (f(a), f(b));
    if !(fa.is_finite() && fb.is_finite()) || fa.signum() == fb.signum() {
        if fa == 0.0 {
            return Ok(a);
        }
        if fb == 0.0 {
            return Ok(b);
        }
        return Err(Error::Numerical(format!(
            "root finder: f({a}) = {fa:e} and f({b}) = {fb:e} do not bracket a root"
        )));
    }
    let solver = BrentRoot::new(a.min(b), a.max(b), tol);
    let res = Executor::new(Root { f: &f }, solver)
        .configure(|s| s.param(0.5 * (a + b)).max_iters(200))
        .run()
        .map_err(|e| argmin_error("Brent root", e))?;
    let state = res.state();
    match state.get_termination_status() {
        TerminationStatus::Terminated(TerminationReason::SolverConverged) => {}
        other => {
            return Err(Error::NoConvergence {
                solver: format!("Brent root ({other:?})"),
                iterations: state.get_iter() as usize,
                residual: state.get_cost().abs(),
                tolerance: tol,
            })
        }
    }
    state
        .get_best_param()
        .copied()
        .ok_or_else(|| Error::numerical("Brent root: no parameter returned"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rosenbrock_minimum() {
        let f = |x: &DVector<f64>| {
            let (a, b) = (x[0], x[1]);
            let c = (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2);
            let g = DVector::from_vec(vec![
                -2.0 * (1.0 - a) - 400.0 * a * (b - a * a),
                200.0 * (b - a * a),
            ]);
            (c, g)
        };
        let m = lbfgs(
            f,
            DVector::from_vec(vec![-1.2, 1.0]),
            &LbfgsOptions::default(),
        )
        .unwrap();
        assert!(
            (m.x[0] - 1.0).abs() < 1e-7 && (m.x[1] - 1.0).abs() < 1e-7,
            "{}",
            m.x
        );
    }

    #[test]
    fn brent_finds_cube_root() {
        let r = brent_root(|x| x * x * x - 2.0, 0.0, 3.0, 1e-14).unwrap();
        assert!((r - 2f64.cbrt()).abs() < 1e-12);
        assert!(brent_root(|x| x * x + 1.0, -1.0, 1.0, 1e-12).is_err());
    }
}
