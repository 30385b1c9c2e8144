//! The nat PREROUTING rules that send pods' metadata traffic to the agent:
//! `-p tcp -d 169.254.169.254 --dport 80 -i <glob> -j DNAT --to-destination <node IP>:<port>`,
//! and the same for the Pod Identity address 169.254.170.23 and the credentials port.
//!
//! With `--iptables-host-network`, a nat OUTPUT rule does the same for 169.254.170.23
//! from the node itself, so hostNetwork pods reach the token path too.
//!
//! It is tagged with a comment naming the interface glob, installed idempotently at
//! startup and deliberately left in place at shutdown: while the agent is down, pods
//! get connection errors instead of falling through to the node's own credentials.
//! `causeway agent --cleanup-iptables` removes it (and only rules carrying our tag).

use std::net::IpAddr;
use std::process::Command;

pub const METADATA_IP: &str = "169.254.169.254";
/// Where the SDKs' container-credentials provider reaches EKS Pod Identity.
pub const POD_IDENTITY_IP: &str = "169.254.170.23";
/// The same two on IPv6 (ip6tables), as EC2 and EKS Pod Identity serve them.
pub const METADATA_IPV6: &str = "fd00:ec2::254";
pub const POD_IDENTITY_IPV6: &str = "fd00:ec2::23";
/// Pods' traffic, arriving on their interfaces.
pub const PREROUTING: &str = "PREROUTING";
/// The node's own traffic (hostNetwork pods).
pub const OUTPUT: &str = "OUTPUT";
const CHAINS: [&str; 2] = [PREROUTING, OUTPUT];

#[derive(Debug, thiserror::Error)]
pub enum IptablesError {
    #[error("running {bin}: {source}")]
    Spawn {
        bin: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// [`PREROUTING`] (from pods' interfaces) or [`OUTPUT`] (from the node itself).
    pub chain: &'static str,
    /// The link-local address intercepted: [`METADATA_IP`] or [`POD_IDENTITY_IP`].
    pub destination: &'static str,
    pub interface: String,
    pub node_ip: IpAddr,
    pub port: u16,
}

/// The comment that marks our rules: one tag per interface glob, no spaces (so
/// `iptables -S` prints it unquoted).
pub fn tag(interface: &str) -> String {
    format!("causeway-agent:{interface}")
}

impl Rule {
    /// The rule's match and target, without the chain operation.
    pub fn spec(&self) -> Vec<String> {
        let mut spec: Vec<String> = ["-p", "tcp", "-d"]
            .into_iter()
            .map(str::to_string)
            .collect();
        let mask = if self.destination.contains(':') {
            128
        } else {
            32
        };
        spec.push(format!("{}/{mask}", self.destination));
        if self.chain == PREROUTING {
            spec.extend(["-i".to_string(), self.interface.clone()]);
        }
        spec.extend(
            ["-m", "tcp", "--dport", "80", "-m", "comment", "--comment"]
                .into_iter()
                .map(str::to_string),
        );
        spec.push(tag(&self.interface));
        spec.extend(
            ["-j", "DNAT", "--to-destination"]
                .into_iter()
                .map(str::to_string),
        );
        spec.push(std::net::SocketAddr::new(self.node_ip, self.port).to_string());
        spec
    }
}

#[derive(Debug, Clone)]
pub struct Iptables {
    pub bin: String,
}

impl Iptables {
    fn run(&self, args: &[String]) -> Result<std::process::Output, IptablesError> {
        Command::new(&self.bin)
            .arg("-w")
            .args(args)
            .output()
            .map_err(|source| IptablesError::Spawn {
                bin: self.bin.clone(),
                source,
            })
    }

