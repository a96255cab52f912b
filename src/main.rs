//! vpc-auditor: audits AWS VPCs against the network requirements of bring-your-own-cloud
//! platforms. `main` only wires the command line to the run and turns its outcome into an
//! exit code; everything else lives in the library (`src/lib.rs`).

use clap::Parser;
use vpc_auditor::{app, cli, telemetry};

fn main() {
    let cli = cli::Cli::parse();
    telemetry::init(cli.log_format, &cli.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("vpc-auditor: cannot start the async runtime: {err}");
            std::process::exit(2);
        }
    };
    let code = runtime.block_on(app::run(cli));
    std::process::exit(code);
}
