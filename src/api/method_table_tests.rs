//! The API's table of methods ([`super::rpc::METHODS`]) against the methods the server
//! registers: a method added to a trait and left out of the table fails here, and so does a
//! table entry the server does not have.

use super::handlers::Handlers;
use super::rpc::METHODS;
use crate::core::agent::Agent;
use crate::core::fakes;
use crate::runtime::{host::SysHost, probes::HostDependencies};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The server's module, built the way the daemon builds it, over fakes that are never called.
fn registered() -> BTreeSet<&'static str> {
    let store = Arc::new(fakes::MemStore::default());
    let deps = fakes::deps(store.clone(), Arc::new(fakes::SlowMeter::default()));
    let config = crate::core::settings::shared(crate::core::settings::Settings::default());
    let host = Arc::new(SysHost::new(std::path::Path::new("/")));
    let probes = Arc::new(HostDependencies {
        docker_endpoint: String::new(),
        nginx_enabled: false,
        nginx_binary: String::new(),
    });
    let agent = Agent::new(config, store, deps, host, probes).expect("an empty store loads");
    let module = Handlers::new(Arc::new(agent)).into_module();
    module.method_names().collect()
}

#[tokio::test]
async fn every_registered_method_is_in_the_table_and_nothing_else() {
    let table: BTreeSet<&str> = METHODS.iter().map(|(name, _)| *name).collect();
    assert_eq!(table.len(), METHODS.len(), "a method is listed twice");
    let registered = registered();
    let unlisted: Vec<_> = registered.difference(&table).collect();
    assert!(
        unlisted.is_empty(),
        "registered but not in api::rpc::METHODS (give each its access): {unlisted:?}"
    );
    let unknown: Vec<_> = table.difference(&registered).collect();
    assert!(
        unknown.is_empty(),
        "in api::rpc::METHODS but not registered: {unknown:?}"
    );
}
