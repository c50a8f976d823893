//! A stage's code server: its record and transition table ([`model`]) and the `codeserver.*`
//! operations and how it follows its stage ([`ops`]).

pub mod model;
mod ops;

pub use model::*;
