// The import and the ledger export allocate on one thread and free on
// another by the million; mimalloc handles that far better than glibc's
// per-arena locks.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    vrs::cli::main()
}
