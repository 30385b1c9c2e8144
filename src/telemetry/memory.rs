//! Handing freed heap back to the kernel.
//!
//! glibc keeps memory freed by one thread in that thread's arena, so after a burst (a
//! node's 1,000 pods deleted, their sessions dropped) RSS stays at its high-water mark
//! although the process holds nothing. `malloc_trim(0)` returns the free pages of every
//! arena. Other allocators and targets: a no-op.

/// Returns freed heap pages to the kernel; cheap enough to call after any large release.
pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers; it walks glibc's own arenas under their locks.
    unsafe {
        libc::malloc_trim(0);
    }
}
