// glibc's allocator spends a third of the ingestion hot path in malloc/free (measured with
// `perf` on `cargo bench --bench ingest`); mimalloc's thread-local free lists do not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    aurora::telemetry::mark_process_start();
    aurora::cli::main()
}
