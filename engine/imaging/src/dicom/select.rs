//! Choosing a series by rule: a UID, or modality plus a description pattern ("the axial T2 of this study").

use std::fmt;

use super::series::Series;
use super::DicomError;

/// How to pick one series out of a scan. Written `UID`, or `MODALITY:PATTERN` where PATTERN is a
/// case-insensitive glob on SeriesDescription (`*` and `?`), e.g. `MR:t2*tra*`; `MODALITY:` or `:PATTERN`
/// alone also work.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeriesRule {
    pub uid: Option<String>,
    pub modality: Option<String>,
    pub description: Option<String>,
}

impl SeriesRule {
    pub fn parse(text: &str) -> SeriesRule {
        match text.split_once(':') {
            Some((m, d)) => SeriesRule {
                uid: None,
                modality: (!m.is_empty()).then(|| m.to_string()),
                description: (!d.is_empty()).then(|| d.to_string()),
            },
            None if !text.is_empty() => SeriesRule {
                uid: Some(text.to_string()),
                ..Default::default()
            },
            None => SeriesRule::default(),
        }
    }

    pub fn matches(&self, series: &Series) -> bool {
        let h = series.first();
        self.uid.as_ref().is_none_or(|u| *u == series.uid)
            && self
                .modality
                .as_ref()
                .is_none_or(|m| m.eq_ignore_ascii_case(&h.modality))
            && self
                .description
                .as_ref()
                .is_none_or(|p| glob(&p.to_lowercase(), &h.series_description.to_lowercase()))
    }

    /// The one series this rule picks; several matches or none are errors that list the candidates.
    pub fn select<'a>(&self, series: &'a [Series]) -> Result<&'a Series, DicomError> {
        let hits: Vec<&Series> = series.iter().filter(|s| self.matches(s)).collect();
        let list = |ss: &[&Series]| {
            ss.iter()
                .map(|s| {
                    format!(
                        "{} ({} \"{}\", {} frames)",
                        s.uid,
                        s.first().modality,
                        s.first().series_description,
                        s.frame_count()
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        match hits.as_slice() {
            [one] => Ok(one),
            [] => Err(DicomError::Selection(format!(
                "no series matches {self}; found: {}",
                list(&series.iter().collect::<Vec<_>>())
            ))),
            many => Err(DicomError::Selection(format!(
                "{} series match {self}; choose one with a series rule: {}",
                many.len(),
                list(many)
            ))),
        }
    }
}

impl fmt::Display for SeriesRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.uid, &self.modality, &self.description) {
            (Some(u), _, _) => write!(f, "series UID {u}"),
            (None, None, None) => f.write_str("any series"),
            (None, m, d) => write!(
                f,
                "{}:{}",
                m.as_deref().unwrap_or(""),
                d.as_deref().unwrap_or("")
            ),
        }
    }
}

/// `*` and `?` glob matching.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globbing_and_parsing() {
        assert!(glob("t2*tra*", "t2_tse_tra_p2"));
        assert!(!glob("t2*sag", "t2_tse_tra"));
        assert!(glob("a?c", "abc"));
        let r = SeriesRule::parse("MR:t2*");
        assert_eq!(
            (r.modality.as_deref(), r.description.as_deref()),
            (Some("MR"), Some("t2*"))
        );
        assert_eq!(SeriesRule::parse("1.2.3").uid.as_deref(), Some("1.2.3"));
    }
}
