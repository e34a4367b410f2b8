//! Unit tests of `interference::linear::report`.

use super::*;

fn report(body: &str) -> LinearReport {
    let m = crate::model::parse("t.toml", &format!("kind = \"linear2x2\"\n{body}")).unwrap();
    predict(&m).unwrap()
}

#[test]
fn json_carries_the_promised_keys() {
    let rep = report("r = 0.3\neps = 0.05");
    let v = serde_json::to_value(&rep).unwrap();
    for key in [
        "winner",
        "interference",
        "t_new",
        "t_rot",
        "r_star",
        "fixed_points",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["winner"], "new_formation");
    // I-16: the closed-form crossover beside the ODE's (the ODE's root is found to 1e-6)
    let (ro, rr) = (
        v["race"]["r_star_ode"].as_f64().unwrap(),
        v["race"]["r_star_refined"].as_f64().unwrap(),
    );
    assert!((ro - rr).abs() < 2e-6, "{ro} vs {rr}");
    let fp = &v["fixed_points"][0];
    for key in ["coordinates", "eigenvalues", "type"] {
        assert!(fp.get(key).is_some(), "fixed point misses {key}");
    }
    assert_eq!(fp["type"], "stable_node");
}

fn model(body: &str) -> ModelFile {
    crate::model::parse(
        "t.toml",
        &format!("kind = \"linear2x2\"\nname = \"n\"\n{body}"),
    )
    .unwrap()
}

#[test]
fn fields_equal_the_full_report() {
    let shipped = crate::model::parse(
        "models/linear-eprop.toml",
        include_str!("../../../../models/linear-eprop.toml"),
    )
    .unwrap();
    let models = [
        model("r = 0.3\neps = 0.05"),
        model("r = 0.55\neps = 0.02\nzhat = 1.3\neta = 0.7"),
        model("r = 0.35\neps = 0.08\nzhat = 1.2\neta = 0.8\nrule = \"eprop\""),
        shipped,
    ];
    for m in &models {
        let file = &m.common.file;
        let full = serde_json::to_value(predict(m).unwrap()).unwrap();
        let keys: Vec<&str> = full
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(keys.len(), 18);
        let eprop = full["rule"] == "eprop";
        assert_eq!(full["eprop"].is_null(), !eprop, "{file}");
        let pred = Predictor::default();
        for &k in &keys {
            let one = predict_fields(m, &[k], &pred).unwrap();
            assert_eq!(one.len(), 1);
            assert_eq!(one[k], full[k], "{file}: field {k}");
        }
        let all = predict_fields(m, &keys, &Predictor::default()).unwrap();
        assert_eq!(serde_json::Value::Object(all), full);
        let none = predict_fields(m, &["no_such_field", "race.nope"], &pred).unwrap();
        assert!(none.is_empty());
    }
    // the shipped e-prop model: e-prop's own r* = eps, its race beside the gradient's
    let v = predict_fields(
        &models[3],
        &["rule", "r_star", "eprop", "winner"],
        &Predictor::default(),
    )
    .unwrap();
    assert_eq!(v["rule"], "eprop");
    assert_eq!(v["r_star"], 0.05);
    assert_eq!(v["eprop"]["r_star"], 0.05);
    assert_eq!(v["winner"], "new_formation");
}

