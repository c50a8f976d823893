//! `stagectl images pull [PROFILE]`: the images of a profile pulled ahead of the first stage.

use super::args::ImagesCmd;
use super::run::{render, Failure};
use crate::api::rpc::AgentApiClient;
use crate::core::stage::pull::ImageDigest;

pub async fn run(
    client: &jsonrpsee::async_client::Client,
    cmd: ImagesCmd,
    json: bool,
) -> Result<String, Failure> {
    match cmd {
        ImagesCmd::Pull { profile } => {
            let pulled = client.pull_images(profile).await?;
            render(json, &pulled, |v: &Vec<ImageDigest>| {
                v.iter()
                    .map(|d| format!("{}  {}\n", d.image, d.digest))
                    .collect()
            })
        }
    }
}
