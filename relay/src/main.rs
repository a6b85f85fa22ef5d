//! `accordo-relay`: the relay's command line. See [`accordo_relay::cli`].

fn main() -> std::process::ExitCode {
    accordo_relay::cli::main()
}
