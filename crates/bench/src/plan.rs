//! `--plan`: capacity planning from a measured run (or from earlier JSON
//! reports, `--plan-from`).
//!
//! For a target of Q requests per second, from one instance's measured
//! throughput X (RPS), mean latency W and p95:
//!
//! | figure | formula |
//! | --- | --- |
//! | concurrency needed in total | L = Q × W (Little's law) |
//! | instances | ⌈Q / (X × headroom)⌉ |
//! | per-instance concurrency | ⌈L / instances⌉ |
//! | per-instance load | Q / instances |
//!
//! Little's law holds for any stable system in a steady state; it says
//! nothing about whether W stays the same at the new load, which is why the
//! measurement must be taken at the concurrency an instance will really see.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::report::{Mode, Report};
use crate::stats::Percentiles;

/// Slack for ceilings of ratios that are whole numbers on paper
/// (e.g. 1000 / (200 × 0.5) must give 10, not 11).
const EPSILON: f64 = 1e-9;

/// What a plan is for (`--target-qps`, `--p95-goal`, `--headroom`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Goal {
    pub target_qps: f64,
    pub p95_goal_ms: Option<f64>,
    pub headroom: f64,
}

/// The figures of one measured run that planning uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// Which run: its URL and model.
    pub label: String,
    /// `c=N` (closed loop) or `rate R/s` (open loop).
    pub measured_at: String,
    pub rps: f64,
    pub p95_ms: f64,
    pub mean_ms: f64,
    pub errors: u64,
}

/// One row of the plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub label: String,
    pub measured_at: String,
    /// Measured throughput of one instance (successful requests per second).
    pub rps_per_instance: f64,
    pub p95_ms: f64,
    pub mean_latency_ms: f64,
    /// Whether p95 is within `--p95-goal`; `None` without a goal.
    pub p95_meets_goal: Option<bool>,
    /// L = Q × W: requests in flight across all instances at the target.
    pub concurrency_needed: f64,
    /// ⌈Q / (RPS × headroom)⌉; `None` when the run had no successful request.
    pub instances: Option<u64>,
    /// ⌈L / instances⌉.
    pub per_instance_concurrency: Option<u64>,
    /// Q / instances: what each instance would serve.
    pub per_instance_rps: Option<f64>,
    /// Errors in the measured run: a plan from a failing run is suspect.
    pub errors: u64,
}

/// A whole plan: the goal and one row per measured run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    #[serde(flatten)]
    pub goal: Goal,
    pub rows: Vec<Row>,
}

impl Measured {
    pub(crate) fn from_report(report: &Report) -> Self {
        let at = match (report.mode, report.rate) {
            (Mode::Open, Some(rate)) => format!("rate {rate}/s"),
            _ => format!("c={}", report.concurrency),
        };
        Self {
            label: label(&report.url, &report.model),
            measured_at: at,
            rps: report.rps,
            p95_ms: report.latency_ms.p95,
            mean_ms: report.latency_ms.mean,
            errors: report.errors,
        }
    }
}

fn label(url: &str, model: &str) -> String {
    format!("{url} {model}").trim().to_owned()
}

/// The fields of a JSON report that planning reads; everything else, and
/// fields older reports lack, is optional.
#[derive(Debug, Deserialize)]
struct ReportLine {
    #[serde(default)]
    url: String,
    #[serde(default)]
    model: String,
    rps: f64,
    latency_ms: Percentiles,
    #[serde(default)]
    errors: u64,
    #[serde(default)]
    concurrency: Option<u32>,
    #[serde(default)]
    rate: Option<f64>,
}

/// Reads JSON reports, one per line (blank lines skipped). A line may also
/// be a `bench/run.sh` result record, whose report is under `"report"`.
pub fn read_reports(text: &str) -> Result<Vec<Measured>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        let value = match value.get("report") {
            Some(inner) if inner.is_object() => inner.clone(),
            _ => value,
        };
        let r: ReportLine =
            serde_json::from_value(value).map_err(|e| format!("line {}: not a bench JSON report: {e}", i + 1))?;
        let measured_at = match (r.rate, r.concurrency) {
            (Some(rate), _) => format!("rate {rate}/s"),
            (None, Some(c)) => format!("c={c}"),
            (None, None) => "?".to_owned(),
        };
        let name = label(&r.url, &r.model);
        out.push(Measured {
            label: if name.is_empty() { format!("line {}", i + 1) } else { name },
            measured_at,
            rps: r.rps,
            p95_ms: r.latency_ms.p95,
            mean_ms: r.latency_ms.mean,
            errors: r.errors,
        });
    }
    if out.is_empty() {
        return Err("no report in it".to_owned());
    }
    Ok(out)
}

