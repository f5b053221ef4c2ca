//! Regressions of the day-2 review of generated/prod: what breaks not at the first apply
//! but later, at an upgrade, a rotation or a second deployment. Each test names its point.

use crate::common;

use common::of_type;

/// Point 1: `engine_major_version: 15` -> `16` renders `engine_version = "16"` and a
/// parameter group of the new family, but RDS refuses a new major version unless the
/// request allows it (`InvalidParameterCombination: The AllowMajorVersionUpgrade flag must
/// be present when upgrading to a new major version`): the upgrade keel prepares for (the
/// parameter group's name prefix) would fail at apply.
#[test]
fn day2_1_a_major_engine_upgrade_is_allowed_by_every_database() {
    let mut seen = 0;
    for o in common::outputs() {
        for db in of_type(&o, "aws_db_instance") {
            seen += 1;
            assert_eq!(
                db["allow_major_version_upgrade"], true,
                "{} {}: a change of engine_major_version would fail at apply",
                o.env, o.stack
            );
        }
    }
    assert!(seen >= 4, "every database of every environment: {seen}");
}
