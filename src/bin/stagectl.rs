//! `stagectl`: the command-line client of the stagelet agent.

fn main() -> std::process::ExitCode {
    stagelet::cli::main()
}