/// The plan row for one measured run.
pub fn row(m: &Measured, goal: &Goal) -> Row {
    let q = goal.target_qps;
    let concurrency_needed = q * m.mean_ms / 1000.0;
    let capacity = m.rps * goal.headroom;
    let instances = (capacity > 0.0).then(|| ((q / capacity) - EPSILON).ceil().max(1.0) as u64);
    Row {
        label: m.label.clone(),
        measured_at: m.measured_at.clone(),
        rps_per_instance: m.rps,
        p95_ms: m.p95_ms,
        mean_latency_ms: m.mean_ms,
        p95_meets_goal: goal.p95_goal_ms.map(|g| m.p95_ms <= g),
        concurrency_needed,
        instances,
        per_instance_concurrency: instances.map(|n| ((concurrency_needed / n as f64) - EPSILON).ceil().max(1.0) as u64),
        per_instance_rps: instances.map(|n| q / n as f64),
        errors: m.errors,
    }
}

impl Plan {
    pub fn new(goal: Goal, measured: &[Measured]) -> Self {
        Self { goal, rows: measured.iter().map(|m| row(m, &goal)).collect() }
    }

    fn heading(&self) -> String {
        let g = &self.goal;
        let p95 = g.p95_goal_ms.map_or(String::new(), |ms| format!(", p95 goal {ms} ms"));
        format!(
            "capacity plan for {} req/s{p95}, headroom {:.2} (instances run at {:.0} % of measured capacity)",
            g.target_qps,
            g.headroom,
            g.headroom * 100.0
        )
    }

    /// The columns, as strings, per row.
    fn cells(&self) -> (Vec<&'static str>, Vec<Vec<String>>) {
        let head = vec![
            "run",
            "measured at",
            "RPS / instance",
            "p95 ms",
            "p95 goal",
            "mean ms",
            "concurrency needed (Q×W)",
            "instances",
            "concurrency / instance",
            "RPS / instance at Q",
        ];
        let or_dash = |v: Option<String>| v.unwrap_or_else(|| "–".to_owned());
        let rows = self
            .rows
            .iter()
            .map(|r| {
                vec![
                    r.label.clone(),
                    r.measured_at.clone(),
                    format!("{:.1}", r.rps_per_instance),
                    format!("{:.1}", r.p95_ms),
                    match r.p95_meets_goal {
                        Some(true) => "met".to_owned(),
                        Some(false) => "MISSED".to_owned(),
                        None => "–".to_owned(),
                    },
                    format!("{:.1}", r.mean_latency_ms),
                    format!("{:.1}", r.concurrency_needed),
                    or_dash(r.instances.map(|n| n.to_string())),
                    or_dash(r.per_instance_concurrency.map(|n| n.to_string())),
                    or_dash(r.per_instance_rps.map(|x| format!("{x:.1}"))),
                ]
            })
            .collect();
        (head, rows)
    }

