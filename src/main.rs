//! The `causeway` binary: parse the command line, start the chosen subcommand.

use causeway::cli::{Cli, Command, LogFormatArg};
use causeway::telemetry::{self, LogFormat};
use clap::Parser;
use clap::error::ErrorKind;
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    ExitCode::SUCCESS
                }
                _ => {
                    eprintln!("{}", causeway::cli::one_line_error(&e));
                    ExitCode::from(2)
                }
            };
        }
    };
    let format = match cli.log_format {
        LogFormatArg::Json => LogFormat::Json,
        LogFormatArg::Text => LogFormat::Text,
    };
    match cli.command {
        Command::Version => {
            println!("causeway {}", causeway::VERSION);
            ExitCode::SUCCESS
        }
        Command::Crds(args) => match args.out {
            Some(dir) => match causeway::crd::write_dir(&dir) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("causeway: writing CRDs to {}: {e}", dir.display());
                    ExitCode::FAILURE
                }
            },
            None => {
                let mut out = std::io::stdout().lock();
                if out
                    .write_all(causeway::crd::render_all().as_bytes())
                    .is_err()
                {
                    return ExitCode::FAILURE;
                }
                ExitCode::SUCCESS
            }
        },
        Command::Controller(args) => {
            if let Err(e) = telemetry::init_logging(format, &cli.log_level) {
                eprintln!("causeway: {e}");
                return ExitCode::from(2);
            }
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("causeway: starting the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(causeway::controller::run(*args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "controller failed");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Agent(args) => {
            if let Err(e) = telemetry::init_logging(format, &cli.log_level) {
                eprintln!("causeway: {e}");
                return ExitCode::from(2);
            }
            let settings = args.settings();
            if args.cleanup_iptables {
                return match causeway::iam::agent::run::cleanup_iptables(&settings.iptables) {
                    Ok(removed) => {
                        tracing::info!(removed, interface = %settings.iptables.interface, "removed the metadata DNAT rule");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "removing the metadata DNAT rule failed");
                        ExitCode::FAILURE
                    }
                };
            }
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("causeway: starting the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(causeway::iam::agent::run(settings)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "agent failed");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Convert(args) => match causeway::plan::convert(&args) {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("causeway convert: {e}");
                ExitCode::from(2)
            }
        },
        Command::Plan(args) => {
            // Warnings (such as "no AWS access") go to stderr; the report to stdout.
            let _ = telemetry::init_logging(format, &cli.log_level);
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("causeway: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(causeway::plan::run(&args)) {
                Ok(report) => {
                    print!("{report}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("causeway plan: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