    fn run_ok(&self, args: &[String]) -> Result<String, IptablesError> {
        let out = self.run(args)?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(IptablesError::Failed {
                command: format!("{} {}", self.bin, args.join(" ")),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }

    fn nat(op: &str, chain: &str, rest: &[String]) -> Vec<String> {
        let mut args = vec!["-t".into(), "nat".into(), op.into(), chain.into()];
        args.extend_from_slice(rest);
        args
    }

    /// Our rules for `interface` as `iptables -S` prints them: (chain, arguments).
    pub fn ours(&self, interface: &str) -> Result<Vec<(&'static str, Vec<String>)>, IptablesError> {
        let mut out = Vec::new();
        for chain in CHAINS {
            let listing = self.run_ok(&["-t".into(), "nat".into(), "-S".into(), chain.into()])?;
            out.extend(
                owned_rules(&listing, chain, &tag(interface))
                    .into_iter()
                    .map(|r| (chain, r)),
            );
        }
        Ok(out)
    }

    /// Installs `rules` (all for one interface glob) unless present, first in their chain
    /// so nothing shadows them, and removes our other rules for the same glob (an old node
    /// IP or port, an address no longer served). Returns whether anything changed.
    pub fn ensure(&self, interface: &str, rules: &[Rule]) -> Result<bool, IptablesError> {
        let mut changed = false;
        let specs: Vec<(&str, Vec<String>)> = rules.iter().map(|r| (r.chain, r.spec())).collect();
        for (chain, stale) in self.ours(interface)? {
            if !specs
                .iter()
                .any(|(c, spec)| *c == chain && same_rule(&stale, spec))
            {
                self.run_ok(&Self::nat("-D", chain, &stale))?;
                changed = true;
            }
        }
        for (chain, spec) in &specs {
            if !self.run(&Self::nat("-C", chain, spec))?.status.success() {
                let mut insert = Self::nat("-I", chain, &[]);
                insert.push("1".into());
                insert.extend(spec.iter().cloned());
                self.run_ok(&insert)?;
                changed = true;
            }
        }
        Ok(changed)
    }

    /// Removes every rule carrying our tag for `interface`; returns how many.
    pub fn cleanup(&self, interface: &str) -> Result<usize, IptablesError> {
        let ours = self.ours(interface)?;
        for (chain, rule) in &ours {
            self.run_ok(&Self::nat("-D", chain, rule))?;
        }
        Ok(ours.len())
    }
}

/// `-A <chain> …` lines carrying `--comment <tag>`, as argument lists without `-A <chain>`.
pub fn owned_rules(listing: &str, chain: &str, tag: &str) -> Vec<Vec<String>> {
    listing
        .lines()
        .filter_map(|line| {
            let words: Vec<String> = line
                .split_whitespace()
                .map(|w| w.trim_matches('"').to_string())
                .collect();
            let is_ours = words.windows(2).any(|w| w[0] == "--comment" && w[1] == tag);
            (words.len() > 2 && words[0] == "-A" && words[1] == chain && is_ours)
                .then(|| words[2..].to_vec())
        })
        .collect()
}

/// Compares a listed rule with ours, ignoring argument order differences iptables may
/// introduce when printing.
fn same_rule(listed: &[String], spec: &[String]) -> bool {
    let mut a = listed.to_vec();
    let mut b = spec.to_vec();
    a.sort();
    b.sort();
    a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_only_our_tagged_rules() {
        let listing = "-P PREROUTING ACCEPT\n\
            -A PREROUTING -d 169.254.169.254/32 -i eni+ -p tcp -m tcp --dport 80 -m comment --comment causeway-agent:eni+ -j DNAT --to-destination 10.0.0.1:8181\n\
            -A PREROUTING -d 169.254.169.254/32 -i cali+ -p tcp -m tcp --dport 80 -m comment --comment causeway-agent:cali+ -j DNAT --to-destination 10.0.0.1:8181\n\
            -A PREROUTING -d 169.254.169.254/32 -i eni+ -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.1:8181\n";
        let ours = owned_rules(listing, PREROUTING, &tag("eni+"));
        assert_eq!(ours.len(), 1);
        assert!(ours[0].contains(&"10.0.0.1:8181".to_string()));
        let rule = Rule {
            chain: PREROUTING,
            destination: METADATA_IP,
            interface: "eni+".into(),
            node_ip: "10.0.0.1".parse().unwrap(),
            port: 8181,
        };
        assert!(same_rule(&ours[0], &rule.spec()));
        let moved = Rule {
            port: 8182,
            ..rule.clone()
        };
        assert!(!same_rule(&ours[0], &moved.spec()));
        let pod_identity = Rule {
            destination: POD_IDENTITY_IP,
            ..rule
        };
        assert!(!same_rule(&ours[0], &pod_identity.spec()));
        assert!(
            pod_identity
                .spec()
                .contains(&"169.254.170.23/32".to_string())
        );
    }
}
