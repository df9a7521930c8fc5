//! The guest side of the ABI: the `tocsin_*` exports that [`rule!`](crate::rule)
//! expands to, the `tocsin_v1` imports, and the byte-level evaluation they share
//! with native tests.

use std::panic::{AssertUnwindSafe, catch_unwind};

use tocsin_abi::{ErrorCode, EvalRequest, EvalResponse, Message, import};

use crate::context::{Backend, Context};
use crate::{Error, RuleFn};

/// The three query imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    Query,
    QueryRange,
    Series,
}

impl Call {
    pub fn import_name(self) -> &'static str {
        match self {
            Call::Query => import::QUERY,
            Call::QueryRange => import::QUERY_RANGE,
            Call::Series => import::SERIES,
        }
    }
}

/// The host as the guest sees it: an encoded request in, an encoded
/// [`QueryReply`](tocsin_abi::QueryReply) out. On wasm32 this is the
/// `tocsin_v1` imports; natively, whatever a test supplies.
pub trait Host {
    fn call(&mut self, call: Call, request: &[u8]) -> Result<Vec<u8>, ErrorCode>;
}

/// One evaluation from an encoded [`EvalRequest`] to an encoded
/// [`EvalResponse`], exactly what `tocsin_evaluate` does minus the pointers.
/// Natively it also turns a panic into the rule's error, as the panic import
/// does on wasm32.
pub fn evaluate_encoded(
    rule: RuleFn,
    request: &[u8],
    host: Box<dyn Host>,
) -> Result<Vec<u8>, ErrorCode> {
    let request = EvalRequest::decode(request).map_err(|_| ErrorCode::BadMessage)?;
    let mut ctx = Context::new(request, Backend::Host(host));
    Ok(respond(rule, &mut ctx).encode())
}

pub(crate) fn respond(rule: RuleFn, ctx: &mut Context) -> EvalResponse {
    let result = catch_unwind(AssertUnwindSafe(|| rule(ctx))).unwrap_or_else(|panic| {
        let msg = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".into());
        Err(Error::msg(format!("rule panicked: {msg}")))
    });
    let logs = std::mem::take(&mut ctx.logs);
    match result {
        Ok(out) => EvalResponse {
            samples: out.into_samples(),
            state: ctx.new_state.take(),
            logs,
            error: None,
        },
        Err(e) => EvalResponse { logs, error: Some(e.to_string()), ..Default::default() },
    }
}

#[cfg(target_arch = "wasm32")]
pub use wasm::{alloc_export, evaluate_export};

#[cfg(target_arch = "wasm32")]
mod wasm {
    use std::alloc::{Layout, alloc_zeroed, dealloc};
    use std::ptr::NonNull;
    use std::sync::{Mutex, MutexGuard, Once, PoisonError};

    use tocsin_abi::{ErrorCode, pack_ptr_len};

    use super::{Call, Host, evaluate_encoded};
    use crate::RuleFn;

    #[link(wasm_import_module = "tocsin_v1")]
    unsafe extern "C" {
        fn query(ptr: *const u8, len: usize) -> i32;
        fn query_range(ptr: *const u8, len: usize) -> i32;
        fn series(ptr: *const u8, len: usize) -> i32;
        fn take_reply(ptr: *mut u8, len: usize) -> i32;
        fn panic(ptr: *const u8, len: usize);
    }

    /// The last response, kept alive until the host's next call into the guest
    /// has had the chance to copy it out.
    static RESPONSE: Mutex<Vec<u8>> = Mutex::new(Vec::new());

    fn response_slot() -> MutexGuard<'static, Vec<u8>> {
        // Poisoning needs unwinding, which guests built with panic=abort never do.
        RESPONSE.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn release_response() {
        *response_slot() = Vec::new();
    }

    /// The buffer `tocsin_alloc` promises: 8-aligned, so a message's columns are
    /// aligned in memory, not only relative to the message start.
    struct AlignedBuf {
        ptr: NonNull<u8>,
        len: usize,
    }

    impl AlignedBuf {
        fn layout(len: usize) -> Option<Layout> {
            Layout::from_size_align(len.max(1), 8).ok()
        }

        fn new(len: usize) -> Option<Self> {
            // Zeroed, so the buffer is initialised whatever the host writes.
            let ptr = NonNull::new(unsafe { alloc_zeroed(Self::layout(len)?) })?;
            Some(Self { ptr, len })
        }

        fn as_slice(&self) -> &[u8] {
            unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
        }
    }

    impl Drop for AlignedBuf {
        fn drop(&mut self) {
            if let Some(layout) = Self::layout(self.len) {
                unsafe { dealloc(self.ptr.as_ptr(), layout) }
            }
        }
    }

    struct Imports;

    impl Host for Imports {
        fn call(&mut self, call: Call, request: &[u8]) -> Result<Vec<u8>, ErrorCode> {
            let (ptr, len) = (request.as_ptr(), request.len());
            let reply_len = unsafe {
                match call {
                    Call::Query => query(ptr, len),
                    Call::QueryRange => query_range(ptr, len),
                    Call::Series => series(ptr, len),
                }
            };
            let reply_len = usize::try_from(reply_len).map_err(|_| {
                ErrorCode::from_code(reply_len.into()).unwrap_or(ErrorCode::BadMessage)
            })?;
            // The decoder copies columns out and needs no alignment, so a plain
            // Vec will do (and dlmalloc's are 8-aligned anyway).
            let mut reply = vec![0; reply_len];
            let copied = unsafe { take_reply(reply.as_mut_ptr(), reply_len) };
            if copied < 0 {
                return Err(ErrorCode::from_code(copied.into()).unwrap_or(ErrorCode::NoReply));
            }
            Ok(reply)
        }
    }

    fn install_panic_hook() {
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                let msg = info.to_string();
                unsafe { panic(msg.as_ptr(), msg.len()) }
            }))
        });
    }

    pub fn alloc_export(len: i32) -> i32 {
        release_response();
        let Some(buf) = usize::try_from(len).ok().and_then(AlignedBuf::new) else { return 0 };
        let ptr = buf.ptr.as_ptr() as usize as i32;
        std::mem::forget(buf);
        ptr
    }

    pub fn evaluate_export(rule: RuleFn, ptr: i32, len: i32) -> i64 {
        install_panic_hook();
        release_response();
        let (Some(ptr), Ok(len)) = (NonNull::new(ptr as usize as *mut u8), usize::try_from(len))
        else {
            return ErrorCode::BadMessage as i64;
        };
        // The host hands back what tocsin_alloc gave it; this takes ownership.
        let request = AlignedBuf { ptr, len };
        let response = match evaluate_encoded(rule, request.as_slice(), Box::new(Imports)) {
            Ok(response) => response,
            Err(code) => return code as i64,
        };
        drop(request);
        let packed = pack_ptr_len(response.as_ptr() as usize as u32, response.len() as u32);
        *response_slot() = response;
        packed
    }
}
