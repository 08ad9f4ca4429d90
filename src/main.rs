//! The `clientele` binary: parses the command line and runs it.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match clientele::cli::run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}
