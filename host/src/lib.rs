//! wasmhook (placeholder)
