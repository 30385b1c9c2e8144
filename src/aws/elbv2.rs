//! ELBv2 lookups more than one reconciler makes.

use aws_sdk_elasticloadbalancingv2 as elb;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;

pub type DescribeTgError =
    SdkError<elb::operation::describe_target_groups::DescribeTargetGroupsError, HttpResponse>;

/// DescribeTargetGroups for these ARNs, 20 per call. One missing (or, as `absent` says,
/// unusable) ARN fails a whole call, so that call is repeated ARN by ARN and the absent ones
/// are left out.
pub async fn target_groups_by_arn(
    client: &elb::Client,
    arns: &[String],
    absent: fn(&DescribeTgError) -> bool,
) -> Result<Vec<elb::types::TargetGroup>, DescribeTgError> {
    let mut out = Vec::new();
    for chunk in arns.chunks(20) {
        match describe(client, chunk).await {
            Ok(found) => out.extend(found),
            Err(e) if absent(&e) && chunk.len() == 1 => {}
            Err(e) if absent(&e) => {
                for arn in chunk {
                    match describe(client, std::slice::from_ref(arn)).await {
                        Ok(found) => out.extend(found),
                        Err(e) if absent(&e) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

async fn describe(
    client: &elb::Client,
    arns: &[String],
) -> Result<Vec<elb::types::TargetGroup>, DescribeTgError> {
    let r = client
        .describe_target_groups()
        .set_target_group_arns(Some(arns.to_vec()))
        .send()
        .await?;
    Ok(r.target_groups().to_vec())
}
