//! `causeway plan -f <manifests>`: what causeway would do for these objects, changing nothing.
//! Each reconciler renders its own section (ALB model and steps, DNS changes); with AWS access the
//! sections compare against what exists, reading only.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::aws::AwsClients;
use crate::cli::PlanArgs;
use crate::telemetry::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: document {index} is not valid YAML: {message}")]
    Parse {
        path: PathBuf,
        index: usize,
        message: String,
    },
    #[error("invalid DNS settings: {0}")]
    Dns(String),
}

/// Every Kubernetes object in the files (directories are read for `*.yaml`, `*.yml` and
/// `*.json`, in name order; `-` is standard input). `List` objects are flattened.
pub fn load(files: &[PathBuf]) -> Result<Vec<serde_json::Value>, PlanError> {
    let mut out = Vec::new();
    for path in files {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|source| PlanError::Read {
                    path: path.clone(),
                    source,
                })?;
            parse_stream(path, &text, &mut out)?;
        } else if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|source| PlanError::Read {
                    path: path.clone(),
                    source,
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension()
                        .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
                })
                .collect();
            entries.sort();
            for file in entries {
                read_file(&file, &mut out)?;
            }
        } else {
            read_file(path, &mut out)?;
        }
    }
    Ok(out)
}

fn read_file(path: &Path, out: &mut Vec<serde_json::Value>) -> Result<(), PlanError> {
    let text = std::fs::read_to_string(path).map_err(|source| PlanError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_stream(path, &text, out)
}

pub(crate) fn parse_stream(
    path: &Path,
    text: &str,
    out: &mut Vec<serde_json::Value>,
) -> Result<(), PlanError> {
    let mut doc = String::new();
    let mut index = 0;
    let mut flush = |doc: &mut String, index: &mut usize| -> Result<(), PlanError> {
        if !doc.trim().is_empty() {
            let value: serde_json::Value =
                serde_saphyr::from_str(doc).map_err(|e| PlanError::Parse {
                    path: path.to_path_buf(),
                    index: *index,
                    message: e.to_string(),
                })?;
            push_object(value, out);
        }
        *index += 1;
        doc.clear();
        Ok(())
    };
    for line in text.lines() {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            flush(&mut doc, &mut index)?;
        } else {
            doc.push_str(line);
            doc.push('\n');
        }
    }
    flush(&mut doc, &mut index)
}

fn push_object(value: serde_json::Value, out: &mut Vec<serde_json::Value>) {
    match value.get("kind").and_then(|k| k.as_str()) {
        Some(kind) if kind.ends_with("List") && value.get("items").is_some() => {
            if let Some(items) = value.get("items").and_then(|i| i.as_array()) {
                for item in items {
                    push_object(item.clone(), out);
                }
            }
        }
        Some(_) => out.push(value),
        None => {}
    }
}

/// `causeway convert`: the Gateway API objects for the Ingresses in the files, as YAML.
pub fn convert(args: &crate::cli::ConvertArgs) -> Result<String, PlanError> {
    let objects = load(&args.files)?;
    let alb = args.alb.settings(None);
    let converted =
        crate::gateway::convert::convert(&objects, &alb, &args.cluster_name, &args.gateway_class);
    Ok(crate::gateway::convert::to_yaml(&converted))
}

/// Runs the plan and returns the report.
pub async fn run(args: &PlanArgs) -> Result<String, PlanError> {
    let objects = load(&args.files)?;
    let dns = args.dns.settings().map_err(PlanError::Dns)?;
    let aws = if args.offline {
        None
    } else {
        match AwsClients::new(&args.aws.settings(), Metrics::new()).await {
            Ok(clients) => Some(clients),
            Err(e) => {
                tracing::warn!(error = %e, "no AWS access; planning from the manifests alone");
                None
            }
        }
    };
    let mut report = format!(
        "causeway plan: {} objects, cluster {}, {}\n\n",
        objects.len(),
        args.cluster_name,
        if aws.is_some() {
            "compared with AWS (read-only)"
        } else {
            "offline"
        }
    );
    let alb = args.alb.settings(args.vpc_id.clone());
    report
        .push_str(&crate::alb::plan_report(&objects, aws.as_ref(), &args.cluster_name, &alb).await);
    report.push('\n');
    let nlb = args.nlb.settings(alb.clone());
    report
        .push_str(&crate::nlb::plan_report(&objects, aws.as_ref(), &args.cluster_name, &nlb).await);
    report.push('\n');
    let gateway = args.gateway.settings(alb.clone());
    report.push_str(
        &crate::gateway::plan_report(&objects, aws.as_ref(), &args.cluster_name, &gateway).await,
    );
    report.push('\n');
    report.push_str(&crate::dns::plan_report(&objects, aws.as_ref(), &dns).await);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_lists_and_blank_documents_are_flattened() {
        let text = "---\napiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\n\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Service, metadata: {name: b}}\n- {apiVersion: v1, kind: Service, metadata: {name: c}}\n";
        let mut out = Vec::new();
        parse_stream(Path::new("x.yaml"), text, &mut out).unwrap();
        let names: Vec<&str> = out
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn a_bad_document_names_its_file_and_index() {
        let mut out = Vec::new();
        let err = parse_stream(
            Path::new("m.yaml"),
            "kind: A\n---\nkind: [unclosed\n",
            &mut out,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("m.yaml") && msg.contains("document 1"),
            "{msg}"
        );
    }
}
