//! Kubernetes label selectors: `matchLabels` and `matchExpressions` (In, NotIn, Exists,
//! DoesNotExist), the one implementation every controller uses (IngressClassParams'
//! namespaceSelector, TargetGroupBinding's nodeSelector, IamRoleBinding's podSelector).
//!
//! A selector that the API server would reject for a built-in type (an unknown operator,
//! In/NotIn without values, Exists/DoesNotExist with values) is invalid, and an invalid
//! selector matches nothing: our CRDs' schemas cannot express these rules, so a bad selector
//! reaches us, and it must fail closed. [`matches`] returns the error so that a caller that
//! reports bad input can say why; [`parse`] checks once and matches many label sets.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

/// Why a label selector is invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error(
        "matchExpressions key {key:?}: unknown operator {operator:?} (want In, NotIn, Exists or DoesNotExist)"
    )]
    UnknownOperator { key: String, operator: String },
    #[error("matchExpressions key {key:?}: operator {operator} needs at least one value")]
    MissingValues { key: String, operator: &'static str },
    #[error("matchExpressions key {key:?}: operator {operator} takes no values")]
    UnexpectedValues { key: String, operator: &'static str },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl Operator {
    fn parse(operator: &str) -> Option<Operator> {
        Some(match operator {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Operator::In => "In",
            Operator::NotIn => "NotIn",
            Operator::Exists => "Exists",
            Operator::DoesNotExist => "DoesNotExist",
        }
    }
}

#[derive(Clone, Debug)]
struct Requirement<'a> {
    key: &'a str,
    operator: Operator,
    values: &'a [String],
}

impl Requirement<'_> {
    fn parse(r: &LabelSelectorRequirement) -> Result<Requirement<'_>, SelectorError> {
        let operator =
            Operator::parse(&r.operator).ok_or_else(|| SelectorError::UnknownOperator {
                key: r.key.clone(),
                operator: r.operator.clone(),
            })?;
        let values = r.values.as_deref().unwrap_or_default();
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => {
                Err(SelectorError::MissingValues {
                    key: r.key.clone(),
                    operator: operator.name(),
                })
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                Err(SelectorError::UnexpectedValues {
                    key: r.key.clone(),
                    operator: operator.name(),
                })
            }
            _ => Ok(Requirement {
                key: &r.key,
                operator,
                values,
            }),
        }
    }

    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

/// A checked selector, borrowed from the [`LabelSelector`] it was parsed from.
#[derive(Clone, Debug)]
pub struct Selector<'a> {
    match_labels: Option<&'a BTreeMap<String, String>>,
    requirements: Vec<Requirement<'a>>,
}

impl Selector<'_> {
    /// Every matchLabels pair and every matchExpressions requirement holds. The empty
    /// selector matches every label set.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .into_iter()
            .flatten()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.requirements.iter().all(|r| r.matches(labels))
    }
}

/// Checks `selector`; the first invalid requirement is the error.
pub fn parse(selector: &LabelSelector) -> Result<Selector<'_>, SelectorError> {
    Ok(Selector {
        match_labels: selector.match_labels.as_ref(),
        requirements: selector
            .match_expressions
            .iter()
            .flatten()
            .map(Requirement::parse)
            .collect::<Result<_, _>>()?,
    })
}

/// `Ok(())` when `selector` is valid.
pub fn validate(selector: &LabelSelector) -> Result<(), SelectorError> {
    parse(selector).map(|_| ())
}

