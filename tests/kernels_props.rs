//! Property tests of the random-connectivity kernels (THEORY I-11, I-12).

use modeflow::interference::kernels::bessel::{bessel_i0, bessel_i0_scaled};
use modeflow::interference::kernels::bulk::bulk_kernel;
use modeflow::interference::kernels::theta::{
    f_k, g_jk, g_matrix_quadrature, theta_new, theta_new_partial, theta_new_series, InputSchedule,
};
use proptest::prelude::*;

fn schedule() -> impl Strategy<Value = InputSchedule> {
    (0.1f64..5.0, -2.0f64..2.0, 0.0f64..30.0, -1.0f64..1.0).prop_map(|(t_in, u_p, t_d, u_s)| {
        InputSchedule {
            t_in,
            u_p,
            t_d,
            u_s,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The proven tail bound after any N really bounds what the remaining terms add:
    /// S_{N'} - S_N <= B_N for N' far beyond the stopping point (rounding: a few ulp per term).
    #[test]
    fn tail_bound_bounds_the_rest(g in 0.0f64..1.2, s in schedule(), extra in 0usize..40) {
        let th = theta_new_series(g, &s).unwrap();
        prop_assert!(th.tail_bound <= 1e-14 * th.value || th.tail_bound == 0.0);
        let n = th.terms.saturating_sub(10) + extra;
        let (s_n, b_n) = theta_new_partial(g, &s, n.max(1)).unwrap();
        let (s_far, _) = theta_new_partial(g, &s, th.terms + 200).unwrap();
        let rounding = 1e-15 * (th.terms + 200) as f64 * s_far;
        prop_assert!(s_far - s_n <= b_n + rounding, "N={n}: rest {} > bound {b_n}", s_far - s_n);
        prop_assert!(s_far >= s_n - rounding);
        // Adding more terms changes the result by less than the stated bound.
        prop_assert!((s_far - th.value).abs() <= th.tail_bound + rounding);
    }

    /// Theta_new grows with the sustained input u_s when u_p, u_s >= 0 (every c_n is a
    /// non-negative combination of u_p and u_s).
    #[test]
    fn theta_new_increases_with_sustained_input(
        g in 0.0f64..1.0, t_in in 0.1f64..4.0, t_d in 0.1f64..20.0,
        u_p in 0.0f64..2.0, u_s in 0.0f64..1.0, du in 1e-3f64..0.5,
    ) {
        let lo = theta_new(g, &InputSchedule { t_in, u_p, t_d, u_s });
        let hi = theta_new(g, &InputSchedule { t_in, u_p, t_d, u_s: u_s + du });
        prop_assert!(hi > lo, "{hi} <= {lo}");
    }

    /// Theta_new grows with g at a fixed schedule (each term carries g^{2n}, c_n independent of g)
    /// when the inputs have one sign.
    #[test]
    fn theta_new_increases_with_g(g in 0.0f64..1.0, dg in 1e-3f64..0.4, s in schedule()) {
        let s = InputSchedule { u_p: s.u_p.abs() + 0.1, u_s: s.u_s.abs(), ..s };
        prop_assert!(theta_new(g + dg, &s) > theta_new(g, &s));
    }

    /// The bulk kernel is symmetric, positive semi-definite on pairs (Cauchy–Schwarz), and
    /// equals its series sum_k f_k(s1) f_k(s2).
    #[test]
    fn bulk_kernel_symmetric_psd_and_series(g in 0.0f64..1.5, s1 in 0.0f64..12.0, s2 in 0.0f64..12.0) {
        let k12 = bulk_kernel(g, s1, s2);
        prop_assert_eq!(k12, bulk_kernel(g, s2, s1));
        let (k11, k22) = (bulk_kernel(g, s1, s1), bulk_kernel(g, s2, s2));
        prop_assert!(k12 * k12 <= k11 * k22 * (1.0 + 1e-13));
        let series: f64 = (0..150).map(|k| f_k(g, k, s1) * f_k(g, k, s2)).sum();
        prop_assert!((k12 - series).abs() <= 1e-13 * series + 1e-300, "{k12} vs {series}");
    }

    /// I0 is even, >= 1, increasing on x >= 0, and e^{-x} I0(x) is decreasing.
    #[test]
    fn bessel_shape(x in 0.0f64..200.0, dx in 1e-3f64..5.0) {
        prop_assert!(bessel_i0(x) >= 1.0);
        prop_assert_eq!(bessel_i0(-x), bessel_i0(x));
        prop_assert!(bessel_i0(x + dx) > bessel_i0(x));
        prop_assert!(bessel_i0_scaled(x + dx) < bessel_i0_scaled(x));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    /// Closed-form G_jk = g^{j+k} c_{j+k} equals nested quadrature of the definition.
    #[test]
    fn g_jk_closed_form_equals_quadrature(g in 0.1f64..1.2, t_in in 0.5f64..3.0, t_d in 0.0f64..6.0, u_s in -1.0f64..1.0) {
        let s = InputSchedule { t_in, u_p: 1.0, t_d, u_s };
        let gm = g_matrix_quadrature(g, &s, 6);
        for (j, row) in gm.iter().enumerate() {
            for (k, v) in row.iter().enumerate() {
                let cf = g_jk(g, &s, j, k).unwrap();
                prop_assert!((v - cf).abs() <= 1e-12 * (1.0 + cf.abs()), "G_{}{}: {} vs {}", j, k, v, cf);
            }
        }
    }
}
