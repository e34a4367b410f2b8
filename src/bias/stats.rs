//! Small fitting helpers shared by the bias checks.

/// Least-squares slope of y against x.
pub fn slope(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len()) as f64;
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let mut sxy = 0.0;
    let mut sxx = 0.0;
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
    }
    sxy / sxx
}

/// Least-squares slope of ln y against ln x (the exponent p of y ~ x^p).
pub fn loglog_slope(x: &[f64], y: &[f64]) -> f64 {
    let lx: Vec<f64> = x.iter().map(|v| v.ln()).collect();
    let ly: Vec<f64> = y.iter().map(|v| v.abs().ln()).collect();
    slope(&lx, &ly)
}

/// Format a list of numbers compactly ("[1.0e-3, 2.0e-3]").
pub fn fmt_list(v: &[f64]) -> String {
    let items: Vec<String> = v.iter().map(|x| format!("{x:.3e}")).collect();
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slopes_of_exact_laws() {
        let x = [1.0, 2.0, 4.0, 8.0];
        let y: Vec<f64> = x.iter().map(|v| 3.0 * v * v).collect();
        assert!((loglog_slope(&x, &y) - 2.0).abs() < 1e-14);
        assert!((slope(&x, &[1.0, 3.0, 7.0, 15.0]) - 2.0).abs() < 1e-14);
    }
}
