//! Which native functions run Python frames: a native unwind of a blocked thread stops
//! before the first of them, where the thread's innermost Python frame is being run. Names
//! only; it reads nothing.

/// Whether the native function `symbol` is the interpreter loop (3.8-3.15, GCC's split-off
/// `.cold` parts and the 3.14+ tail-calling interpreter's instruction functions included).
pub fn runs_python_frames(symbol: &str) -> bool {
    let base = symbol.split('.').next().unwrap_or(symbol);
    matches!(
        base,
        "_PyEval_EvalFrameDefault" | "_PyEval_EvalFrame" | "PyEval_EvalFrameEx"
    ) || base.starts_with("_TAIL_CALL_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_the_eval_loop_and_nothing_else() {
        assert!(runs_python_frames("_PyEval_EvalFrameDefault"));
        assert!(runs_python_frames("_PyEval_EvalFrameDefault.cold"));
        assert!(runs_python_frames("_TAIL_CALL_LOAD_FAST"));
        assert!(!runs_python_frames("_PyEval_Vector"));
        assert!(!runs_python_frames("pthread_mutex_lock"));
    }
}