#[test]
fn shared_parts_are_bit_identical_to_fresh_ones() {
    // Warm a predictor on other points with the same eps (crossover) and the same r (task A,
    // new formation), then predict: every number equals the one of a fresh predictor.
    let pred = Predictor::default();
    for body in ["r = 0.3\neps = 0.03", "r = 0.45\neps = 0.05"] {
        predict_spec_with(&spec::check(&model(body)).unwrap(), &pred).unwrap();
    }
    assert_eq!(pred.sizes(), [2, 2, 2]);
    let s = spec::check(&model("r = 0.3\neps = 0.05")).unwrap();
    let shared = predict_spec_with(&s, &pred).unwrap();
    assert_eq!(
        pred.sizes(),
        [2, 2, 2],
        "all three parts came from the memo"
    );
    let fresh = predict_spec(&s).unwrap();
    assert_eq!(
        serde_json::to_string(&shared).unwrap(),
        serde_json::to_string(&fresh).unwrap()
    );
    assert_eq!(
        shared.race.r_star_ode.map(f64::to_bits),
        race::crossover_ode(0.05, 1e-6).unwrap().map(f64::to_bits)
    );
    assert_eq!(shared.t_a.ode.to_bits(), fresh.t_a.ode.to_bits());

    // The rule is part of the keys: the same (r, eps) under e-prop computes its own task A
    // and new formation (the race's crossover is the gradient flow's under both rules), and
    // equals a fresh e-prop prediction bit for bit; the gradient parts are not disturbed.
    let e = spec::check(&model("r = 0.3\neps = 0.05\nrule = \"eprop\"")).unwrap();
    let shared_e = predict_spec_with(&e, &pred).unwrap();
    assert_eq!(pred.sizes(), [2, 3, 3]);
    let fresh_e = predict_spec(&e).unwrap();
    assert_eq!(
        serde_json::to_string(&shared_e).unwrap(),
        serde_json::to_string(&fresh_e).unwrap()
    );
    assert_ne!(shared_e.t_a.ode.to_bits(), shared.t_a.ode.to_bits());
    assert_eq!(shared_e.race.r_star_ode, shared.race.r_star_ode);
    let again = predict_spec_with(&s, &pred).unwrap();
    assert_eq!(pred.sizes(), [2, 3, 3]);
    assert_eq!(
        serde_json::to_string(&again).unwrap(),
        serde_json::to_string(&fresh).unwrap()
    );
}

#[test]
fn eprop_report_has_the_same_keys_and_its_closed_forms() {
    let rep = report("r = 0.2\neps = 0.05\nrule = \"eprop\"");
    let v = serde_json::to_value(&rep).unwrap();
    assert_eq!(v["rule"], "eprop");
    assert_eq!(v["winner"], "new_formation");
    assert!(v["task_b"]["t"].as_f64().unwrap() > 5.0);
    let ep = rep.eprop.as_ref().unwrap();
    for c in [
        &rep.t_a,
        &rep.t_new,
        &rep.t_rot,
        &ep.t_b,
        &ep.interference,
        &ep.rotation_share,
        &ep.q_after,
        &ep.s_after,
    ] {
        assert!(c.relative < 1e-6, "{c:?}");
    }
    assert_eq!(rep.r_star, Some(0.05));
    assert!(ep.gradient_interference > 100.0 && rep.interference < 0.2);
    let text = rep.text();
    assert!(
        text.contains("UNDER E-PROP") && text.contains("NEW FORMATION"),
        "{text}"
    );
}

#[test]
fn analytic_numbers_agree_with_their_ode_values() {
    for (body, winner) in [
        ("r = 0.2\neps = 0.05", Mode::Rotation),
        ("r = 0.6\neps = 0.05", Mode::NewFormation),
    ] {
        let rep = report(body);
        assert_eq!(rep.winner, winner);
        assert!(rep.t_new.relative < 1e-6 && rep.t_rot.relative < 1e-6 && rep.t_a.relative < 1e-6);
        // lambda_A falls short by tol u / zhat^2 (event at |z_AA - zhat| = tol).
        assert!((rep.lambda_a.difference + 1e-6 * rep.spec.params.u).abs() < 1e-9);
        for fp in &rep.fixed_points {
            assert!(fp.residual < 1e-14);
            if let Some(d) = fp.difference {
                assert!(d < 1e-8, "{}: {d}", fp.label);
            }
        }
        let text = rep.text();
        assert!(text.contains("VERDICT") && text.contains(winner.name().to_uppercase().as_str()));
    }
}
