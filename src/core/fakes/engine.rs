//! Fake engines: one where everything succeeds and nothing exists, one that waits at a gate.

use crate::core::interfaces::{
    ContainerInfo, ContainerSpec, ContainerStats, Engine, ExecRequest, ExecStatus, LogLine,
    NetworkInfo, Owner, StopOutcome,
};
use crate::core::Result;
use std::collections::BTreeMap;
use std::time::Duration;

/// An engine where everything succeeds and no container exists.
#[derive(Default)]
pub struct NullEngine;

#[async_trait::async_trait]
impl Engine for NullEngine {
    async fn create_network(
        &self,
        _: &str,
        _: &BTreeMap<String, String>,
        _: Option<(ipnet::Ipv4Net, u8)>,
    ) -> Result<()> {
        Ok(())
    }
    async fn remove_network(&self, _: &str, _: &Owner) -> Result<()> {
        Ok(())
    }
    async fn list_labelled_networks(&self, _: &str) -> Result<Vec<NetworkInfo>> {
        Ok(vec![])
    }
    async fn connect_network(&self, _: &str, _: &str, _: &[String]) -> Result<()> {
        Ok(())
    }
    async fn disconnect_network(&self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        Ok(spec.name.clone())
    }
    async fn start_container(&self, _: &str) -> Result<()> {
        Ok(())
    }
    async fn stop_container(&self, _: &str, _: &str, _: Duration) -> Result<StopOutcome> {
        Ok(StopOutcome::AlreadyStopped)
    }
    async fn remove_container(&self, _: &str, _: &Owner) -> Result<()> {
        Ok(())
    }
    async fn rename_container(&self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    async fn inspect_container(&self, _: &str, _: &str) -> Result<Option<ContainerInfo>> {
        Ok(None)
    }
    async fn run_to_completion(
        &self,
        _: &ContainerSpec,
        _: &Owner,
        _: Duration,
    ) -> Result<(i64, String)> {
        Ok((0, String::new()))
    }
    async fn list_labelled(&self, _: &str) -> Result<Vec<ContainerInfo>> {
        Ok(vec![])
    }
    async fn published_ports(&self) -> Result<Vec<u16>> {
        Ok(vec![])
    }
    async fn stats(&self, _: &str) -> Result<Option<ContainerStats>> {
        Ok(None)
    }
    async fn exec(&self, _: &str, _: ExecRequest) -> Result<ExecStatus> {
        Ok(ExecStatus {
            exit_code: Some(0),
            timed_out: false,
        })
    }
    async fn logs(&self, _: &str, _: usize, _: Option<i64>) -> Result<Vec<LogLine>> {
        Ok(vec![])
    }
    async fn follow_logs(
        &self,
        _: &str,
        _: usize,
    ) -> Result<futures::stream::BoxStream<'static, Result<LogLine>>> {
        Ok(Box::pin(futures::stream::empty()))
    }
}

/// A [`NullEngine`] whose `published_ports` says it was reached, then waits to be released.
#[derive(Default)]
pub struct GatedEngine {
    pub reached: tokio::sync::Notify,
    pub release: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl Engine for GatedEngine {
    async fn create_network(
        &self,
        n: &str,
        l: &BTreeMap<String, String>,
        s: Option<(ipnet::Ipv4Net, u8)>,
    ) -> Result<()> {
        NullEngine.create_network(n, l, s).await
    }
    async fn remove_network(&self, n: &str, o: &Owner) -> Result<()> {
        NullEngine.remove_network(n, o).await
    }
    async fn list_labelled_networks(&self, l: &str) -> Result<Vec<NetworkInfo>> {
        NullEngine.list_labelled_networks(l).await
    }
    async fn connect_network(&self, n: &str, c: &str, a: &[String]) -> Result<()> {
        NullEngine.connect_network(n, c, a).await
    }
    async fn disconnect_network(&self, n: &str, c: &str) -> Result<()> {
        NullEngine.disconnect_network(n, c).await
    }
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        NullEngine.create_container(spec).await
    }
    async fn start_container(&self, n: &str) -> Result<()> {
        NullEngine.start_container(n).await
    }
    async fn stop_container(&self, n: &str, s: &str, g: Duration) -> Result<StopOutcome> {
        NullEngine.stop_container(n, s, g).await
    }
    async fn remove_container(&self, n: &str, o: &Owner) -> Result<()> {
        NullEngine.remove_container(n, o).await
    }
    async fn rename_container(&self, id: &str, n: &str) -> Result<()> {
        NullEngine.rename_container(id, n).await
    }
    async fn inspect_container(&self, n: &str, net: &str) -> Result<Option<ContainerInfo>> {
        NullEngine.inspect_container(n, net).await
    }
    async fn run_to_completion(
        &self,
        s: &ContainerSpec,
        o: &Owner,
        t: Duration,
    ) -> Result<(i64, String)> {
        NullEngine.run_to_completion(s, o, t).await
    }
    async fn list_labelled(&self, l: &str) -> Result<Vec<ContainerInfo>> {
        NullEngine.list_labelled(l).await
    }
    async fn published_ports(&self) -> Result<Vec<u16>> {
        self.reached.notify_one();
        self.release.notified().await;
        Ok(vec![])
    }
    async fn stats(&self, n: &str) -> Result<Option<ContainerStats>> {
        NullEngine.stats(n).await
    }
    async fn exec(&self, n: &str, r: ExecRequest) -> Result<ExecStatus> {
        NullEngine.exec(n, r).await
    }
    async fn logs(&self, n: &str, t: usize, s: Option<i64>) -> Result<Vec<LogLine>> {
        NullEngine.logs(n, t, s).await
    }
    async fn follow_logs(
        &self,
        n: &str,
        t: usize,
    ) -> Result<futures::stream::BoxStream<'static, Result<LogLine>>> {
        NullEngine.follow_logs(n, t).await
    }
}
