//! The theory guide `docs/theory.md` is the user's map of the claims: every claim file in
//! `proofs-checks/` is linked from it, every relative link in it points at a file or directory
//! that exists, and no user-facing text refers to a theory file users cannot see.

use std::fs;
use std::path::Path;

fn guide() -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/theory.md"))
        .expect("docs/theory.md")
}

/// The targets of the relative markdown links `](../target)` of the guide.
fn relative_links(text: &str) -> Vec<String> {
    text.split("](../")
        .skip(1)
        .map(|rest| rest.split(')').next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn every_link_of_the_guide_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let links = relative_links(&guide());
    assert!(links.len() > 50, "only {} links found", links.len());
    for l in links {
        assert!(
            root.join(&l).exists(),
            "docs/theory.md links to missing `{l}`"
        );
    }
}

#[test]
fn every_claim_file_is_linked_from_the_guide() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let links = relative_links(&guide());
    let mut n = 0;
    for e in fs::read_dir(root.join("proofs-checks")).expect("proofs-checks/") {
        let name = e.expect("entry").file_name().to_string_lossy().into_owned();
        if !name.ends_with(".md") || name == "README.md" {
            continue;
        }
        n += 1;
        let target = format!("proofs-checks/{name}");
        assert!(
            links.contains(&target),
            "docs/theory.md does not link the claim file {target}"
        );
    }
    assert!(n > 40, "only {n} claim files found");
}

#[test]
fn user_facing_text_names_the_guide_not_a_private_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    for dir in ["proofs-checks", "docs", "models", "bench"] {
        for e in fs::read_dir(root.join(dir)).expect(dir) {
            let p = e.expect("entry").path();
            if p.extension().is_some_and(|x| x == "md" || x == "toml") {
                files.push(p);
            }
        }
    }
    for p in files {
        let text = fs::read_to_string(&p).expect("readable");
        assert!(
            !text.contains("THEORY.md"),
            "{} refers to THEORY.md; the user-facing guide is docs/theory.md",
            p.display()
        );
    }
}