    /// Warnings under the table: missed goals, unusable or failing runs.
    fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for r in &self.rows {
            if r.p95_meets_goal == Some(false) {
                notes.push(format!(
                    "{}: p95 {:.1} ms misses the goal at {}: the instance count assumes a latency you do not want; \
                     measure again at a lower concurrency (or rate) and plan from that run \
                     (if it misses even at concurrency 1, no number of instances meets the goal).",
                    r.label, r.p95_ms, r.measured_at
                ));
            }
            if r.instances.is_none() {
                notes.push(format!("{}: no successful request, nothing to plan from.", r.label));
            }
            if r.errors > 0 {
                notes.push(format!(
                    "{}: the measured run had {} errors; treat its figures with suspicion.",
                    r.label, r.errors
                ));
            }
        }
        notes
    }

    /// Aligned text table with its heading and notes.
    pub fn to_table(&self) -> String {
        let (head, rows) = self.cells();
        let widths: Vec<usize> = (0..head.len())
            .map(|c| rows.iter().map(|r| r[c].chars().count()).chain([head[c].chars().count()]).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.heading());
        let line = |cells: Vec<String>| -> String {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(c, (cell, w))| if c < 2 { format!("{cell:<w$}") } else { format!("{cell:>w$}") })
                .collect();
            padded.join("  ").trim_end().to_owned()
        };
        let _ = writeln!(out, "{}", line(head.iter().map(|h| (*h).to_owned()).collect()));
        for r in rows {
            let _ = writeln!(out, "{}", line(r));
        }
        for note in self.notes() {
            let _ = writeln!(out, "note: {note}");
        }
        out
    }

    /// The same as [`Plan::to_table`], in Markdown.
    pub fn to_markdown(&self) -> String {
        let (head, rows) = self.cells();
        let mut out = String::new();
        let _ = writeln!(out, "**{}**\n", self.heading());
        let _ = writeln!(out, "| {} |", head.join(" | "));
        let align: Vec<&str> = (0..head.len()).map(|c| if c < 2 { "---" } else { "---:" }).collect();
        let _ = writeln!(out, "| {} |", align.join(" | "));
        for r in rows {
            let _ = writeln!(out, "| {} |", r.join(" | "));
        }
        let notes = self.notes();
        if !notes.is_empty() {
            out.push('\n');
            for note in notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(rps: f64, mean_ms: f64, p95_ms: f64) -> Measured {
        Measured { label: "sim m".to_owned(), measured_at: "c=8".to_owned(), rps, p95_ms, mean_ms, errors: 0 }
    }

    #[test]
    fn hand_computed_plan() {
        // One instance: 200 req/s at a mean of 40 ms (p95 90 ms). Target
        // 1000 req/s with 70 % headroom:
        //   L = 1000 × 0.040 = 40 requests in flight in total;
        //   instances = ⌈1000 / (200 × 0.7)⌉ = ⌈7.14⌉ = 8;
        //   per instance ⌈40 / 8⌉ = 5 in flight, 1000 / 8 = 125 req/s.
        let goal = Goal { target_qps: 1000.0, p95_goal_ms: Some(100.0), headroom: 0.7 };
        let r = row(&measured(200.0, 40.0, 90.0), &goal);
        assert!((r.concurrency_needed - 40.0).abs() < 1e-9);
        assert_eq!(r.instances, Some(8));
        assert_eq!(r.per_instance_concurrency, Some(5));
        assert_eq!(r.per_instance_rps, Some(125.0));
        assert_eq!(r.p95_meets_goal, Some(true));

        // Exact ratios do not round up: 1000 / (200 × 0.5) = 10 instances.
        let half = Goal { headroom: 0.5, ..goal };
        assert_eq!(row(&measured(200.0, 40.0, 90.0), &half).instances, Some(10));
        // A missed goal, and a run with nothing to plan from.
        let r = row(&measured(200.0, 40.0, 150.0), &goal);
        assert_eq!(r.p95_meets_goal, Some(false));
        let none = row(&measured(0.0, 0.0, 0.0), &goal);
        assert_eq!((none.instances, none.per_instance_concurrency), (None, None));
    }

    #[test]
    fn plan_text_says_when_the_goal_is_missed() {
        let goal = Goal { target_qps: 1000.0, p95_goal_ms: Some(100.0), headroom: 0.7 };
        let plan = Plan::new(goal, &[measured(200.0, 40.0, 90.0), measured(200.0, 40.0, 150.0)]);
        let table = plan.to_table();
        assert!(table.starts_with("capacity plan for 1000 req/s, p95 goal 100 ms, headroom 0.70"), "{table}");
        assert!(table.contains("MISSED"), "{table}");
        assert!(table.contains("measure again at a lower concurrency"), "{table}");
        let markdown = plan.to_markdown();
        assert!(markdown.contains("| sim m | c=8 | 200.0 | 90.0 | met | 40.0 | 40.0 | 8 | 5 | 125.0 |"), "{markdown}");
        let json = serde_json::to_value(&plan).unwrap_or_default();
        assert_eq!(json["target_qps"], 1000.0);
        assert_eq!(json["rows"][0]["instances"], 8);
    }

    #[test]
    fn reports_are_read_one_per_line() {
        let text = concat!(
            r#"{"url":"http://a/v1/chat/completions","model":"m1","rps":100.0,"latency_ms":{"p50":5,"p95":9,"mean":6},"errors":0,"concurrency":4,"mode":"closed","rate":null}"#,
            "\n\n",
            r#"{"mode":"stream","concurrency":64,"target":"direct","report":{"rps":50,"latency_ms":{"p95":20,"mean":10},"errors":2,"concurrency":64}}"#,
            "\n"
        );
        let Ok(runs) = read_reports(text) else { unreachable!("valid reports") };
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].label, "http://a/v1/chat/completions m1");
        assert_eq!(runs[0].measured_at, "c=4");
        assert_eq!((runs[0].rps, runs[0].p95_ms, runs[0].mean_ms), (100.0, 9.0, 6.0));
        assert_eq!(runs[1].label, "line 3");
        assert_eq!((runs[1].errors, runs[1].measured_at.as_str()), (2, "c=64"));

        assert!(read_reports("").is_err());
        assert!(read_reports("{}").is_err_and(|e| e.contains("line 1")));
        assert!(read_reports("nope").is_err());
    }
}
