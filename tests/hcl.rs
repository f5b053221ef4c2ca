//! `keel show --hcl`: every generated Terraform root converts to HCL, and the HCL parses
//! back to the same structure and to the same Terraform JSON (comments aside).

use std::path::Path;

use crate::common;

use keel::tf::hcl::{to_body, to_hcl, to_json};

/// Comments left out (the HCL has them as `#` lines) and whole floats as integers (HCL has
/// one number type: `10.0` prints as `10`).
fn strip_comments(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1e15) {
                *v = serde_json::Value::from(f as i64);
            }
        }
        serde_json::Value::Object(map) => {
            map.remove("//");
            map.values_mut().for_each(strip_comments);
        }
        serde_json::Value::Array(list) => list.iter_mut().for_each(strip_comments),
        _ => {}
    }
}

#[test]
fn every_generated_root_round_trips_through_hcl() {
    let generated = common::repo().join("generated");
    let mut roots = 0;
    let mut files = 0;
    for env in std::fs::read_dir(&generated).expect("generated/") {
        for stack in std::fs::read_dir(env.expect("env").path()).expect("env folder") {
            let terraform = stack.expect("stack").path().join("terraform");
            let mut entries: Vec<_> = std::fs::read_dir(&terraform)
                .expect("terraform/")
                .map(|e| e.expect("entry").path())
                .collect();
            entries.sort();
            for path in entries {
                let text = std::fs::read_to_string(&path).expect("read");
                let doc: serde_json::Value = serde_json::from_str(&text).expect("JSON");
                let hcl = to_hcl(&doc).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let parsed = hcl::parse(&hcl).unwrap_or_else(|e| {
                    panic!("{}: HCL does not parse: {e}\n{hcl}", path.display())
                });
                assert_eq!(
                    parsed,
                    to_body(&doc).expect("converts"),
                    "{}: the HCL parses to another structure",
                    path.display()
                );
                let mut expected = doc.clone();
                strip_comments(&mut expected);
                let mut back = to_json(&parsed).expect("maps back");
                strip_comments(&mut back);
                assert_eq!(
                    back,
                    expected,
                    "{}: the HCL means other Terraform",
                    path.display()
                );
                files += 1;
            }
            roots += 1;
        }
    }
    assert!(
        roots >= 15 && files >= roots * 4,
        "{roots} roots, {files} files"
    );
}

#[test]
fn show_prints_hcl_and_json_and_refuses_an_unknown_stack() {
    let keel = |args: &[&str]| {
        common::keel_command()
            .arg("--root")
            .arg(common::repo())
            .args(args)
            .output()
            .expect("keel runs")
    };
    let out = keel(&["show", "prod", "platform", "--hcl"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("# ==> terraform/moved.tf (from moved.tf.json) <==\nmoved {\n  from = aws_eks_access_entry.admin_0\n"), "{text}");
    assert!(
        text.contains("resource \"aws_eks_cluster\" \"main\" {"),
        "{text}"
    );
    hcl::parse(&text).expect("the whole output is one HCL file");

    let out = keel(&["show", "prod", "platform"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let versions = std::fs::read_to_string(
        Path::new(&common::repo()).join("generated/prod/platform/terraform/versions.tf.json"),
    )
    .expect("versions.tf.json");
    assert!(
        text.contains(&format!("==> terraform/versions.tf.json <==\n{versions}")),
        "{text}"
    );

    let out = keel(&["show", "prod", "nope", "--hcl"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no stack \"nope\""));
}
