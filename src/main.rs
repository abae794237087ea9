// glibc's allocator spends a third of the ingestion hot path in malloc/free (measured with
// `perf` on `cargo bench --bench ingest`); mimalloc's thread-local free lists do not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's `mimalloc.h` (v2 and v3), which the Rust bindings do
/// not name: how long freed memory stays committed before it is given back, in milliseconds.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> std::process::ExitCode {
    // Give freed memory back at once rather than after 10 ms: batches are freed on the writer's
    // thread and allocated on the batcher's, and the delay kept 20-40 MB more resident at the
    // ingestion bench's peak. `MIMALLOC_PURGE_DELAY` in the environment still wins.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: stores an option value; mimalloc reads it at its next purge decision.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
    aurora::telemetry::mark_process_start();
    aurora::cli::main()
}
