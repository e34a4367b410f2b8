//! Unit tests of `sweep`.

use super::*;

#[test]
fn shard_parsing() {
    assert_eq!(Shard::parse("2/5").unwrap(), Shard { i: 2, n: 5 });
    assert!(Shard::parse("0/5").is_err());
    assert!(Shard::parse("6/5").is_err());
    assert!(Shard::parse("x").is_err());
}

#[test]
fn slurm_shards() {
    let env = |id: &'static str, count: &'static str, min: Option<&'static str>| {
        move |k: &str| match k {
            "SLURM_ARRAY_TASK_ID" => Some(id.to_string()),
            "SLURM_ARRAY_TASK_COUNT" => Some(count.to_string()),
            "SLURM_ARRAY_TASK_MIN" => min.map(str::to_string),
            _ => None,
        }
    };
    assert_eq!(
        Shard::from_slurm(env("3", "4", Some("1"))).unwrap(),
        Shard { i: 3, n: 4 }
    );
    assert_eq!(
        Shard::from_slurm(env("0", "4", Some("0"))).unwrap(),
        Shard { i: 1, n: 4 }
    );
    assert_eq!(
        Shard::from_slurm(env("4", "4", None)).unwrap(),
        Shard { i: 4, n: 4 }
    );
    for bad in [
        env("5", "4", Some("1")),
        env("x", "4", None),
        env("1", "0", None),
    ] {
        assert!(Shard::from_slurm(bad).is_err());
    }
    assert!(Shard::from_slurm(|_| None).is_err());
}

#[test]
fn points_write_their_own_csv() {
    let mut t = toml::Table::new();
    t.insert("csv".into(), toml::Value::String("d/run.csv".into()));
    per_point_csv(&mut t, 7);
    assert_eq!(t["csv"].as_str(), Some("d/run.point-7.csv"));
    let mut t = toml::Table::new();
    per_point_csv(&mut t, 7);
    assert!(t.is_empty());
}

#[test]
fn dotted_keys_are_found() {
    let t: toml::Table = "a = 1\n[b]\nc = 2\n".parse().unwrap();
    assert!(has_dotted(&t, "a") && has_dotted(&t, "b.c") && has_dotted(&t, "b"));
    assert!(!has_dotted(&t, "rr") && !has_dotted(&t, "b.d") && !has_dotted(&t, "a.x"));
}

#[test]
fn stems_of_outputs_are_sanitised() {
    assert_eq!(output_stem("../x", Shard::ALL), "_x");
    assert_eq!(output_stem("a b", Shard { i: 2, n: 3 }), "a_b.shard-2-of-3");
}

#[test]
fn failure_reasons_name_the_failed_rows() {
    let j = serde_json::json!({"rows": [
        {"label": "I-3 seeding", "verdict": "pass"},
        {"label": "B-4 agreement", "verdict": "fail"}
    ]});
    assert_eq!(failure_reason(&j), "failed: B-4 agreement");
    assert_eq!(failure_reason(&serde_json::json!({})), "failed");
}

#[test]
fn dotted_keys_and_lookup() {
    let mut t = toml::Table::new();
    set_dotted(&mut t, "task.eps", toml::Value::Float(0.1)).unwrap();
    assert_eq!(t["task"]["eps"].as_float(), Some(0.1));
    let j = serde_json::json!({"a": {"b": [1, {"c": 2}]}});
    assert_eq!(lookup(&j, "a.b.1.c"), Some(&serde_json::json!(2)));
    assert_eq!(lookup(&j, "a.x"), None);
    // `*` maps the rest of the path over an array; missing elements are null
    let r = serde_json::json!({"runs": [{"s": {"e": 1.5}}, {"s": {}}, {"s": {"e": 2}}]});
    assert_eq!(extract(&r, "runs.*.s.e"), serde_json::json!([1.5, null, 2]));
    assert_eq!(extract(&r, "runs.*").as_array().map(Vec::len), Some(3));
    assert_eq!(extract(&r, "runs.0.s.e"), serde_json::json!(1.5));
    assert_eq!(extract(&r, "nope.*.e"), serde_json::Value::Null);
    // `*` must be a whole component
    assert_eq!(extract(&r, "runs.*x"), serde_json::Value::Null);
    let outs = ["winner", "race.r_star_ode", "race.lhs", "t_a.ode"].map(String::from);
    assert_eq!(top_fields(&outs), vec!["winner", "race", "t_a"]);
}

/// Every point of a small linear2x2 sweep equals the same output paths looked up in the
/// whole `predict` of that point (bit for bit: JSON values compare f64 exactly), and the
/// rows are the same for 1 and 2 threads.
#[test]
fn points_equal_whole_predictions_for_any_thread_count() {
    let dir = std::env::temp_dir().join(format!("modeflow-sweep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("base.toml"),
        "kind = \"linear2x2\"\nr = 0.3\neps = 0.05\n",
    )
    .unwrap();
    let file = dir.join("s.toml");
    std::fs::write(
        &file,
        "kind = \"sweep\"\nbase = \"base.toml\"\n\
         outputs = [\"winner\", \"interference\", \"race.r_star_ode\", \"t_a.ode\", \"fixed_points.2.readout\", \"nope\"]\n\
         [axes]\nr = [0.2, 0.3, 0.5]\neps = [0.03, 0.05]\n",
    )
    .unwrap();
    let spec = parse(&crate::run::load(&file).unwrap()).unwrap();
    let run_with = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| run(&spec, Shard::ALL))
    };
    let (one, two) = (run_with(1), run_with(2));
    assert_eq!(
        serde_json::to_string(&one.rows).unwrap(),
        serde_json::to_string(&two.rows).unwrap()
    );
    assert_eq!(one.rows.len(), 6);
    for row in &one.rows {
        assert_eq!(row.status, "ok");
        let whole = run::predict(&point_model(&spec, row.index).unwrap()).unwrap();
        for (p, v) in spec.outputs.iter().zip(&row.outputs) {
            let expected = lookup(&whole.json["result"], p)
                .cloned()
                .unwrap_or_default();
            assert_eq!(v, &expected, "point {} output {p}", row.index);
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
