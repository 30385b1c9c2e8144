//! Mutual TLS of a listener: model ↔ SDK, pure.

use aws_sdk_elasticloadbalancingv2::types::{
    AdvertiseTrustStoreCaNamesEnum, MutualAuthenticationAttributes,
};

use crate::alb::model::{MutualAuth, MutualAuthMode};

/// As CreateListener and ModifyListener take it: the flags only in `verify` mode (ELBv2
/// refuses them in the others).
pub(in crate::alb::aws) fn sdk_mutual_auth(m: &MutualAuth) -> MutualAuthenticationAttributes {
    let verify = m.mode == MutualAuthMode::Verify;
    let b = MutualAuthenticationAttributes::builder()
        .mode(m.mode.as_str())
        .set_trust_store_arn(m.trust_store.clone().filter(|_| verify));
    match verify {
        true => b
            .ignore_client_certificate_expiry(m.ignore_client_certificate_expiry)
            .advertise_trust_store_ca_names(match m.advertise_trust_store_ca_names {
                true => AdvertiseTrustStoreCaNamesEnum::On,
                false => AdvertiseTrustStoreCaNamesEnum::Off,
            }),
        false => b,
    }
    .build()
}

/// What DescribeListeners reports, in the model's normal form; `None` for nothing or a mode
/// this version does not know.
pub(in crate::alb::aws) fn model_mutual_auth(
    m: Option<&MutualAuthenticationAttributes>,
) -> Option<MutualAuth> {
    let m = m?;
    let mode = MutualAuthMode::parse(m.mode()?)?;
    let verify = mode == MutualAuthMode::Verify;
    Some(MutualAuth {
        mode,
        trust_store: m
            .trust_store_arn()
            .filter(|t| verify && !t.is_empty())
            .map(str::to_owned),
        ignore_client_certificate_expiry: verify
            && m.ignore_client_certificate_expiry().unwrap_or(false),
        advertise_trust_store_ca_names: verify
            && m.advertise_trust_store_ca_names() == Some(&AdvertiseTrustStoreCaNamesEnum::On),
    })
}
