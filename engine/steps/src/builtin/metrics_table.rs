//! `builtin/metrics-table`: per-case metric reports (JSON objects, typically a `foreach`'s outputs) as one
//! CSV table, a row per case, and a summary with the number of cases and the mean, standard deviation,
//! median, minimum and maximum of every numeric column (`mean_<column>` at the top level too). Failed cases
//! (null items of a `continue_on_error` fan-out) are counted, not averaged.

use voxflow_spec::types::{ArtifactKind, DataType};
use voxflow_spec::{PortSpec, Value};

use super::collect_json::json_items;
use super::{Builtin, Ports};
use crate::{StepArgs, StepContext, StepError, StepOutputs};

pub fn step() -> Builtin {
    let ports = Ports {
        inputs: vec![PortSpec::required(
            "rows",
            DataType::List(Box::new(DataType::Any)),
            "one JSON object (artifact or value) per case; null for a case that failed",
        )],
        params: vec![PortSpec::optional(
            "key",
            DataType::String,
            Some(Value::String("case".into())),
            "the field that names a row; it becomes the first column",
        )],
        outputs: vec![
            PortSpec::required(
                "csv",
                DataType::Artifact(ArtifactKind::File),
                "metrics.csv: a header and one row per case",
            ),
            PortSpec::required(
                "summary",
                DataType::Artifact(ArtifactKind::Json),
                "summary.json: cases, failed, mean_<column>, and per column mean/std/median/min/max",
            ),
        ],
    };
    Builtin::new(
        "metrics-table",
        "Per-case metric reports into a CSV table and a summary of every numeric column",
        ports,
        run,
    )
}

fn run(ctx: &StepContext<'_>, args: &StepArgs) -> Result<StepOutputs, StepError> {
    let key = args.param_str("key")?.unwrap_or("case").to_string();
    let mut rows = Vec::new();
    let mut failed = 0;
    for (i, row) in json_items(ctx, args, "rows")?.into_iter().enumerate() {
        match row {
            serde_json::Value::Null => failed += 1,
            serde_json::Value::Object(map) => rows.push(map),
            other => {
                return Err(StepError::BadArgument {
                    field: "input `rows`".into(),
                    message: format!("row {i} is not a JSON object but {other}"),
                })
            }
        }
    }
    let (csv, summary) = tabulate(&rows, &key, failed);
    let csv = ctx.artifacts.put_bytes(
        csv.as_bytes(),
        ArtifactKind::File,
        Some("text/csv"),
        Some("metrics.csv"),
    )?;
    let bytes =
        serde_json::to_vec_pretty(&summary).map_err(|e| StepError::Failed(e.to_string()))?;
    let summary =
        ctx.artifacts
            .put_bytes(&bytes, ArtifactKind::Json, None, Some("summary.json"))?;
    ctx.log(format!("{} rows, {failed} failed", rows.len()));
    Ok(StepOutputs::from([
        ("csv".to_string(), Value::artifact(csv)),
        ("summary".to_string(), Value::artifact(summary)),
    ]))
}

type Row = serde_json::Map<String, serde_json::Value>;

/// The CSV text and the summary of `rows`: columns are `key` first, then every scalar field in order of
/// first appearance (nested values are left out).
pub fn tabulate(rows: &[Row], key: &str, failed: usize) -> (String, serde_json::Value) {
    let mut columns = vec![key.to_string()];
    for row in rows {
        for (name, value) in row {
            if !columns.contains(name) && !value.is_array() && !value.is_object() {
                columns.push(name.clone());
            }
        }
    }
    let mut csv = columns
        .iter()
        .map(|c| quote(c))
        .collect::<Vec<_>>()
        .join(",")
        + "\n";
    for row in rows {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| match row.get(c) {
                None | Some(serde_json::Value::Null) => String::new(),
                Some(serde_json::Value::String(s)) => quote(s),
                Some(v) => v.to_string(),
            })
            .collect();
        csv += &(cells.join(",") + "\n");
    }
    let mut summary = serde_json::json!({ "cases": rows.len(), "failed": failed });
    let mut per_column = serde_json::Map::new();
    for column in columns.iter().filter(|c| *c != key) {
        let mut values: Vec<f64> = rows
            .iter()
            .filter_map(|r| r.get(column).and_then(|v| v.as_f64()))
            .collect();
        if values.is_empty() {
            continue;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let median = if values.len() % 2 == 1 {
            values[values.len() / 2]
        } else {
            (values[values.len() / 2 - 1] + values[values.len() / 2]) / 2.0
        };
        summary[format!("mean_{column}")] = mean.into();
        per_column.insert(
            column.clone(),
            serde_json::json!({ "n": values.len(), "mean": mean, "std": std, "median": median,
                "min": values[0], "max": values[values.len() - 1] }),
        );
    }
    summary["columns"] = per_column.into();
    (csv, summary)
}

/// A CSV field, quoted where it holds a comma, quote or line break.
fn quote(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_a_csv_and_a_summary_of_numeric_columns() {
        let rows: Vec<Row> = [
            serde_json::json!({"dice": 0.8, "case": "b", "hd95_mm": 4.0, "spacing_mm": [1, 1, 3]}),
            serde_json::json!({"case": "a,1", "dice": 0.9, "hd95_mm": null, "note": "ok"}),
        ]
        .into_iter()
        .map(|v| v.as_object().unwrap().clone())
        .collect();
        let (csv, summary) = tabulate(&rows, "case", 1);
        assert_eq!(csv, "case,dice,hd95_mm,note\nb,0.8,4.0,\n\"a,1\",0.9,,ok\n");
        assert_eq!(summary["cases"], 2);
        assert_eq!(summary["failed"], 1);
        assert!((summary["mean_dice"].as_f64().unwrap() - 0.85).abs() < 1e-12);
        assert_eq!(summary["columns"]["hd95_mm"]["n"], 1);
        assert!((summary["columns"]["dice"]["std"].as_f64().unwrap() - 0.05).abs() < 1e-12);
        assert!(summary.get("mean_note").is_none());
    }
}
