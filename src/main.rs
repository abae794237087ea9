fn main() -> std::process::ExitCode {
    aurora::cli::main()
}
