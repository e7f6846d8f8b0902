//! A global allocator that makes absurd capacity requests harmless.
//!
//! The `kafka-protocol` decoder reserves `Vec::with_capacity(n)` for an array whose length
//! `n` it has just read from the wire, before it knows whether the frame holds `n` elements.
//! A hostile 20-byte frame can therefore ask for hundreds of gigabytes, and the system
//! allocator's refusal aborts the process. This allocator serves every request of
//! [`HUGE_BYTES`] or more with an anonymous `mmap(MAP_NORESERVE)`: address space only, no
//! commitment, so the reservation succeeds, the decoder then fails on the short frame, and the
//! mapping is returned untouched. Smaller requests go to the system allocator unchanged.
//!
//! The binary and the test binaries install it with `#[global_allocator]`.

use std::alloc::{GlobalAlloc, Layout, System};

/// Requests at or above this size are served by `mmap`. No legitimate allocation in the broker
/// comes near it (frames are capped by `socket.request.max.bytes`, 100 MiB by default).
pub const HUGE_BYTES: usize = 1 << 30;

/// See the module documentation.
pub struct GuardedAllocator;

unsafe impl GlobalAlloc for GuardedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= HUGE_BYTES && layout.align() <= 4096 {
            let ptr = libc::mmap(
                std::ptr::null_mut(),
                layout.size(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            );
            if ptr == libc::MAP_FAILED {
                return std::ptr::null_mut();
            }
            return ptr as *mut u8;
        }
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() >= HUGE_BYTES && layout.align() <= 4096 {
            libc::munmap(ptr as *mut libc::c_void, layout.size());
            return;
        }
        System.dealloc(ptr, layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= HUGE_BYTES && layout.align() <= 4096 {
            // Fresh anonymous mappings are zero-filled.
            return self.alloc(layout);
        }
        System.alloc_zeroed(layout)
    }
}
