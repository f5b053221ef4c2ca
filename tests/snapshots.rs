//! One snapshot per stack and environment of every rendered byte (reviewed with
//! `cargo insta review`; CI never accepts snapshots).

use crate::common;

#[test]
fn every_stack_in_every_environment() {
    let outputs = common::outputs();
    assert!(outputs.len() >= 6, "two stacks in three environments");
    for o in outputs {
        let mut text = String::new();
        for (path, body) in &o.files {
            text.push_str(&format!("===== {} =====\n{body}", path.display()));
        }
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path("../snapshots");
        settings.set_prepend_module_to_snapshot(false);
        settings.set_description(format!("rendered from environments/{}.yaml", o.env));
        settings.set_omit_expression(true);
        settings.bind(|| insta::assert_snapshot!(format!("{}@{}", o.stack, o.env), text));
    }
}
