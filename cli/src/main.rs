//! The `fedpki` binary.

fn main() -> std::process::ExitCode {
    fedpki::main()
}
