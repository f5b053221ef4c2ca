//! `keel show ENV STACK [--hcl]`: the Terraform of one stack as synth would write it, as
//! JSON (what is applied) or as HCL (a reading aid, see [`crate::tf::hcl`]). Writes nothing.

use std::fmt::Write;

use anyhow::anyhow;

use crate::error::Error;

use super::Project;
use super::synth::{self, Selection};

/// The stack's Terraform files, each under a `==> terraform/<file> <==` header (JSON) or a
/// `# terraform/<file>.tf` comment (HCL, so the whole output is one valid HCL file).
pub fn show(project: &Project, env: &str, stack: &str, hcl: bool) -> Result<String, Error> {
    let selection = Selection {
        envs: vec![env.to_owned()],
        stack: Some(stack.to_owned()),
    };
    let outputs = synth::build(project, &selection)?;
    let output = outputs.first().ok_or_else(|| {
        Error::Usage(format!(
            "environment {env} has no settings for stack {stack} (stacks.{stack} in environments/{env}.yaml), so it has no Terraform"
        ))
    })?;
    let mut out = String::new();
    for (path, body) in &output.files {
        let Ok(rel) = path.strip_prefix("terraform") else {
            continue;
        };
        let name = rel.to_string_lossy();
        if !hcl {
            let _ = write!(out, "==> terraform/{name} <==\n{body}\n");
            continue;
        }
        let doc: serde_json::Value = serde_json::from_str(body)
            .map_err(|e| anyhow!("keel wrote terraform/{name} as invalid JSON: {e}"))?;
        let text =
            crate::tf::hcl::to_hcl(&doc).map_err(|e| anyhow!("terraform/{name} as HCL: {e}"))?;
        let tf_name = name.strip_suffix(".json").unwrap_or(&name);
        let _ = write!(out, "# ==> terraform/{tf_name} (from {name}) <==\n{text}\n");
    }
    Ok(out)
}
