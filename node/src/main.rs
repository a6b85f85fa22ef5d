//! `accordo`: the node's command line. See [`accordo_node::cli`].

fn main() -> std::process::ExitCode {
    accordo_node::cli::main()
}
