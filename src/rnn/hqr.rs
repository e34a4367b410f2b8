//! Eigenvalues of a real upper-Hessenberg matrix by the Francis double-shift QR iteration
//! with exceptional shifts (the EISPACK `hqr` algorithm), capped at `max_its` iterations per
//! eigenvalue. nalgebra's Schur has no exceptional shifts and stalls on Jacobians of the
//! form -I + (low rank) (a trained g = 0 network: hundreds of eigenvalues exactly at -1);
//! this is the fallback used by [`super::fixed_points::jacobian_eigenvalues`].

use nalgebra::DMatrix;

/// Eigenvalues (re, im) of the upper-Hessenberg matrix `h` (entries below the first
/// subdiagonal are ignored). `None` if an eigenvalue needs more than `max_its` iterations.
pub fn hessenberg_eigenvalues(h: &DMatrix<f64>, max_its: usize) -> Option<Vec<(f64, f64)>> {
    let n = h.nrows();
    if n == 0 {
        return Some(Vec::new());
    }
    // 1-based copy to follow the classical formulation index for index
    let mut a = DMatrix::zeros(n + 1, n + 1);
    for i in 1..=n {
        for j in 1..=n {
            if i <= j + 1 {
                a[(i, j)] = h[(i - 1, j - 1)];
            }
        }
    }
    let mut wr = vec![0.0; n + 1];
    let mut wi = vec![0.0; n + 1];
    let mut anorm = 0.0;
    for i in 1..=n {
        for j in (i.max(2) - 1)..=n {
            let v: f64 = a[(i, j)];
            anorm += v.abs();
        }
    }
    let sign = |a: f64, b: f64| if b >= 0.0 { a.abs() } else { -a.abs() };
    let mut nn = n;
    let mut t = 0.0;
    while nn >= 1 {
        let mut its = 0;
        loop {
            let mut l = nn;
            while l >= 2 {
                let mut s = a[(l - 1, l - 1)].abs() + a[(l, l)].abs();
                if s == 0.0 {
                    s = anorm;
                }
                if a[(l, l - 1)].abs() + s == s {
                    a[(l, l - 1)] = 0.0;
                    break;
                }
                l -= 1;
            }
            let mut x = a[(nn, nn)];
            if l == nn {
                wr[nn] = x + t;
                wi[nn] = 0.0;
                nn -= 1;
            } else {
                let mut y = a[(nn - 1, nn - 1)];
                let mut w = a[(nn, nn - 1)] * a[(nn - 1, nn)];
                if l == nn - 1 {
                    let p = 0.5 * (y - x);
                    let q = p * p + w;
                    let mut z = q.abs().sqrt();
                    x += t;
                    if q >= 0.0 {
                        z = p + sign(z, p);
                        wr[nn - 1] = x + z;
                        wr[nn] = x + z;
                        if z != 0.0 {
                            wr[nn] = x - w / z;
                        }
                        wi[nn - 1] = 0.0;
                        wi[nn] = 0.0;
                    } else {
                        wr[nn - 1] = x + p;
                        wr[nn] = x + p;
                        wi[nn - 1] = -z;
                        wi[nn] = z;
                    }
                    nn -= 2;
                } else {
                    if its >= max_its {
                        return None;
                    }
                    if its == 10 || its == 20 {
                        // exceptional shift
                        t += x;
                        for i in 1..=nn {
                            a[(i, i)] -= x;
                        }
                        let s = a[(nn, nn - 1)].abs() + a[(nn - 1, nn - 2)].abs();
                        x = 0.75 * s;
                        y = x;
                        w = -0.4375 * s * s;
                    }
                    its += 1;
                    let (mut p, mut q, mut r);
                    let mut z;
                    let mut m = nn - 2;
                    loop {
                        z = a[(m, m)];
                        let rr = x - z;
                        let ss = y - z;
                        p = (rr * ss - w) / a[(m + 1, m)] + a[(m, m + 1)];
                        q = a[(m + 1, m + 1)] - z - rr - ss;
                        r = a[(m + 2, m + 1)];
                        let s = p.abs() + q.abs() + r.abs();
                        p /= s;
                        q /= s;
                        r /= s;
                        if m == l {
                            break;
                        }
                        let u = a[(m, m - 1)].abs() * (q.abs() + r.abs());
                        let v =
                            p.abs() * (a[(m - 1, m - 1)].abs() + z.abs() + a[(m + 1, m + 1)].abs());
                        if u + v == v {
                            break;
                        }
                        m -= 1;
                    }
                    for i in (m + 2)..=nn {
                        a[(i, i - 2)] = 0.0;
                        if i != m + 2 {
                            a[(i, i - 3)] = 0.0;
                        }
                    }
                    let mut k = m;
                    while k < nn {
                        if k != m {
                            p = a[(k, k - 1)];
                            q = a[(k + 1, k - 1)];
                            r = 0.0;
                            if k != nn - 1 {
                                r = a[(k + 2, k - 1)];
                            }
                            x = p.abs() + q.abs() + r.abs();
                            if x != 0.0 {
                                p /= x;
                                q /= x;
                                r /= x;
                            }
                        }
                        let s = sign((p * p + q * q + r * r).sqrt(), p);
                        if s != 0.0 {
                            if k == m {
                                if l != m {
                                    a[(k, k - 1)] = -a[(k, k - 1)];
                                }
                            } else {
                                a[(k, k - 1)] = -s * x;
                            }
                            p += s;
                            x = p / s;
                            y = q / s;
                            z = r / s;
                            q /= p;
                            r /= p;
                            for j in k..=nn {
                                let mut pp = a[(k, j)] + q * a[(k + 1, j)];
                                if k != nn - 1 {
                                    pp += r * a[(k + 2, j)];
                                    a[(k + 2, j)] -= pp * z;
                                }
                                a[(k + 1, j)] -= pp * y;
                                a[(k, j)] -= pp * x;
                            }
                            let mmin = if nn < k + 3 { nn } else { k + 3 };
                            for i in l..=mmin {
                                let mut pp = x * a[(i, k)] + y * a[(i, k + 1)];
                                if k != nn - 1 {
                                    pp += z * a[(i, k + 2)];
                                    a[(i, k + 2)] -= pp * r;
                                }
                                a[(i, k + 1)] -= pp * q;
                                a[(i, k)] -= pp;
                            }
                        }
                        k += 1;
                    }
                }
            }
            if nn < 2 || l + 1 >= nn {
                break;
            }
        }
    }
    Some((1..=n).map(|i| (wr[i], wi[i])).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn sorted(mut v: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
        v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        v
    }

    #[test]
    fn matches_nalgebra_on_random_matrices() {
        let mut rng = StdRng::seed_from_u64(9);
        for n in [3usize, 5, 12, 40] {
            let m = DMatrix::from_fn(n, n, |_, _| rng.random::<f64>() - 0.5);
            let h = m.clone().hessenberg().h();
            let ours = sorted(hessenberg_eigenvalues(&h, 60).unwrap());
            let theirs = sorted(
                nalgebra::Schur::try_new(m, 1e-14, 10_000)
                    .unwrap()
                    .complex_eigenvalues()
                    .iter()
                    .map(|c| (c.re, c.im))
                    .collect(),
            );
            for (a, b) in ours.iter().zip(&theirs) {
                assert!(
                    (a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-9,
                    "{a:?} {b:?}"
                );
            }
        }
    }

    #[test]
    fn minus_identity_plus_low_rank() {
        // J = -I + u v^T: eigenvalues -1 (n-1 times) and -1 + v.u
        let n = 200;
        let mut rng = StdRng::seed_from_u64(3);
        let u = nalgebra::DVector::from_fn(n, |_, _| rng.random::<f64>() - 0.5);
        let v = nalgebra::DVector::from_fn(n, |_, _| rng.random::<f64>() - 0.5);
        let j = -DMatrix::identity(n, n) + &u * v.transpose();
        let h = j.hessenberg().h();
        let ev = hessenberg_eigenvalues(&h, 60).unwrap();
        let top = ev.iter().map(|e| e.0).fold(f64::NEG_INFINITY, f64::max);
        let bottom = ev.iter().map(|e| e.0).fold(f64::INFINITY, f64::min);
        let special = -1.0 + v.dot(&u);
        let (hi, lo) = if special > -1.0 {
            (special, -1.0)
        } else {
            (-1.0, special)
        };
        assert!(
            (top - hi).abs() < 1e-10 && (bottom - lo).abs() < 1e-10,
            "{top} {bottom} {special}"
        );
        assert!(ev.iter().all(|e| e.1.abs() < 1e-6));
    }
}
