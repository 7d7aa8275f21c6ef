//! `builtin/list-cases`: a folder of per-case files (`image_<case>.npy.gz` + `label_<case>.npy.gz`, or
//! `<case>_image.nii.gz` + `<case>_label.nii.gz`, for any set of roles) as a list of cases, each a map of
//! its name and one path per role, for a `foreach` to fan out over.

use std::collections::BTreeMap;
use std::path::Path;

use voxflow_spec::types::DataType;
use voxflow_spec::{PortSpec, Value};

use super::{Builtin, Ports};
use crate::{StepArgs, StepContext, StepError, StepOutputs};

/// The file endings a case file may have.
const EXTENSIONS: [&str; 4] = [".nii.gz", ".nii", ".npy.gz", ".npy"];

pub fn step() -> Builtin {
    let ports = Ports {
        inputs: vec![PortSpec::required(
            "folder",
            DataType::Path,
            "a folder with one file per case and role",
        )],
        params: vec![
            PortSpec::optional(
                "roles",
                DataType::String,
                Some(Value::String("image,label".into())),
                "the roles every case has, comma-separated: files are ROLE_CASE.EXT or CASE_ROLE.EXT",
            ),
            PortSpec::optional(
                "incomplete",
                DataType::String,
                Some(Value::String("error".into())),
                "a case that lacks a role: `error` (the step fails, naming it) or `skip`",
            ),
        ],
        outputs: vec![
            PortSpec::required(
                "cases",
                DataType::List(Box::new(DataType::Any)),
                "one map per case, sorted by name: `case` and a path per role",
            ),
            PortSpec::required("count", DataType::Integer, "how many cases"),
        ],
    };
    Builtin::new(
        "list-cases",
        "Lists the cases of a folder of per-case files (image + label pairs, or any roles)",
        ports,
        run,
    )
}

/// (role, case) of a file name, when it is ROLE_CASE.EXT or CASE_ROLE.EXT for one of `roles`.
pub fn case_of<'a>(name: &'a str, roles: &[&'a str]) -> Option<(&'a str, &'a str)> {
    let stem = EXTENSIONS.iter().find_map(|ext| name.strip_suffix(ext))?;
    roles.iter().find_map(|&role| {
        let prefixed = stem
            .strip_prefix(role)
            .and_then(|rest| rest.strip_prefix('_'));
        let suffixed = stem
            .strip_suffix(role)
            .and_then(|rest| rest.strip_suffix('_'));
        prefixed
            .or(suffixed)
            .filter(|case| !case.is_empty())
            .map(|case| (role, case))
    })
}

fn run(ctx: &StepContext<'_>, args: &StepArgs) -> Result<StepOutputs, StepError> {
    let folder = args.input_path("folder")?;
    let roles_text = args.param_str("roles")?.unwrap_or("image,label");
    let roles: Vec<&str> = roles_text
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .collect();
    if roles.is_empty() {
        return Err(StepError::BadArgument {
            field: "roles".into(),
            message: "names no role".into(),
        });
    }
    let skip = match args.param_str("incomplete")?.unwrap_or("error") {
        "error" => false,
        "skip" => true,
        other => {
            return Err(StepError::BadArgument {
                field: "incomplete".into(),
                message: format!("`{other}` is not error or skip"),
            })
        }
    };
    let cases = list_cases(&folder, &roles)?;
    let mut out = Vec::new();
    for (case, files) in cases {
        let missing: Vec<&str> = roles
            .iter()
            .copied()
            .filter(|r| !files.contains_key(*r))
            .collect();
        if !missing.is_empty() {
            let message = format!(
                "case `{case}` in {} has no {} file",
                folder.display(),
                missing.join(" or ")
            );
            if skip {
                ctx.log(format!("skipped: {message}"));
                continue;
            }
            return Err(StepError::Failed(message));
        }
        let mut item = BTreeMap::from([("case".to_string(), Value::String(case))]);
        for (role, path) in files {
            item.insert(role, Value::String(path));
        }
        out.push(Value::Map(item));
    }
    if out.is_empty() {
        return Err(StepError::Failed(format!(
            "{} holds no case files named ROLE_CASE or CASE_ROLE ({}) with roles {}",
            folder.display(),
            EXTENSIONS.join(", "),
            roles.join(", ")
        )));
    }
    ctx.log(format!(
        "{} cases in {} (roles {})",
        out.len(),
        folder.display(),
        roles.join(", ")
    ));
    Ok(StepOutputs::from([
        ("count".to_string(), Value::Number(out.len() as f64)),
        ("cases".to_string(), Value::List(out)),
    ]))
}

/// Case name -> role -> path, for the files directly in `folder`.
fn list_cases(
    folder: &Path,
    roles: &[&str],
) -> Result<BTreeMap<String, BTreeMap<String, String>>, StepError> {
    let entries = std::fs::read_dir(folder)
        .map_err(|e| StepError::Failed(format!("cannot list {}: {e}", folder.display())))?;
    let mut cases: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for entry in entries {
        let entry = entry
            .map_err(|e| StepError::Failed(format!("cannot list {}: {e}", folder.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((role, case)) = case_of(&name, roles) else {
            continue;
        };
        let path = entry.path().display().to_string();
        if let Some(earlier) = cases
            .entry(case.to_string())
            .or_default()
            .insert(role.to_string(), path.clone())
        {
            return Err(StepError::Failed(format!(
                "case `{case}` has two {role} files: {earlier} and {path}"
            )));
        }
    }
    Ok(cases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_naming_layouts_and_any_roles() {
        let roles = ["image", "label"];
        assert_eq!(
            case_of("image_train01.npy.gz", &roles),
            Some(("image", "train01"))
        );
        assert_eq!(
            case_of("label_train01.npy.gz", &roles),
            Some(("label", "train01"))
        );
        assert_eq!(case_of("p7_image.nii.gz", &roles), Some(("image", "p7")));
        assert_eq!(case_of("p7_label.nii", &roles), Some(("label", "p7")));
        assert_eq!(case_of("image_.npy", &roles), None);
        assert_eq!(case_of("notes.txt", &roles), None);
        assert_eq!(case_of("mask_p7.nii.gz", &roles), None);
        assert_eq!(
            case_of("train07_semi.nii.gz", &["semi", "self"]),
            Some(("semi", "train07"))
        );
    }

    #[test]
    fn lists_complete_cases_and_names_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "image_a.npy.gz",
            "label_a.npy.gz",
            "b_image.nii.gz",
            "b_label.nii.gz",
            "c_image.nii",
        ] {
            std::fs::write(dir.path().join(f), b"").unwrap();
        }
        let cases = list_cases(dir.path(), &["image", "label"]).unwrap();
        assert_eq!(cases.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(cases["a"].len(), 2);
        assert_eq!(cases["c"].len(), 1);
        std::fs::write(dir.path().join("image_b.nii.gz"), b"").unwrap();
        let e = list_cases(dir.path(), &["image", "label"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("case `b` has two image files"), "{e}");
    }
}