/// Whether `selector` selects `labels`. An invalid selector is an error whatever the labels,
/// so a caller that ignores the error (`unwrap_or(false)`) fails closed.
pub fn matches(
    selector: &LabelSelector,
    labels: &BTreeMap<String, String>,
) -> Result<bool, SelectorError> {
    Ok(parse(selector)?.matches(labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expr(key: &str, operator: &str, values: Option<&[&str]>) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: values.map(|vs| vs.iter().map(|v| v.to_string()).collect()),
        }
    }

    fn with_exprs(exprs: Vec<LabelSelectorRequirement>) -> LabelSelector {
        LabelSelector {
            match_labels: None,
            match_expressions: Some(exprs),
        }
    }

    #[test]
    fn the_empty_selector_matches_everything() {
        for selector in [
            LabelSelector::default(),
            LabelSelector {
                match_labels: Some(BTreeMap::new()),
                match_expressions: Some(Vec::new()),
            },
        ] {
            assert_eq!(matches(&selector, &labels(&[])), Ok(true));
            assert_eq!(matches(&selector, &labels(&[("a", "b")])), Ok(true));
        }
    }

    #[test]
    fn match_labels_must_all_hold() {
        let selector = LabelSelector {
            match_labels: Some(labels(&[("team", "a"), ("tier", "web")])),
            match_expressions: None,
        };
        assert_eq!(
            matches(
                &selector,
                &labels(&[("team", "a"), ("tier", "web"), ("x", "y")])
            ),
            Ok(true)
        );
        assert_eq!(matches(&selector, &labels(&[("team", "a")])), Ok(false));
        assert_eq!(
            matches(&selector, &labels(&[("team", "b"), ("tier", "web")])),
            Ok(false)
        );
    }

    #[test]
    fn null_match_expressions_are_no_requirement() {
        let selector = LabelSelector {
            match_labels: Some(labels(&[("team", "a")])),
            match_expressions: None,
        };
        assert_eq!(matches(&selector, &labels(&[("team", "a")])), Ok(true));
        let parsed = parse(&selector).unwrap();
        assert!(parsed.requirements.is_empty());
    }

    #[test]
    fn in_and_not_in() {
        let is_in = with_exprs(vec![expr("env", "In", Some(&["prod", "staging"]))]);
        assert_eq!(matches(&is_in, &labels(&[("env", "prod")])), Ok(true));
        assert_eq!(matches(&is_in, &labels(&[("env", "dev")])), Ok(false));
        assert_eq!(matches(&is_in, &labels(&[])), Ok(false));

        let not_in = with_exprs(vec![expr("env", "NotIn", Some(&["prod"]))]);
        assert_eq!(matches(&not_in, &labels(&[("env", "dev")])), Ok(true));
        assert_eq!(
            matches(&not_in, &labels(&[])),
            Ok(true),
            "a missing key is not in"
        );
        assert_eq!(matches(&not_in, &labels(&[("env", "prod")])), Ok(false));
    }

    #[test]
    fn exists_and_does_not_exist() {
        let exists = with_exprs(vec![expr("gpu", "Exists", None)]);
        assert_eq!(matches(&exists, &labels(&[("gpu", "")])), Ok(true));
        assert_eq!(matches(&exists, &labels(&[("cpu", "x")])), Ok(false));

        let absent = with_exprs(vec![expr("gpu", "DoesNotExist", Some(&[]))]);
        assert_eq!(matches(&absent, &labels(&[("cpu", "x")])), Ok(true));
        assert_eq!(matches(&absent, &labels(&[("gpu", "1")])), Ok(false));
    }

    #[test]
    fn labels_and_expressions_must_both_hold() {
        let selector = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![expr("tier", "DoesNotExist", None)]),
        };
        assert_eq!(matches(&selector, &labels(&[("app", "web")])), Ok(true));
        assert_eq!(
            matches(&selector, &labels(&[("app", "web"), ("tier", "x")])),
            Ok(false)
        );
        assert_eq!(matches(&selector, &labels(&[])), Ok(false));
    }

    #[test]
    fn an_unknown_operator_is_an_error_whatever_the_labels() {
        let selector = LabelSelector {
            // matchLabels that fail must not hide the bad expression.
            match_labels: Some(labels(&[("team", "a")])),
            match_expressions: Some(vec![
                expr("env", "In", Some(&["prod"])),
                expr("env", "Equals", Some(&["prod"])),
            ]),
        };
        let want = Err(SelectorError::UnknownOperator {
            key: "env".into(),
            operator: "Equals".into(),
        });
        assert_eq!(matches(&selector, &labels(&[])), want);
        assert_eq!(
            matches(&selector, &labels(&[("team", "a"), ("env", "prod")])),
            want
        );
        // Operators are case-sensitive, as in Kubernetes.
        let lower = with_exprs(vec![expr("env", "in", Some(&["prod"]))]);
        assert!(matches!(
            validate(&lower),
            Err(SelectorError::UnknownOperator { .. })
        ));
    }

    #[test]
    fn values_must_fit_the_operator() {
        for operator in ["In", "NotIn"] {
            for values in [None, Some(&[][..])] {
                let selector = with_exprs(vec![expr("k", operator, values)]);
                assert!(
                    matches!(
                        matches(&selector, &labels(&[])),
                        Err(SelectorError::MissingValues { .. })
                    ),
                    "{operator} {values:?}"
                );
            }
        }
        for operator in ["Exists", "DoesNotExist"] {
            let selector = with_exprs(vec![expr("k", operator, Some(&["v"]))]);
            assert!(
                matches!(
                    matches(&selector, &labels(&[("k", "v")])),
                    Err(SelectorError::UnexpectedValues { .. })
                ),
                "{operator}"
            );
        }
    }

    #[test]
    fn errors_name_the_key_and_operator() {
        let err = validate(&with_exprs(vec![expr("pool", "Near", None)])).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("\"pool\"") && text.contains("\"Near\""),
            "{text}"
        );
    }

    fn label_map() -> impl Strategy<Value = BTreeMap<String, String>> {
        proptest::collection::btree_map("[a-c]", "[x-z]", 0..4)
    }

    fn requirement() -> impl Strategy<Value = LabelSelectorRequirement> {
        (
            "[a-c]",
            prop_oneof![
                Just("In"),
                Just("NotIn"),
                Just("Exists"),
                Just("DoesNotExist"),
                Just("Bogus"),
            ],
            proptest::option::of(proptest::collection::vec("[x-z]", 0..3)),
        )
            .prop_map(|(key, operator, values)| LabelSelectorRequirement {
                key,
                operator: operator.into(),
                values,
            })
    }

    proptest! {
        /// The result equals the definition written out longhand, an invalid selector is an
        /// error for every label set, and the selector made of a label set's own pairs
        /// selects it.
        #[test]
        fn matches_the_definition(
            match_labels in proptest::option::of(label_map()),
            exprs in proptest::option::of(proptest::collection::vec(requirement(), 0..4)),
            labels in label_map(),
        ) {
            let selector = LabelSelector { match_labels, match_expressions: exprs };
            let valid = selector.match_expressions.iter().flatten().all(|e| {
                let n = e.values.as_ref().map_or(0, Vec::len);
                match e.operator.as_str() {
                    "In" | "NotIn" => n > 0,
                    "Exists" | "DoesNotExist" => n == 0,
                    _ => false,
                }
            });
            let got = matches(&selector, &labels);
            if valid {
                let labels_hold = selector
                    .match_labels
                    .iter()
                    .flatten()
                    .all(|(k, v)| labels.get(k) == Some(v));
                let exprs_hold = selector.match_expressions.iter().flatten().all(|e| {
                    let values = e.values.clone().unwrap_or_default();
                    match e.operator.as_str() {
                        "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
                        "NotIn" => !labels.get(&e.key).is_some_and(|v| values.contains(v)),
                        "Exists" => labels.contains_key(&e.key),
                        _ => !labels.contains_key(&e.key),
                    }
                });
                prop_assert_eq!(got, Ok(labels_hold && exprs_hold));
            } else {
                prop_assert!(got.is_err());
            }

            let own = LabelSelector { match_labels: Some(labels.clone()), match_expressions: None };
            prop_assert_eq!(matches(&own, &labels), Ok(true));
        }
    }
}
