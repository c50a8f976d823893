//! The small interfaces the core is written against, one file per concern. The runtime
//! implements them on the real host; unit tests use the fakes in `core::fakes`.

mod database;
mod dumps;
mod engine;
mod files;
mod git;
mod hooks;
mod host;
mod ports;
mod proxy;
mod records;

pub use database::*;
pub use dumps::*;
pub use engine::*;
pub use files::*;
pub use git::*;
pub use hooks::*;
pub use host::*;
pub use ports::*;
pub use proxy::*;
pub use records::*;
