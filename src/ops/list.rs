//! `keel list`: stacks, environments, and what each environment's stacks contain.

use std::fmt::Write;

use crate::error::Error;
use crate::stacks;

use super::Project;
use super::synth::{self, Selection};

/// The listing as text.
pub fn list(project: &Project) -> Result<String, Error> {
    let outputs = synth::build(project, &Selection::default())?;
    let mut out = String::from("stacks:\n");
    for s in stacks::ALL {
        let _ = writeln!(out, "  {:<20} {}", s.name, s.description);
    }
    out.push_str("environments:\n");
    for env in project.environment_names()? {
        let _ = writeln!(out, "  {env} (in apply order)");
        let mut mine: Vec<_> = outputs.iter().filter(|o| o.env == env).collect();
        mine.sort_by_key(|o| o.apply_order);
        for o in mine {
            let _ = writeln!(
                out,
                "    {}. {:<20} {} terraform resources, {} kubernetes objects, {} files",
                o.apply_order,
                o.stack,
                o.resources,
                o.kubernetes_objects,
                o.files.len()
            );
        }
    }
    Ok(out)
}
