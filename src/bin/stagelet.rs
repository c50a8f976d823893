//! `stagelet`: the daemon. `stagelet [serve] [--config FILE]`, `stagelet check-config FILE`,
//! `stagelet measure DIR`.

use clap::{CommandFactory, Parser, Subcommand};
use stagelet::daemon::start::{print_config_errors, serve, ConfigSource};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "stagelet",
    version,
    about = "Host agent of a stage-hosting platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Configuration file (default /etc/stagelet/stagelet.toml, else embedded defaults)
    #[arg(long, global = true)]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (the default)
    Serve,
    /// Check a configuration file and print every error with its line, column and key
    CheckConfig { file: PathBuf },
    /// Measure a directory as the agent measures stages (apparent and allocated bytes, as
    /// `du -sb` and `du -sB1`), printed as JSON
    Measure { dir: PathBuf },
    /// Print the man page (roff), for packaging
    #[command(hide = true)]
    Man,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Man => match clap_mangen::Man::new(Cli::command())
            .section("8")
            .render(&mut std::io::stdout())
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("stagelet: {e}");
                ExitCode::FAILURE
            }
        },
        Command::CheckConfig { file } => match stagelet::config::load_file(&file) {
            Ok(_) => {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                print_config_errors(&file.display().to_string(), &errors);
                ExitCode::from(stagelet::daemon::EXIT_CONFIG)
            }
        },
        Command::Measure { dir } => {
            let threads = stagelet::runtime::disk_walk::default_threads();
            let usage = stagelet::runtime::disk_walk::measure(&dir, threads);
            match serde_json::to_string_pretty(&usage) {
                Ok(text) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("stagelet: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build();
            match runtime {
                Ok(rt) => rt.block_on(serve(ConfigSource::choose(cli.config))),
                Err(e) => {
                    eprintln!("stagelet: cannot start the runtime: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
