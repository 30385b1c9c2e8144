//! Role references as users write them: a bare role name, or a full role ARN
//! (kube2iam's `iam.amazonaws.com/role` accepts both, and so do we).

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleRef {
    /// A role name; the ARN is resolved in the account we run in.
    Name(String),
    /// A full ARN; `name` is its last path segment, which IAM's GetRole takes.
    Arn {
        arn: String,
        account: String,
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidRole {
    #[error("role is empty")]
    Empty,
    #[error("`{0}` is not a valid IAM role name (1-64 of A-Z a-z 0-9 +=,.@_-)")]
    BadName(String),
    #[error(
        "`{0}` is not an IAM role ARN (arn:<partition>:iam::<12-digit account>:role/[path/]name)"
    )]
    BadArn(String),
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

impl RoleRef {
    pub fn parse(s: &str) -> Result<RoleRef, InvalidRole> {
        let s = s.trim();
        if s.is_empty() {
            return Err(InvalidRole::Empty);
        }
        if !s.starts_with("arn:") {
            return if valid_name(s) {
                Ok(RoleRef::Name(s.to_string()))
            } else {
                Err(InvalidRole::BadName(s.to_string()))
            };
        }
        let bad = || InvalidRole::BadArn(s.to_string());
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        let [_, partition, service, region, account, resource] = parts[..] else {
            return Err(bad());
        };
        if !partition.starts_with("aws")
            || service != "iam"
            || !region.is_empty()
            || account.len() != 12
            || !account.chars().all(|c| c.is_ascii_digit())
        {
            return Err(bad());
        }
        let path = resource.strip_prefix("role/").ok_or_else(bad)?;
        let name = path.rsplit('/').next().unwrap_or_default();
        if !valid_name(name) || path.split('/').any(str::is_empty) {
            return Err(bad());
        }
        Ok(RoleRef::Arn {
            arn: s.to_string(),
            account: account.to_string(),
            name: name.to_string(),
        })
    }

    /// The name IAM's GetRole takes.
    pub fn name(&self) -> &str {
        match self {
            RoleRef::Name(n) => n,
            RoleRef::Arn { name, .. } => name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_and_arns() {
        assert_eq!(RoleRef::parse("app"), Ok(RoleRef::Name("app".into())));
        let r = RoleRef::parse("arn:aws:iam::123456789012:role/team/app").unwrap();
        assert_eq!(r.name(), "app");
        assert!(matches!(r, RoleRef::Arn { ref account, .. } if account == "123456789012"));
        assert!(RoleRef::parse("arn:aws-cn:iam::123456789012:role/app").is_ok());
    }

    #[test]
    fn malformed_references_are_rejected() {
        for bad in [
            "",
            "has space",
            "arn:aws:iam::123:role/app",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::123456789012:user/app",
            "arn:aws:iam:us-east-1:123456789012:role/app",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role//app",
            &"x".repeat(65),
        ] {
            assert!(RoleRef::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,120}") {
            let _ = RoleRef::parse(&s);
        }

        #[test]
        fn valid_arns_roundtrip_their_name(name in "[A-Za-z0-9+=,.@_-]{1,64}", acct in "[0-9]{12}") {
            let arn = format!("arn:aws:iam::{acct}:role/p/{name}");
            let r = RoleRef::parse(&arn).unwrap();
            prop_assert_eq!(r.name(), name.as_str());
        }
    }
}
