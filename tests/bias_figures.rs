//! Structure tests of the implicit-bias gallery figures (src/figures/bias.rs): every file
//! written, SVG well-formed, PNG decodes to the requested size, provenance present, and one
//! numeric property of each figure's data.

use std::path::{Path, PathBuf};

use modeflow::figures::bias as fb;

mod common;

fn out_dir(name: &str) -> PathBuf {
    common::out_dir_with("biasfig", name)
}

/// A shipped model file (checked by its family when loaded).
fn shipped(name: &str) -> modeflow::model::ModelFile {
    modeflow::run::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("models")
            .join(name),
    )
    .unwrap()
}

/// Checks svg/png/json/csv of `stem` and returns the parsed figure JSON.
fn check_figure(dir: &Path, files: &[PathBuf], stem: &str, size: (u32, u32)) -> serde_json::Value {
    for ext in ["svg", "png", "json", "csv"] {
        let p = dir.join(format!("{stem}.{ext}"));
        assert!(files.contains(&p), "{p:?} not reported among {files:?}");
        assert!(p.is_file(), "{p:?} missing");
    }
    let (_, v) = common::check_figure_files(dir, stem, size);
    assert_eq!(
        v["provenance"]["modeflow_version"],
        env!("CARGO_PKG_VERSION")
    );
    assert!(v["provenance"]["what"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    v
}

fn fitted_slope(v: &serde_json::Value) -> f64 {
    v["data"]["fit"]["slope"].as_f64().expect("fitted slope")
}

#[test]
fn norm_growth_has_slope_one() {
    let dir = out_dir("norm");
    let files = fb::norm_growth(&shipped("bias-margin.toml"), &dir).unwrap();
    let v = check_figure(&dir, &files, "bias_norm_growth", (960, 680));
    // B-6: |w| = ln t + rho_1 + O(ln t / t) on [1e4, 1e6]: slope 1 to ~1e-3
    let s = fitted_slope(&v);
    assert!((s - 1.0).abs() < 0.02, "slope {s}");
}

#[test]
fn balance_drift_is_first_order_in_eta() {
    let dir = out_dir("drift");
    let files = fb::balance_drift(&shipped("bias-balance-drift.toml"), &dir).unwrap();
    let v = check_figure(&dir, &files, "bias_balance_drift", (960, 680));
    // B-1: drift = c1 eta + O(eta^2) at fixed eta*T; brief tolerance 0.05 on the exponent
    let s = fitted_slope(&v);
    assert!((s - 1.0).abs() < 0.05, "GD slope {s}");
    let sg = v["provenance"]["settings"]["sgd_slope"].as_f64().unwrap();
    assert!((sg - 1.0).abs() < 0.1, "SGD slope {sg}");
}

#[test]
fn clusters_matrix_and_projection() {
    let dir = out_dir("clusters");
    let files = fb::clusters(&shipped("bias-student-clusters.toml"), &dir).unwrap();
    let v = check_figure(&dir, &files, "bias_clusters_cosine", (900, 760));
    check_figure(&dir, &files, "bias_clusters_pca", (960, 680));
    // B-3 from small init: the 10 + 10 neurons collapse into a few direction clusters (at
    // least a twofold reduction), with a clear gap in the merge heights, and no cluster mixes
    // neurons of the two output signs (a_j = +1 are units 0..10, a_j = -1 units 10..20)
    let s = &v["provenance"]["settings"];
    let count = s["cluster_count"].as_u64().unwrap();
    assert!((2..=10).contains(&count), "cluster count {count}");
    assert!(s["gap_ratio"].as_f64().unwrap() > 10.0);
    let labels: Vec<u64> = s["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_u64().unwrap())
        .collect();
    assert_eq!(labels.len(), 20);
    for i in 0..10 {
        for j in 10..20 {
            assert_ne!(labels[i], labels[j], "units {i} and {j} share a cluster");
        }
    }
    // matrix: 20 x 20 cosines in [-1, 1] with a unit diagonal
    let csv = std::fs::read_to_string(dir.join("bias_clusters_cosine.csv")).unwrap();
    let rows: Vec<Vec<f64>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|c| c.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 400);
    for r in &rows {
        assert!(r[2].abs() <= 1.0 + 1e-12);
        if r[0] == r[1] {
            assert!((r[2] - 1.0).abs() < 1e-12);
        }
    }
}

#[test]
fn diagonal_bias_lies_between_l1_and_l2() {
    let dir = out_dir("diag");
    let model = modeflow::run::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("models/bias-diagonal.toml"),
    )
    .unwrap();
    let files = fb::diagonal_bias(&model, &dir).unwrap();
    let v = check_figure(&dir, &files, "bias_diagonal", (960, 680));
    let s = &v["provenance"]["settings"];
    let (l1, l2) = (
        s["min_l1"].as_f64().unwrap(),
        s["min_l2_l1norm"].as_f64().unwrap(),
    );
    assert!(l1 < l2);
    let q = v["data"]["series"][0]["points"].as_array().unwrap().clone();
    let ys: Vec<f64> = q.iter().map(|p| p[1].as_f64().unwrap()).collect();
    // |beta|_1 of argmin Q_alpha is >= min-l1 (up to the Newton tolerance), grows with alpha,
    // and approaches the l1 norm of min-l2 at alpha = 10 (Q_alpha -> |beta|^2/(4 alpha^2))
    for w in ys.windows(2) {
        assert!(w[1] >= w[0] - 1e-9, "not monotone: {w:?}");
    }
    assert!(ys[0] >= l1 * (1.0 - 1e-6));
    assert!(
        (ys[ys.len() - 1] - l2).abs() < 1e-3 * l2,
        "{} vs {l2}",
        ys[ys.len() - 1]
    );
    assert!((ys[0] - l1).abs() < 0.05 * l1, "{} vs {l1}", ys[0]);
}

#[test]
fn modified_flow_orders() {
    let dir = out_dir("order");
    let files = fb::modified_flow_order(&shipped("bias-modified-flow-order.toml"), &dir).unwrap();
    let v = check_figure(&dir, &files, "bias_modified_flow", (960, 680));
    // B-12: GD vs modified flow is second order (halving ratio 4); next order moves the
    // fitted slope by O(eps)
    let s = fitted_slope(&v);
    assert!((s - 2.0).abs() < 0.2, "slope {s}");
    let sl = v["provenance"]["settings"]["fitted_slopes"]
        .as_array()
        .unwrap();
    let want = [1.0, 2.0, 2.0, 3.0];
    for (x, w) in sl.iter().zip(want) {
        let x = x.as_f64().unwrap();
        assert!((x - w).abs() < 0.25, "slope {x} vs {w}");
    }
}
