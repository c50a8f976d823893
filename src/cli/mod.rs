//! stagectl: the command-line client.
