fn main() -> std::process::ExitCode {
    vrs::cli::main()
}
