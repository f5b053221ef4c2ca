//! `tfgen schema` | `tfgen bindings`: see the crate documentation.

use std::path::PathBuf;
use std::process::ExitCode;

use keel_tfgen::{Repo, schema};

const USAGE: &str =
    "usage: tfgen schema [--shared DIR] [--mirror DIR]   (needs terraform)\n       tfgen bindings";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let repo = Repo::here();
    let result = match args.first().map(String::as_str) {
        Some("schema") => {
            let mut shared = repo.root.join("../shared");
            let mut mirror = PathBuf::from("/opt/tf-plugins");
            let mut rest = args[1..].iter();
            while let Some(flag) = rest.next() {
                match (flag.as_str(), rest.next()) {
                    ("--shared", Some(v)) => shared = PathBuf::from(v),
                    ("--mirror", Some(v)) => mirror = PathBuf::from(v),
                    _ => {
                        eprintln!("{USAGE}");
                        return ExitCode::from(2);
                    }
                }
            }
            let sources = schema::Sources {
                v6_schema: shared.join("schemas/aws-provider-schema.json"),
                mirror,
            };
            keel_tfgen::write_schemas(&repo, &sources)
                .map(|()| "wrote tfgen/types.txt and tfgen/schema/".to_owned())
        }
        Some("bindings") if args.len() == 1 => keel_tfgen::write_bindings(&repo)
            .map(|n| format!("wrote {n} files under tf-aws/src/aws/")),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
