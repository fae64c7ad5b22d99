//! `tutela policy check [FILE]`: validates a policy and prints a summary and the table of
//! requirement ids it encodes. Exit 1 when the file is invalid.

use std::path::Path;
use std::process::ExitCode;
use tutela_core::policy::PurposeVerdict;

pub fn run(file: Option<&Path>) -> anyhow::Result<ExitCode> {
    let (policy, source) = match tutela_app::startup::load_policy(file) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("policy invalid: {e:#}");
            return Ok(ExitCode::from(1));
        }
    };
    let p = &policy;
    println!("policy OK: {source}");
    println!(
        "statement {} (updated {}): {}",
        p.statement.version, p.statement.updated, p.statement.title.en
    );
    println!(
        "{} services ({} preview), {} categories ({} sensitive), {} purposes, {} recipient kinds, {} consent exceptions, {} refusal grounds",
        p.services.len(),
        p.services.iter().filter(|s| s.preview).count(),
        p.categories.len(),
        p.categories.iter().filter(|c| c.sensitive).count(),
        p.purposes.len(),
        p.recipient_kinds.len(),
        p.consent_exceptions.len(),
        p.refusal_grounds.len(),
    );
    println!(
        "\n{:<14} {:<9} {:<10} {:>9}  purposes",
        "category", "sensitive", "residency", "retention"
    );
    for c in &p.categories {
        let purposes: Vec<String> = c
            .purposes
            .iter()
            .map(|r| match r.condition {
                Some(cond) => format!("{}[{}]", r.purpose, cond),
                None => r.purpose.to_string(),
            })
            .collect();
        println!(
            "{:<14} {:<9} {:<10} {:>5}d {:<9} {}",
            c.category.as_str(),
            if c.sensitive { "yes" } else { "no" },
            c.residency.as_str(),
            c.retention.after_closure_days,
            c.retention.action.as_str(),
            purposes.join(", ")
        );
        debug_assert!(c.purposes.iter().all(|r| matches!(
            p.purpose_verdict(c.category, r.purpose),
            PurposeVerdict::Declared(_)
        )));
    }
    println!("\nrequirement ids encoded by this policy:");
    let index = p.clause_index();
    let mut encoded = 0;
    for (clause, places) in &index {
        if places.is_empty() {
            continue;
        }
        encoded += 1;
        let shown: Vec<&str> = places.iter().map(String::as_str).take(4).collect();
        let more = places.len().saturating_sub(4);
        println!(
            "  {:<4} {}{}",
            clause.to_string(),
            shown.join(", "),
            if more > 0 {
                format!(" (+{more} more)")
            } else {
                String::new()
            }
        );
    }
    let rest: Vec<String> = index
        .iter()
        .filter(|(_, p)| p.is_empty())
        .map(|(c, _)| c.to_string())
        .collect();
    println!(
        "{encoded} of {} ids encoded here; enforced in code only: {}",
        index.len(),
        rest.join(" ")
    );
    Ok(ExitCode::SUCCESS)
}
