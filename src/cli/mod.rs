//! `stagectl`: the command-line client. It mirrors the API through the generated client; human
//! tables by default, `--json` for scripts.

pub mod args;
mod codeserver;
pub mod exit;
mod images;
pub mod output;
mod run;
mod stage;
mod stage_text;
mod tls_text;

pub use run::main;
