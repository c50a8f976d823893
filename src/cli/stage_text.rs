//! `stagectl stage ...`'s human output: a stage, lists, usage, backups, SQL results, stats.

use super::output;
use crate::core::interfaces::{ContainerStats, SqlResult};
use crate::core::stage::backup::Backup;
use crate::core::stage::model::StageView;
use crate::core::stage::usage::StageUsage;
use std::collections::BTreeMap;

pub(super) fn usage_text(u: &StageUsage) -> String {
    let Some(s) = &u.storage else {
        return format!(
            "{}: not measured yet (stagectl stage usage {} --refresh)\n",
            u.stage, u.stage
        );
    };
    let row = |name: &str, allocated: u64, apparent: u64| {
        vec![
            name.to_string(),
            output::size(allocated),
            output::size(apparent),
        ]
    };
    let mut out = output::table(
        &["", "ON DISK", "APPARENT"],
        &[
            row("database", s.database_bytes, s.apparent.database_bytes),
            row("filestore", s.filestore_bytes, s.apparent.filestore_bytes),
            row("addons", s.addons_bytes, s.apparent.addons_bytes),
            row("total", s.used_bytes, s.apparent.used_bytes),
        ],
    );
    out += "\n";
    let mut pairs = vec![
        ("files", s.files.to_string()),
        ("active users", output::opt(&u.active_users)),
        ("measured", crate::core::time::rfc3339(&s.measured_at)),
    ];
    if s.unreadable > 0 {
        pairs.push(("unreadable", format!("{} entries skipped", s.unreadable)));
    }
    if u.over_limit {
        pairs.push(("limit", "the subscription is OVER its storage limit".into()));
    }
    out += &output::block(&pairs);
    out
}

pub(super) fn backups_text(list: &[Backup]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|b| {
            vec![
                b.id.clone(),
                format!("{:?}", b.status).to_lowercase(),
                output::size(b.sizes.values().sum()),
                crate::core::time::rfc3339(&b.created_at),
                b.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::table(&["ID", "STATUS", "SIZE", "CREATED", "ERROR"], &rows)
}

pub(super) fn sql_text(r: &SqlResult) -> String {
    let header: Vec<&str> = r.columns.iter().map(|c| c.name.as_str()).collect();
    let rows: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| match v {
                    serde_json::Value::Null => "NULL".to_string(),
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect();
    let mut out = if header.is_empty() {
        String::new()
    } else {
        output::table(&header, &rows)
    };
    let more = if r.truncated {
        " (more rows not sent)"
    } else {
        ""
    };
    out += &format!("({} rows{more})\n", r.row_count);
    out
}

pub(super) fn stats_text(stats: &BTreeMap<String, Option<ContainerStats>>) -> String {
    let rows: Vec<Vec<String>> = stats
        .iter()
        .map(|(role, s)| match s {
            Some(s) => vec![
                role.clone(),
                format!("{:.1}%", s.cpu_pct),
                output::size(s.memory_bytes),
                output::size(s.memory_limit_bytes),
            ],
            None => vec![role.clone(), "not running".into(), "-".into(), "-".into()],
        })
        .collect();
    output::table(&["COMPONENT", "CPU", "MEMORY", "LIMIT"], &rows)
}

/// "3d", "5h", "12m", "40s" since an RFC 3339 time.
pub(super) fn age(created: &str, now: time::OffsetDateTime) -> String {
    let Ok(t) =
        time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339)
    else {
        return "-".into();
    };
    let s = (now - t).whole_seconds().max(0);
    match s {
        s if s >= 86_400 => format!("{}d", s / 86_400),
        s if s >= 3600 => format!("{}h", s / 3600),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

pub(super) fn stage_text(s: &StageView) -> String {
    let components: Vec<String> = s
        .components
        .iter()
        .map(|(k, c)| format!("{k} {}", c.status))
        .collect();
    let mut pairs = vec![
        ("stage", format!("{}/{}", s.subscription, s.name)),
        ("uuid", s.uuid.to_string()),
        ("type", s.stage_type.as_str().to_string()),
        ("state", s.state.as_str().to_string()),
        ("domain", s.domain.clone()),
        ("http port", output::opt(&s.http_port)),
        ("containers", components.join(", ")),
        ("addons dir", s.addons_dir.clone()),
        (
            "storage",
            s.storage.as_ref().map_or("not measured yet".into(), |u| {
                format!(
                    "{} (database {}, filestore {}, addons {})",
                    output::size(u.used_bytes),
                    output::size(u.database_bytes),
                    output::size(u.filestore_bytes),
                    output::size(u.addons_bytes)
                )
            }),
        ),
        ("active users", output::opt(&s.active_users)),
        (
            "code server",
            s.code_server.as_ref().map_or("-".into(), |c| {
                format!(
                    "{} ({}, port {})",
                    c.url,
                    c.state.as_str(),
                    output::opt(&c.port)
                )
            }),
        ),
        ("created", s.created_at.clone()),
        ("end date", output::opt(&s.end_date)),
        ("purge at", output::opt(&s.purge_at)),
    ];
    if let Some(r) = s.stop_reason {
        pairs.push(("stop reason", format!("{r:?}").to_lowercase()));
    }
    if let Some(e) = &s.last_error {
        pairs.push(("last error", e.clone()));
    }
    if let Some(commit) = &s.git.last_commit {
        pairs.push((
            "git",
            format!(
                "{} {} @ {} ({} commits): {}",
                output::opt(&s.git.repository),
                output::opt(&s.git.branch),
                commit,
                output::opt(&s.git.commit_count),
                output::opt(&s.git.last_commit_message)
            ),
        ));
    }
    if s.over_limit {
        pairs.push(("limit", "the subscription is OVER its storage limit".into()));
    }
    if !s.drift.is_empty() {
        pairs.push(("drift", s.drift.join("; ")));
    }
    output::block(&pairs)
}
