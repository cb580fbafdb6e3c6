//! "Did you mean" suggestions for unknown keys and enum values.

/// Builds the message for an unknown field or value, suggesting the closest valid name.
pub fn unknown_name_message(kind: &str, name: &str, valid: &[&str]) -> String {
    if valid.is_empty() {
        return format!("unknown {kind} `{name}`; this mapping takes no {kind}s");
    }
    match closest(name, valid) {
        Some(suggestion) => format!("unknown {kind} `{name}`; did you mean `{suggestion}`?"),
        None => format!(
            "unknown {kind} `{name}`; expected one of `{}`",
            valid.join("`, `")
        ),
    }
}

/// Returns the valid name nearest to `name` by edit distance, if it is near enough to be a typo.
///
/// Case is ignored because `containerport` for `containerPort` is the most common slip.
pub fn closest<'a>(name: &str, valid: &[&'a str]) -> Option<&'a str> {
    let lower = name.to_lowercase();
    let (distance, best) = valid
        .iter()
        .map(|candidate| {
            (
                strsim::levenshtein(&lower, &candidate.to_lowercase()),
                *candidate,
            )
        })
        .min_by_key(|(distance, _)| *distance)?;

    // Two edits, or a third of the name for long names, still reads as a typo.
    let allowed = (name.chars().count() / 3).max(2);
    (distance <= allowed).then_some(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[&str] = &["name", "replicas", "containerPort", "healthCheck"];

    #[test]
    fn suggests_missing_letter() {
        assert_eq!(closest("replica", FIELDS), Some("replicas"));
    }

    #[test]
    fn suggests_wrong_case() {
        assert_eq!(closest("containerport", FIELDS), Some("containerPort"));
    }

    #[test]
    fn no_suggestion_for_unrelated_name() {
        assert_eq!(closest("database", FIELDS), None);
    }

    #[test]
    fn message_lists_fields_without_suggestion() {
        let message = unknown_name_message("field", "zzz", FIELDS);
        assert!(message.contains("`name`, `replicas`"), "{message}");
    }
}
