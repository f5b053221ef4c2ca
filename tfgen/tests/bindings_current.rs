//! The committed bindings (`tf-aws/src/aws/`) are exactly what the generator makes from the
//! committed trimmed schemas (`tfgen/schema/`, `tfgen/types.txt`). Needs no terraform.

use keel_tfgen::Repo;

#[test]
fn committed_bindings_equal_the_generators_output() {
    let repo = Repo::here();
    let expected = keel_tfgen::bindings(&repo).expect("the committed schemas generate");
    let dir = repo.bindings_dir();
    let committed = keel_tfgen::existing_files(&dir).expect("tf-aws/src/aws is readable");
    let mut problems = Vec::new();
    for (path, src) in &expected {
        match std::fs::read_to_string(dir.join(path)) {
            Ok(text) if &text == src => {}
            Ok(_) => problems.push(format!("tf-aws/src/aws/{path} differs")),
            Err(_) => problems.push(format!("tf-aws/src/aws/{path} is missing")),
        }
    }
    for path in committed.iter().filter(|p| !expected.contains_key(*p)) {
        problems.push(format!("tf-aws/src/aws/{path} is not generated"));
    }
    assert!(
        problems.is_empty(),
        "{}\nregenerate with `cargo run -p keel-tfgen -- bindings`",
        problems.join("\n")
    );
}

#[test]
fn every_type_of_the_list_is_in_both_trimmed_schemas() {
    let repo = Repo::here();
    let types = std::fs::read_to_string(repo.types()).expect("types.txt is readable");
    let types = keel_tfgen::schema::read_types(&types).expect("types.txt parses");
    for version in [keel_tfgen::schema::V5, keel_tfgen::schema::V6] {
        let text = std::fs::read_to_string(repo.schema(version)).expect("schema is readable");
        let schema: serde_json::Value = serde_json::from_str(&text).expect("schema is JSON");
        for (kind, name) in &types {
            assert!(
                schema[kind].get(name).is_some(),
                "{kind} {name} is missing from aws-{version}.json"
            );
        }
    }
}
